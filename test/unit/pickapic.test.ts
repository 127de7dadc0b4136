import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadataAsync, asyncBufferFromFile } from 'hyparquet';
import { toUint8 } from '../../engine/data/image';
import { encodeJpeg, encodePng } from '../../engine/data/image-codec';
import { renderScene } from '../../engine/world/render';
import {
  PickapicFileError,
  PickapicRowError,
  iteratePickapicShard,
  readPickapicShards,
  writePickapicParquet,
} from '../../engine/data/pickapic';
import type { PickapicWriteRow } from '../../engine/data/pickapic';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pickapic-test-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const red = toUint8(
  renderScene({ objects: [{ class: 'circle', color: 'red', cx: 0.5, cy: 0.5, size: 0.5 }] }),
);
const blue = toUint8(
  renderScene({ objects: [{ class: 'square', color: 'blue', cx: 0.5, cy: 0.5, size: 0.5 }] }),
);

function row(i: number, overrides: Partial<PickapicWriteRow> = {}): PickapicWriteRow {
  return {
    caption: `a photo of ${i % 2 ? 'a red circle' : 'a blue square'}`,
    image_0_uid: `u${i}-0`,
    image_1_uid: `u${i}-1`,
    jpg_0: encodeJpeg(red),
    jpg_1: encodePng(blue),
    label_0: i % 3 === 0 ? 0.5 : 1,
    label_1: i % 3 === 0 ? 0.5 : 0,
    user_id: 1000 + i,
    ranking_id: 5000 + i,
    model_0: 'world-v1',
    model_1: 'world-v1',
    ...overrides,
  };
}

describe('Pick-a-Pic parquet', () => {
  test('round trip keeps every field, the published column set and derived columns', async () => {
    const file = path.join(dir, 'good.parquet');
    const rows = Array.from({ length: 7 }, (_, i) => row(i));
    await writePickapicParquet(file, rows, { rowGroupSize: 3 });
    assert.deepEqual(
      (await fs.readdir(dir)).filter((f) => f.includes('.tmp-')),
      [],
      'no temporary file left',
    );
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(file));
    const names = meta.schema.slice(1).map((s) => s.name);
    for (const c of [
      'are_different',
      'best_image_uid',
      'caption',
      'created_at',
      'has_label',
      'image_0_uid',
      'image_0_url',
      'image_1_uid',
      'image_1_url',
      'jpg_0',
      'jpg_1',
      'label_0',
      'label_1',
      'model_0',
      'model_1',
      'ranking_id',
      'user_id',
      'num_example_per_prompt',
    ]) {
      assert.ok(names.includes(c), c);
    }
    const result = await readPickapicShards([file], { images: 'decode', batchRows: 2 });
    assert.equal(result.skipped, 0);
    assert.equal(result.rows.length, 7);
    result.rows.forEach((r, i) => {
      const w = rows[i]!;
      assert.equal(r.caption, w.caption);
      assert.equal(r.image_0_uid, w.image_0_uid);
      assert.equal(r.label_0, w.label_0);
      assert.equal(r.label_1, w.label_1);
      assert.equal(r.user_id, w.user_id);
      assert.equal(r.ranking_id, w.ranking_id);
      assert.equal(r.model_0, 'world-v1');
      assert.deepEqual(r.jpg_0, w.jpg_0);
      assert.deepEqual(Array.from(r.image_1!.data), Array.from(blue.data));
      assert.equal(r.file, file);
      assert.equal(r.row, i);
    });
  });

  const badCases: [string, Partial<PickapicWriteRow>, string, string][] = [
    ['missing caption', { caption: '' }, 'caption', 'missing_caption'],
    ['null caption', { caption: null }, 'caption', 'missing_caption'],
    ['missing image', { jpg_1: null }, 'jpg_1', 'missing_image'],
    ['undecodable image', { jpg_0: new TextEncoder().encode('not an image') }, 'jpg_0', 'undecodable_image'],
    [
      'tiny image',
      { jpg_0: encodePng({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3) }) },
      'jpg_0',
      'image_too_small',
    ],
    ['label outside {0, 0.5, 1}', { label_0: 0.7, label_1: 0.3 }, 'label_0', 'bad_label'],
    ['null label', { label_1: null }, 'label_1', 'bad_label'],
    ['labels not summing to 1', { label_0: 1, label_1: 1 }, 'label_0+label_1', 'labels_not_summing_to_one'],
  ];
  for (const [name, overrides, field, reason] of badCases) {
    test(`bad row: ${name} (fail and skip modes)`, async () => {
      const file = path.join(dir, `bad-${reason}-${field}.parquet`);
      await writePickapicParquet(file, [row(0), row(1), row(2, overrides), row(3)], { validate: false });
      await assert.rejects(readPickapicShards([file]), (e: Error) => {
        assert.ok(e instanceof PickapicRowError);
        assert.equal(e.file, file);
        assert.equal(e.row, 2);
        assert.equal(e.field, field);
        assert.equal(e.reason, reason);
        assert.ok(e.message.startsWith(`${file} row 2 field ${field}: ${reason}`), e.message);
        return true;
      });
      const skipped = await readPickapicShards([file], { onBadRow: 'skip' });
      assert.deepEqual(
        skipped.rows.map((r) => r.row),
        [0, 1, 3],
      );
      assert.equal(skipped.skipped, 1);
      assert.deepEqual(skipped.byReason, { [reason]: 1 });
      assert.equal(skipped.examples[0]!.row, 2);
    });
  }

  test('skip counts add up by reason across shards', async () => {
    const a = path.join(dir, 'multi-a.parquet');
    const b = path.join(dir, 'multi-b.parquet');
    await writePickapicParquet(a, [row(0, { caption: '' }), row(1), row(2, { label_0: 2 })], {
      validate: false,
    });
    await writePickapicParquet(b, [row(3, { caption: '' }), row(4)], { validate: false });
    const res = await readPickapicShards([a, b], { onBadRow: 'skip' });
    assert.equal(res.rows.length, 2);
    assert.equal(res.skipped, 3);
    assert.deepEqual(res.byReason, { missing_caption: 2, bad_label: 1 });
  });

  test('the writer validates by default, naming the row', async () => {
    const file = path.join(dir, 'refused.parquet');
    await assert.rejects(
      writePickapicParquet(file, [row(0), row(1, { label_0: 0.2 })]),
      /refused\.parquet row 1 field label_0: bad_label/,
    );
    await assert.rejects(fs.stat(file));
  });

  test('a shard without a required column or not parquet at all fails naming the file', async () => {
    const notParquet = path.join(dir, 'junk.parquet');
    await fs.writeFile(notParquet, 'definitely not parquet');
    await assert.rejects(
      readPickapicShards([notParquet]),
      (e: Error) => e instanceof PickapicFileError && e.message.startsWith(notParquet),
    );
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const partial = path.join(dir, 'partial.parquet');
    await fs.writeFile(
      partial,
      new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'caption', data: ['x'], type: 'STRING' }] })),
    );
    const gen = iteratePickapicShard(partial);
    await assert.rejects(
      gen.next(),
      /partial\.parquet: missing required column\(s\): image_0_uid, image_1_uid, jpg_0/,
    );
  });
});
