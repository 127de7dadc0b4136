import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { NoiseSchedule, ScheduleError } from '../../engine/schedulers/ddpm-schedule';
import { DpmSolverPlusPlus } from '../../engine/schedulers/dpm-solver';
import { disposeSampleResult, type EpsModel, trajectoryToArrays } from '../../engine/schedulers/sampling';
import { inferenceTimesteps, perturbedTimesteps, sharedGrid } from '../../engine/schedulers/timesteps';
import { Rng } from '../../engine/rng';

const schedule = new NoiseSchedule();
const H = 3;
const W = 2;
const C = 4;

before(async () => {
  await tf.setBackend('cpu');
});

/** A deterministic stand-in for a UNet: elementwise in x, depends on each sample's own t. */
const fakeModel: EpsModel<unknown> = (x, t) =>
  tf.tidy(() => {
    const tt = tf.tensor4d(
      t.map((v) => v / 1000),
      [t.length, 1, 1, 1],
    );
    return tf.add(tf.mul(tf.tanh(x), 0.7), tf.mul(tf.sin(tf.mul(x, tt)), 0.3)) as tf.Tensor4D;
  });

function latents(batch: number, seed: number): tf.Tensor4D {
  return new Rng(seed).normalTensor([batch, H, W, C]) as tf.Tensor4D;
}

/** sigma -> (alpha_t, sigma_t, lambda) in float64, from the definitions in docs/algorithm.md section 3. */
function vp(sigma: number) {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, s: sigma * alpha, lambda: Math.log(alpha) - Math.log(sigma * alpha) };
}

void describe('DPM-Solver++ (2M) formulas', () => {
  void test('a hand-written scalar run of the formulas in docs/algorithm.md gives the same result', async () => {
    // Independent reimplementation on one scalar latent: eps(x, t) = 0.5 x + t / 2000.
    const grid = inferenceTimesteps(20, schedule.config);
    const model: EpsModel<null> = (x, t) =>
      tf.tidy(() => tf.add(tf.mul(x, 0.5), t[0]! / 2000) as tf.Tensor4D);
    let x = 0.8;
    let prevX0 = 0;
    const sig = (i: number) => (i < grid.length ? schedule.sigmas[grid[i]!]! : 0);
    for (let i = 0; i < grid.length; i++) {
      const s0 = vp(sig(i));
      const eps = 0.5 * Math.fround(x) + grid[i]! / 2000;
      const m0 = (x - s0.s * eps) / s0.alpha;
      if (i === grid.length - 1) {
        x = m0;
      } else {
        const t = vp(sig(i + 1));
        const h = t.lambda - s0.lambda;
        const first = (t.s / s0.s) * x - t.alpha * (Math.exp(-h) - 1) * m0;
        if (i === 0) {
          x = first;
        } else {
          const r0 = (s0.lambda - vp(sig(i - 1)).lambda) / h;
          x = first - 0.5 * t.alpha * (Math.exp(-h) - 1) * ((m0 - prevX0) / r0);
        }
      }
      prevX0 = m0;
    }
    const xT = tf.fill([1, 1, 1, 1], 0.8) as tf.Tensor4D;
    const res = await new DpmSolverPlusPlus(schedule).sample({
      model,
      xT,
      grids: [grid],
      cond: null,
      record: false,
    });
    const got = res.x0.dataSync()[0]!;
    assert.ok(Math.abs(got - x) <= 1e-5 * Math.abs(x), `${got} vs ${x}`);
    tf.dispose([xT, res.x0]);
  });

  void test('the last step returns the data prediction x0 = (x - sigma_t eps) / alpha_t exactly', async () => {
    const grids = perturbedTimesteps(20, 2, new Rng(1)).grids;
    const xT = latents(2, 2);
    const res = await new DpmSolverPlusPlus(schedule).sample({ model: fakeModel, xT, grids, cond: null });
    const last = res.trajectory[19]!;
    const x = last.x.dataSync();
    const e = last.eps.dataSync();
    const out = res.x0.dataSync();
    const n = H * W * C;
    for (let b = 0; b < 2; b++) {
      const p = vp(schedule.sigmas[grids[b]![19]!]!);
      for (let k = 0; k < n; k++) {
        const j = b * n + k;
        const want = (x[j]! - p.s * e[j]!) / p.alpha;
        assert.ok(Math.abs(out[j]! - want) < 1e-5 * Math.max(1, Math.abs(want)), `sample ${b}, ${k}`);
      }
    }
    disposeSampleResult(res);
    xT.dispose();
  });

  void test('step orders: first step and last step first order, 2nd order between', () => {
    const s = new DpmSolverPlusPlus(schedule);
    assert.deepEqual(
      [0, 1, 10, 18, 19].map((i) => s.stepOrder(i, 20)),
      [1, 2, 2, 2, 1],
    );
    const few = new DpmSolverPlusPlus(schedule, { finalSigmasType: 'sigma_min', lowerOrderFinal: true });
    assert.equal(few.stepOrder(9, 10), 1);
    assert.equal(few.stepOrder(19, 20), 2);
    assert.equal(new DpmSolverPlusPlus(schedule, { solverOrder: 1 }).stepOrder(5, 20), 1);
  });
});

