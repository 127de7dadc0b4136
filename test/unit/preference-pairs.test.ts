import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { toFloat, type RgbImage } from '../../engine/data/image';
import { decodeImage, encodePng } from '../../engine/data/image-codec';
import { folderPreferenceRows } from '../../engine/data/folder-import';
import {
  PickapicFileError,
  PickapicRowError,
  encodePickapicParquet,
  pickapicRowStats,
  readPickapicBytes,
  readPickapicShards,
  toPickapicWriteRow,
  writePickapicParquet,
  type PickapicWriteRow,
} from '../../engine/data/pickapic';
import { readPreferencePairs, readResizedPreferencePairs } from '../../engine/data/preference-pairs';
import { feedbackStats, type SimulatedPair } from '../../engine/world/simulate';
import { toModelSpace } from '../../engine/world/pretraining-corpus';
import { TrainingInputError } from '../../engine/training/errors';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'preference-pairs-test-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function solid(value: number, side = 4): RgbImage {
  return { width: side, height: side, data: new Uint8Array(side * side * 3).fill(value) };
}

function row(i: number, label0: number, a = solid(10 + i), b = solid(200 - i)): PickapicWriteRow {
  return {
    caption: `prompt ${i}`,
    image_0_uid: `u${i}-0`,
    image_1_uid: `u${i}-1`,
    jpg_0: encodePng(a),
    jpg_1: encodePng(b),
    label_0: label0,
    label_1: 1 - label0,
    user_id: i,
    ranking_id: i,
  };
}

describe('Pick-a-Pic bytes', () => {
  test('encodePickapicParquet gives the bytes writePickapicParquet writes', async () => {
    const rows = [row(0, 1), row(1, 0), row(2, 0.5)];
    const file = path.join(dir, 'same.parquet');
    await writePickapicParquet(file, rows, { validate: false });
    assert.deepEqual(
      encodePickapicParquet(rows, { validate: false }),
      new Uint8Array(await fs.readFile(file)),
    );
  });

  test('readPickapicBytes reads what readPickapicShards reads, naming the source as given', async () => {
    const rows = [row(0, 1), row(1, 0)];
    const bytes = encodePickapicParquet(rows, { minImageSide: 1 });
    const file = path.join(dir, 'read.parquet');
    await fs.writeFile(file, bytes);
    const fromFile = await readPickapicShards([file], { minImageSide: 1 });
    const fromBytes = await readPickapicBytes(bytes, 'artifact.parquet', { minImageSide: 1 });
    assert.equal(fromBytes.rows.length, 2);
    assert.deepEqual(
      fromBytes.rows.map((r) => ({ ...r, file: '' })),
      fromFile.rows.map((r) => ({ ...r, file: '' })),
    );
    assert.equal(fromBytes.rows[0]!.file, 'artifact.parquet');
    // A view into a larger buffer reads as its own bytes.
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 5);
    const view = padded.subarray(5, 5 + bytes.length);
    assert.equal((await readPickapicBytes(view, 'view', { minImageSide: 1 })).rows.length, 2);
  });

  test('readPickapicBytes names the source in file and row errors', async () => {
    await assert.rejects(
      () => readPickapicBytes(new Uint8Array([1, 2, 3]), 'broken.parquet'),
      (err: unknown) =>
        err instanceof PickapicFileError && /^broken\.parquet: not a readable parquet file/.test(err.message),
    );
    const bad = encodePickapicParquet([{ ...row(0, 1), caption: '' }], { validate: false });
    await assert.rejects(
      () => readPickapicBytes(bad, 'bad.parquet', { minImageSide: 1 }),
      (err: unknown) =>
        err instanceof PickapicRowError && /^bad\.parquet row 0 field caption/.test(err.message),
    );
  });

  test('encodePickapicParquet validates rows under the given name', () => {
    assert.throws(
      () => encodePickapicParquet([{ ...row(0, 1), jpg_0: null }], { minImageSide: 1 }, 'out.parquet'),
      (err: unknown) =>
        err instanceof PickapicRowError && err.file === 'out.parquet' && err.field === 'jpg_0',
    );
  });

  test('toPickapicWriteRow keeps the written fields and drops decoded images and position', async () => {
    const written = { ...row(0, 1), model_0: 'm0', created_at: new Date(5000) };
    const bytes = encodePickapicParquet([written, row(1, 0)], { minImageSide: 1 });
    const { rows } = await readPickapicBytes(bytes, 'x', { images: 'decode', minImageSide: 1 });
    const back = toPickapicWriteRow(rows[0]!);
    assert.deepEqual(back, { ...written, model_1: '' });
    assert.equal('image_0' in back || 'file' in back || 'row' in back, false);
    assert.equal(
      toPickapicWriteRow({ ...rows[1]!, model_0: undefined, created_at: undefined }).model_0,
      undefined,
    );
  });

  test('pickapicRowStats counts distinct captions and comparisons of two images', () => {
    const rows = [row(0, 1), { ...row(1, 0), caption: 'prompt 0' }, { ...row(2, 0.5), image_1_uid: 'u2-0' }];
    assert.deepEqual(pickapicRowStats(rows), { prompts: 2, comparisons: 2 });
  });

  test('folderPreferenceRows shows each image twice as a tie', () => {
    const image = solid(77);
    const rows = folderPreferenceRows([
      { fileName: 'a.png', caption: 'first', image },
      { fileName: 'b.png', caption: 'second', image: solid(9) },
    ]);
    assert.equal(rows.length, 2);
    assert.deepEqual(
      { ...rows[1]!, jpg_0: null, jpg_1: null },
      {
        caption: 'second',
        image_0_uid: 'folder-b.png',
        image_1_uid: 'folder-b.png',
        jpg_0: null,
        jpg_1: null,
        label_0: 0.5,
        label_1: 0.5,
        user_id: 0,
        ranking_id: 1,
      },
    );
    assert.deepEqual(decodeImage(rows[0]!.jpg_0!), image);
    assert.deepEqual(rows[0]!.jpg_0, rows[0]!.jpg_1);
  });
});

