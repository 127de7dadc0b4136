import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { NoiseSchedule } from '../../engine/schedulers/ddpm-schedule';
import { AdamW } from '../../engine/training/adamw';
import { bf16, roundToBf16InPlace } from '../../engine/training/bf16';
import { Ema } from '../../engine/training/ema';

interface Fixture {
  param0: number[];
  grad: number[];
  expAvg0: number[];
  expAvgSq0: number[];
  weightDecay: number;
  adamw: Array<{
    foreach: boolean;
    lr: number;
    stepBefore: number;
    param: number[];
    expAvg: number[];
    expAvgSq: number[];
    changed: number;
  }>;
  shadow0: number[];
  ema: Array<{ updatesBefore: number; maxDecay: number; shadow: number[] }>;
}

// Made by tools/make_bf16_fixture.py with torch (bfloat16 tensors on the CPU).
const fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'bf16', 'adamw-ema.json'), 'utf8'),
) as Fixture;

function bits(values: ArrayLike<number>): number[] {
  return Array.from(new Uint32Array(Float32Array.from(values).buffer));
}

function mismatches(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  const a = bits(actual);
  const e = bits(expected);
  return a.filter((v, i) => v !== e[i]).length;
}

before(async () => {
  await initBackend('wasm');
});

void describe('bfloat16 rounding', () => {
  void test('rounds to nearest, ties to even, and keeps NaN and infinities', () => {
    assert.equal(bf16(1), 1);
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1.
    assert.equal(bf16(1 + 2 ** -8), 1);
    // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
    assert.equal(bf16(1 + 3 * 2 ** -8), 1 + 2 ** -6);
    assert.equal(bf16(1 + 2 ** -8 + 2 ** -12), 1 + 2 ** -7);
    assert.equal(bf16(0.99915), 1);
    assert.equal(bf16(-3.14159), -3.140625);
    assert.ok(Number.isNaN(bf16(NaN)));
    assert.equal(bf16(Infinity), Infinity);
    assert.equal(bf16(3.4e38), Infinity);
    const values = Float32Array.from([0.1, -2.5e-7, 65504.7]);
    roundToBf16InPlace(values);
    for (const u of bits(values)) assert.equal(u & 0xffff, 0);
  });

  void test("one AdamW update equals torch's bf16 AdamW bit for bit", () => {
    for (const c of fixture.adamw) {
      const shape = [fixture.param0.length];
      const param = tf.variable(tf.tensor(fixture.param0, shape), true, `p-${c.lr}-${c.foreach}`);
      const params = new Map([['w', param]]);
      const opt = new AdamW({ lr: c.lr, weightDecay: fixture.weightDecay, precision: 'bf16' });
      opt.setState(
        {
          step: c.stepBefore,
          m: new Map([['w', Float32Array.from(fixture.expAvg0)]]),
          v: new Map([['w', Float32Array.from(fixture.expAvgSq0)]]),
        },
        params,
      );
      const grad = tf.tensor(fixture.grad, shape);
      opt.apply(params, new Map([['w', grad]]));
      const state = opt.getState();
      const label = `lr ${c.lr}, torch foreach ${c.foreach}`;
      assert.equal(mismatches(state.m.get('w')!, c.expAvg), 0, `exp_avg, ${label}`);
      assert.equal(mismatches(state.v.get('w')!, c.expAvgSq), 0, `exp_avg_sq, ${label}`);
      assert.equal(mismatches(param.dataSync(), c.param), 0, `param, ${label}`);
      // The trust region: most weights do not move at all.
      assert.equal(bits(param.dataSync()).filter((u, i) => u !== bits(fixture.param0)[i]).length, c.changed);
      opt.dispose();
      tf.dispose([param, grad]);
    }
  });

  void test('the float32 AdamW update differs from the bf16 one (the fixture can tell them apart)', () => {
    const c = fixture.adamw.find((x) => x.lr === 1e-4)!;
    const param = tf.variable(tf.tensor(fixture.param0), true, 'p-fp32');
    const params = new Map([['w', param]]);
    const opt = new AdamW({ lr: c.lr, weightDecay: fixture.weightDecay });
    opt.setState(
      {
        step: c.stepBefore,
        m: new Map([['w', Float32Array.from(fixture.expAvg0)]]),
        v: new Map([['w', Float32Array.from(fixture.expAvgSq0)]]),
      },
      params,
    );
    const grad = tf.tensor(fixture.grad);
    opt.apply(params, new Map([['w', grad]]));
    assert.ok(mismatches(param.dataSync(), c.param) > fixture.param0.length / 2);
    opt.dispose();
    tf.dispose([param, grad]);
  });

  void test("one EMA step equals diffusers' EMAModel.step on bf16 shadows", () => {
    for (const c of fixture.ema) {
      const shape = [fixture.param0.length];
      const p = tf.tensor(fixture.param0, shape);
      const ema = new Ema(new Map([['w', p]]), c.maxDecay, 'auto', 'bf16');
      ema.setState({
        updates: c.updatesBefore,
        weights: new Map([['w', Float32Array.from(fixture.shadow0)]]),
      });
      ema.update(new Map([['w', p]]));
      const shadow = ema.getState().weights.get('w')!;
      assert.equal(mismatches(shadow, c.shadow), 0, `EMA after ${c.updatesBefore} updates`);
      ema.dispose();
      p.dispose();
    }
  });

  void test('add_noise in bf16 leaves the first timesteps without noise', () => {
    const schedule = new NoiseSchedule();
    const x0 = tf.tensor4d([0.5, -0.25, 0.125, 1], [4, 1, 1, 1]);
    const eps = tf.tensor4d([1, 1, 1, 1], [4, 1, 1, 1]);
    const noisy = schedule.addNoiseBf16(x0, eps, [0, 1, 500, 999]).dataSync();
    assert.equal(noisy[0], 0.5);
    assert.equal(noisy[1], -0.25);
    const exact = schedule.addNoise(x0, eps, [0, 1, 500, 999]).dataSync();
    assert.notEqual(exact[0], 0.5);
    for (const u of bits(noisy)) assert.equal(u & 0xffff, 0);
    tf.dispose([x0, eps]);
  });
});