void describe('per-sample timestep grids', () => {
  void test('each sample of a mixed-offset batch gets exactly what it gets alone on its own grid', async () => {
    const { grids, offsets } = perturbedTimesteps(20, 3, new Rng(7));
    assert.equal(new Set(offsets).size, 3, 'the seed must give three different offsets');
    const solver = new DpmSolverPlusPlus(schedule);
    const xT = latents(3, 8);
    const batch = await solver.sample({ model: fakeModel, xT, grids, cond: null, record: false });
    const all = batch.x0.dataSync();
    const n = H * W * C;
    for (let b = 0; b < 3; b++) {
      const xb = tf.slice(xT, [b, 0, 0, 0], [1, H, W, C]);
      const alone = await solver.sample({
        model: fakeModel,
        xT: xb,
        grids: [grids[b]!],
        cond: null,
        record: false,
      });
      const one = alone.x0.dataSync();
      for (let k = 0; k < n; k++) {
        assert.ok(
          Math.abs(all[b * n + k]! - one[k]!) <= 1e-6 * Math.max(1, Math.abs(one[k]!)),
          `sample ${b}, element ${k}`,
        );
      }
      tf.dispose([xb, alone.x0]);
    }
    // And the grids matter: the same batch on one shared grid ends elsewhere.
    const shared = await solver.sample({
      model: fakeModel,
      xT,
      grids: sharedGrid(grids[0]!, 3),
      cond: null,
      record: false,
    });
    const sameAsShared = Array.from(shared.x0.dataSync()).every((v, k) => v === all[k]);
    assert.equal(sameAsShared, false);
    tf.dispose([xT, batch.x0, shared.x0]);
  });
});

void describe('trajectory record', () => {
  void test('step i holds t_i, the latent before step i and the eps the model returned for it', async () => {
    const { grids } = perturbedTimesteps(20, 2, new Rng(21));
    const calls: { t: number[]; x: Float32Array; eps: Float32Array }[] = [];
    const recording: EpsModel<string> = (x, t, cond) => {
      assert.equal(cond, 'a prompt');
      const eps = fakeModel(x, t, cond) as tf.Tensor4D;
      calls.push({
        t: [...t],
        x: x.dataSync().slice() as Float32Array,
        eps: eps.dataSync().slice() as Float32Array,
      });
      return eps;
    };
    const xT = latents(2, 22);
    const solver = new DpmSolverPlusPlus(schedule);
    const res = await solver.sample({ model: recording, xT, grids, cond: 'a prompt' });
    assert.equal(calls.length, 20);
    assert.equal(res.trajectory.length, 20);
    assert.deepEqual(
      Array.from(res.trajectory[0]!.x.dataSync()),
      Array.from(xT.dataSync()),
      'x_{t_0} is x_T',
    );
    const replay = solver.start(grids);
    res.trajectory.forEach((step, i) => {
      assert.equal(step.index, i);
      assert.deepEqual(step.t, [grids[0]![i], grids[1]![i]]);
      assert.deepEqual(step.t, calls[i]!.t);
      assert.deepEqual(Array.from(step.x.dataSync()), Array.from(calls[i]!.x), `x at step ${i}`);
      assert.deepEqual(Array.from(step.eps.dataSync()), Array.from(calls[i]!.eps), `eps at step ${i}`);
      // The next recorded latent is the solver's step from this one.
      const next = replay.step(i, step.x, step.eps);
      const want = i + 1 < 20 ? res.trajectory[i + 1]!.x : res.x0;
      assert.deepEqual(Array.from(next.dataSync()), Array.from(want.dataSync()), `x after step ${i}`);
      next.dispose();
    });
    replay.dispose();

    const perSample = await trajectoryToArrays(res);
    assert.equal(perSample.length, 2);
    assert.deepEqual(perSample[1]!.timesteps, grids[1]);
    assert.deepEqual(perSample[1]!.shape, [H, W, C]);
    const n = H * W * C;
    assert.deepEqual(Array.from(perSample[1]!.latents[5]!), Array.from(calls[5]!.x.slice(n, 2 * n)));
    assert.deepEqual(Array.from(perSample[1]!.eps[5]!), Array.from(calls[5]!.eps.slice(n, 2 * n)));
    disposeSampleResult(res);
    xT.dispose();
  });

  void test('onStep sees every step, in order, before the solver leaves it', async () => {
    const seen: number[] = [];
    const xT = latents(1, 3);
    const res = await new DpmSolverPlusPlus(schedule).sample({
      model: fakeModel,
      xT,
      grids: [inferenceTimesteps(5, schedule.config)],
      cond: null,
      record: false,
      onStep: async (s) => {
        seen.push(s.t[0]!);
        assert.equal((await s.x.data()).length, H * W * C);
      },
    });
    assert.deepEqual(seen, [999, 799, 599, 400, 200]);
    tf.dispose([xT, res.x0]);
  });
});

