import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import {
  CLIPTextModel,
  demoTextEncoderConfig,
  SD15_TEXT_ENCODER,
  textEncoderParamSpecs,
} from '../../engine/models/text-encoder';
import { DEFAULT_SPECIAL_TOKENS, TokenizerError, WordTokenizer } from '../../engine/models/tokenizer';
import { countParameters } from '../../engine/nn/params';
import { Rng } from '../../engine/rng';

const tokenizer = new WordTokenizer({
  words: ['a', 'red', 'blue', 'circle', 'square', 'left', 'of', ','],
  maxLength: 8,
  ...DEFAULT_SPECIAL_TOKENS,
});

describe('word tokenizer', () => {
  test('encodes [bos, words, eos, pad...] of fixed length', () => {
    // Specials first: bos 0, eos/pad 1 (shared, as SD's CLIP tokenizer), then words from 2.
    assert.deepEqual(
      tokenizer.encode('A red circle, left of a blue square'.slice(0, 12)),
      [0, 2, 3, 5, 1, 1, 1, 1],
    );
    assert.deepEqual(tokenizer.encode(''), [0, 1, 1, 1, 1, 1, 1, 1]);
    assert.equal(tokenizer.vocabSize, 10);
    assert.deepEqual(
      Array.from(tokenizer.encodeBatch(['red', 'blue'])),
      [0, 3, 1, 1, 1, 1, 1, 1, 0, 4, 1, 1, 1, 1, 1, 1],
    );
    assert.equal(tokenizer.decode(tokenizer.encode('Red circle,')), 'red circle ,');
  });

  test('too long or unknown prompts fail naming the prompt', () => {
    const long = 'a red circle left of a blue square';
    assert.throws(
      () => tokenizer.encode(long),
      (e: Error) => e instanceof TokenizerError && e.message.includes(long) && /8 tokens/.test(e.message),
    );
    assert.throws(() => tokenizer.encode('a green circle'), /"a green circle".*'green'/);
    const withUnk = new WordTokenizer({ ...tokenizer.config, unkToken: '<unk>' });
    assert.equal(withUnk.encode('green')[1], withUnk.unkId);
  });
});

describe('CLIP text encoder', () => {
  before(async () => {
    await initBackend('cpu');
  });

  test('SD1.5 text tower lists transformers’ names: 196 tensors, 123,060,480 parameters', () => {
    const specs = textEncoderParamSpecs(SD15_TEXT_ENCODER);
    assert.equal(specs.length, 196);
    assert.equal(countParameters(specs), 123_060_480);
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    assert.deepEqual(byName.get('text_model.embeddings.token_embedding.weight'), [49408, 768]);
    assert.deepEqual(byName.get('text_model.encoder.layers.0.self_attn.q_proj.weight'), [768, 768]);
    assert.deepEqual(byName.get('text_model.encoder.layers.11.mlp.fc1.weight'), [3072, 768]);
    assert.deepEqual(byName.get('text_model.final_layer_norm.bias'), [768]);
  });

  test('encodes [B, L] ids to [B, L, D]; causal: a token never sees later tokens', () => {
    const cfg = demoTextEncoderConfig(tokenizer.vocabSize, 8, 32);
    const enc = CLIPTextModel.create(cfg, new Rng(1));
    const ids = tf.tensor2d(tokenizer.encodeBatch(['red circle', 'red square']), [2, 8], 'int32');
    const before = tf.memory().numTensors;
    const out = enc.encode(ids);
    assert.equal(tf.memory().numTensors, before + 1);
    assert.deepEqual(out.shape, [2, 8, 32]);
    const rows = out.arraySync();
    // Positions 0-1 ([bos, red]) are identical in both prompts, position 2 differs.
    const diff = (p: number) => Math.max(...rows[0]![p]!.map((v, i) => Math.abs(v - rows[1]![p]![i]!)));
    assert.ok(diff(0) < 1e-6 && diff(1) < 1e-6);
    assert.ok(diff(2) > 1e-4);
    // Final layer norm: each position has ~zero mean and unit variance before the (identity) affine.
    const v = rows[0]![3]!;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    assert.ok(Math.abs(mean) < 1e-5);
    tf.dispose([ids, out]);
    enc.dispose();
  });

  test('token table receives a gradient (one-hot lookup) only for used tokens', () => {
    const cfg = demoTextEncoderConfig(tokenizer.vocabSize, 8, 16);
    const enc = CLIPTextModel.create(cfg, new Rng(2));
    const ids = tf.tensor2d(tokenizer.encodeBatch(['blue']), [1, 8], 'int32');
    const table = enc.params.get('text_model.embeddings.token_embedding.weight');
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(enc.encode(ids))) as tf.Scalar, [table]);
    const g = grads[table.name]!.arraySync() as number[][];
    const used = new Set([tokenizer.bosId, tokenizer.eosId, 4]);
    g.forEach((row, id) => {
      const norm = Math.max(...row.map(Math.abs));
      if (used.has(id)) assert.ok(norm > 0, `token ${id} should get a gradient`);
      else assert.equal(norm, 0, `token ${id} is unused`);
    });
    tf.dispose([ids, value, ...Object.values(grads)]);
    enc.dispose();
  });
});
