import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { worldTokenizer } from '../../engine/world/world-text';
import { generateImages } from '../../engine/generate';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import type { UNet2DConditionModel } from '../../engine/models/unet';
import { DEMO_UNET, TINY_UNET, type UNetConfig } from '../../engine/models/unet-config';
import { inferenceThreads, InferenceRuntimeError, resolveInferenceRuntime } from '../../engine/onnx/runtime';
import { unetOnnxGraph } from '../../engine/onnx/unet-export';
import { createUNetInference } from '../../engine/onnx/unet-inference';
import { OnnxUNet } from '../../engine/onnx/unet-session';
import { encodeOnnxModel, linearRewardOnnx } from '../../engine/rewards/onnx-writer';
import { Rng } from '../../engine/rng';
import { decodeCheckpoint } from '../../engine/training/checkpoint';
import type { DiffusionModel } from '../../engine/training/diffusion-model';
import { Trainer, type TrainingSettings } from '../../engine/training/trainer';
import { randomUNet, relativeError, tinyDroWorld } from '../harness/tiny-models';

/** Three levels, per-block head counts, attention on two levels, a cross dim unlike any width. */
const THREE_LEVEL_UNET: UNetConfig = {
  in_channels: 4,
  out_channels: 3,
  block_out_channels: [16, 32, 32],
  layers_per_block: 1,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 24,
  attention_head_dim: [1, 2, 4],
  norm_num_groups: 8,
  sample_size: 8,
};

async function parity(unet: UNet2DConditionModel, t: number[], batch = 3, contextLen = 5): Promise<number> {
  const c = unet.config;
  const s = c.sample_size;
  const x = new Rng(11).normalTensor([batch, s, s, c.in_channels]) as tf.Tensor4D;
  const ctx = new Rng(12).normalTensor([batch, contextLen, c.cross_attention_dim]) as tf.Tensor3D;
  const onnx = await OnnxUNet.create(unet, { threads: 2 });
  try {
    const want = unet.predict(x, t, ctx);
    const got = await onnx.predict(x, t, ctx);
    assert.deepEqual(got.shape, [batch, s, s, c.out_channels]);
    const err = relativeError(want.dataSync(), got.dataSync());
    tf.dispose([want, got]);
    return err;
  } finally {
    tf.dispose([x, ctx]);
    await onnx.release();
  }
}

// The tests name their runtimes; an override from the environment would replace them.
const savedEnv = { runtime: process.env.DRO_INFERENCE_RUNTIME, threads: process.env.DRO_INFERENCE_THREADS };

before(async () => {
  delete process.env.DRO_INFERENCE_RUNTIME;
  delete process.env.DRO_INFERENCE_THREADS;
  await initBackend('wasm');
});

after(() => {
  if (savedEnv.runtime !== undefined) process.env.DRO_INFERENCE_RUNTIME = savedEnv.runtime;
  if (savedEnv.threads !== undefined) process.env.DRO_INFERENCE_THREADS = savedEnv.threads;
});

describe('UNet exported to ONNX', () => {
  for (const [name, config] of [
    ['tiny', TINY_UNET],
    ['demo', DEMO_UNET],
    ['three-level', THREE_LEVEL_UNET],
  ] as const) {
    test(`${name}: the ONNX forward matches TF.js within 1e-4 relative`, async (t) => {
      const unet = randomUNet(config, 3);
      try {
        const perSample = await parity(unet, [0, 417, 999]);
        const shared = await parity(unet, [250]);
        t.diagnostic(`relative error ${perSample.toExponential(2)} / ${shared.toExponential(2)}`);
        assert.ok(perSample < 1e-4, `per-sample timesteps: relative error ${perSample}`);
        assert.ok(shared < 1e-4, `one timestep for all: relative error ${shared}`);
      } finally {
        unet.dispose();
      }
    });
  }

  test('the graph uses standard operators and every weight once', () => {
    const unet = randomUNet(TINY_UNET, 4);
    try {
      const graph = unetOnnxGraph(unet);
      const ops = new Set(graph.nodes.map((n) => n.opType));
      for (const op of ops)
        assert.ok(
          [
            'Add',
            'Concat',
            'Conv',
            'Cos',
            'Erf',
            'InstanceNormalization',
            'LayerNormalization',
            'MatMul',
            'Mul',
            'Reshape',
            'Resize',
            'Shape',
            'Sigmoid',
            'Sin',
            'Softmax',
            'Split',
            'Transpose',
            'Unsqueeze',
          ].includes(op),
          `unexpected operator ${op}`,
        );
      const weights = graph.initializers!.filter((i) => unet.params.has(i.name)).map((i) => i.name);
      assert.deepEqual(weights.sort(), [...unet.params.names].sort());
    } finally {
      unet.dispose();
    }
  });

  test('predictions follow the weights after weightsChanged(), and only then', async () => {
    const unet = randomUNet(TINY_UNET, 5);
    const inference = await createUNetInference(unet, { runtime: 'onnx', threads: 1 });
    const x = new Rng(1).normalTensor([2, 8, 8, 4]) as tf.Tensor4D;
    const ctx = new Rng(2).normalTensor([2, 3, TINY_UNET.cross_attention_dim]) as tf.Tensor3D;
    const run = async () => {
      const y = await inference.predict(x, [10, 600], ctx);
      const data = y.dataSync().slice();
      y.dispose();
      return data;
    };
    try {
      const first = await run();
      const w = unet.params.get('conv_out.bias');
      tf.tidy(() => w.assign(tf.add(w, 1)));
      assert.deepEqual(await run(), first, 'a session serves its snapshot until told of a change');
      inference.weightsChanged();
      const after = await run();
      const want = unet.predict(x, [10, 600], ctx);
      assert.ok(relativeError(want.dataSync(), after) < 1e-4);
      assert.ok(relativeError(first, after) > 0.1);
      assert.equal(inference.stats.builds, 2);
      want.dispose();
    } finally {
      tf.dispose([x, ctx]);
      await inference.dispose();
      unet.dispose();
    }
  });

  test('the writer refuses a graph over the 2 GiB protobuf limit, naming it', () => {
    const huge = new Float32Array(0);
    Object.defineProperty(huge, 'byteLength', { value: 2 ** 31 });
    assert.throws(
      () =>
        encodeOnnxModel({
          name: 'too_big',
          nodes: [],
          inputs: [],
          outputs: [],
          initializers: [{ name: 'w', dtype: 'float32', dims: [0], data: huge }],
        }),
      /too_big.*2 GiB/,
    );
    // The reward test models still come from the re-exported writer.
    assert.ok(
      linearRewardOnnx({
        height: 1,
        width: 1,
        seqLen: 1,
        pixelWeights: new Float32Array(3),
        tokenWeights: new Float32Array(1),
      }).length > 0,
    );
  });
});

