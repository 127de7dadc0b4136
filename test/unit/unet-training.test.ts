import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';

/**
 * A DRO-shaped step: phi with gradient on 2B inputs (expert + policy), ref without gradient on the
 * same 2B inputs, hinge ranking loss over per-sample MSEs (docs/algorithm.md section 1).
 */
function droStep(phi: UNet2DConditionModel, ref: UNet2DConditionModel, seed: number) {
  const rng = new Rng(seed);
  const B = 2;
  const x = rng.normalTensor([2 * B, 8, 8, 4]) as tf.Tensor4D;
  const eps = rng.normalTensor([2 * B, 8, 8, 4]);
  const ctx = rng.normalTensor([2 * B, 2, 32]) as tf.Tensor3D;
  const t = Array.from({ length: 2 * B }, () => rng.int(0, 1000));
  const perSample = (pred: tf.Tensor) => tf.mean(tf.squaredDifference(pred, eps), [1, 2, 3]);
  const refLoss = tf.tidy(() => perSample(ref.predict(x, t, ctx)));
  const vars = phi.params.variables();
  const { value, grads } = tf.variableGrads(() => {
    const l = tf.sub(perSample(phi.predict(x, t, ctx)), refLoss);
    const [le, lp] = tf.split(l, 2);
    return tf.mean(tf.relu(tf.add(tf.sub(le!, lp!), 1e-3))) as tf.Scalar;
  }, vars);
  const loss = value.dataSync()[0]!;
  const gradByName = new Map(phi.params.names.map((n, i) => [n, grads[vars[i]!.name]!]));
  tf.dispose([x, eps, ctx, refLoss, value]);
  return { loss, gradByName };
}

describe('training steps', () => {
  test('a DRO step runs on wasm, leaves ref untouched, and matches the cpu backend', async () => {
    const results: { loss: number; grads: Map<string, Float32Array> }[] = [];
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend(backend);
      const phi = UNet2DConditionModel.create(TINY_UNET, new Rng(1));
      // ref differs from phi so the hinge is active for some samples.
      const ref = UNet2DConditionModel.create(TINY_UNET, new Rng(2), false);
      const refBefore = ref.params.get('conv_in.weight').dataSync().slice();
      const before = tf.memory().numTensors;
      const { loss, gradByName } = droStep(phi, ref, 99);
      assert.equal(tf.memory().numTensors, before + gradByName.size, 'only the gradients may remain');
      assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
      assert.equal(gradByName.size, phi.params.names.length, 'every phi parameter gets a gradient');
      assert.deepEqual(ref.params.get('conv_in.weight').dataSync(), refBefore);
      results.push({
        loss,
        grads: new Map([...gradByName].map(([n, g]) => [n, g.dataSync() as Float32Array])),
      });
      tf.dispose([...gradByName.values()]);
      phi.dispose();
      ref.dispose();
    }
    const [wasm, cpu] = results as [(typeof results)[0], (typeof results)[0]];
    assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss));
    let worst = 0;
    let worstName = '';
    for (const [name, g] of cpu.grads) {
      const w = wasm.grads.get(name)!;
      const scale = Math.max(...g.map(Math.abs), 1e-8);
      const d = Math.max(...g.map((v, i) => Math.abs(v - w[i]!))) / scale;
      if (d > worst) [worst, worstName] = [d, name];
    }
    assert.ok(worst < 1e-3, `wasm and cpu gradients differ by ${worst} (relative) at ${worstName}`);
    const someGrad = cpu.grads.get('down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight')!;
    assert.ok(
      someGrad.some((v) => v !== 0),
      'cross-attention weights must receive gradient',
    );
  });
});
