import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { DEFAULT_SPECIAL_TOKENS, WordTokenizer } from '../../engine/models/tokenizer';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import { decodeCheckpoint } from '../../engine/training/checkpoint';
import type { ImageDataset } from '../../engine/training/datasets';
import { NonFiniteTrainingError, TrainingInputError } from '../../engine/training/errors';
import { Trainer, type TrainerInit, type TrainingSettings } from '../../engine/training/trainer';

const words = ['a', 'red', 'blue', 'circle', 'square'];
let unet: UNet2DConditionModel;
let text: CLIPTextModel;
let tokenizer: WordTokenizer;

function dataset(n: number, seed = 1): ImageDataset {
  const rng = new Rng(seed);
  const prompts = ['a red circle', 'a blue square', 'a red square', 'a blue circle'];
  return {
    height: 8,
    width: 8,
    channels: 4,
    examples: Array.from({ length: n }, (_, i) => ({
      prompt: prompts[i % prompts.length]!,
      image: rng.fillUniform(new Float32Array(8 * 8 * 4), -1, 1),
    })),
  };
}

const common = {
  seed: 5,
  learningRate: 1e-3,
  weightDecay: 0.01,
  batchSize: 2,
  gradientAccumulation: 2,
  maxGradNorm: 1,
  promptDropout: 0.2,
  randomFlip: true,
  emaDecay: 0.999,
};

const droSettings: TrainingSettings = {
  ...common,
  method: 'dro',
  steps: 8,
  checkpointEvery: 4,
  margin: 1e-3,
  bufferSize: 4,
  bufferBatchSize: 2,
  bufferSampleSteps: 2,
  bufferUpdateSteps: 4,
  samplerSteps: 4,
  bufferGuidanceScale: 1,
};

function init(settings: TrainingSettings, data: TrainerInit['data'] = { images: dataset(6) }): TrainerInit {
  return { settings, unet, text, tokenizer, data };
}

function weightsOf(trainer: Trainer): Float32Array[] {
  return trainer.phi.params.variables().map((v) => v.dataSync() as Float32Array);
}

function emaOf(trainer: Trainer): Float32Array[] {
  const w = trainer.emaWeights();
  const out = [...w.values()].map((t) => t.dataSync() as Float32Array);
  tf.dispose([...w.values()]);
  return out;
}

before(async () => {
  await initBackend('wasm');
  tokenizer = new WordTokenizer({ words, maxLength: 6, ...DEFAULT_SPECIAL_TOKENS });
  text = CLIPTextModel.create(
    demoTextEncoderConfig(tokenizer.vocabSize, 6, TINY_UNET.cross_attention_dim),
    new Rng(2),
    false,
  );
  unet = UNet2DConditionModel.create(TINY_UNET, new Rng(3), false);
});

after(() => {
  unet.dispose();
  text.dispose();
});

