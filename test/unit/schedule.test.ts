import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { NoiseSchedule, SD15_SCHEDULE, ScheduleError } from '../../engine/schedulers/ddpm-schedule';
import { inferenceTimesteps, perturbedTimesteps, validateGrids } from '../../engine/schedulers/timesteps';
import { Rng } from '../../engine/rng';

before(async () => {
  await tf.setBackend('cpu');
});

void describe('SD1.5 noise schedule', () => {
  const s = new NoiseSchedule();

  void test('matches the constants in docs/algorithm.md section 3', () => {
    assert.equal(s.alphasCumprod.length, 1000);
    assert.equal(s.alphasCumprod[0], Math.fround(0.99915));
    assert.ok(Math.abs(s.alphasCumprod[499]! - 0.2776694) < 5e-8, `ac[499] = ${s.alphasCumprod[499]}`);
    assert.ok(Math.abs(s.alphasCumprod[999]! - 0.0046601) < 5e-8, `ac[999] = ${s.alphasCumprod[999]}`);
  });

  void test('betas run from beta_start to beta_end, increasing', () => {
    assert.ok(Math.abs(s.betas[0]! - 0.00085) < 1e-10);
    assert.ok(Math.abs(s.betas[999]! - 0.012) < 1e-9);
    for (let t = 1; t < 1000; t++) assert.ok(s.betas[t]! > s.betas[t - 1]!, `beta ${t}`);
  });

  void test('sigma = sqrt((1 - ac) / ac)', () => {
    for (const t of [0, 1, 250, 999]) {
      const ac = s.alphasCumprod[t]!;
      assert.ok(Math.abs(s.sigmas[t]! - Math.sqrt((1 - ac) / ac)) <= 1e-6 * s.sigmas[t]!, `t=${t}`);
    }
  });

  void test('linear schedule is a plain linspace', () => {
    const lin = new NoiseSchedule({ betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 });
    assert.equal(lin.betas[0], Math.fround(0.0001));
    assert.ok(Math.abs(lin.betas[500]! - (0.0001 + (0.02 - 0.0001) * (500 / 999))) < 1e-8);
  });

  void test('addNoise uses each sample its own timestep', () => {
    const x0 = tf.ones([2, 1, 1, 2]) as tf.Tensor4D;
    const eps = tf.fill([2, 1, 1, 2], 2) as tf.Tensor4D;
    const out = s.addNoise(x0, eps, [0, 999]).dataSync();
    const want = (t: number) => Math.sqrt(s.alphasCumprod[t]!) + 2 * Math.sqrt(1 - s.alphasCumprod[t]!);
    assert.ok(Math.abs(out[0]! - want(0)) < 1e-6 && Math.abs(out[1]! - want(0)) < 1e-6);
    assert.ok(Math.abs(out[2]! - want(999)) < 1e-6 && Math.abs(out[3]! - want(999)) < 1e-6);
    assert.throws(() => s.addNoise(x0, eps, [0]), /1 timesteps for a batch of 2/);
    assert.throws(() => s.addNoise(x0, eps, [0, 1000]), /addNoise t\[1\] must be an integer in \[0, 1000\)/);
  });

  void test('sampleTimesteps draws integers over all of [0, 1000)', () => {
    const ts = s.sampleTimesteps(4000, new Rng(3));
    assert.ok(ts.every((t) => Number.isInteger(t) && t >= 0 && t < 1000));
    assert.ok(Math.min(...ts) < 10 && Math.max(...ts) > 989);
  });

  void test('bad config values are rejected with the field name', () => {
    assert.throws(() => new NoiseSchedule({ numTrainTimesteps: 1.5 }), ScheduleError);
    assert.throws(() => new NoiseSchedule({ betaEnd: 2 }), /betaStart and betaEnd/);
    assert.throws(
      () => new NoiseSchedule({ timestepSpacing: 'even' as never }),
      /timestepSpacing must be one of/,
    );
    assert.throws(() => new NoiseSchedule({ stepsOffset: -1 }), /stepsOffset/);
  });
});

void describe('timestep grids', () => {
  void test('spacing is explicit: linspace and SD1.5-PNDM leading+1 differ', () => {
    assert.deepEqual(inferenceTimesteps(20, SD15_SCHEDULE).slice(0, 3), [999, 949, 899]);
    const leading = inferenceTimesteps(20, { ...SD15_SCHEDULE, timestepSpacing: 'leading', stepsOffset: 1 });
    assert.deepEqual([leading[0], leading[1], leading[19]], [941, 894, 48]);
  });

  void test('perturbed grids: base 950..0, one offset per sample in [0, 1000 // N)', () => {
    const rng = new Rng(11);
    const seen = new Set<number>();
    for (let k = 0; k < 40; k++) {
      const { grids, offsets, base } = perturbedTimesteps(20, 8, rng);
      assert.deepEqual(
        base,
        Array.from({ length: 20 }, (_, i) => 950 - 50 * i),
      );
      offsets.forEach((o, b) => {
        assert.ok(Number.isInteger(o) && o >= 0 && o < 50, `offset ${o}`);
        assert.deepEqual(
          grids[b],
          base.map((t) => t + o),
        );
        seen.add(o);
      });
      assert.equal(validateGrids(grids, 8, 1000), 20);
    }
    // 320 draws over 50 values: every offset shows up (a fixed or clamped offset would not).
    assert.equal(seen.size, 50);
  });

  void test('perturbed grids with N not dividing T stay inside [0, T)', () => {
    const { grids, base } = perturbedTimesteps(30, 50, new Rng(5));
    assert.equal(base[0], 29 * 33);
    for (const g of grids) assert.ok(g[0]! < 1000 && g[29]! >= 0 && g[29]! < 33);
  });

  void test('validateGrids names the sample and step of a bad grid', () => {
    assert.throws(() => validateGrids([[10, 5], [10]], 2, 1000), /sample 1 has 1 steps/);
    assert.throws(() => validateGrids([[10, 10]], 1, 1000), /sample 0 is not strictly decreasing at step 1/);
    assert.throws(() => validateGrids([[1000, 5]], 1, 1000), /sample 0, step 0: timestep 1000/);
    assert.throws(() => validateGrids([[5]], 2, 1000), /1 timestep grids for a batch of 2/);
  });
});
