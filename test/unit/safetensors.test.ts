import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { convFromTf, convToTf, linearToTf, nchwToNhwc, nhwcToNchw } from '../../engine/io/diffusers-layout';
import {
  assertFinite,
  bf16BitsToFloat,
  f16BitsToFloat,
  floatToF16Bits,
  NonFiniteTensorError,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensors,
} from '../../engine/io/safetensors';
import { PARITY_DIR } from '../fixtures/parity/fixtures';

const dir = mkdtempSync(path.join(tmpdir(), 'safetensors-test-'));

/** Raw file: u64 LE header length, header bytes, data bytes. */
function rawFile(header: string, data: Uint8Array, headerLen = Buffer.byteLength(header)): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function put(name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

async function rejectsWith(file: string, tensor: string | undefined, pattern: RegExp): Promise<void> {
  await assert.rejects(readSafetensors(file), (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, String(err));
    assert.equal(err.file, file);
    assert.equal(err.tensor, tensor);
    assert.ok(err.message.startsWith(file), err.message);
    if (tensor !== undefined) assert.ok(err.message.includes(`'${tensor}'`), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

void describe('safetensors round trip', () => {
  void test('F32 write then read gives the same names, shapes, values and metadata', async () => {
    const file = path.join(dir, 'rt.safetensors');
    const a = { shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-30, 65504, -0]) };
    const b = { shape: [], data: new Float32Array([Math.PI]) };
    const empty = { shape: [0, 4], data: new Float32Array(0) };
    await writeSafetensors(
      file,
      new Map([
        ['layer.a', a],
        ['b', b],
        ['empty', empty],
      ]),
      { metadata: { format: 'pt', step: '12' } },
    );
    const back = await readSafetensors(file);
    assert.deepEqual([...back.tensors.keys()].sort(), ['b', 'empty', 'layer.a']);
    assert.deepEqual(back.tensors.get('layer.a'), { dtype: 'F32', shape: [2, 3], data: a.data });
    assert.deepEqual(back.tensors.get('b')!.data, new Float32Array([Math.PI]));
    assert.deepEqual(back.tensors.get('empty')!.shape, [0, 4]);
    assert.deepEqual(back.metadata, { format: 'pt', step: '12' });
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  void test('header is padded to 8 bytes, data little-endian row-major', () => {
    const bytes = serializeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
    const view = new DataView(bytes.buffer);
    const n = Number(view.getBigUint64(0, true));
    assert.equal(n % 8, 0);
    assert.equal(view.getFloat32(8 + n, true), 1);
    assert.equal(view.getFloat32(8 + n + 4, true), 2);
  });

  void test('F16 write rounds to half precision and reads back', async () => {
    const file = path.join(dir, 'half.safetensors');
    await writeSafetensors(
      file,
      { w: { shape: [4], data: new Float32Array([1, 0.1, -65504, 1e-8]) } },
      { dtype: 'F16' },
    );
    const w = (await readSafetensors(file)).tensors.get('w')!;
    assert.equal(w.dtype, 'F16');
    assert.deepEqual(Array.from(w.data), [1, 0.0999755859375, -65504, 0]);
  });

  void test('a write that cannot complete leaves neither the final file nor a temporary one', async () => {
    const target = path.join(dir, 'occupied');
    mkdirSync(target);
    await assert.rejects(
      writeSafetensors(target, { w: { shape: [1], data: new Float32Array([1]) } }),
      (err: unknown) => {
        assert.ok(err instanceof SafetensorsError && err.file === target);
        return true;
      },
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('occupied') && f.endsWith('.tmp')),
      [],
    );
  });

  void test('shape and data length must agree on write', () => {
    assert.throws(
      () => serializeSafetensors({ w: { shape: [3], data: new Float32Array(2) } }, {}, 'out.st'),
      /out\.st: tensor 'w': shape \[3\] holds 3 values, data has 2/,
    );
  });
});

void describe('files written by the Python safetensors library', () => {
  void test('tiny UNet weights (F16, diffusers layout)', async () => {
    const f = await readSafetensors(path.join(PARITY_DIR, 'tiny-unet.safetensors'));
    assert.equal(f.tensors.size, 304);
    const conv = f.tensors.get('conv_in.weight')!;
    assert.equal(conv.dtype, 'F16');
    assert.deepEqual(conv.shape, [32, 4, 3, 3]);
    assert.equal(f.metadata.format, 'pt');
    assertFinite(f.tensors, 'tiny-unet.safetensors');
  });

  void test('UNet forward arrays: the NCHW copy permuted to NHWC is the NHWC copy', async () => {
    const f = await readSafetensors(path.join(PARITY_DIR, 'unet-forward.safetensors'));
    for (const [nchw, nhwc] of [
      ['input.sample.nchw', 'input.sample.nhwc'],
      ['output.eps.a.nchw', 'output.eps.a.nhwc'],
    ] as const) {
      const a = f.tensors.get(nchw)!;
      const b = f.tensors.get(nhwc)!;
      assert.deepEqual(a.shape, [2, 4, 8, 8]);
      assert.deepEqual(b.shape, [2, 8, 8, 4]);
      assert.deepEqual(nchwToNhwc(a), { shape: b.shape, data: b.data });
    }
    assert.deepEqual(Array.from(f.tensors.get('input.timesteps.a')!.data), [999, 37]);
  });
});

void describe('invalid files: errors name the file and the tensor', () => {
  const f32 = (n: number) => new Uint8Array(4 * n);

  void test('header JSON that does not parse', async () => {
    await rejectsWith(
      put('badjson.st', rawFile('{"a": {', f32(0))),
      undefined,
      /header is not valid UTF-8 JSON/,
    );
  });

  void test('header length beyond the end of the file', async () => {
    await rejectsWith(
      put('longhdr.st', rawFile('{}', f32(0), 4096)),
      undefined,
      /header length 4096 runs past the end/,
    );
  });

  void test('file shorter than the length prefix', async () => {
    await rejectsWith(put('tiny.st', new Uint8Array(3)), undefined, /shorter than the 8-byte header length/);
  });

  void test('unknown dtype', async () => {
    const h = JSON.stringify({ q: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } });
    await rejectsWith(put('dtype.st', rawFile(h, new Uint8Array(4))), 'q', /unsupported dtype "I8"/);
  });

  void test('gap between tensors (offsets not contiguous)', async () => {
    const h = JSON.stringify({
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    });
    await rejectsWith(put('gap.st', rawFile(h, f32(3))), 'b', /begin at 8, leaving a gap after byte 4/);
  });

  void test('overlapping tensors', async () => {
    const h = JSON.stringify({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    });
    await rejectsWith(put('overlap.st', rawFile(h, f32(3))), 'b', /overlap tensor 'a'/);
  });

  void test('offsets out of order (end before begin)', async () => {
    const h = JSON.stringify({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } });
    await rejectsWith(put('order.st', rawFile(h, f32(2))), 'a', /end before they begin/);
  });

  void test('byte size not matching shape x dtype size', async () => {
    const h = JSON.stringify({ w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 24] } });
    await rejectsWith(
      put('size.st', rawFile(h, f32(6))),
      'w',
      /span 24 bytes but shape \[2, 3\] of F16 needs 12/,
    );
  });

  void test('truncated body', async () => {
    const h = JSON.stringify({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    });
    await rejectsWith(
      put('trunc.st', rawFile(h, f32(5))),
      'b',
      /truncated: data section has 20 bytes, tensors need 24/,
    );
  });

  void test('extra trailing bytes', async () => {
    const h = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } });
    await rejectsWith(put('extra.st', rawFile(h, f32(2))), undefined, /4 extra bytes after the last tensor/);
  });

  void test('non-string metadata and malformed entries', async () => {
    await rejectsWith(
      put('meta.st', rawFile(JSON.stringify({ __metadata__: { a: 1 } }), f32(0))),
      undefined,
      /__metadata__ must map strings/,
    );
    const h = JSON.stringify({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } });
    await rejectsWith(put('shape.st', rawFile(h, f32(1))), 'a', /shape \[-1\] is not a list/);
  });

  void test('missing file', async () => {
    await rejectsWith(path.join(dir, 'nope.st'), undefined, /cannot read file/);
  });
});

