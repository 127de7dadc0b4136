import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { RgbImage } from '../../engine/data/image';
import { OnnxContractError, OnnxReward } from '../../engine/rewards/onnx-reward';
import type { OnnxRewardConfig } from '../../engine/rewards/onnx-reward';
import { encodeOnnxModel, linearRewardOnnx } from '../../engine/rewards/onnx-writer';
import type { LinearRewardSpec } from '../../engine/rewards/onnx-writer';
import { rewardModelIdentity } from '../../engine/rewards/reward-model';

const H = 4;
const W = 4;
const L = 3;
// Dyadic weights and small integer ids keep every product and the token sum exact in float32.
const pixelWeights = Float32Array.from({ length: 3 * H * W }, (_, i) => ((i * 7) % 9) / 4 - 1);
const tokenWeights = Float32Array.from([1, 0.5, -2]);
const tokenizer = { encode: (p: string) => p.split(' ').map(Number) };

function image(seed: number): RgbImage {
  return {
    width: W,
    height: H,
    data: Uint8Array.from({ length: H * W * 3 }, (_, i) => (i * 31 + seed * 17) % 256),
  };
}

/** Independent reference: the same formula in float64 over the NCHW layout. */
function expected(img: RgbImage, ids: number[], norm?: { mean: number[]; std: number[] }): number {
  let acc = 0;
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const v = img.data[(y * W + x) * 3 + c]! / 255;
        const n = norm ? (v - norm.mean[c]!) / norm.std[c]! : v;
        acc += n * pixelWeights[(c * H + y) * W + x]!;
      }
  return acc / (3 * H * W) + ids.reduce((a, id, i) => a + id * tokenWeights[i]!, 0);
}

describe('ONNX reward model', () => {
  let dir: string;
  const write = async (name: string, spec: Partial<LinearRewardSpec> = {}): Promise<string> => {
    const file = path.join(dir, name);
    await writeFile(
      file,
      linearRewardOnnx({ height: H, width: W, seqLen: L, pixelWeights, tokenWeights, ...spec }),
    );
    return file;
  };
  const base = (file: string): OnnxRewardConfig => ({ file, resolution: W, tokenizer, seqLen: L });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-reward-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('scores match the hand-computed values, across batches, with identity recorded', async () => {
    const file = await write('linear.onnx');
    const model = await OnnxReward.load({ ...base(file), batchSize: 2 });
    const images = [image(1), image(2), image(3)];
    const prompts = ['1 2 3', '0 0 1', '7 1 0'];
    const scores = await model.score(images, prompts);
    scores.forEach((s, i) => {
      const want = expected(images[i]!, tokenizer.encode(prompts[i]!));
      assert.ok(Math.abs(s - want) < 1e-5, `image ${i}: ${s} vs ${want}`);
    });
    // On a black image the pixel part is exactly 0 and the token part is exact in float32.
    const black: RgbImage = { width: W, height: H, data: new Uint8Array(W * H * 3) };
    assert.deepEqual(await model.score([black, black], ['0 0 0', '4 2 1']), [0, 4 * 1 + 2 * 0.5 + 1 * -2]);
    const id = rewardModelIdentity(model);
    assert.equal(id.name, 'onnx:linear');
    assert.match(id.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    await model.dispose();
  });

  test('normalization, resizing, [N,1] outputs and symbolic shapes', async () => {
    const file = await write('linear-n1.onnx', { outputRank: 2, staticShapes: false });
    const norm = {
      mean: [0.5, 0.25, 0.75] as [number, number, number],
      std: [0.5, 0.25, 2] as [number, number, number],
    };
    const model = await OnnxReward.load({ ...base(file), normalize: norm });
    const [s] = await model.score([image(5)], ['1 1 1']);
    assert.ok(Math.abs(s! - expected(image(5), [1, 1, 1], norm)) < 1e-5);
    // An 8x8 image made of 2x2 blocks of the 4x4 one resizes back to it exactly.
    const small = image(9);
    const big: RgbImage = { width: 8, height: 8, data: new Uint8Array(8 * 8 * 3) };
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++)
        for (let c = 0; c < 3; c++)
          big.data[(y * 8 + x) * 3 + c] = small.data[((y >> 1) * 4 + (x >> 1)) * 3 + c]!;
    const [fromBig, fromSmall] = await model.score([big, small], ['0 0 0', '0 0 0']);
    assert.ok(Math.abs(fromBig! - fromSmall!) < 1e-6);
    await model.dispose();
  });

  test('wrong input names are load errors naming the file and the input', async () => {
    const file = await write('renamed.onnx', { pixelInput: 'images' });
    await assert.rejects(
      OnnxReward.load(base(file)),
      (err: Error) =>
        err instanceof OnnxContractError &&
        err.message.includes(file) &&
        /input 'pixel_values': is not an input of the model \(model inputs: images, input_ids\)/.test(
          err.message,
        ),
    );
    const ok = await write('ok.onnx');
    await assert.rejects(
      OnnxReward.load({ file: ok, resolution: W }),
      /input 'input_ids': is required by the model but not supplied by the config/,
    );
    await assert.rejects(
      OnnxReward.load({ ...base(ok), output: 'logits' }),
      /output 'logits': is not an output of the model \(model outputs: scores\)/,
    );
  });

  test('wrong rank or sizes are load errors naming the input and the dimension', async () => {
    const ok = await write('sized.onnx');
    await assert.rejects(
      OnnxReward.load({ ...base(ok), resolution: 8 }),
      /input 'pixel_values': dimension 2 \(height, from the configured resolution\) is 4, expected 8/,
    );
    await assert.rejects(
      OnnxReward.load({ ...base(ok), seqLen: 5 }),
      /input 'input_ids': dimension 1 \(tokens per prompt, from seqLen\) is 3, expected 5/,
    );
    const rank3 = path.join(dir, 'rank3.onnx');
    await writeFile(
      rank3,
      encodeOnnxModel({
        name: 'rank3',
        nodes: [
          {
            opType: 'ReduceMean',
            inputs: ['pixel_values'],
            outputs: ['scores'],
            attributes: [
              { name: 'axes', ints: [1, 2] },
              { name: 'keepdims', int: 0 },
            ],
          },
        ],
        inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['N', 3, 16] }],
        outputs: [{ name: 'scores', dtype: 'float32', shape: ['N'] }],
      }),
    );
    await assert.rejects(
      OnnxReward.load({ file: rank3, resolution: 4 }),
      (err: Error) =>
        err.message.includes(rank3) &&
        /input 'pixel_values': must have rank 4 \[N, 3, H, W\], the model declares \[N, 3, 16\]/.test(
          err.message,
        ),
    );
  });

  test('unreadable or corrupt files fail with the file named', async () => {
    const missing = path.join(dir, 'missing.onnx');
    await assert.rejects(OnnxReward.load(base(missing)), new RegExp(`${missing}: cannot read file`));
    const junk = path.join(dir, 'junk.onnx');
    await writeFile(junk, new Uint8Array([1, 2, 3, 4, 5]));
    await assert.rejects(OnnxReward.load(base(junk)), new RegExp(`${junk}: not a loadable ONNX model`));
  });
});
