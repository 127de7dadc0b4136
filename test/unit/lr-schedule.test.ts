import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TrainingInputError } from '../../engine/training/errors';
import { learningRateAt } from '../../engine/training/lr-schedule';

describe('learning-rate schedule', () => {
  test('constant by default', () => {
    for (const u of [1, 5, 100]) assert.equal(learningRateAt({ learningRate: 0.01 }, u, 100), 0.01);
  });

  test('linear warmup from zero reaches the full rate at the last warmup update', () => {
    const s = { learningRate: 0.02, warmupUpdates: 4 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((u) => learningRateAt(s, u, 10)),
      [0.005, 0.01, 0.015, 0.02, 0.02],
    );
  });

  test('cosine decay: full rate after warmup, half way at the middle, small but positive at the end', () => {
    const s = { learningRate: 1, warmupUpdates: 10, lrDecay: 'cosine' as const };
    assert.equal(learningRateAt(s, 11, 110), 1);
    // (61 - 10 - 1) / 100 = 0.5 of the way: cos(pi / 2) = 0.
    assert.ok(Math.abs(learningRateAt(s, 61, 110) - 0.5) < 1e-12);
    const last = learningRateAt(s, 110, 110);
    assert.ok(last > 0 && last < 1e-3, `last rate ${last}`);
    const rates = Array.from({ length: 100 }, (_, i) => learningRateAt(s, 11 + i, 110));
    assert.ok(
      rates.every((r, i) => i === 0 || r < rates[i - 1]!),
      'strictly decreasing',
    );
  });

  test('a bad warmup length is named', () => {
    assert.throws(() => learningRateAt({ learningRate: 1, warmupUpdates: -1 }, 1, 10), TrainingInputError);
    assert.throws(() => learningRateAt({ learningRate: 1, warmupUpdates: 1.5 }, 1, 10), /warmupUpdates/);
  });
});
