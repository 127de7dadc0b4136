import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkpointFileName,
  checkpointKeys,
  checkpointStepOf,
  resumeCandidates,
  staleCheckpoints,
} from '../../engine/training/checkpoint-selection';
import { ModelBundleError } from '../../engine/io/model-bundle';
import type { DiffusionModel } from '../../engine/training/diffusion-model';
import { checkModelFits } from '../../engine/training/model-fit';

const prefix = 'runs/r/dro/checkpoints/';
const key = (step: number): string => prefix + checkpointFileName(step);

describe('checkpoint selection', () => {
  test('file names are zero-padded so keys sort by step', () => {
    assert.equal(checkpointFileName(42), 'step-0000042.safetensors');
    assert.equal(checkpointStepOf(key(1200)), 1200);
    assert.equal(checkpointStepOf(`${prefix}step-12.safetensors.tmp`), undefined);
    assert.equal(checkpointStepOf(`${prefix}notes.json`), undefined);
    assert.deepEqual(checkpointKeys([key(30), `${prefix}x.json`, key(4), key(100)]), [
      key(4),
      key(30),
      key(100),
    ]);
  });

  test('staleCheckpoints keeps the newest `keep`, whatever the listing order', () => {
    const keys = [key(40), key(10), `${prefix}readme.txt`, key(30), key(20), key(50)];
    assert.deepEqual(staleCheckpoints(keys, 3), [key(10), key(20)]);
    assert.deepEqual(staleCheckpoints(keys, 5), []);
    assert.deepEqual(staleCheckpoints(keys, 9), []);
    assert.deepEqual(staleCheckpoints(keys, 1), [key(10), key(20), key(30), key(40)]);
    assert.deepEqual(staleCheckpoints(keys, 0), [], 'keep 0 keeps every checkpoint');
    assert.deepEqual(staleCheckpoints(keys, -1), []);
  });

  test('resumeCandidates lists newest first within [minStep, maxStep]', () => {
    const keys = [key(10), key(20), key(30), key(40), `${prefix}other`];
    assert.deepEqual(resumeCandidates(keys, 35), [
      { key: key(30), step: 30 },
      { key: key(20), step: 20 },
      { key: key(10), step: 10 },
    ]);
    assert.deepEqual(resumeCandidates(keys, 40, 20), [
      { key: key(40), step: 40 },
      { key: key(30), step: 30 },
      { key: key(20), step: 20 },
    ]);
    assert.deepEqual(resumeCandidates(keys, 9), []);
    assert.deepEqual(resumeCandidates(keys, 100, 41), []);
  });
});

describe('checkModelFits', () => {
  const model = (o: {
    hidden?: number;
    cross?: number;
    maxLength?: number;
    positions?: number;
    vocab?: number;
  }) =>
    ({
      unet: { config: { cross_attention_dim: o.cross ?? 32 } },
      text: {
        config: {
          hidden_size: o.hidden ?? 32,
          max_position_embeddings: o.positions ?? 16,
          vocab_size: o.vocab ?? 100,
        },
      },
      tokenizer: { config: { maxLength: o.maxLength ?? 16 }, vocabSize: 100 },
    }) as unknown as DiffusionModel;

  test('a consistent model passes', () => {
    checkModelFits(model({}), 'm');
    checkModelFits(model({ maxLength: 8, vocab: 200 }), 'm');
  });

  test('each mismatch is a ModelBundleError naming the source', () => {
    assert.throws(
      () => checkModelFits(model({ hidden: 64 }), 'bundle.safetensors'),
      (err: unknown) =>
        err instanceof ModelBundleError &&
        err.message ===
          "bundle.safetensors: text encoder hidden_size 64 does not match the UNet's cross_attention_dim 32",
    );
    assert.throws(
      () => checkModelFits(model({ maxLength: 17 }), 'b'),
      (err: unknown) =>
        err instanceof ModelBundleError &&
        err.message === "b: tokenizer maxLength 17 exceeds the text encoder's max_position_embeddings 16",
    );
    assert.throws(
      () => checkModelFits(model({ vocab: 99 }), 'b'),
      (err: unknown) =>
        err instanceof ModelBundleError &&
        err.message === 'b: tokenizer has 100 tokens, the text encoder only 99',
    );
  });
});
