import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';

describe('memory discipline (wasm)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  test('200 training steps of the tiny UNet keep the tensor count flat', () => {
    const rng = new Rng(123);
    const model = UNet2DConditionModel.create(TINY_UNET, rng);
    const vars = model.params.variables();
    // Plain SGD: the point is the model's own bookkeeping, and it keeps this test fast.
    const optimizer = tf.train.sgd(1e-3);
    const counts: number[] = [];
    const losses: number[] = [];
    for (let step = 0; step < 200; step++) {
      // Fresh inputs every step, as in training; disposed right after.
      const x = rng.normalTensor([1, 8, 8, 4]) as tf.Tensor4D;
      const target = rng.normalTensor([1, 8, 8, 4]);
      const ctx = rng.normalTensor([1, 2, 32]) as tf.Tensor3D;
      const t = [rng.int(0, 1000)];
      const loss = optimizer.minimize(
        () => tf.mean(tf.squaredDifference(model.predict(x, t, ctx), target)) as tf.Scalar,
        true,
        vars,
      )!;
      losses.push(loss.dataSync()[0]!);
      tf.dispose([loss, x, target, ctx]);
      counts.push(tf.memory().numTensors);
    }
    // The first step may allocate optimizer state; from then on nothing may accumulate.
    const steady = counts.slice(1);
    assert.ok(
      steady.every((c) => c === steady[0]),
      `tensor count drifted: ${[...new Set(steady)].join(' -> ')}`,
    );
    assert.ok(losses.every(Number.isFinite));
    optimizer.dispose();
    model.dispose();
  });
});