describe('trainer', () => {
  test('SFT logs one row per optimizer update and changes the weights', async () => {
    const trainer = Trainer.create(init({ ...common, method: 'sft', steps: 4, checkpointEvery: 4 }));
    const before = weightsOf(trainer);
    await trainer.run(4);
    assert.equal(trainer.history.length, 2);
    assert.ok(trainer.history.every((r) => Number.isFinite(r.loss) && (r.loss ?? 0) > 0));
    assert.notDeepEqual(weightsOf(trainer), before);
    trainer.dispose();
  });

  test('DRO fills the replay buffer, logs every reference term, and refreshes the policy', async () => {
    const trainer = Trainer.create(init(droSettings));
    await trainer.run(4);
    const row = trainer.history.at(-1)!;
    for (const key of [
      'loss',
      'diff',
      'expert',
      'policy',
      'expert0',
      'policy0',
      'expertDiff',
      'policyDiff',
      'hingeOpen',
      'lr',
      'bufferSize',
    ]) {
      assert.ok(Number.isFinite(row[key]), `${key} missing from ${JSON.stringify(row)}`);
    }
    // A share of the update's samples; at the first update phi equals ref, so every hinge is open.
    assert.ok(row.hingeOpen! >= 0 && row.hingeOpen! <= 1, `hingeOpen ${row.hingeOpen}`);
    assert.equal(trainer.history[0]!.hingeOpen, 1);
    // Refills at micro-steps 1 and 3, two trajectories each.
    assert.equal(row.bufferSize, 4);
    // Before any update phi equals ref, so the expert and policy terms cancel: diff = 0.
    assert.ok(Math.abs(trainer.history[0]!.expertDiff!) < 1e-6);
    trainer.dispose();
  });

  test('a run resumed from a checkpoint ends bit-identical to an uninterrupted one', async () => {
    const full = Trainer.create(init(droSettings));
    let saved: Uint8Array | undefined;
    await full.run(8, {
      onCheckpoint: (bytes, step) => {
        if (step === 4) saved = bytes;
      },
    });
    assert.ok(saved, 'no checkpoint at step 4');
    const resumed = Trainer.restore(init(droSettings), saved);
    assert.equal(resumed.step, 4);
    await resumed.run(8);
    assert.deepEqual(weightsOf(resumed), weightsOf(full));
    assert.deepEqual(emaOf(resumed), emaOf(full));
    assert.deepEqual(resumed.history, full.history);
    full.dispose();
    resumed.dispose();
  });

  test('an ancestral DDPM buffer sampler trains, differs from DPM-Solver++, and resumes bit-identically', async () => {
    const ddpm: TrainingSettings = { ...droSettings, bufferSampler: 'ddpm' };
    const full = Trainer.create(init(ddpm));
    let saved: Uint8Array | undefined;
    await full.run(8, {
      onCheckpoint: (bytes, step) => {
        if (step === 4) saved = bytes;
      },
    });
    const dpm = Trainer.create(init(droSettings));
    await dpm.run(8);
    // Same data order and expert terms; only the policy trajectories (and so the policy terms) differ.
    assert.notDeepEqual(
      full.history.map((r) => r.policy),
      dpm.history.map((r) => r.policy),
    );
    assert.ok(saved, 'no checkpoint at step 4');
    const resumed = Trainer.restore(init(ddpm), saved);
    await resumed.run(8);
    assert.deepEqual(weightsOf(resumed), weightsOf(full));
    assert.deepEqual(resumed.history, full.history);
    for (const t of [full, dpm, resumed]) t.dispose();
  });

  test('a checkpoint does not restore into other settings', async () => {
    const trainer = Trainer.create(init({ ...common, method: 'sft', steps: 2, checkpointEvery: 2 }));
    await trainer.run(2);
    const bytes = trainer.checkpoint();
    trainer.dispose();
    assert.throws(
      () => Trainer.restore(init({ ...common, method: 'sft', steps: 2, checkpointEvery: 2, seed: 6 }), bytes),
      TrainingInputError,
    );
  });

  test('a non-finite loss stops training with the step named', async () => {
    const trainer = Trainer.create(
      init({ ...common, method: 'sft', steps: 40, checkpointEvery: 2, learningRate: 1e30, weightDecay: 0 }),
    );
    await assert.rejects(
      trainer.run(40),
      (err: unknown) => err instanceof NonFiniteTrainingError && /micro-step \d+/.test(err.message),
    );
    trainer.dispose();
  });

  test('bad training data is refused with the example named', () => {
    assert.throws(
      () =>
        Trainer.create(
          init({ ...common, method: 'sft', steps: 2, checkpointEvery: 2 }, { images: { ...dataset(0) } }),
        ),
      /is empty/,
    );
    const wrong = dataset(3);
    wrong.examples[1]!.image = new Float32Array(10);
    assert.throws(
      () =>
        Trainer.create(init({ ...common, method: 'sft', steps: 2, checkpointEvery: 2 }, { images: wrong })),
      /example 1 .*wrong image size/,
    );
  });
});

describe('DPO training', () => {
  test('runs on the wasm backend and logs implicit accuracy', async () => {
    const ds = dataset(8, 9);
    const pairs = {
      height: 8,
      width: 8,
      channels: 4,
      pairs: [0, 2, 4, 6].map((i) => ({
        prompt: ds.examples[i]!.prompt,
        winner: ds.examples[i]!.image,
        loser: ds.examples[i + 1]!.image,
      })),
    };
    const trainer = Trainer.create(
      init({ ...common, method: 'dpo', steps: 4, checkpointEvery: 4, beta: 2500 }, { pairs }),
    );
    await trainer.run(4);
    const row = trainer.history.at(-1)!;
    assert.ok(Number.isFinite(row.loss) && Number.isFinite(row.implicitAccuracy), JSON.stringify(row));
    // Before the first update the model equals its reference: every logit is 0 and the loss is log 2.
    assert.ok(Math.abs(trainer.history[0]!.loss! - Math.log(2)) < 1e-4);
    trainer.dispose();
  });
});