describe('preference pairs', () => {
  test('winner is the chosen image, ties are left out, images in model space', async () => {
    const bytes = encodePickapicParquet([row(0, 1), row(1, 0.5), row(2, 0)], { validate: false });
    const ds = await readPreferencePairs(bytes, 'prefs');
    assert.deepEqual([ds.height, ds.width, ds.channels], [4, 4, 3]);
    assert.deepEqual(
      ds.pairs.map((p) => p.prompt),
      ['prompt 0', 'prompt 2'],
    );
    assert.deepEqual(ds.pairs[0]!.winner, toModelSpace(toFloat(solid(10)).data));
    assert.deepEqual(ds.pairs[0]!.loser, toModelSpace(toFloat(solid(200)).data));
    assert.deepEqual(ds.pairs[1]!.winner, toModelSpace(toFloat(solid(198)).data));
    assert.deepEqual(ds.pairs[1]!.loser, toModelSpace(toFloat(solid(12)).data));
  });

  test('an empty or all-tie set has no pairs and size 0', async () => {
    const ds = await readPreferencePairs(encodePickapicParquet([row(0, 0.5)], { validate: false }), 'p');
    assert.deepEqual(ds, { height: 0, width: 0, channels: 3, pairs: [] });
  });

  test('images of different sizes are refused, naming the row', async () => {
    const bytes = encodePickapicParquet([row(0, 1), row(1, 0, solid(3, 8), solid(4, 8))], {
      validate: false,
    });
    await assert.rejects(
      () => readPreferencePairs(bytes, 'prefs.parquet'),
      (err: unknown) =>
        err instanceof TrainingInputError &&
        err.message ===
          "prefs.parquet row 1: image is 8x8, the first pair's is 4x4; every image must have the same size",
    );
  });

  test('unreadable parquet and bad rows become TrainingInputError naming the source', async () => {
    await assert.rejects(
      () => readPreferencePairs(new Uint8Array([0, 1, 2, 3]), 'runs/x/pairs.parquet'),
      (err: unknown) =>
        err instanceof TrainingInputError &&
        /^runs\/x\/pairs\.parquet: parquet: not a readable parquet file/.test(err.message),
    );
    const bad = encodePickapicParquet([{ ...row(0, 1), caption: null }], { validate: false });
    await assert.rejects(
      () => readResizedPreferencePairs(bad, 'src', 2),
      (err: unknown) =>
        err instanceof TrainingInputError && /^src: parquet row 0 field caption/.test(err.message),
    );
  });

  test('readResizedPreferencePairs resizes every image to the given side', async () => {
    const bytes = encodePickapicParquet(
      [row(0, 0, solid(40, 8), solid(80, 4)), row(1, 0.5), row(2, 1, solid(0, 2), solid(255, 6))],
      { validate: false },
    );
    const pairs = await readResizedPreferencePairs(bytes, 'src', 4);
    assert.deepEqual(
      pairs.map((p) => p.prompt),
      ['prompt 0', 'prompt 2'],
    );
    for (const p of pairs) {
      assert.equal(p.winner.length, 4 * 4 * 3);
      assert.equal(p.loser.length, 4 * 4 * 3);
    }
    // Solid images stay solid when resized: winner of row 0 is image 1 (80), loser image 0 (40).
    assert.ok(Math.abs(pairs[0]!.winner[0]! - (80 / 255) * 2 + 1) < 1e-5);
    assert.ok(Math.abs(pairs[0]!.loser[0]! - (40 / 255) * 2 + 1) < 1e-5);
    assert.ok(Math.abs(pairs[1]!.winner[5]! + 1) < 1e-5);
    assert.ok(Math.abs(pairs[1]!.loser[5]! - 1) < 1e-5);
  });
});

describe('feedbackStats', () => {
  test('counts decisions and averages the alignment over both images of every pair', () => {
    const pair = (decision: SimulatedPair['decision'], alignment: [number, number]) =>
      ({ decision, alignment }) as SimulatedPair;
    const stats = feedbackStats([
      pair('utility', [1, 0.5]),
      pair('tie', [0, 0]),
      pair('utility', [0.25, 0.25]),
    ]);
    assert.deepEqual(stats.decisions, { utility: 2, tie: 1 });
    assert.equal(stats.meanAlignment, 2 / 6);
  });
});
