import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { SD15_UNET, TINY_UNET, DEMO_UNET } from '../../engine/models/unet-config';
import { unetParamSpecs } from '../../engine/models/unet-params';
import { timestepEmbedding } from '../../engine/models/timestep-embedding';
import { countParameters, tfShape, ParameterShapeError } from '../../engine/nn/params';
import { Rng } from '../../engine/rng';

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

before(async () => {
  await initBackend('cpu');
});

describe('UNet parameter list', () => {
  test('SD1.5 has diffusers’ 686 tensors and 859,520,964 parameters, without allocating', () => {
    const before = tf.memory().numTensors;
    const specs = unetParamSpecs(SD15_UNET);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(specs.length, 686);
    assert.equal(countParameters(specs), 859_520_964);
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    const expected: Record<string, number[]> = {
      'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight': [320, 768],
      'mid_block.resnets.0.time_emb_proj.weight': [1280, 1280],
      'conv_in.weight': [320, 4, 3, 3],
      'up_blocks.3.resnets.2.conv_shortcut.weight': [320, 640, 1, 1],
      'time_embedding.linear_1.weight': [1280, 320],
      'down_blocks.1.attentions.1.proj_in.weight': [640, 640, 1, 1],
      'down_blocks.2.downsamplers.0.conv.weight': [1280, 1280, 3, 3],
      'up_blocks.1.resnets.0.conv1.weight': [1280, 2560, 3, 3],
      'up_blocks.1.upsamplers.0.conv.weight': [1280, 1280, 3, 3],
      'up_blocks.2.attentions.2.transformer_blocks.0.ff.net.0.proj.weight': [5120, 640],
      'up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_out.0.bias': [320],
      'mid_block.attentions.0.transformer_blocks.0.ff.net.2.weight': [1280, 5120],
      'conv_norm_out.weight': [320],
      'conv_out.weight': [4, 320, 3, 3],
    };
    for (const [name, shape] of Object.entries(expected)) assert.deepEqual(byName.get(name), shape, name);
    for (const absent of [
      'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias',
      'down_blocks.3.downsamplers.0.conv.weight',
      'up_blocks.3.upsamplers.0.conv.weight',
      'down_blocks.0.resnets.0.conv_shortcut.weight',
    ]) {
      assert.equal(byName.has(absent), false, absent);
    }
  });

  test('TF.js layouts: conv [kh,kw,I,O], linear [I,O], others unchanged', () => {
    const specs = new Map(unetParamSpecs(SD15_UNET).map((s) => [s.name, s]));
    assert.deepEqual(tfShape(specs.get('conv_in.weight')!), [3, 3, 4, 320]);
    assert.deepEqual(tfShape(specs.get('time_embedding.linear_1.weight')!), [320, 1280]);
    assert.deepEqual(tfShape(specs.get('conv_norm_out.weight')!), [320]);
  });

  test('rejects inconsistent configs naming the key', () => {
    assert.throws(() => unetParamSpecs({ ...TINY_UNET, up_block_types: ['UpBlock2D'] }), /up_block_types/);
    assert.throws(() => unetParamSpecs({ ...TINY_UNET, norm_num_groups: 7 }), /norm_num_groups/);
  });
});

