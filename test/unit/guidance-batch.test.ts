/**
 * Classifier-free guidance as one model call on [uncond; cond] (SampleOptions.guidanceCond) against
 * the two-call form: the same bits on the demo UNet for every solver and both inference runtimes,
 * one model call per guided step, and generation and DRO buffer refills on the one-call form.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { generateImages } from '../../engine/generate';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { DEMO_UNET, TINY_UNET } from '../../engine/models/unet-config';
import { createUNetInference } from '../../engine/onnx/unet-inference';
import { Rng } from '../../engine/rng';
import { DdimSampler } from '../../engine/schedulers/ddim';
import { DdpmAncestralSampler } from '../../engine/schedulers/ddpm-ancestral';
import { DpmSolverPlusPlus } from '../../engine/schedulers/dpm-solver';
import {
  disposeSampleResult,
  guidanceBatch,
  runSampler,
  type EpsModel,
  type GridSolver,
  type SampleOptions,
} from '../../engine/schedulers/sampling';
import { perturbedTimesteps } from '../../engine/schedulers/timesteps';
import { Trainer, type TrainingSettings } from '../../engine/training/trainer';
import { randomUNet, relativeError, tinyDroWorld, tinyWorldModel } from '../harness/tiny-models';

before(async () => {
  await initBackend('wasm');
});

interface Sampled {
  x0: Float32Array;
  eps: Float32Array[];
  /** Rows of every model call, in order. */
  calls: number[];
}

/**
 * One guided sample, on the one-call form (`guidanceCond`) or the two-call one (`uncond`). Stochastic
 * solvers get a fresh copy of the same noise stream each time.
 */
async function sampleGuided(
  solver: GridSolver,
  model: EpsModel<tf.Tensor3D>,
  inputs: { xT: tf.Tensor4D; grids: number[][]; cond: tf.Tensor3D; uncond: tf.Tensor3D },
  form: 'one-call' | 'two-call',
  scale = 3,
): Promise<Sampled> {
  const calls: number[] = [];
  const pair = form === 'one-call' ? guidanceBatch(inputs.uncond, inputs.cond) : undefined;
  const opts: SampleOptions<tf.Tensor3D> = {
    model: (x, t, c) => {
      calls.push(x.shape[0]);
      return model(x, t, c);
    },
    xT: inputs.xT,
    grids: inputs.grids,
    cond: inputs.cond,
    guidanceScale: scale,
    noise: new Rng(77),
    ...(pair ? { guidanceCond: pair } : { uncond: inputs.uncond }),
  };
  try {
    const res = await runSampler(solver, opts);
    const out = {
      x0: res.x0.dataSync() as Float32Array,
      eps: res.trajectory.map((s) => s.eps.dataSync() as Float32Array),
      calls,
    };
    disposeSampleResult(res);
    return out;
  } finally {
    pair?.dispose();
  }
}

function assertSameBits(a: Sampled, b: Sampled, what: string): void {
  // Guidance must not depend on how the model was batched: an image is a function of its inputs.
  assert.equal(relativeError(a.x0, b.x0), 0, `${what}: x0`);
  a.eps.forEach((e, i) => assert.equal(relativeError(e, b.eps[i]!), 0, `${what}: eps of step ${i}`));
  assert.deepEqual(Array.from(a.x0), Array.from(b.x0), `${what}: x0 bits`);
}