describe('inference runtime selection', () => {
  const missing = () => Promise.reject(new Error('Cannot find module onnxruntime-node'));

  test("'onnx' that cannot load is an error naming what was asked and what is available", async () => {
    await assert.rejects(
      resolveInferenceRuntime('onnx', { env: {}, loadOrt: missing }),
      (err: unknown) =>
        err instanceof InferenceRuntimeError &&
        /'onnx'/.test(err.message) &&
        /Cannot find module onnxruntime-node/.test(err.message) &&
        /available: tfjs/.test(err.message),
    );
  });

  test("'auto' picks onnx when it loads and tfjs, saying why, when it does not", async () => {
    const loaded = await resolveInferenceRuntime('auto', { env: {} });
    assert.equal(loaded.runtime, 'onnx');
    assert.equal(loaded.explicit, false);
    const fallback = await resolveInferenceRuntime('auto', { env: {}, loadOrt: missing });
    assert.equal(fallback.runtime, 'tfjs');
    assert.match(fallback.reason, /Cannot find module onnxruntime-node/);
  });

  test('DRO_INFERENCE_RUNTIME overrides the request; a bad value is named', async () => {
    const env = { DRO_INFERENCE_RUNTIME: 'tfjs' };
    const choice = await resolveInferenceRuntime('onnx', { env });
    assert.deepEqual(choice, { runtime: 'tfjs', explicit: true, reason: 'DRO_INFERENCE_RUNTIME explicitly' });
    await assert.rejects(
      resolveInferenceRuntime('auto', { env: { DRO_INFERENCE_RUNTIME: 'onnxx' } }),
      /DRO_INFERENCE_RUNTIME "onnxx" is not an inference runtime; use one of auto, tfjs, onnx/,
    );
    await assert.rejects(
      resolveInferenceRuntime('auto', { env: { DRO_INFERENCE_RUNTIME: 'onnx' }, loadOrt: missing }),
      /DRO_INFERENCE_RUNTIME inference runtime 'onnx' is not available/,
    );
  });

  test('a UNet over the 2 GiB an ONNX protobuf holds runs on TF.js under auto, and onnx refuses it', async () => {
    const huge = {
      config: TINY_UNET,
      params: { parameterCount: () => 600_000_000 },
    } as unknown as UNet2DConditionModel;
    const auto = await createUNetInference(huge, { runtime: 'auto' });
    assert.equal(auto.choice.runtime, 'tfjs');
    assert.match(auto.choice.reason, /2400000000 bytes of weights exceed the 2 GiB/);
    await assert.rejects(
      createUNetInference(huge, { runtime: 'onnx' }),
      (err: unknown) =>
        err instanceof InferenceRuntimeError &&
        /'onnx'.*cannot run this model.*available: tfjs/.test(err.message),
    );
  });

  test('threads: explicit, then DRO_INFERENCE_THREADS, then the cores; bad values are named', () => {
    assert.equal(inferenceThreads(3, { DRO_INFERENCE_THREADS: '5' }), 3);
    assert.equal(inferenceThreads(undefined, { DRO_INFERENCE_THREADS: '5' }), 5);
    assert.ok(inferenceThreads(undefined, {}) >= 1);
    assert.throws(
      () => inferenceThreads(undefined, { DRO_INFERENCE_THREADS: 'many' }),
      /DRO_INFERENCE_THREADS.*"many"/,
    );
    assert.throws(() => inferenceThreads(0, {}), /inference threads must be an integer/);
  });
});