describe('UNet model (cpu)', () => {
  let model: UNet2DConditionModel;
  before(() => {
    model = UNet2DConditionModel.create(TINY_UNET, new Rng(1));
  });

  test('built model has exactly the listed names and shapes', () => {
    const specs = unetParamSpecs(TINY_UNET);
    assert.deepEqual(
      model.params.names,
      specs.map((s) => s.name),
    );
    for (const s of specs) assert.deepEqual(model.params.get(s.name).shape, tfShape(s), s.name);
    const diff = model.params.getWeights('diffusers');
    for (const s of specs) assert.deepEqual(diff.get(s.name)!.shape, s.shape, s.name);
    tf.dispose([...diff.values()]);
  });

  test('initialization is deterministic in the seed', () => {
    const a = UNet2DConditionModel.create(TINY_UNET, new Rng(1));
    const b = UNet2DConditionModel.create(TINY_UNET, new Rng(2));
    const name = 'down_blocks.0.resnets.0.conv1.weight';
    assert.equal(maxAbs(a.params.get(name), model.params.get(name)), 0);
    assert.ok(maxAbs(b.params.get(name), model.params.get(name)) > 0);
    a.dispose();
    b.dispose();
  });

  test('forward: shape, per-sample timesteps, no leaked tensors', () => {
    const rng = new Rng(5);
    const x = rng.normalTensor([2, 8, 8, 4]) as tf.Tensor4D;
    const ctx = rng.normalTensor([2, 3, 32]) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const y = model.predict(x, [10, 900], ctx);
    assert.equal(tf.memory().numTensors, before + 1);
    assert.deepEqual(y.shape, [2, 8, 8, 4]);
    // Each sample must see its own timestep: the batched result equals per-sample calls.
    for (const [i, t] of [
      [0, 10],
      [1, 900],
    ] as const) {
      const xi = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]);
      const ci = tf.slice(ctx, [i, 0, 0], [1, -1, -1]);
      const yi = model.predict(xi, [t], ci);
      assert.ok(maxAbs(yi, tf.slice(y, [i, 0, 0, 0], [1, -1, -1, -1])) < 1e-5);
      const other = model.predict(xi, [t === 10 ? 900 : 10], ci);
      assert.ok(maxAbs(other, yi) > 1e-4, 'timestep must change the prediction');
      tf.dispose([xi, ci, yi, other]);
    }
    // A tensor of timesteps and a single broadcast timestep are accepted too.
    const tt = tf.tensor1d([10, 900]);
    const y2 = model.predict(x, tt, ctx);
    assert.ok(maxAbs(y2, y) < 1e-6);
    const y3 = model.predict(x, [10], ctx);
    const y4 = model.predict(x, [10, 10], ctx);
    assert.ok(maxAbs(y3, y4) < 1e-6);
    tf.dispose([x, ctx, y, tt, y2, y3, y4]);
  });

  test('context changes the prediction (cross-attention is wired)', () => {
    const rng = new Rng(9);
    const x = rng.normalTensor([1, 8, 8, 4]) as tf.Tensor4D;
    const c1 = rng.normalTensor([1, 4, 32]) as tf.Tensor3D;
    const c2 = rng.normalTensor([1, 4, 32]) as tf.Tensor3D;
    const a = model.predict(x, [500], c1);
    const b = model.predict(x, [500], c2);
    assert.ok(maxAbs(a, b) > 1e-5);
    tf.dispose([x, c1, c2, a, b]);
  });

  test('bad inputs fail with clear errors', () => {
    const x = tf.zeros([1, 8, 8, 3]) as tf.Tensor4D;
    const ctx = tf.zeros([1, 2, 32]) as tf.Tensor3D;
    assert.throws(() => model.predict(x, [1], ctx), /3 channels.*in_channels is 4/);
    const x2 = tf.zeros([1, 7, 8, 4]) as tf.Tensor4D;
    assert.throws(() => model.predict(x2, [1], ctx), /divisible by 2/);
    const x3 = tf.zeros([1, 8, 8, 4]) as tf.Tensor4D;
    assert.throws(() => model.predict(x3, [1, 2, 3], ctx), /timesteps/);
    assert.throws(() => model.predict(x3, [1], tf.zeros([1, 2, 16]) as tf.Tensor3D), /context/);
    tf.dispose([x, ctx, x2, x3]);
  });

  test('setWeights validates everything before assigning and names the tensor', () => {
    const target = model.clone();
    const name = 'mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight';
    const snapshot = target.params.get('conv_in.weight').dataSync().slice();
    const weights = model.params.getWeights();
    tf.dispose(weights.get('conv_in.weight')!);
    weights.set('conv_in.weight', tf.onesLike(model.params.get('conv_in.weight')));
    const good = weights.get(name)!;
    weights.set(name, tf.zeros([64, 32]));
    assert.throws(
      () => target.params.setWeights(weights),
      (e: Error) => e instanceof ParameterShapeError && e.message.includes(name),
    );
    assert.deepEqual(
      target.params.get('conv_in.weight').dataSync(),
      snapshot,
      'nothing may be assigned on failure',
    );
    weights.get(name)!.dispose();
    weights.delete(name);
    assert.throws(
      () => target.params.setWeights(weights),
      new RegExp(`missing 1 tensor.*${name.replace(/\./g, '\\.')}`),
    );
    weights.set(name, good);
    weights.set('extra.weight', tf.zeros([1]));
    assert.throws(() => target.params.setWeights(weights), /unexpected 1 tensor.*extra\.weight/);
    tf.dispose(weights.get('extra.weight')!);
    weights.delete('extra.weight');
    target.params.setWeights(weights);
    assert.deepEqual(Array.from(target.params.get('conv_in.weight').dataSync().slice(0, 3)), [1, 1, 1]);
    tf.dispose([...weights.values()]);
    target.dispose();
  });

  test('diffusers-layout export/import round-trips and preserves the function', () => {
    const other = UNet2DConditionModel.create(TINY_UNET, new Rng(77), false);
    const exported = model.params.getWeights('diffusers');
    other.params.setWeights(exported, 'diffusers');
    const rng = new Rng(3);
    const x = rng.normalTensor([1, 8, 8, 4]) as tf.Tensor4D;
    const ctx = rng.normalTensor([1, 2, 32]) as tf.Tensor3D;
    const a = model.predict(x, [300], ctx);
    const b = other.predict(x, [300], ctx);
    assert.equal(maxAbs(a, b), 0);
    // PyTorch conv layout: element [o, i, kh, kw] of the export is TF.js element [kh, kw, i, o].
    const torch = exported.get('conv_in.weight')!.arraySync() as number[][][][];
    const tfw = model.params.get('conv_in.weight').arraySync() as number[][][][];
    assert.equal(torch[5]![2]![0]![1], tfw[0]![1]![2]![5]);
    const lin = exported.get('time_embedding.linear_1.weight')!.arraySync() as number[][];
    const lintf = model.params.get('time_embedding.linear_1.weight').arraySync() as number[][];
    assert.equal(lin[7]![3], lintf[3]![7]);
    tf.dispose([...exported.values(), x, ctx, a, b]);
    other.dispose();
  });

  test('clones are independent copies', () => {
    const c = model.clone(false);
    assert.equal(c.params.get('conv_out.bias').trainable, false);
    c.params.get('conv_out.bias').assign(tf.fill([4], 3));
    assert.notEqual(model.params.get('conv_out.bias').dataSync()[0], 3);
    c.dispose();
    assert.throws(() => c.params.get('conv_out.bias'), /after dispose/);
  });
});