describe('guidance in one model call', () => {
  const B = 3;
  const steps = 5;
  let unet: UNet2DConditionModel;
  let inputs: { xT: tf.Tensor4D; grids: number[][]; cond: tf.Tensor3D; uncond: tf.Tensor3D };

  before(() => {
    unet = randomUNet(DEMO_UNET, 3);
    const s = DEMO_UNET.sample_size;
    const d = DEMO_UNET.cross_attention_dim;
    inputs = {
      xT: new Rng(1).normalTensor([B, s, s, DEMO_UNET.in_channels]) as tf.Tensor4D,
      grids: perturbedTimesteps(steps, B, new Rng(2)).grids,
      cond: new Rng(3).normalTensor([B, 6, d]) as tf.Tensor3D,
      uncond: new Rng(4).normalTensor([B, 6, d]) as tf.Tensor3D,
    };
  });

  after(() => {
    tf.dispose([inputs.xT, inputs.cond, inputs.uncond]);
    unet.dispose();
  });

  const solvers: Array<[string, () => GridSolver]> = [
    ['DPM-Solver++(2M)', () => new DpmSolverPlusPlus()],
    ['DDIM', () => new DdimSampler()],
    ['DDIM, eta 1', () => new DdimSampler(undefined, { eta: 1 })],
    ['DDPM ancestral', () => new DdpmAncestralSampler()],
  ];
  for (const [name, solver] of solvers) {
    test(`${name} on the demo UNet: the two-call form's bits, one call of 2B per step`, async () => {
      const before = tf.memory().numTensors;
      const model: EpsModel<tf.Tensor3D> = (x, t, c) => unet.predict(x, t, c);
      const one = await sampleGuided(solver(), model, inputs, 'one-call');
      const two = await sampleGuided(solver(), model, inputs, 'two-call');
      assertSameBits(one, two, name);
      assert.deepEqual(one.calls, Array<number>(steps).fill(2 * B));
      assert.deepEqual(two.calls, Array<number>(2 * steps).fill(B));
      assert.equal(tf.memory().numTensors, before);
    });
  }

  test('on ONNX Runtime, for 1 and 2 intra-op threads', async () => {
    for (const threads of [1, 2]) {
      const inference = await createUNetInference(unet, { runtime: 'onnx', threads });
      try {
        assert.equal(inference.choice.runtime, 'onnx');
        const one = await sampleGuided(new DpmSolverPlusPlus(), inference.predict, inputs, 'one-call');
        const two = await sampleGuided(new DpmSolverPlusPlus(), inference.predict, inputs, 'two-call');
        assertSameBits(one, two, `ONNX, ${threads} threads`);
        assert.deepEqual(one.calls, Array<number>(steps).fill(2 * B));
      } finally {
        await inference.dispose();
      }
    }
  });

  test('the model sees [x; x] at [t; t] with the pair; scale 1 ignores the pair', async () => {
    const seen: Array<{ rows: number; t: number[]; cond: tf.Tensor3D; halvesEqual: boolean }> = [];
    const pair = guidanceBatch(inputs.uncond, inputs.cond);
    const model: EpsModel<tf.Tensor3D> = (x, t, c) => {
      const halvesEqual =
        x.shape[0] === 2 * B &&
        tf.tidy(() => {
          const [a, b] = tf.split(x, 2);
          return tf.all(tf.equal(a!, b!)).dataSync()[0] === 1;
        });
      seen.push({ rows: x.shape[0], t, cond: c, halvesEqual });
      return tf.tidy(() => tf.mul(x, 0.5) as tf.Tensor4D);
    };
    const grids = [
      [999, 500],
      [990, 490],
      [980, 480],
    ];
    const xT = new Rng(9).normalTensor([B, 4, 4, 3]) as tf.Tensor4D;
    const base = { model, xT, grids, cond: inputs.cond };
    try {
      disposeSampleResult(
        await runSampler(new DpmSolverPlusPlus(), { ...base, guidanceCond: pair, guidanceScale: 3 }),
      );
      assert.deepEqual(
        seen.map((s) => [s.rows, s.cond === pair, s.halvesEqual]),
        [
          [2 * B, true, true],
          [2 * B, true, true],
        ],
      );
      assert.deepEqual(seen[1]!.t, [500, 490, 480, 500, 490, 480]);
      seen.length = 0;
      disposeSampleResult(await runSampler(new DpmSolverPlusPlus(), { ...base, guidanceCond: pair }));
      assert.deepEqual(
        seen.map((s) => [s.rows, s.cond === inputs.cond]),
        [
          [B, true],
          [B, true],
        ],
      );
    } finally {
      tf.dispose([pair, xT]);
    }
  });

  test('a prediction without the 2B rows is an error and leaks nothing', async () => {
    const pair = guidanceBatch(inputs.uncond, inputs.cond);
    const xT = new Rng(9).normalTensor([B, 4, 4, 3]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    try {
      await assert.rejects(
        runSampler(new DpmSolverPlusPlus(), {
          model: (x) => tf.tidy(() => tf.slice(x, 0, B)),
          xT,
          grids: Array.from({ length: B }, () => [999, 500]),
          cond: inputs.cond,
          guidanceCond: pair,
          guidanceScale: 2,
        }),
        /prediction at step 0 has shape \[3,4,4,3\], latents \[6,4,4,3\]/,
      );
      assert.equal(tf.memory().numTensors, before);
    } finally {
      tf.dispose([pair, xT]);
    }
  });
});

describe('samplers of the engine make one UNet call per guided step', () => {
  let calls: number[];
  const original = UNet2DConditionModel.prototype.predict;

  before(() => {
    UNet2DConditionModel.prototype.predict = function (this: UNet2DConditionModel, x, t, c) {
      calls.push(x.shape[0]);
      return original.call(this, x, t, c);
    };
  });

  after(() => {
    UNet2DConditionModel.prototype.predict = original;
  });

  test('generateImages', async () => {
    const model = tinyWorldModel();
    try {
      calls = [];
      await generateImages(
        model,
        ['a photo of a red circle', 'a photo of a ring', 'a photo of a blue square'],
        {
          seeds: [1, 2, 3],
          steps: 3,
          guidanceScale: 3,
          batchSize: 2,
          runtime: 'tfjs',
        },
      );
      assert.deepEqual(calls, [4, 4, 4, 2, 2, 2]);
    } finally {
      model.unet.dispose();
      model.text.dispose();
    }
  });

  test('the DRO replay buffer refill', async () => {
    const { tokenizer, text, images } = tinyDroWorld();
    const unet = UNet2DConditionModel.create(TINY_UNET, new Rng(3), false);
    // One refill of 3 trajectories x 4 solver steps; training steps run phi on 2 x batchSize = 4 rows.
    const settings: TrainingSettings = {
      seed: 5,
      learningRate: 1e-3,
      weightDecay: 0,
      batchSize: 2,
      gradientAccumulation: 1,
      maxGradNorm: 1,
      promptDropout: 0,
      randomFlip: false,
      emaDecay: 0.9,
      method: 'dro',
      steps: 1,
      checkpointEvery: 1,
      margin: 1e-3,
      bufferSize: 8,
      bufferBatchSize: 3,
      bufferSampleSteps: 1,
      bufferUpdateSteps: 1,
      samplerSteps: 4,
      bufferGuidanceScale: 2,
    };
    const trainer = Trainer.create({
      settings,
      unet,
      text,
      tokenizer,
      data: { images },
      inference: { runtime: 'tfjs' },
    });
    try {
      calls = [];
      await trainer.run(settings.steps);
      assert.deepEqual(
        calls.filter((rows) => rows === 3 || rows === 6),
        [6, 6, 6, 6],
      );
    } finally {
      trainer.dispose();
      text.dispose();
      unet.dispose();
    }
  });
});
