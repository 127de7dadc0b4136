import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { vaeConfigFrom } from '../../engine/io/diffusers-configs';
import { readSafetensors, type SafetensorsFile } from '../../engine/io/safetensors';
import { AutoencoderKL, modernVaeKey, vaeParamSpecs } from '../../engine/models/vae';
import { SD15_VAE, vaeScaleFactor } from '../../engine/models/vae-config';
import { countParameters } from '../../engine/nn/params';
import { Rng } from '../../engine/rng';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
const VAE_DIR = path.join(FIXTURES, 'tiny-sd', 'vae');
const config = vaeConfigFrom(
  JSON.parse(readFileSync(path.join(VAE_DIR, 'config.json'), 'utf8')),
  'tiny-sd/vae/config.json',
);

function tensorOf(file: SafetensorsFile, name: string): tf.Tensor4D {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`fixture tensor '${name}' missing`);
  const x: tf.Tensor = tf.tensor(t.data, t.shape, 'float32');
  return x as tf.Tensor4D;
}

/** max |a - b| / max |b|. */
function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
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

describe('AutoencoderKL parameters', () => {
  test('SD1.5 VAE: 248 tensors, 83,653,863 parameters (diffusers counts)', () => {
    const specs = vaeParamSpecs(SD15_VAE);
    assert.equal(specs.length, 248);
    assert.equal(countParameters(specs), 83_653_863);
    assert.equal(vaeScaleFactor(SD15_VAE), 8);
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    assert.deepEqual(byName.get('encoder.conv_out.weight'), [8, 512, 3, 3]);
    assert.deepEqual(byName.get('decoder.up_blocks.3.resnets.0.conv_shortcut.weight'), [128, 256, 1, 1]);
    assert.deepEqual(byName.get('encoder.mid_block.attentions.0.to_q.bias'), [512]);
  });

  test('legacy attention keys map to the current names', () => {
    assert.equal(
      modernVaeKey('encoder.mid_block.attentions.0.query.weight'),
      'encoder.mid_block.attentions.0.to_q.weight',
    );
    assert.equal(
      modernVaeKey('decoder.mid_block.attentions.0.proj_attn.bias'),
      'decoder.mid_block.attentions.0.to_out.0.bias',
    );
    assert.equal(modernVaeKey('decoder.conv_in.weight'), 'decoder.conv_in.weight');
  });
});

describe('AutoencoderKL equals diffusers (tiny-sd fixture)', () => {
  let weights: SafetensorsFile;
  let io: SafetensorsFile;

  before(async () => {
    weights = await readSafetensors(path.join(VAE_DIR, 'diffusion_pytorch_model.safetensors'));
    io = await readSafetensors(path.join(FIXTURES, 'tiny-sd-parity', 'vae.safetensors'));
  });
  after(async () => {
    await initBackend('cpu');
  });

  test('the fixture has every tensor the config implies, no more', () => {
    const specs = vaeParamSpecs(config);
    assert.deepEqual(new Set(specs.map((s) => s.name)), new Set(weights.tensors.keys()));
    assert.equal(config.scaling_factor, 0.18215);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    test(`encode, latents, forward and decode on ${backend} match within 1e-4 relative`, async () => {
      await initBackend(backend);
      const vae = AutoencoderKL.create(config, new Rng(0));
      const map = new Map([...weights.tensors.keys()].map((k) => [k, tensorOf(weights, k) as tf.Tensor]));
      vae.params.setWeights(map, 'diffusers');
      tf.dispose([...map.values()]);

      const images = tensorOf(io, 'input.images.nhwc');
      const noise = tensorOf(io, 'input.noise.nhwc');
      const z = tensorOf(io, 'input.z.nhwc');
      const { mean, logvar } = vae.encode(images);
      const latents = vae.encodeLatents(images, noise);
      const reconstruction = vae.reconstruct(images);
      const decoded = vae.decode(z);
      const checks: [string, tf.Tensor, string][] = [
        ['mean', mean, 'output.mean.nhwc'],
        ['logvar', logvar, 'output.logvar.nhwc'],
        ['latents', latents, 'output.latents.nhwc'],
        ['reconstruction', reconstruction, 'output.reconstruction.nhwc'],
        ['decoded', decoded, 'output.decoded.nhwc'],
      ];
      for (const [what, got, key] of checks) {
        const want = tensorOf(io, key);
        const err = relativeError(got, want);
        assert.ok(err < 1e-4, `${backend} ${what}: relative error ${err}`);
        want.dispose();
      }
      // decodeLatents undoes the scaling: decoding the scaled latents of z equals decode(z).
      const scaled = tf.mul(z, config.scaling_factor) as tf.Tensor4D;
      const viaLatents = vae.decodeLatents(scaled);
      assert.ok(relativeError(viaLatents, decoded) < 1e-5);
      tf.dispose([images, noise, z, mean, logvar, latents, reconstruction, decoded, scaled, viaLatents]);
      vae.dispose();
    });
  }

  test('bad shapes are refused naming the problem', async () => {
    await initBackend('cpu');
    const vae = AutoencoderKL.create(config, new Rng(0));
    assert.throws(() => vae.encode(tf.zeros([1, 15, 16, 3]) as tf.Tensor4D), /15x16 must be divisible by 2/);
    assert.throws(
      () => vae.encode(tf.zeros([1, 16, 16, 4]) as tf.Tensor4D),
      /4 channels, config in_channels is 3/,
    );
    assert.throws(() => vae.decode(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D), /latent_channels is 4/);
    vae.dispose();
  });
});
