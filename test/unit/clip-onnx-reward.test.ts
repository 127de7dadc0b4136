import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeImage } from '../../engine/data/image-codec';
import type { RgbImage } from '../../engine/data/image';
import {
  ClipOnnxReward,
  ClipRewardFolderError,
  clipPreprocess,
  pilResize,
} from '../../engine/rewards/clip-onnx-reward';
import { OnnxContractError } from '../../engine/rewards/onnx-reward';
import { rewardModelIdentity } from '../../engine/rewards/reward-model';

// Built by tools/make_clip_reward_fixture.py with transformers' CLIPImageProcessorPil and
// CLIPTokenizer and torch: a tiny random CLIP scoring 100 * cos(image, text).
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'clip-reward');

interface Expected {
  images: string[];
  prompts: string[];
  input_ids: number[][];
  pixel_values: number[][];
  pairs: { image: number; prompt: number; score: number }[];
}

describe('CLIP ONNX reward model', () => {
  let expected: Expected;
  let images: RgbImage[];
  let scratch: string;

  before(async () => {
    expected = JSON.parse(await readFile(path.join(FIXTURE, 'expected.json'), 'utf8')) as Expected;
    images = await Promise.all(
      expected.images.map(async (n) => decodeImage(await readFile(path.join(FIXTURE, 'images', n)))),
    );
    scratch = await mkdtemp(path.join(tmpdir(), 'clip-reward-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** A copy of the fixture folder, changed by `edit`. */
  const variant = async (name: string, edit: (dir: string) => Promise<void>): Promise<string> => {
    const dir = path.join(scratch, name);
    await cp(FIXTURE, dir, { recursive: true });
    await edit(dir);
    return dir;
  };

  test('preprocessing and token ids reproduce transformers (PIL bicubic, crop, normalize)', async () => {
    const model = await ClipOnnxReward.load(FIXTURE);
    images.forEach((image, i) => {
      const got = clipPreprocess(image, model.preprocess);
      const want = expected.pixel_values[i]!;
      assert.equal(got.length, want.length);
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
      // One 8-bit level is ~0.015 after normalization: 1e-5 means the resized bytes are identical.
      assert.ok(worst < 1e-5, `${expected.images[i]}: max |pixel difference| ${worst}`);
    });
    expected.prompts.forEach((p, j) => assert.deepEqual(model.tokenizer.encode(p), expected.input_ids[j]));
    await model.dispose();
  });

  test('scores match the torch reference within 1e-3 relative, across batches', async () => {
    const model = await ClipOnnxReward.load(FIXTURE, { batchSize: 5 });
    const scores = await model.score(
      expected.pairs.map((p) => images[p.image]!),
      expected.pairs.map((p) => expected.prompts[p.prompt]!),
    );
    assert.equal(scores.length, expected.pairs.length);
    scores.forEach((s, k) => {
      const want = expected.pairs[k]!.score;
      assert.ok(Math.abs(s - want) <= 1e-3 * Math.max(1, Math.abs(want)), `pair ${k}: ${s} vs ${want}`);
    });
    // The scores must depend on both the image and the prompt.
    assert.ok(new Set(scores.map((s) => s.toFixed(3))).size > expected.prompts.length);
    const id = rewardModelIdentity(model);
    assert.equal(id.name, 'clip-onnx:clip-reward');
    assert.match(id.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    await model.dispose();
  });

  test('a plain CLIP export is scored by the diagonal of logits_per_image', async () => {
    const dir = await variant('logits', (d) =>
      cp(path.join(d, 'logits_per_image.onnx'), path.join(d, 'model.onnx')),
    );
    const model = await ClipOnnxReward.load(dir, { batchSize: 6 });
    const scores = await model.score(
      expected.pairs.map((p) => images[p.image]!),
      expected.pairs.map((p) => expected.prompts[p.prompt]!),
    );
    scores.forEach((s, k) => {
      const want = expected.pairs[k]!.score;
      assert.ok(Math.abs(s - want) <= 1e-3 * Math.max(1, Math.abs(want)), `pair ${k}: ${s} vs ${want}`);
    });
    await model.dispose();
  });

  test('pilResize keeps a constant image constant and leaves same-size images untouched', () => {
    const flat: RgbImage = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 3).fill(200) };
    assert.ok(pilResize(flat, 3, 11).data.every((v) => v === 200));
    const img = images[1]!;
    assert.deepEqual(pilResize(img, img.width, img.height).data, img.data);
  });

  test('a model input with another name is an error naming the file and the input', async () => {
    const dir = await variant('renamed-input', async (d) => {
      const file = path.join(d, 'model.onnx');
      // Same length, so the protobuf stays valid: every reference to the input is renamed.
      const bytes = Buffer.from(await readFile(file));
      const from = Buffer.from('pixel_values');
      for (let i = bytes.indexOf(from); i >= 0; i = bytes.indexOf(from, i + 1))
        bytes.write('image_pixels', i);
      await writeFile(file, bytes);
    });
    await assert.rejects(ClipOnnxReward.load(dir), (err: Error) => {
      assert.ok(err instanceof OnnxContractError);
      assert.match(err.message, /renamed-input[\\/]model\.onnx/);
      assert.match(err.message, /input 'pixel_values'/);
      assert.match(err.message, /image_pixels/);
      return true;
    });
  });

  test('a crop size the model does not take is an error naming the dimension', async () => {
    const dir = await variant('crop-24', async (d) => {
      const file = path.join(d, 'preprocessor_config.json');
      const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...cfg, crop_size: { height: 24, width: 24 } }));
    });
    await assert.rejects(
      ClipOnnxReward.load(dir),
      /model\.onnx input 'pixel_values': dimension 2 \(height, from preprocessor_config\.json\) is 32, expected 24/,
    );
  });

  test('a missing or malformed preprocessor config is an error naming the file and field', async () => {
    const missing = await variant('no-preprocessor', (d) => rm(path.join(d, 'preprocessor_config.json')));
    await assert.rejects(ClipOnnxReward.load(missing), (err: Error) => {
      assert.ok(err instanceof ClipRewardFolderError);
      assert.match(err.message, /no-preprocessor[\\/]preprocessor_config\.json: cannot read/);
      return true;
    });
    assert.equal(await ClipOnnxReward.isClipRewardFolder(missing), false);
    assert.equal(await ClipOnnxReward.isClipRewardFolder(FIXTURE), true);
    const badMean = await variant('bad-mean', async (d) => {
      const file = path.join(d, 'preprocessor_config.json');
      const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...cfg, image_mean: [0.5, 0.5] }));
    });
    await assert.rejects(
      ClipOnnxReward.load(badMean),
      /preprocessor_config\.json field 'image_mean': must be 3 numbers/,
    );
    const lanczos = await variant('lanczos', async (d) => {
      const file = path.join(d, 'preprocessor_config.json');
      const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...cfg, resample: 1 }));
    });
    await assert.rejects(ClipOnnxReward.load(lanczos), /field 'resample': 1 is not supported/);
  });

  test('a tokenizer length the model does not take is an error naming input_ids', async () => {
    const dir = await variant('len-64', async (d) => {
      const file = path.join(d, 'tokenizer_config.json');
      const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...cfg, model_max_length: 64 }));
    });
    await assert.rejects(
      ClipOnnxReward.load(dir),
      /input 'input_ids': takes 77 tokens per prompt but tokenizer_config\.json model_max_length is 64/,
    );
  });
});
