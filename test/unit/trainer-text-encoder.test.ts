import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { DEFAULT_SPECIAL_TOKENS, WordTokenizer } from '../../engine/models/tokenizer';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import type { ImageDataset } from '../../engine/training/datasets';
import { decodeCheckpoint } from '../../engine/training/checkpoint';
import { TrainingInputError } from '../../engine/training/errors';
import { textEncoderEmaFromGroup } from '../../engine/training/text-encoder-ema';
import { Trainer, type TrainerInit, type TrainingSettings } from '../../engine/training/trainer';

const words = ['a', 'red', 'blue', 'circle', 'square'];
let unet: UNet2DConditionModel;
let text: CLIPTextModel;
let tokenizer: WordTokenizer;

function dataset(n: number): ImageDataset {
  const rng = new Rng(1);
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

const sft: TrainingSettings = {
  method: 'sft',
  seed: 5,
  steps: 4,
  learningRate: 1e-3,
  weightDecay: 0.01,
  batchSize: 2,
  gradientAccumulation: 2,
  maxGradNorm: 1,
  promptDropout: 0,
  randomFlip: false,
  emaDecay: 0.9,
  checkpointEvery: 2,
};

function init(settings: TrainingSettings): TrainerInit {
  return { settings, unet, text, tokenizer, data: { images: dataset(6) } };
}

function read(m: Map<string, tf.Tensor>): Map<string, Float32Array> {
  const out = new Map([...m].map(([k, t]) => [k, t.dataSync().slice() as Float32Array] as const));
  tf.dispose([...m.values()]);
  return out;
}

/** A parameter that starts at exactly zero: weight decay alone leaves it there, a gradient does not. */
const ZERO_INIT = 'text_model.final_layer_norm.bias';

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

describe('training the text encoder with the UNet', () => {
  test('the encoder gets gradients and its EMA is exported; the caller’s encoder is untouched', async () => {
    const start = read(text.params.getWeights());
    assert.ok(start.get(ZERO_INIT)!.every((v) => v === 0));
    const trainer = Trainer.create(init({ ...sft, trainTextEncoder: true }));
    await trainer.run(4);
    const trained = read(trainer.textPhi!.params.getWeights());
    assert.ok(
      trained.get(ZERO_INIT)!.some((v) => Math.abs(v) > 1e-6),
      'final norm bias moved',
    );
    const ema = read(trainer.emaTextWeights()!);
    assert.deepEqual([...ema.keys()].sort(), [...text.params.names].sort());
    assert.ok(ema.get(ZERO_INIT)!.some((v) => Math.abs(v) > 1e-7));
    // EMA averages toward the trained weights, so it lies strictly between start and end.
    assert.notDeepEqual(ema.get(ZERO_INIT), trained.get(ZERO_INIT));
    // The UNet export keeps exactly the UNet's names.
    assert.deepEqual([...read(trainer.emaWeights()).keys()].sort(), [...unet.params.names].sort());
    assert.deepEqual(read(text.params.getWeights()), start, 'the frozen input encoder is not modified');
    trainer.dispose();
  });

  test('without the option the encoder stays frozen', async () => {
    const trainer = Trainer.create(init(sft));
    await trainer.run(4);
    assert.equal(trainer.textPhi, undefined);
    assert.equal(trainer.emaTextWeights(), undefined);
    const ema = decodeCheckpoint(trainer.checkpoint()).groups.get('ema')!;
    assert.equal(textEncoderEmaFromGroup(ema, text), undefined);
    trainer.dispose();
  });

  test('an exported model takes the encoder EMA from the checkpoint; a partial group is named', async () => {
    const trainer = Trainer.create(init({ ...sft, trainTextEncoder: true }));
    await trainer.run(4);
    const ema = decodeCheckpoint(trainer.checkpoint()).groups.get('ema')!;
    const fromCheckpoint = read(textEncoderEmaFromGroup(ema, text, 'ckpt')!);
    assert.deepEqual(fromCheckpoint, read(trainer.emaTextWeights()!));
    ema.delete(`text_encoder/${ZERO_INIT}`);
    assert.throws(
      () => textEncoderEmaFromGroup(ema, text, 'ckpt'),
      new RegExp(`ckpt: EMA tensor 'text_encoder/${ZERO_INIT.replace(/\./g, '\\.')}' is missing`),
    );
    trainer.dispose();
  });

  test('a resumed run reproduces the encoder weights bit for bit', async () => {
    const settings: TrainingSettings = { ...sft, trainTextEncoder: true };
    const full = Trainer.create(init(settings));
    await full.run(4);
    const half = Trainer.create(init(settings));
    await half.run(2);
    const saved = half.checkpoint();
    half.dispose();
    const resumed = Trainer.restore(init(settings), saved);
    await resumed.run(4);
    assert.deepEqual(read(resumed.textPhi!.params.getWeights()), read(full.textPhi!.params.getWeights()));
    assert.deepEqual(read(resumed.emaTextWeights()!), read(full.emaTextWeights()!));
    full.dispose();
    resumed.dispose();
  });

  test('DRO and DPO refuse it by name', () => {
    const dro: TrainingSettings = {
      ...sft,
      method: 'dro',
      trainTextEncoder: true,
      margin: 1e-3,
      bufferSize: 2,
      bufferBatchSize: 2,
      bufferSampleSteps: 2,
      bufferUpdateSteps: 2,
      samplerSteps: 2,
      bufferGuidanceScale: 1,
    };
    assert.throws(
      () => Trainer.create(init(dro)),
      (err: unknown) => {
        assert.ok(err instanceof TrainingInputError);
        assert.match(err.message, /trainTextEncoder/);
        return true;
      },
    );
  });
});

describe('learning-rate schedule in the trainer', () => {
  test('each update logs and applies its scheduled rate', async () => {
    const warm = Trainer.create(init({ ...sft, warmupUpdates: 2 }));
    await warm.run(4);
    assert.deepEqual(
      warm.history.map((r) => r.lr),
      [5e-4, 1e-3],
    );
    // A very long warmup keeps the rate near zero: the weights barely move compared with constant lr.
    const distance = (tr: Trainer) => {
      const now = read(tr.phi.params.getWeights());
      const start = read(unet.params.getWeights());
      let d = 0;
      for (const [k, v] of now) v.forEach((x, i) => (d += Math.abs(x - start.get(k)![i]!)));
      return d;
    };
    const slow = Trainer.create(init({ ...sft, warmupUpdates: 1000 }));
    await slow.run(4);
    const constant = Trainer.create(init(sft));
    await constant.run(4);
    assert.ok(distance(slow) < distance(constant) / 50, `${distance(slow)} vs ${distance(constant)}`);
    for (const t of [warm, slow, constant]) t.dispose();
  });
});