void describe('classifier-free guidance', () => {
  const model: EpsModel<number> = (x, _t, cond) => tf.tidy(() => tf.add(tf.mul(x, 0.1), cond) as tf.Tensor4D);

  void test('scale 1 calls the model once per step, with the condition', async () => {
    const conds: number[] = [];
    const xT = latents(1, 4);
    const res = await new DpmSolverPlusPlus(schedule).sample({
      model: (x, t, c) => (conds.push(c), model(x, t, c)),
      xT,
      grids: [inferenceTimesteps(4, schedule.config)],
      cond: 2,
      uncond: -1,
    });
    assert.deepEqual(conds, [2, 2, 2, 2]);
    disposeSampleResult(res);
    xT.dispose();
  });

  void test('scale w records eps_u + w (eps_c - eps_u)', async () => {
    const conds: number[] = [];
    const xT = latents(1, 5);
    const res = await new DpmSolverPlusPlus(schedule).sample({
      model: (x, t, c) => (conds.push(c), model(x, t, c)),
      xT,
      grids: [inferenceTimesteps(3, schedule.config)],
      cond: 2,
      uncond: -1,
      guidanceScale: 7.5,
    });
    assert.deepEqual(conds, [2, -1, 2, -1, 2, -1]);
    const step = res.trajectory[1]!;
    const x = step.x.dataSync();
    const eps = step.eps.dataSync();
    x.forEach((v, k) => {
      const want = 0.1 * v - 1 + 7.5 * (2 - -1);
      assert.ok(Math.abs(eps[k]! - want) < 1e-4, `${eps[k]} vs ${want}`);
    });
    disposeSampleResult(res);
    xT.dispose();
  });

  void test('scale != 1 without an unconditional input is an error', async () => {
    const xT = latents(1, 6);
    await assert.rejects(
      new DpmSolverPlusPlus(schedule).sample({ model, xT, grids: [[999]], cond: 1, guidanceScale: 2 }),
      /needs an uncond input/,
    );
    xT.dispose();
  });
});

void describe('memory and errors', () => {
  void test('a run leaves no tensor behind (recorded or not, and on failure)', async () => {
    const solver = new DpmSolverPlusPlus(schedule);
    const grids = perturbedTimesteps(20, 2, new Rng(9)).grids;
    const xT = latents(2, 10);
    const before = tf.memory().numTensors;
    const a = await solver.sample({ model: fakeModel, xT, grids, cond: null, record: false });
    a.x0.dispose();
    assert.equal(tf.memory().numTensors, before);
    const b = await solver.sample({ model: fakeModel, xT, grids, cond: null });
    assert.equal(tf.memory().numTensors, before + 1 + 2 * 20);
    disposeSampleResult(b);
    assert.equal(tf.memory().numTensors, before);
    let calls = 0;
    const failing: EpsModel<null> = (x, t, c) => {
      if (++calls === 7) throw new Error('model failed');
      return fakeModel(x, t, c);
    };
    await assert.rejects(solver.sample({ model: failing, xT, grids, cond: null }), /model failed/);
    assert.equal(tf.memory().numTensors, before);
    xT.dispose();
  });

  void test('bad grids, batch mismatch, wrong prediction shape and out-of-order steps are rejected', async () => {
    const solver = new DpmSolverPlusPlus(schedule);
    const xT = latents(2, 11);
    await assert.rejects(
      solver.sample({ model: fakeModel, xT, grids: [[999, 500]], cond: null }),
      /1 timestep grids for a batch of 2/,
    );
    const before = tf.memory().numTensors;
    await assert.rejects(
      solver.sample({
        model: () => tf.zeros([2, 1, 1, 1]) as tf.Tensor4D,
        xT,
        grids: [[999], [999]],
        cond: null,
      }),
      /prediction at step 0 has shape \[2,1,1,1\]/,
    );
    assert.equal(tf.memory().numTensors, before, 'a rejected prediction is disposed');
    const run = solver.start([
      [999, 500],
      [998, 10],
    ]);
    assert.throws(() => run.step(1, xT, xT), ScheduleError);
    run.dispose();
    assert.throws(
      () => new DpmSolverPlusPlus(schedule, { solverOrder: 3 as never }),
      /solverOrder must be 1 or 2/,
    );
    xT.dispose();
  });
});