describe('timestep embedding', () => {
  test('matches diffusers’ formula ([cos, sin], freq_shift 0) computed independently', () => {
    const dim = 32;
    const ts = [0, 1, 499, 999];
    const emb = timestepEmbedding(tf.tensor1d(ts), dim).arraySync();
    ts.forEach((t, r) => {
      for (let i = 0; i < dim / 2; i++) {
        const f = Math.exp((-Math.log(10000) * i) / (dim / 2));
        assert.ok(Math.abs(emb[r]![i]! - Math.cos(t * f)) < 2e-4, `cos t=${t} i=${i}`);
        assert.ok(Math.abs(emb[r]![dim / 2 + i]! - Math.sin(t * f)) < 2e-4, `sin t=${t} i=${i}`);
      }
    });
  });

  test('demo config builds and predicts', () => {
    const m = UNet2DConditionModel.create(DEMO_UNET, new Rng(4));
    const x = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    const y = m.predict(x, [5], tf.zeros([1, 4, DEMO_UNET.cross_attention_dim]) as tf.Tensor3D);
    assert.deepEqual(y.shape, [1, 16, 16, 3]);
    tf.dispose([x, y]);
    m.dispose();
  });
});

describe('FLOP count', () => {
  test('matches a hand count on a one-level model', async () => {
    const { unetForwardFlops } = await import('../../engine/models/flops');
    const cfg = {
      ...TINY_UNET,
      in_channels: 1,
      out_channels: 1,
      block_out_channels: [8],
      layers_per_block: 1,
      down_block_types: ['DownBlock2D' as const],
      up_block_types: ['UpBlock2D' as const],
      cross_attention_dim: 4,
      attention_head_dim: 1,
      norm_num_groups: 4,
    };
    // time MLP 512 + 2048; conv_in 2304; down resnet 37376; mid resnets 2 x 37376 and transformer
    // 50432; two up resnets on 16 channels with 1x1 shortcut 2 x 59904; conv_out 2304.
    const shape = { batch: 1, height: 4, width: 4, contextLength: 2 };
    assert.equal(unetForwardFlops(cfg, shape), 289_536);
    assert.equal(unetForwardFlops(cfg, { ...shape, batch: 3 }), 3 * 289_536);
  });
});
