// Engine schedulers against diffusers' own outputs (test/fixtures/parity/schedulers.json).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { DdimSampler } from '../../engine/schedulers/ddim';
import { DdpmAncestralSampler } from '../../engine/schedulers/ddpm-ancestral';
import { NoiseSchedule, type TimestepSpacing } from '../../engine/schedulers/ddpm-schedule';
import { DpmSolverPlusPlus } from '../../engine/schedulers/dpm-solver';
import { inferenceTimesteps, sharedGrid } from '../../engine/schedulers/timesteps';
import { schedulerFixtures } from '../fixtures/parity/fixtures';

const fx = schedulerFixtures();
const schedule = new NoiseSchedule();

/** max |a - b| <= tol * max |b|: relative to the reference's scale, robust to values near zero. */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  assert.ok(maxDiff <= tol * scale, `${what}: max diff ${maxDiff} > ${tol} x ${scale}`);
}

const t4 = (data: number[], shape: [number, number, number, number]) => tf.tensor4d(data, shape);

before(async () => {
  await tf.setBackend('cpu');
});

void describe('noise schedule tables', () => {
  void test('betas equal diffusers bit for bit', () => {
    assert.deepEqual(Array.from(schedule.betas), fx.betas);
  });

  void test('alphas_cumprod equal diffusers bit for bit (double accumulation, float32 entries)', () => {
    assert.deepEqual(Array.from(schedule.alphasCumprod), fx.alphas_cumprod);
  });

  void test('add_noise with a timestep per sample', () => {
    const a = fx.add_noise;
    const out = schedule.addNoise(
      t4(a['original.nhwc'], a.shape_nhwc),
      t4(a['noise.nhwc'], a.shape_nhwc),
      a.timesteps,
    );
    assertClose(out.dataSync(), a['noisy.nhwc'], 1e-6, 'add_noise');
  });
});

void describe('DPM-Solver++ tables', () => {
  void test('20-step linspace timesteps are 999, 949, ..., 50', () => {
    assert.deepEqual(inferenceTimesteps(20, schedule.config), fx.dpm_solver.timesteps);
  });

  void test('timestep grids for every spacing and offset match DPMSolverMultistepScheduler', () => {
    for (const [key, expected] of Object.entries(fx.dpm_solver_timesteps)) {
      const m = /^(\w+?)_offset(\d+)_n(\d+)$/.exec(key);
      assert.ok(m, key);
      const grid = inferenceTimesteps(Number(m[3]), {
        numTrainTimesteps: 1000,
        timestepSpacing: m[1] as TimestepSpacing,
        stepsOffset: Number(m[2]),
      });
      assert.deepEqual(grid, expected, key);
    }
  });

  void test('sigmas (with the final 0) equal diffusers bit for bit', () => {
    const solver = new DpmSolverPlusPlus(schedule);
    const [row] = solver.sigmaTable([fx.dpm_solver.timesteps]);
    assert.deepEqual(row, fx.dpm_solver.sigmas);
  });
});

void describe('DPM-Solver++ steps', () => {
  const run = fx.dpm_solver_run;
  const shape = run.shape_nhwc;

  void test('every step of a 20-step run matches prev_sample within 1e-5 (orders 1, 2, ..., 2, 1)', () => {
    const solver = new DpmSolverPlusPlus(schedule);
    const r = solver.start(sharedGrid(run.timesteps, shape[0]));
    assert.deepEqual(
      run.timesteps.map((_, i) => solver.stepOrder(i, 20)),
      [1, ...new Array<number>(18).fill(2), 1],
    );
    for (let i = 0; i < run.timesteps.length; i++) {
      // Each step starts from diffusers' own sample, so errors cannot compound.
      const x = t4(run['sample.nhwc'][i]!, shape);
      const eps = t4(run['model_output.nhwc'][i]!, shape);
      const next = r.step(i, x, eps);
      assertClose(next.dataSync(), run['prev_sample.nhwc'][i]!, 1e-5, `step ${i} (t=${run.timesteps[i]})`);
      tf.dispose([x, eps, next]);
    }
    r.dispose();
  });

  void test('sample() driven by the same model outputs ends at diffusers final sample', async () => {
    const solver = new DpmSolverPlusPlus(schedule);
    let call = 0;
    const model = () => t4(run['model_output.nhwc'][call++]!, shape);
    const xT = t4(run['x_T.nhwc'], shape);
    const res = await solver.sample({
      model,
      xT,
      grids: sharedGrid(run.timesteps, shape[0]),
      cond: null,
      record: false,
    });
    assertClose(res.x0.dataSync(), run['prev_sample.nhwc'][19]!, 1e-4, 'final sample');
    tf.dispose([xT, res.x0]);
  });
});

void describe('DDIM and DDPM steps', () => {
  void test('DDIM (eta 0) middle step and final step to alpha-bar 1', () => {
    const sampler = new DdimSampler(schedule, { eta: 0, finalAlphaCumprod: 'one' });
    const shape = fx.ddim_step.shape_nhwc;
    for (const s of fx.ddim_step.steps) {
      // A two-entry grid steps t -> prev; a one-entry grid steps t -> clean.
      const grid = s.prev_timestep >= 0 ? [s.timestep, s.prev_timestep] : [s.timestep];
      const r = sampler.start(sharedGrid(grid, shape[0]));
      const out = r.step(0, t4(s['sample.nhwc'], shape), t4(s['model_output.nhwc'], shape));
      assertClose(out.dataSync(), s['prev_sample.nhwc'], 1e-5, `DDIM t=${s.timestep}`);
    }
  });

  void test('DDPM ancestral step with the same variance noise', () => {
    const sampler = new DdpmAncestralSampler(schedule);
    const shape = fx.ddpm_step.shape_nhwc;
    for (const s of fx.ddpm_step.steps) {
      const grid = s.prev_timestep >= 0 ? [s.timestep, s.prev_timestep] : [s.timestep];
      let draws = 0;
      const noise = {
        normalTensor: (sh: number[]) => {
          draws++;
          return tf.tensor(s['variance_noise.nhwc']!, sh);
        },
      };
      const r = sampler.start(sharedGrid(grid, shape[0]), noise);
      const out = r.step(0, t4(s['sample.nhwc'], shape), t4(s['model_output.nhwc'], shape));
      assertClose(out.dataSync(), s['prev_sample.nhwc'], 1e-5, `DDPM t=${s.timestep}`);
      assert.equal(draws, s.timestep > 0 ? 1 : 0, `noise draws at t=${s.timestep}`);
    }
  });
});
