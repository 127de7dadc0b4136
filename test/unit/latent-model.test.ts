/**
 * Latent models: a diffusers folder becomes one model artifact holding UNet, VAE, text encoder and
 * the folder's text files; the artifact rebuilds the same model, and an exported diffusers folder
 * reads back through the folder loader with the exported weights.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { DiffusersFolderError, loadDiffusersPipeline } from '../../engine/io/diffusers-pipeline';
import {
  decodeAnyModel,
  describeModel,
  diffusersFolderFiles,
  encodeAnyModel,
  importDiffusersFolder,
  LATENT_MODEL_FORMAT,
} from '../../engine/latent/latent-model';
import { parseSafetensorsHeader } from '../../engine/io/safetensors';
import { disposeModel, type DiffusionModel } from '../../engine/training/diffusion-model';
import { Rng } from '../../engine/rng';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

function predict(model: DiffusionModel): Float32Array {
  return tf.tidy(() => {
    const x = new Rng(5).normalTensor([2, 8, 8, 4]) as tf.Tensor4D;
    const ids = model.tokenizer.encodeBatch(['a red cube', '']);
    const ctx = model.text.encode(tf.tensor2d(ids, [2, model.tokenizer.config.maxLength], 'int32'));
    return model.unet.predict(x, [10, 500], ctx).dataSync() as Float32Array;
  });
}

function copyFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-sd-'));
  fs.cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

describe('latent model artifact', () => {
  let model: DiffusionModel;
  let bytes: Uint8Array;
  before(async () => {
    await tf.setBackend('cpu');
    ({ model, bytes } = await importDiffusersFolder(FIXTURE));
  });
  after(() => disposeModel(model));

  test('a diffusers folder becomes one artifact that rebuilds the same model', async () => {
    assert.equal(parseSafetensorsHeader(bytes).metadata.format, LATENT_MODEL_FORMAT);
    const loaded = await decodeAnyModel(bytes, 'artifact');
    try {
      assert.ok(loaded.latent, 'the VAE comes back');
      assert.deepEqual(predict(loaded), predict(model));
      assert.equal(loaded.latent.vaeSha256, model.latent!.vaeSha256);
      assert.equal(loaded.latent.imageSize, 16);
      assert.deepEqual(
        loaded.tokenizer.encode('a photo of a cat'),
        model.tokenizer.encode('a photo of a cat'),
      );
      const img = tf.tidy(() => new Rng(1).uniformTensor([1, 16, 16, 3], -1, 1) as tf.Tensor4D);
      const a = tf.tidy(() => model.latent!.vae.encodeLatents(img).dataSync());
      const b = tf.tidy(() => loaded.latent!.vae.encodeLatents(img).dataSync());
      img.dispose();
      assert.deepEqual(a, b);
      // Re-encoding is stable: the same bytes.
      assert.deepEqual(encodeAnyModel(loaded), bytes);
    } finally {
      disposeModel(loaded);
    }
  });

  test('describeModel reads the space and image size from the header', async () => {
    const d = await describeModel(bytes, 'artifact');
    assert.equal(d.space, 'latent');
    assert.equal(d.imageSize, 16);
    assert.equal(d.unet.in_channels, 4);
  });

  test('a tampered file inside the artifact is refused like the folder would be', async () => {
    const header = parseSafetensorsHeader(bytes);
    const files = JSON.parse(header.metadata.files!) as Record<string, string>;
    const vae = JSON.parse(files['vae/config.json']!) as Record<string, unknown>;
    vae.latent_channels = 3;
    files['vae/config.json'] = JSON.stringify(vae);
    const { serializeSafetensors, parseSafetensors } = await import('../../engine/io/safetensors');
    const parsed = parseSafetensors(bytes);
    const bad = serializeSafetensors(parsed.tensors, {
      metadata: { ...header.metadata, files: JSON.stringify(files) },
    });
    await assert.rejects(decodeAnyModel(bad, 'bad'), /vae\/config\.json: field 'latent_channels' \(3\)/);
  });

  test('the exported diffusers folder loads with the folder reader and holds the given UNet weights', async () => {
    // Weights other than the model's own, as the EMA weights of a trained UNet are.
    const ema = new Map(
      model.unet.params.names.map(
        (n, i) => [n, tf.add(model.unet.params.get(n), 0.01 * ((i % 5) + 1))] as const,
      ),
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'export-'));
    try {
      for (const [rel, data] of diffusersFolderFiles(model, ema)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), data);
      }
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'model_index.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.deepEqual(index.unet, ['diffusers', 'UNet2DConditionModel']);
      const back = await loadDiffusersPipeline(dir);
      try {
        for (const n of model.unet.params.names) {
          const got = back.unet.params.get(n).dataSync();
          const want = ema.get(n)!.dataSync();
          assert.deepEqual(got, want, n);
        }
        for (const n of model.latent!.vae.params.names)
          assert.deepEqual(back.vae.params.get(n).dataSync(), model.latent!.vae.params.get(n).dataSync(), n);
        for (const n of model.text.params.names)
          assert.deepEqual(back.text.params.get(n).dataSync(), model.text.params.get(n).dataSync(), n);
      } finally {
        back.dispose();
      }
      // The text encoder keeps the key style of the folder it came from (transformers 5: no prefix).
      const { readSafetensorsHeader } = await import('../../engine/io/safetensors');
      const keys = [
        ...(await readSafetensorsHeader(path.join(dir, 'text_encoder/model.safetensors'))).tensors.keys(),
      ];
      assert.ok(keys.every((k) => !k.startsWith('text_model.')));
    } finally {
      tf.dispose([...ema.values()]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a folder trained on another noise schedule is refused, naming the file and field', async () => {
    const dir = copyFixture();
    try {
      const file = path.join(dir, 'scheduler/scheduler_config.json');
      const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      cfg.beta_end = 0.02;
      fs.writeFileSync(file, JSON.stringify(cfg));
      await assert.rejects(
        importDiffusersFolder(dir),
        (err: Error) =>
          err instanceof DiffusersFolderError &&
          /scheduler\/scheduler_config\.json: field 'beta_end' is 0\.02/.test(err.message),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