describe('sampling on ONNX', () => {
  let model: DiffusionModel;

  before(() => {
    const tokenizer = worldTokenizer();
    model = {
      tokenizer,
      text: CLIPTextModel.create(
        demoTextEncoderConfig(tokenizer.vocabSize, 16, TINY_UNET.cross_attention_dim),
        new Rng(1),
        false,
      ),
      unet: randomUNet(TINY_UNET, 2),
    };
  });

  after(() => {
    model.unet.dispose();
    model.text.dispose();
  });

  const prompts = ['a photo of a red circle', 'a photo of a blue square', 'a photo of a green ring'];
  const opts = { seeds: [7, 8, 9], steps: 20, guidanceScale: 7.5 };

  test('generateImages agrees with TF.js for a fixed seed and repeats itself exactly', async (t) => {
    const before = tf.memory().numTensors;
    const tfjs = await generateImages(model, prompts, { ...opts, runtime: 'tfjs' });
    let chosen = '';
    const onnx = await generateImages(model, prompts, {
      ...opts,
      runtime: 'onnx',
      threads: 2,
      onRuntime: (c) => (chosen = c.runtime),
    });
    assert.equal(chosen, 'onnx');
    // Same seeds on one thread: the bits depend on neither the run nor the intra-op thread count.
    const again = await generateImages(model, prompts, { ...opts, runtime: 'onnx', threads: 1 });
    t.diagnostic(
      `relative error ${prompts.map((_, i) => relativeError(tfjs[i]!, onnx[i]!).toExponential(2)).join(', ')}`,
    );
    prompts.forEach((_, i) => {
      const err = relativeError(tfjs[i]!, onnx[i]!);
      assert.ok(err < 1e-4, `image ${i}: relative error ${err}`);
      assert.deepEqual(
        Array.from(again[i]!),
        Array.from(onnx[i]!),
        `image ${i} differs between runs on 2 and 1 threads`,
      );
    });
    assert.equal(tf.memory().numTensors, before);
  });

  test('the DRO replay buffer samples the refreshed policy on ONNX as on TF.js', async (t) => {
    const { tokenizer, text, images } = tinyDroWorld();
    // Refills at micro-steps 1, 3, 5, 7; the policy is refreshed after updates 2 and 4.
    const settings: TrainingSettings = {
      seed: 5,
      learningRate: 3e-2,
      weightDecay: 0,
      batchSize: 2,
      gradientAccumulation: 1,
      maxGradNorm: 1,
      promptDropout: 0,
      randomFlip: false,
      emaDecay: 0.9,
      method: 'dro',
      steps: 6,
      checkpointEvery: 6,
      margin: 1e-3,
      bufferSize: 8,
      bufferBatchSize: 2,
      bufferSampleSteps: 2,
      bufferUpdateSteps: 2,
      samplerSteps: 4,
      bufferGuidanceScale: 2,
    };
    const bufferEps = async (runtime: 'tfjs' | 'onnx', s: TrainingSettings): Promise<Float32Array[]> => {
      const trainer = Trainer.create({
        settings: s,
        unet: model.unet,
        text,
        tokenizer,
        data: { images },
        inference: { runtime, threads: 2 },
      });
      try {
        await trainer.run(s.steps);
        const buffer = decodeCheckpoint(trainer.checkpoint()).groups.get('buffer')!;
        return [0, 1, 2, 3, 4, 5].map((i) => buffer.get(`${i}/eps`)!.data);
      } finally {
        trainer.dispose();
      }
    };
    try {
      const tfjs = await bufferEps('tfjs', settings);
      const onnx = await bufferEps('onnx', settings);
      // The same run with a policy that is never refreshed: what a stale ONNX snapshot would sample.
      const stale = await bufferEps('tfjs', { ...settings, bufferUpdateSteps: 1000 });
      t.diagnostic(
        `ONNX vs TF.js ${tfjs.map((e, i) => relativeError(e, onnx[i]!).toExponential(1)).join(' ')}`,
      );
      t.diagnostic(
        `refreshed vs stale ${tfjs.map((e, i) => relativeError(e, stale[i]!).toExponential(1)).join(' ')}`,
      );
      tfjs.forEach((eps, i) => {
        const err = relativeError(eps, onnx[i]!);
        assert.ok(err < 1e-4, `trajectory ${i}: ONNX vs TF.js relative error ${err}`);
      });
      // Trajectories 0-1 precede the first refresh; the later ones must come from refreshed weights.
      for (const i of [2, 3, 4, 5]) {
        const moved = relativeError(tfjs[i]!, stale[i]!);
        assert.ok(moved > 1e-2, `trajectory ${i}: a refreshed policy moved it only by ${moved}`);
      }
    } finally {
      text.dispose();
    }
  });
});
