/**
 * Models written as a stream of chunks: the same bytes as the in-memory encoders, the weights
 * passed on without a copy, and a store put of the stream committing the same artifact.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '../../engine/backend';
import { worldTokenizer } from '../../engine/world/world-text';
import {
  encodeModelBundle,
  exportDiffusersUnet,
  streamDiffusersUnet,
  streamModelBundle,
} from '../../engine/io/model-bundle';
import { safetensorsChunks, serializeSafetensors } from '../../engine/io/safetensors';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import type { DiffusionModel } from '../../engine/training/diffusion-model';
import { LocalArtifactStore } from '../../storage';

const concat = (chunks: Iterable<Uint8Array>) => Buffer.concat([...chunks]);

let model: DiffusionModel;
let dir: string;

before(async () => {
  await initBackend('wasm');
  const tokenizer = worldTokenizer();
  model = {
    tokenizer,
    text: CLIPTextModel.create(demoTextEncoderConfig(tokenizer.vocabSize, 16, 32), new Rng(1), false),
    unet: UNet2DConditionModel.create(TINY_UNET, new Rng(2), false),
  };
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-model-stream-'));
});

after(() => {
  model.unet.dispose();
  model.text.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

void describe('streamed model files', () => {
  void test('chunks of a model bundle and a diffusers UNet are the bytes of the in-memory encoders', () => {
    const chunks = [...streamModelBundle(model)];
    assert.ok(chunks.length > 2, 'a header chunk and one chunk per tensor');
    assert.ok(Buffer.concat(chunks).equals(Buffer.from(encodeModelBundle(model))));
    assert.ok(concat(streamDiffusersUnet(model)).equals(Buffer.from(exportDiffusersUnet(model))));
  });

  void test('float32 tensors are passed on as views of their own arrays; F16 is converted', () => {
    const a = { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
    const b = { shape: [5], data: new Float32Array([0.5, -1, 7, 8, 9]) };
    const { size, chunks } = safetensorsChunks({ a, b }, { metadata: { k: 'v' } });
    const list = [...chunks];
    assert.equal(list.length, 3);
    assert.equal(list[1]!.buffer, a.data.buffer);
    assert.equal(list[2]!.buffer, b.data.buffer);
    assert.equal(
      size,
      list.reduce((n, c) => n + c.byteLength, 0),
    );
    const f16 = safetensorsChunks({ a, b }, { dtype: 'F16' });
    assert.ok(concat(f16.chunks).equals(Buffer.from(serializeSafetensors({ a, b }, { dtype: 'F16' }))));
  });

  void test('a store put of the stream commits the same artifact as a put of the bytes', async () => {
    const store = new LocalArtifactStore({ root: dir });
    const options = { kind: 'model', producer: 'model-stream.test' };
    const streamed = await store.put('m/streamed.safetensors', streamModelBundle(model), options);
    const whole = await store.put('m/whole.safetensors', encodeModelBundle(model), options);
    assert.equal(streamed.sha256, whole.sha256);
    assert.equal(streamed.size, whole.size);
  });
});