void describe('half-precision decoding', () => {
  void test('F16 bit patterns', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    for (const [bits, v] of cases) assert.equal(f16BitsToFloat(bits), v, bits.toString(16));
    assert.ok(Object.is(f16BitsToFloat(0x8000), -0));
    assert.ok(Number.isNaN(f16BitsToFloat(0x7e00)));
  });

  void test('BF16 bit patterns', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x4049, 3.140625],
      [0x7f7f, 3.3895313892515355e38],
      [0x0001, 2 ** -133],
      [0x7f80, Infinity],
    ];
    for (const [bits, v] of cases) assert.equal(bf16BitsToFloat(bits), v, bits.toString(16));
    assert.ok(Number.isNaN(bf16BitsToFloat(0x7fc0)));
  });

  void test('F16 and BF16 tensors in a file decode to float32', async () => {
    const data = new Uint8Array(8);
    const v = new DataView(data.buffer);
    v.setUint16(0, 0x3c00, true);
    v.setUint16(2, 0xb800, true); // -0.5
    v.setUint16(4, 0x4049, true);
    v.setUint16(6, 0xbf80, true); // -1
    const h = JSON.stringify({
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      b: { dtype: 'BF16', shape: [1, 2], data_offsets: [4, 8] },
    });
    const f = await readSafetensors(put('half.st', rawFile(h, data)));
    assert.deepEqual(Array.from(f.tensors.get('h')!.data), [1, -0.5]);
    assert.deepEqual(f.tensors.get('b')!, {
      dtype: 'BF16',
      shape: [1, 2],
      data: new Float32Array([3.140625, -1]),
    });
  });

  void test('F16 encoding rounds to nearest even and saturates to infinity', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [65504, 0x7bff],
      [65519, 0x7bff],
      [65520, 0x7c00],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [2 ** -25, 0x0000],
      [3 * 2 ** -25, 0x0002],
      [2 ** -14 - 2 ** -25, 0x0400],
      [-1e-3, 0x9419],
    ];
    for (const [v, bits] of cases) assert.equal(floatToF16Bits(v), bits, String(v));
    assert.equal(floatToF16Bits(Number.NaN), 0x7e00);
    for (let bits = 0; bits < 0x7c00; bits += 7) assert.equal(floatToF16Bits(f16BitsToFloat(bits)), bits);
  });
});

