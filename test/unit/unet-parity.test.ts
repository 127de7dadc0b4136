import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { readSafetensors, type SafetensorsFile } from '../../engine/io/safetensors';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET, type UNetConfig } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import { PARITY_DIR } from '../fixtures/parity/fixtures';
import fixtureConfig from '../fixtures/parity/tiny-unet-config.json';

function tensorOf(file: SafetensorsFile, name: string): tf.Tensor {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`fixture tensor '${name}' missing`);
  return tf.tensor(t.data, t.shape, 'float32');
}

/** max |a - b| / max |b|: relative to the output's scale, as the acceptance criterion states it. */
function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return diff / scale;
}

describe('tiny UNet equals diffusers (parity fixtures)', () => {
  let weights: SafetensorsFile;
  let io: SafetensorsFile;

  before(async () => {
    weights = await readSafetensors(path.join(PARITY_DIR, 'tiny-unet.safetensors'));
    io = await readSafetensors(path.join(PARITY_DIR, 'unet-forward.safetensors'));
  });
  after(async () => {
    await initBackend('cpu');
  });

  test('our tiny config is the one the fixtures were made with', () => {
    const cfg = fixtureConfig.config;
    for (const key of Object.keys(TINY_UNET) as (keyof UNetConfig)[]) {
      assert.deepEqual(cfg[key], TINY_UNET[key], key);
    }
    assert.equal(cfg.flip_sin_to_cos, true);
    assert.equal(cfg.freq_shift, 0);
    assert.equal(cfg.downsample_padding, 1);
    assert.equal(cfg.use_linear_projection, false);
    assert.equal(cfg.norm_eps, 1e-5);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    test(`forward on ${backend} matches within 1e-4 relative, at two timestep pairs`, async () => {
      await initBackend(backend);
      const model = UNet2DConditionModel.create(TINY_UNET, new Rng(0), false);
      const map = new Map([...weights.tensors.keys()].map((k) => [k, tensorOf(weights, k)]));
      model.params.setWeights(map, 'diffusers');
      tf.dispose([...map.values()]);
      const x = tensorOf(io, 'input.sample.nhwc') as tf.Tensor4D;
      const ctx = tensorOf(io, 'input.context') as tf.Tensor3D;
      for (const which of ['a', 'b']) {
        const t = tensorOf(io, `input.timesteps.${which}`) as tf.Tensor1D;
        const want = tensorOf(io, `output.eps.${which}.nhwc`);
        const got = model.predict(x, t, ctx);
        const err = relativeError(got, want);
        assert.ok(err < 1e-4, `${backend} timesteps ${which}: relative error ${err}`);
        tf.dispose([t, want, got]);
      }
      tf.dispose([x, ctx]);
      model.dispose();
    });
  }
});
