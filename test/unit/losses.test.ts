import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { dpoLoss } from '../../engine/losses/dpo-loss';
import { droLoss } from '../../engine/losses/dro-loss';
import { perSampleMse } from '../../engine/losses/mse';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
const t4 = (rows: number[][]) => tf.tensor4d(rows.flat(), [rows.length, 1, 1, rows[0]!.length]);

before(async () => {
  await tf.setBackend('cpu');
});

describe('per-sample MSE', () => {
  test('averages over every axis but the batch', () => {
    const mse = perSampleMse(
      t4([
        [1, 3],
        [0, 0],
      ]),
      t4([
        [0, 0],
        [2, 0],
      ]),
    );
    assert.deepEqual(Array.from(mse.dataSync()), [5, 2]);
  });
});

describe('DRO hinge loss', () => {
  // Batch order is [expert1, expert2, policy1, policy2].
  const target = t4([
    [1, 0],
    [0, 0],
    [0, 1],
    [1, 1],
  ]);
  const predPhi = t4([
    [1.5, 0],
    [1, 1],
    [0, 0],
    [1, 2],
  ]);
  const predRef = t4([
    [1, 1],
    [0, 0],
    [0, 2],
    [0, 1],
  ]);

  test('matches values computed by hand', () => {
    const r = droLoss({ predPhi, predRef, target, margin: 1e-3 });
    assert.deepEqual(Array.from(r.le.dataSync()), [0.125, 1]);
    assert.deepEqual(Array.from(r.le0.dataSync()), [0.5, 0]);
    assert.deepEqual(Array.from(r.lp.dataSync()), [0.5, 0.5]);
    assert.deepEqual(Array.from(r.lp0.dataSync()), [0.5, 0.5]);
    const diff = Array.from(r.diff.dataSync());
    close(diff[0]!, -0.375);
    close(diff[1]!, 1);
    // Sample 1 is inside the margin (no loss), sample 2 pays diff + margin.
    close(r.loss.dataSync()[0]!, (0 + 1.001) / 2);
  });

  test('margin shifts the hinge: a zero diff still pays the margin', () => {
    const same = t4([
      [1, 1],
      [1, 1],
    ]);
    const r = droLoss({
      predPhi: same,
      predRef: same,
      target: t4([
        [0, 0],
        [0, 0],
      ]),
      margin: 0.25,
    });
    close(r.loss.dataSync()[0]!, 0.25);
    const r0 = droLoss({
      predPhi: same,
      predRef: same,
      target: t4([
        [0, 0],
        [0, 0],
      ]),
      margin: 0,
    });
    close(r0.loss.dataSync()[0]!, 0);
  });

  test('gradient flows only through samples on the active side of the hinge', () => {
    const g = tf.grad((p: tf.Tensor) => droLoss({ predPhi: p, predRef, target, margin: 1e-3 }).loss)(predPhi);
    // `+ 0` folds -0 into 0.
    const rows = (g.arraySync() as number[][][][]).map((r) => [[r[0]![0]!.map((v) => v + 0)]]);
    // Inactive pair (expert1, policy1): zero gradient.
    assert.deepEqual(rows[0]![0]![0], [0, 0]);
    assert.deepEqual(rows[2]![0]![0], [0, 0]);
    // Active pair: d/dphi of (Le - Lp)/2 -> expert pushed towards its target, policy away from it.
    // dLe/dp = 2 (p - target) / 2 dims = (p - t); times 1/2 for the batch mean.
    assert.deepEqual(rows[1]![0]![0], [0.5, 0.5]);
    assert.deepEqual(rows[3]![0]![0], [0, -0.5]);
  });

  test('rejects a batch that is not [expert; policy]', () => {
    assert.throws(
      () => droLoss({ predPhi: t4([[1]]), predRef: t4([[1]]), target: t4([[1]]), margin: 0 }),
      /even batch/,
    );
  });
});

describe('Diffusion-DPO loss', () => {
  test('matches values computed by hand', () => {
    // Winner: L_w = 1, Lref_w = 0; loser: L_l = 4, Lref_l = 1. logits = (0 - 1) - (1 - 4) = 2.
    const r = dpoLoss({ pred: t4([[1], [2]]), predRef: t4([[0], [1]]), target: t4([[0], [0]]), beta: 2 });
    close(r.logits.dataSync()[0]!, 2);
    close(r.loss.dataSync()[0]!, Math.log(1 + Math.exp(-0.5 * 2 * 2)), 1e-6);
    close(r.implicitAccuracy.dataSync()[0]!, 1);
  });

  test('implicit accuracy counts pairs the model prefers more than the reference', () => {
    const r = dpoLoss({
      pred: t4([[0], [3], [2], [0]]),
      predRef: t4([[0], [0], [0], [0]]),
      target: t4([[0], [0], [0], [0]]),
      beta: 1,
    });
    // Batch [w1, w2, l1, l2]. pair 1: logits = 0 - (0 - 4) = 4 > 0; pair 2: logits = 0 - (9 - 0) = -9.
    assert.deepEqual(Array.from(r.logits.dataSync()), [4, -9]);
    close(r.implicitAccuracy.dataSync()[0]!, 0.5);
  });
});
