import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { AdamW } from '../../engine/training/adamw';
import { clipGradNorm } from '../../engine/training/clip-grad';
import { Ema } from '../../engine/training/ema';

before(async () => {
  await tf.setBackend('cpu');
});

/** torch.optim.AdamW on one scalar, in float64, written out independently of the class. */
function adamwScalar(p0: number, grads: number[], lr: number, wd: number): number {
  let p = p0;
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr * wd;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    p -= (lr / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
  });
  return p;
}

describe('AdamW', () => {
  const grads = [0.5, -0.2, 0.1, 0.8, -0.05, 0.3];

  test('follows torch.optim.AdamW step for step', () => {
    const params = new Map([['w', tf.variable(tf.tensor1d([1.0, -2.0]))]]);
    const opt = new AdamW({ lr: 0.1, weightDecay: 0.01 });
    for (const g of grads) opt.apply(params, new Map([['w', tf.tensor1d([g, -g])]]));
    const [a, b] = Array.from(params.get('w')!.dataSync());
    assert.ok(Math.abs(a! - adamwScalar(1.0, grads, 0.1, 0.01)) < 1e-5);
    assert.ok(
      Math.abs(
        b! -
          adamwScalar(
            -2.0,
            grads.map((g) => -g),
            0.1,
            0.01,
          ),
      ) < 1e-5,
    );
    assert.equal(opt.step, grads.length);
  });

  test('a restored state continues exactly like an uninterrupted run', () => {
    const run = (split: boolean) => {
      const params = new Map([['w', tf.variable(tf.tensor1d([0.3, 0.7, -1]))]]);
      let opt = new AdamW({ lr: 0.05 });
      grads.forEach((g, i) => {
        if (split && i === 3) {
          const state = opt.getState();
          opt.dispose();
          opt = new AdamW({ lr: 0.05 });
          opt.setState(state, params);
        }
        opt.apply(params, new Map([['w', tf.tensor1d([g, 2 * g, -g])]]));
      });
      return Array.from(params.get('w')!.dataSync());
    };
    assert.deepEqual(run(true), run(false));
  });

  test('rejects a state for a parameter the model lacks', () => {
    const opt = new AdamW({ lr: 0.1 });
    const state = { step: 1, m: new Map([['ghost', new Float32Array(2)]]), v: new Map() };
    assert.throws(() => opt.setState(state, new Map([['w', tf.variable(tf.zeros([2]))]])), /'ghost'/);
  });
});

describe('gradient clipping', () => {
  test('scales the global norm down to the maximum', () => {
    const grads = new Map([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor1d([0, 4])],
    ]);
    const norm = clipGradNorm(grads, 1);
    assert.ok(Math.abs(norm - 5) < 1e-6);
    const a = Array.from(grads.get('a')!.dataSync());
    assert.ok(Math.abs(a[0]! - 3 / (5 + 1e-6)) < 1e-6);
  });

  test('leaves small gradients alone', () => {
    const grads = new Map([['a', tf.tensor1d([0.3, 0.4])]]);
    clipGradNorm(grads, 1);
    assert.deepEqual(Array.from(grads.get('a')!.dataSync()), [0.30000001192092896, 0.4000000059604645]);
  });
});

describe('EMA', () => {
  test("uses diffusers' warm schedule min(decay, (1 + step) / (10 + step))", () => {
    const p = new Map([['w', tf.tensor1d([0])]]);
    const ema = new Ema(p, 0.9999);
    // First update: decay 0, the average takes the weights as they are.
    ema.update(new Map([['w', tf.tensor1d([10])]]));
    assert.equal(ema.shadow.get('w')!.dataSync()[0], 10);
    // Second update: step 1 -> decay 2/11.
    ema.update(new Map([['w', tf.tensor1d([0])]]));
    assert.ok(Math.abs(ema.shadow.get('w')!.dataSync()[0]! - 10 * (2 / 11)) < 1e-5);
    assert.ok(Math.abs(ema.nextDecay() - 3 / 12) < 1e-12);
  });

  test('caps the decay at the configured value', () => {
    const ema = new Ema(new Map([['w', tf.tensor1d([0])]]), 0.5);
    for (let i = 0; i < 10; i++) ema.update(new Map([['w', tf.tensor1d([1])]]));
    assert.equal(ema.nextDecay(), 0.5);
  });
});
