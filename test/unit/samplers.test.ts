import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { DdimSampler } from '../../engine/schedulers/ddim';
import { DdpmAncestralSampler } from '../../engine/schedulers/ddpm-ancestral';
import { NoiseSchedule } from '../../engine/schedulers/ddpm-schedule';
import { DpmSolverPlusPlus } from '../../engine/schedulers/dpm-solver';
import type { EpsModel } from '../../engine/schedulers/sampling';
import { perturbedTimesteps } from '../../engine/schedulers/timesteps';
import { Rng } from '../../engine/rng';

const schedule = new NoiseSchedule();
const shape: [number, number, number, number] = [3, 2, 2, 4];
const model: EpsModel<null> = (x, t) =>
  tf.tidy(
    () =>
      tf.add(
        tf.mul(tf.tanh(x), 0.8),
        tf.tensor4d(
          t.map((v) => v / 5000),
          [t.length, 1, 1, 1],
        ),
      ) as tf.Tensor4D,
  );

before(async () => {
  await tf.setBackend('cpu');
});

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / s;
}

void describe('DDIM', () => {
  void test('eta 0 equals DPM-Solver++(1) on per-sample grids (the two are the same ODE step)', async () => {
    const { grids } = perturbedTimesteps(10, 3, new Rng(4));
    const xT = new Rng(5).normalTensor(shape) as tf.Tensor4D;
    const ddim = await new DdimSampler(schedule).sample({ model, xT, grids, cond: null, record: false });
    const dpm1 = await new DpmSolverPlusPlus(schedule, { solverOrder: 1 }).sample({
      model,
      xT,
      grids,
      cond: null,
      record: false,
    });
    assert.ok(maxRelDiff(ddim.x0.dataSync(), dpm1.x0.dataSync()) < 1e-5);
    tf.dispose([xT, ddim.x0, dpm1.x0]);
  });

  void test("finalAlphaCumprod 'first' stops at ac[0] instead of the clean sample", () => {
    const x = tf.ones([1, 1, 1, 1]) as tf.Tensor4D;
    const eps = tf.fill([1, 1, 1, 1], 0.5) as tf.Tensor4D;
    const at = schedule.alphasCumprod[10]!;
    const a0 = schedule.alphasCumprod[0]!;
    const x0 = (1 - Math.sqrt(1 - at) * 0.5) / Math.sqrt(at);
    const one = new DdimSampler(schedule)
      .start([[10]])
      .step(0, x, eps)
      .dataSync()[0]!;
    const first = new DdimSampler(schedule, { finalAlphaCumprod: 'first' })
      .start([[10]])
      .step(0, x, eps)
      .dataSync()[0]!;
    assert.ok(Math.abs(one - x0) < 1e-6);
    assert.ok(Math.abs(first - (Math.sqrt(a0) * x0 + Math.sqrt(1 - a0) * 0.5)) < 1e-6);
  });

  void test('eta > 0 needs a noise source and then uses it', () => {
    assert.throws(() => new DdimSampler(schedule, { eta: 1 }).start([[500, 400]]), /needs a noise source/);
    let draws = 0;
    const noise = { normalTensor: (s: number[]) => (draws++, tf.zeros(s)) };
    const x = tf.ones([1, 1, 1, 1]) as tf.Tensor4D;
    new DdimSampler(schedule, { eta: 1 }).start([[500, 400]], noise).step(0, x, x);
    assert.equal(draws, 1);
  });
});

void describe('DDPM ancestral', () => {
  void test('draws noise on every step but the last and is reproducible from a seeded source', async () => {
    const { grids } = perturbedTimesteps(8, 3, new Rng(6));
    const xT = new Rng(7).normalTensor(shape) as tf.Tensor4D;
    const sampler = new DdpmAncestralSampler(schedule);
    const run = async (seed: number) => {
      const rng = new Rng(seed);
      let draws = 0;
      const noise = { normalTensor: (s: number[]) => (draws++, rng.normalTensor(s)) };
      const res = await sampler.sample({ model, xT, grids, cond: null, noise, record: false });
      const out = res.x0.dataSync().slice();
      res.x0.dispose();
      return { out, draws };
    };
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    assert.equal(a.draws, 7);
    assert.deepEqual(Array.from(a.out), Array.from(b.out));
    assert.ok(maxRelDiff(a.out, c.out) > 1e-3, 'different noise must change the sample');
    xT.dispose();
  });

  void test('without a noise source it refuses to start', () => {
    assert.throws(() => new DdpmAncestralSampler(schedule).start([[10]]), /needs a noise source/);
  });
});
