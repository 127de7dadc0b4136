/**
 * Latent-space training: images are encoded once by the VAE (seeded posterior draws, x
 * scaling_factor, mirrored images encoded too), prompts once per stage, and SFT, DRO (replay buffer
 * of latents) and DPO train the UNet on the latents; generated latents decode back to images.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { samplesToImages, imageSideOf } from '../../engine/latent/decode';
import {
  decodeLatentImageSet,
  decodeLatentPairSet,
  encodeImages,
  encodeLatentImageSet,
  encodeLatentPairSet,
  type LatentEncoding,
  type LatentImageSet,
  type LatentPairSet,
} from '../../engine/latent/latent-data';
import { importDiffusersFolder } from '../../engine/latent/latent-model';
import { Rng } from '../../engine/rng';
import { flipHorizontal } from '../../engine/training/datasets';
import { disposeModel, type DiffusionModel } from '../../engine/training/diffusion-model';
import { Trainer, type TrainingSettings } from '../../engine/training/trainer';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const SHAPE = { height: 16, width: 16, channels: 3 };
const PROMPTS = ['a red ball', 'a blue flower', 'a green sun'];

let model: DiffusionModel;
let images: Float32Array[];

function pixels(n: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.fillUniform(new Float32Array(16 * 16 * 3), -1, 1));
}

const encoding = (flips: boolean): LatentEncoding => ({
  mode: 'sample',
  seed: 7,
  flips,
  vaeSha256: model.latent!.vaeSha256,
  sourceSha256: '0'.repeat(64),
  scalingFactor: 0.18215,
});

async function imageSet(flips = true): Promise<LatentImageSet> {
  const enc = await encodeImages(model.latent!.vae, images, SHAPE, { mode: 'sample', seed: 7, flips });
  return {
    space: 'latent',
    ...enc.shape,
    examples: images.map((_, i) => ({
      prompt: PROMPTS[i % PROMPTS.length]!,
      image: enc.latents[i]!,
      ...(enc.flipped ? { flipped: enc.flipped[i]! } : {}),
    })),
  };
}

async function pairSet(): Promise<LatentPairSet> {
  const enc = await encodeImages(model.latent!.vae, images, SHAPE, { mode: 'sample', seed: 9, flips: true });
  const n = images.length / 2;
  return {
    space: 'latent',
    ...enc.shape,
    pairs: Array.from({ length: n }, (_, i) => ({
      prompt: PROMPTS[i % PROMPTS.length]!,
      winner: enc.latents[2 * i]!,
      loser: enc.latents[2 * i + 1]!,
      winnerFlipped: enc.flipped![2 * i]!,
      loserFlipped: enc.flipped![2 * i + 1]!,
    })),
  };
}

const common = {
  seed: 3,
  steps: 4,
  learningRate: 1e-3,
  weightDecay: 0.01,
  batchSize: 2,
  gradientAccumulation: 2,
  maxGradNorm: 1,
  promptDropout: 0.2,
  randomFlip: true,
  emaDecay: 0.9,
  checkpointEvery: 2,
};

function unetValues(m: { params: { variables(): tf.Variable[] } }): Float32Array[] {
  return m.params.variables().map((v) => v.dataSync() as Float32Array);
}

before(async () => {
  await initBackend('wasm');
  ({ model } = await importDiffusersFolder(FIXTURE));
  images = pixels(6, 1);
});
after(() => disposeModel(model));

describe('encoding images into latents', () => {
  test('the posterior mean times scaling_factor, or a seeded draw that does not depend on batching', async () => {
    const vae = model.latent!.vae;
    const mean = await encodeImages(vae, images, SHAPE, { mode: 'mean', seed: 0, flips: false });
    const x = tf.tensor4d(images[0]!, [1, 16, 16, 3]);
    const posterior = vae.encode(x);
    const want = tf.mul(posterior.mean, vae.config.scaling_factor);
    const w = want.dataSync();
    mean.latents[0]!.forEach((v, k) => assert.ok(Math.abs(v - w[k]!) < 1e-5, `value ${k}`));
    tf.dispose([x, posterior.mean, posterior.logvar, want]);
    assert.deepEqual(mean.shape, { height: 8, width: 8, channels: 4 });

    const one = await encodeImages(vae, images, SHAPE, {
      mode: 'sample',
      seed: 7,
      flips: false,
      batchSize: 1,
    });
    const four = await encodeImages(vae, images, SHAPE, {
      mode: 'sample',
      seed: 7,
      flips: false,
      batchSize: 4,
    });
    for (let i = 0; i < images.length; i++) {
      const a = one.latents[i]!;
      const b = four.latents[i]!;
      for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k]! - b[k]!) < 1e-5, `image ${i} value ${k}`);
    }
    assert.notDeepEqual(one.latents[0], mean.latents[0]);
    const other = await encodeImages(vae, images, SHAPE, { mode: 'sample', seed: 8, flips: false });
    assert.notDeepEqual(other.latents[0], one.latents[0]);
  });

  test('with flips the mirrored image is encoded, not the latent mirrored', async () => {
    const vae = model.latent!.vae;
    const enc = await encodeImages(vae, images.slice(0, 1), SHAPE, { mode: 'mean', seed: 0, flips: true });
    const direct = await encodeImages(vae, [flipHorizontal(images[0]!, SHAPE)], SHAPE, {
      mode: 'mean',
      seed: 0,
      flips: false,
    });
    assert.deepEqual(enc.flipped![0], direct.latents[0]);
    assert.notDeepEqual(enc.flipped![0], flipHorizontal(enc.latents[0]!, enc.shape));
  });

  test('latent sets round-trip through their artifact format', async () => {
    const set = await imageSet();
    const back = decodeLatentImageSet(encodeLatentImageSet(set, encoding(true)), 'set');
    assert.deepEqual(back.examples, set.examples);
    assert.equal(back.encoding.vaeSha256, model.latent!.vaeSha256);
    const pairs = await pairSet();
    const pb = decodeLatentPairSet(encodeLatentPairSet(pairs, encoding(true)), 'pairs');
    assert.deepEqual(pb.pairs, pairs.pairs);
    assert.throws(
      () => decodeLatentPairSet(encodeLatentImageSet(set, encoding(true)), 'x'),
      /not a latent pairs set/,
    );
  });
});

describe('training the UNet on latents', () => {
  test('SFT trains the UNet on a latent set', async () => {
    const set = await imageSet();
    const t = Trainer.create({ settings: { ...common, method: 'sft' }, ...model, data: { images: set } });
    try {
      await t.run(4);
      assert.equal(t.step, 4);
      assert.ok(t.history.every((r) => Number.isFinite(r.loss)));
    } finally {
      t.dispose();
    }
  });

  test('SFT encodes each distinct prompt once, not once per step', async () => {
    const set = await imageSet();
    const encode = model.text.encode.bind(model.text);
    let calls = 0;
    model.text.encode = (ids: tf.Tensor2D) => {
      calls++;
      return encode(ids);
    };
    try {
      const t = Trainer.create({
        settings: { ...common, method: 'sft', steps: 8 },
        ...model,
        data: { images: set },
      });
      try {
        await t.run(8);
      } finally {
        t.dispose();
      }
    } finally {
      model.text.encode = encode;
    }
    // Three prompts and "" fit one batch of the prompt cache.
    assert.equal(calls, 1);
  });

  test('DRO fills its replay buffer with latent trajectories and trains', async () => {
    const set = await imageSet();
    const settings: TrainingSettings = {
      ...common,
      method: 'dro',
      margin: 1e-3,
      bufferSize: 2,
      bufferBatchSize: 2,
      bufferSampleSteps: 2,
      bufferUpdateSteps: 2,
      samplerSteps: 3,
      bufferGuidanceScale: 1,
    };
    const t = Trainer.create({ settings, ...model, data: { images: set } });
    try {
      const before = unetValues(t.phi);
      await t.run(4);
      assert.ok(t.history.every((r) => Number.isFinite(r.loss)));
      assert.notDeepEqual(unetValues(t.phi), before);
      // The checkpointed buffer holds latents [n, 8, 8, 4] and restores to the same state.
      const bytes = t.checkpoint();
      const again = Trainer.restore({ settings, ...model, data: { images: set } }, bytes);
      again.dispose();
    } finally {
      t.dispose();
    }
  });

  test('DPO trains on latent pairs with their stored flips', async () => {
    const pairs = await pairSet();
    const t = Trainer.create({
      settings: { ...common, method: 'dpo', beta: 2500 },
      ...model,
      data: { pairs },
    });
    try {
      await t.run(4);
      assert.ok(t.history.every((r) => Number.isFinite(r.loss) && Number.isFinite(r.implicitAccuracy!)));
    } finally {
      t.dispose();
    }
  });

  test('a latent set without flips is refused while randomFlip is on, naming the example', async () => {
    const set = await imageSet(false);
    assert.throws(
      () => Trainer.create({ settings: { ...common, method: 'sft' }, ...model, data: { images: set } }),
      /expert set example 0 \("a red ball"\): randomFlip is on but the set holds no flipped latents/,
    );
  });
});

describe('decoding generated latents', () => {
  test('samples are divided by scaling_factor, decoded and clamped to [-1, 1]', async () => {
    const latents = pixels(1, 4).map((p) => p.slice(0, 8 * 8 * 4).map((v) => v * 6));
    const [img] = await samplesToImages(model, latents);
    assert.equal(img!.length, 16 * 16 * 3);
    assert.equal(imageSideOf(model), 16);
    const want = tf.tidy(() =>
      tf
        .clipByValue(model.latent!.vae.decodeLatents(tf.tensor4d(latents[0]!, [1, 8, 8, 4])), -1, 1)
        .dataSync(),
    );
    assert.deepEqual(img, want);
    assert.ok(img!.every((v) => v >= -1 && v <= 1));
    // A pixel model's samples are images already.
    const pixel = { ...model, latent: undefined };
    assert.deepEqual(await samplesToImages(pixel, latents), latents);
  });
});
