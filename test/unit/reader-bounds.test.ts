import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { decodeImage, encodePng, readImageDimensions } from '../../engine/data/image-codec';
import { PickapicFileError, rowGroupSizes, validatePickapicRecord } from '../../engine/data/pickapic';
import { MAX_HEADER_BYTES, readSafetensorsHeader, serializeSafetensors } from '../../engine/io/safetensors';
import { validateUNetConfig, DEMO_UNET } from '../../engine/models/unet-config';
import { TokenizerError, WordTokenizer, validateWordTokenizerConfig } from '../../engine/models/tokenizer';

function png(side: number): Uint8Array {
  return encodePng({ width: side, height: side, data: new Uint8Array(side * side * 3).fill(128) });
}

describe('readers refuse before they allocate', () => {
  test('image sizes come from the PNG IHDR and the JPEG SOF', () => {
    assert.deepEqual(readImageDimensions(png(20)), { width: 20, height: 20 });
    const jpeg = new Uint8Array([
      0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc2, 0, 17, 8, 0x01, 0x2c, 0x02, 0x58,
    ]);
    assert.deepEqual(readImageDimensions(jpeg), { width: 600, height: 300 });
  });

  test('a small PNG claiming 20000x20000 is refused by its header, quickly', () => {
    const bytes = png(16);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setUint32(16, 20000);
    view.setUint32(20, 20000);
    const before = process.memoryUsage().arrayBuffers;
    const started = Date.now();
    assert.throws(
      () => decodeImage(bytes, { source: 'x.png' }),
      /x\.png: undecodable image \(PNG declares 20000x20000, larger than 64 megapixels\)/,
    );
    assert.ok(Date.now() - started < 1000);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  });

  test('a footer claiming more rows than its row groups hold is refused, not looped over', () => {
    const column = (n: bigint) => ({ meta_data: { num_values: n, path_in_schema: ['caption'] } });
    assert.deepEqual(
      rowGroupSizes('s.parquet', {
        num_rows: 3n,
        row_groups: [{ num_rows: 3n, columns: [column(3n)] }],
      } as never),
      [3],
    );
    assert.throws(
      () =>
        rowGroupSizes('s.parquet', {
          num_rows: 2n ** 62n,
          row_groups: [{ num_rows: 3n, columns: [column(3n)] }],
        } as never),
      (err: unknown) =>
        err instanceof PickapicFileError &&
        /footer claims 4611686018427387904 rows but its row groups hold 3/.test(err.message),
    );
    assert.throws(
      () =>
        rowGroupSizes('s.parquet', {
          num_rows: 2n ** 62n,
          row_groups: [{ num_rows: 2n ** 62n, columns: [column(3n)] }],
        } as never),
      /row group 0 claims 4611686018427387904 rows but column caption holds 3 values/,
    );
  });

  test('a label stored as the string "1" says it is a string; a wrong type is not "empty"', () => {
    const row = {
      caption: 'a circle',
      image_0_uid: 'a',
      image_1_uid: 'b',
      jpg_0: png(16),
      jpg_1: png(16),
      label_0: '1',
      label_1: 0,
      user_id: 1n,
      ranking_id: 1n,
    };
    assert.throws(
      () => validatePickapicRecord(row, 's', 0),
      /label_0: bad_label \(must be the number 0, 0\.5 or 1, got string "1"\)/,
    );
    assert.throws(
      () => validatePickapicRecord({ ...row, label_0: 1, caption: 5 }, 's', 0),
      /caption: missing_caption \(number 5, not text\)/,
    );
    assert.throws(
      () => validatePickapicRecord({ ...row, label_0: 1, caption: null }, 's', 0),
      /caption: missing_caption \(empty or null\)/,
    );
  });

  test('a safetensors header length above 100 MB is refused before it is read', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-'));
    const file = path.join(dir, 'm.safetensors');
    const bytes = serializeSafetensors({ t: { shape: [2], data: new Float32Array(2) } });
    fs.writeFileSync(file, bytes);
    assert.deepEqual((await readSafetensorsHeader(file)).tensors.get('t'), { dtype: 'F32', shape: [2] });
    new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES) + 1n, true);
    fs.writeFileSync(file, bytes);
    await assert.rejects(
      readSafetensorsHeader(file),
      /header length 100000001 is more than the 100000000 bytes allowed/,
    );
    fs.rmSync(dir, { recursive: true });
  });

  test('UNet and tokenizer configs from files are bounded and typed', () => {
    assert.throws(
      () => validateUNetConfig({ ...DEMO_UNET, block_out_channels: [-32, 64] }),
      /block_out_channels\[0\] must be an integer in \[1, 8192\], got -32/,
    );
    assert.throws(
      () => validateUNetConfig({ ...DEMO_UNET, in_channels: 1e9 }),
      /in_channels must be an integer/,
    );
    assert.throws(() => validateUNetConfig('demo' as never), /UNetConfig must be an object/);
    assert.throws(
      () => validateWordTokenizerConfig(42),
      (e: unknown) => e instanceof TokenizerError && /must be an object/.test((e as Error).message),
    );
    assert.throws(
      () => new WordTokenizer({ words: 'abc', maxLength: 8 } as never),
      /tokenizer words must be a list of strings/,
    );
  });
});
