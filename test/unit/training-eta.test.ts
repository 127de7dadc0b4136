/** Training ETA: speed over a moving window, time left at that speed, and its formatting. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { estimateEta, formatDuration, StepRateWindow } from '../../engine/training/eta';

void describe('training ETA', () => {
  void test('speed and time left from the first and last sample', () => {
    const eta = estimateEta(
      [
        { step: 10, timeMs: 0 },
        { step: 20, timeMs: 5_000 },
        { step: 30, timeMs: 10_000 },
      ],
      130,
    );
    assert.deepEqual(eta, { stepsPerSecond: 2, remainingSeconds: 50 });
    assert.equal(estimateEta([], 10), undefined);
    assert.equal(estimateEta([{ step: 1, timeMs: 0 }], 10), undefined);
    assert.equal(
      estimateEta(
        [
          { step: 1, timeMs: 0 },
          { step: 1, timeMs: 1000 },
        ],
        10,
      ),
      undefined,
    );
    assert.equal(
      estimateEta(
        [
          { step: 9, timeMs: 0 },
          { step: 12, timeMs: 1000 },
        ],
        10,
      )?.remainingSeconds,
      0,
    );
  });

  void test('the window follows a change of speed', () => {
    const w = new StepRateWindow(10_000);
    // 1 step/s for a minute, then 4 steps/s.
    let step = 0;
    for (let t = 0; t <= 60_000; t += 1000) w.record(step++, t);
    assert.equal(w.estimate(1000)?.stepsPerSecond, 1);
    for (let t = 61_000; t <= 80_000; t += 1000) w.record((step += 4), t);
    const eta = w.estimate(step + 400)!;
    assert.equal(eta.stepsPerSecond, 4);
    assert.equal(eta.remainingSeconds, 100);
    // A whole-run average would still say about 1.9 steps/s.
  });

  void test('a step that goes back (a restored checkpoint) restarts the measurement', () => {
    const w = new StepRateWindow(60_000);
    w.record(100, 0);
    w.record(110, 10_000);
    w.record(50, 11_000);
    assert.equal(w.estimate(200), undefined);
    w.record(60, 16_000);
    assert.equal(w.estimate(200)?.stepsPerSecond, 2);
  });

  void test('durations print at a useful precision', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(42.4), '42s');
    assert.equal(formatDuration(185), '3m 05s');
    assert.equal(formatDuration(2 * 3600 + 7 * 60 + 30), '2h 07m');
    assert.equal(formatDuration(3 * 86_400 + 4 * 3600 + 59), '3d 04h');
    assert.equal(formatDuration(Infinity), 'unknown');
  });
});
