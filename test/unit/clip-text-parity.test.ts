import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { textEncoderConfigFrom } from '../../engine/io/diffusers-configs';
import { readSafetensors, type SafetensorsFile } from '../../engine/io/safetensors';
import { ClipTokenizer } from '../../engine/models/clip-tokenizer';
import { canonicalTextEncoderKey, CLIPTextModel } from '../../engine/models/text-encoder';
import { Rng } from '../../engine/rng';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
const TEXT_DIR = path.join(FIXTURES, 'tiny-sd', 'text_encoder');
const config = textEncoderConfigFrom(
  JSON.parse(readFileSync(path.join(TEXT_DIR, 'config.json'), 'utf8')),
  'tiny-sd/text_encoder/config.json',
);

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let d = 0;
  for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

describe('CLIPTextModel equals transformers (tiny-sd fixture)', () => {
  let weights: SafetensorsFile;
  let io: SafetensorsFile;

  before(async () => {
    weights = await readSafetensors(path.join(TEXT_DIR, 'model.safetensors'));
    io = await readSafetensors(path.join(FIXTURES, 'tiny-sd-parity', 'text-encoder.safetensors'));
  });
  after(async () => {
    await initBackend('cpu');
  });

  test("transformers' config maps to the engine's", () => {
    assert.equal(config.hidden_act, 'quick_gelu');
    assert.equal(config.max_position_embeddings, 77);
    assert.equal(config.hidden_size, 32);
  });

  test('the tokenizer reproduces the ids the parity values were computed from', () => {
    const dir = path.join(FIXTURES, 'tiny-sd', 'tokenizer');
    const tok = ClipTokenizer.fromSources({
      vocab: readFileSync(path.join(dir, 'vocab.json'), 'utf8'),
      merges: readFileSync(path.join(dir, 'merges.txt'), 'utf8'),
    });
    const prompts = JSON.parse(io.metadata.prompts!) as string[];
    const ids = io.tensors.get('input.ids')!;
    assert.deepEqual(Array.from(tok.encodeBatch(prompts)), Array.from(ids.data));
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    test(`last_hidden_state on ${backend} matches within 1e-4`, async () => {
      await initBackend(backend);
      const model = CLIPTextModel.create(config, new Rng(0), false);
      // transformers 5 stores the keys without the `text_model.` prefix.
      const map = new Map(
        [...weights.tensors].map(([k, t]) => [
          canonicalTextEncoderKey(k),
          tf.tensor(t.data, t.shape, 'float32'),
        ]),
      );
      model.params.setWeights(map, 'diffusers');
      tf.dispose([...map.values()]);
      const ids = io.tensors.get('input.ids')!;
      const want = io.tensors.get('output.last_hidden_state')!;
      const idsT = tf.tensor2d(Int32Array.from(ids.data), ids.shape as [number, number], 'int32');
      const got = model.encode(idsT);
      const wantT = tf.tensor(want.data, want.shape);
      const err = maxAbsDiff(got, wantT);
      assert.ok(err < 1e-4, `${backend}: max abs error ${err}`);
      tf.dispose([idsT, got, wantT]);
      model.dispose();
    });
  }

  test("gelu (OpenCLIP's activation) changes the output; quick_gelu is the default", async () => {
    await initBackend('cpu');
    const { hidden_act: _drop, ...rest } = config;
    const quick = CLIPTextModel.create(rest, new Rng(3), false);
    const gelu = CLIPTextModel.create({ ...rest, hidden_act: 'gelu' }, new Rng(3), false);
    const explicit = CLIPTextModel.create({ ...rest, hidden_act: 'quick_gelu' }, new Rng(3), false);
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const [a, b, c] = [quick.encode(ids), gelu.encode(ids), explicit.encode(ids)];
    assert.equal(maxAbsDiff(a, c), 0);
    assert.ok(maxAbsDiff(a, b) > 1e-4);
    tf.dispose([ids, a, b, c]);
    [quick, gelu, explicit].forEach((m) => m.dispose());
    assert.throws(
      () => CLIPTextModel.create({ ...rest, hidden_act: 'relu' as 'gelu' }, new Rng(0)),
      /hidden_act "relu" is not supported/,
    );
  });
});