describe('checkpoint settings', () => {
  test('settings written in another key order still restore', async () => {
    const settings: TrainingSettings = { ...common, method: 'sft', steps: 2, checkpointEvery: 2 };
    const trainer = Trainer.create(init(settings));
    await trainer.run(2);
    const bytes = trainer.checkpoint();
    trainer.dispose();
    const reordered = Object.fromEntries(Object.entries(settings).reverse()) as TrainingSettings;
    const restored = Trainer.restore(init(reordered), bytes);
    assert.equal(restored.step, 2);
    restored.dispose();
  });
});

/** Whether every value is exactly a bfloat16 (its low 16 bits are zero). */
function allBf16(values: Float32Array[]): boolean {
  return values.every((v) => new Uint32Array(Float32Array.from(v).buffer).every((u) => (u & 0xffff) === 0));
}

describe("the reference implementation's regime", () => {
  const referenceDro: TrainingSettings = {
    ...droSettings,
    steps: 4,
    gradientAccumulation: 1,
    checkpointEvery: 1,
    bufferSize: 2,
    bufferBatchSize: 2,
    bufferSampleSteps: 1,
    bufferUpdateSteps: 1,
  };

  /** The buffer's trajectories (example and timestep grid) at each of the first two micro-steps. */
  async function buffersAfterEachStep(settings: TrainingSettings): Promise<string[]> {
    const trainer = Trainer.create(init(settings));
    const states: string[] = [];
    await trainer.run(2, {
      onCheckpoint: (bytes) => {
        states.push(
          JSON.stringify((decodeCheckpoint(bytes).state.method as { trajectories: unknown }).trajectories),
        );
      },
    });
    trainer.dispose();
    return states;
  }

  test('bufferSampleSteps 1 replaces the whole buffer every micro-step', async () => {
    const [first, second] = await buffersAfterEachStep(referenceDro);
    const a = JSON.parse(first!) as Array<{ exampleIndex: number; t: number[] }>;
    const b = JSON.parse(second!) as Array<{ exampleIndex: number; t: number[] }>;
    assert.equal(b.length, 2);
    for (const tr of b)
      assert.ok(!a.some((o) => JSON.stringify(o) === JSON.stringify(tr)), 'a trajectory survived a refill');
    const [kept1, kept2] = await buffersAfterEachStep({ ...referenceDro, bufferSampleSteps: 2 });
    assert.equal(kept2, kept1);
  });

  test('bf16 keeps weights, moments and EMA shadows bfloat16 after every update; fp32 does not', async () => {
    for (const precision of ['bf16', 'fp32'] as const) {
      const settings: TrainingSettings = { ...referenceDro, precision, steps: 2 };
      const trainer = Trainer.create(init(settings));
      let groups: Float32Array[] = [];
      await trainer.run(2, {
        onCheckpoint: (bytes) => {
          const c = decodeCheckpoint(bytes);
          groups = ['phi', 'ema', 'adam.m', 'adam.v', 'policy'].flatMap((g) =>
            [...c.groups.get(g)!.values()].map((t) => t.data),
          );
        },
      });
      assert.ok(groups.length > 0);
      assert.equal(allBf16(groups), precision === 'bf16', precision);
      assert.ok(trainer.history.every((r) => Number.isFinite(r.loss)));
      trainer.dispose();
    }
  });

  test('bf16 rounds the reference losses: Le0 and Lp0 are bfloat16 values per sample', async () => {
    const trainer = Trainer.create(init({ ...referenceDro, precision: 'bf16', batchSize: 1, steps: 1 }));
    await trainer.run(1);
    const row = trainer.history[0]!;
    assert.equal(row.expert0, Math.fround(row.expert0!));
    const asBits = new Uint32Array(Float32Array.from([row.expert0!, row.policy0!]).buffer);
    for (const u of asBits) assert.equal(u & 0xffff, 0);
    trainer.dispose();
  });

  test('maxGradNorm 0 applies the unclipped update and still logs the gradient norm', async () => {
    const run = async (maxGradNorm: number) => {
      const trainer = Trainer.create(
        init({ ...common, method: 'sft', steps: 2, checkpointEvery: 2, maxGradNorm }),
      );
      await trainer.run(2);
      const out = { weights: weightsOf(trainer), norm: trainer.history[0]!.gradNorm! };
      trainer.dispose();
      return out;
    };
    const off = await run(0);
    const huge = await run(1e6);
    const tight = await run(1e-6);
    assert.ok(off.norm > 1e-6, `gradient norm ${off.norm}`);
    assert.equal(off.norm, tight.norm);
    assert.deepEqual(off.weights, huge.weights);
    assert.notDeepEqual(off.weights, tight.weights);
  });
});