void describe('assertFinite', () => {
  void test('names the file, the tensor and the index of the first NaN or Infinity', () => {
    const good = { shape: [2], data: new Float32Array([1, 2]) };
    assert.doesNotThrow(() => assertFinite({ good }, 'ok.st'));
    assert.throws(
      () =>
        assertFinite(
          new Map([
            ['good', good],
            ['bad', { shape: [3], data: new Float32Array([0, 1, Number.NaN]) }],
          ]),
          'ckpt.st',
        ),
      (err: unknown) =>
        err instanceof NonFiniteTensorError &&
        err.tensor === 'bad' &&
        err.index === 2 &&
        /^ckpt\.st: tensor 'bad' holds NaN/.test(err.message),
    );
    assert.throws(
      () => assertFinite({ inf: { shape: [1], data: new Float32Array([-Infinity]) } }, 'x.st'),
      /tensor 'inf' holds -Infinity at flat index 0/,
    );
  });
});

void describe('diffusers layout conversion', () => {
  void test('conv [O,I,kh,kw] -> [kh,kw,I,O] moves element (o,i,y,x) to (y,x,i,o), and back', () => {
    const [O, I, KH, KW] = [3, 2, 2, 3];
    const data = new Float32Array(O * I * KH * KW).map((_, k) => k);
    const tfw = convToTf({ shape: [O, I, KH, KW], data });
    assert.deepEqual(tfw.shape, [KH, KW, I, O]);
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++)
        for (let y = 0; y < KH; y++)
          for (let x = 0; x < KW; x++) {
            assert.equal(tfw.data[((y * KW + x) * I + i) * O + o], data[((o * I + i) * KH + y) * KW + x]);
          }
    assert.deepEqual(convFromTf(tfw), { shape: [O, I, KH, KW], data });
  });

  void test('linear [O,I] -> [I,O] transposes; NCHW <-> NHWC round trips; wrong rank is an error', () => {
    const w = linearToTf({ shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    assert.deepEqual(w, { shape: [3, 2], data: new Float32Array([1, 4, 2, 5, 3, 6]) });
    const a = { shape: [1, 2, 2, 3], data: new Float32Array(12).map((_, k) => k) };
    assert.deepEqual(nhwcToNchw(nchwToNhwc(a)), a);
    assert.throws(
      () => convToTf({ shape: [3, 3], data: new Float32Array(9) }, 'down.0.conv.weight'),
      /down\.0\.conv\.weight: expected a rank-4/,
    );
  });
});
