import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  medianIndex,
  protocolWinRateTable,
  selectMedians,
  winRate,
  winRateTable,
  winrateSeed,
} from '../../engine/eval/win-rate';

function close(actual: number | null, expected: number, tol = 1e-12, what = ''): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what} ${actual} != ${expected}`);
}

describe('win-rate seeds', () => {
  test('root + promptIndex + i * P: sample-major, every slot distinct', () => {
    const P = 3;
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => winrateSeed(1000, 1, i, P)),
      [1001, 1004, 1007, 1010, 1013],
    );
    const all = new Set<number>();
    for (let p = 0; p < P; p++) for (let i = 0; i < 5; i++) all.add(winrateSeed(1000, p, i, P));
    assert.deepEqual(
      [...all].sort((x, y) => x - y),
      Array.from({ length: 15 }, (_, k) => 1000 + k),
    );
    assert.throws(() => winrateSeed(0, 3, 0, 3), /promptIndex must be an integer in \[0, P\)/);
  });
});

describe('median image', () => {
  test('odd count: the middle score', () => {
    assert.equal(medianIndex([0.3, 0.9, 0.1, 0.5, 0.7]), 3);
  });

  test('even count: the lower of the two middle images', () => {
    assert.equal(medianIndex([4, 1, 3, 2]), 3);
  });

  test('equal scores are ordered by image index', () => {
    // Sorted: 0.2 (3), 0.5 (0), 0.5 (1), 0.5 (2), 0.9 (4): the middle one is image 1.
    assert.equal(medianIndex([0.5, 0.5, 0.5, 0.2, 0.9]), 1);
    assert.throws(() => medianIndex([]), /no images/);
  });

  test('selectMedians keeps one image per prompt', () => {
    // Prompt 1 sorted: 1 (2), 2 (3), 5 (0), 5 (1), 9 (4): the middle one is image 0.
    assert.deepEqual(
      selectMedians([
        [0.3, 0.9, 0.1],
        [5, 5, 1, 2, 9],
      ]),
      { indices: [0, 0], scores: [0.3, 5] },
    );
  });
});

describe('winRate', () => {
  test('ties count half', () => {
    assert.equal(winRate([1, 2, 3, 4], [0, 2, 5, 4]), 0.5);
    assert.equal(winRate([1, 1], [1, 1]), 0.5);
    assert.equal(winRate([2, 2, 2], [1, 1, 1]), 1);
  });
});

describe('winRateTable', () => {
  // Medians per prompt: A 0.5, 0.25, 0.65, 0.5; B 0.45, 0.3, 0.6, 0.5; C 0.2, 0.2, 0.9, 0.1.
  const A = [
    [0.1, 0.9, 0.5, 0.4, 0.6],
    [0.2, 0.3, 0.25, 0.8, 0.1],
    [0.7, 0.6, 0.65, 0.2, 0.9],
    [0.5, 0.5, 0.4, 0.6, 0.55],
  ];
  // Prompt 0 has outliers: its mean (0.18) and max (10) would rank it differently from its median.
  const B = [
    [0.45, 0.45, 10, 0.45, -10],
    [0.3, 0.3, 0.3, 0.3, 0.3],
    [0.6, 0.7, 0.5, 0.66, 0.1],
    [0.5, 0.5, 0.5, 0.5, 0.5],
  ];
  const C = [0.2, 0.2, 0.9, 0.1].map((v) => [v, v, v, v, v]);
  const rewards = [
    { reward: 'hps', scores: { A, B, C } },
    { reward: 'neg', scores: { A: A.map((r) => r.map((v) => -v)), B: B.map((r) => r.map((v) => -v)), C } },
  ];
  const rows = winRateTable(rewards, { seed: 9, resamples: 2000 });

  test('a row per pair of methods and reward model', () => {
    assert.deepEqual(
      rows.map((r) => `${r.reward}:${r.a}>${r.b}`),
      ['hps:A>B', 'hps:A>C', 'hps:B>C', 'neg:A>B', 'neg:A>C', 'neg:B>C'],
    );
  });

  test('win rate on median images with ties half; means, stds and p-values as scipy', () => {
    const ab = rows[0]!;
    // A wins prompts 0 and 2, loses 1, ties 3.
    assert.equal(ab.winRate, 0.625);
    assert.equal(ab.prompts, 4);
    // stats.ttest_rel([0.5, 0.25, 0.65, 0.5], [0.45, 0.3, 0.6, 0.5]).pvalue; np.mean / np.std(ddof=1)
    close(ab.pValue, 0.6376180914006015, 1e-10, 'p A-B');
    close(ab.meanA, 0.475, 1e-15, 'meanA');
    close(ab.stdA, 0.16583123951776998, 1e-14, 'stdA');
    close(ab.meanB, 0.4625, 1e-15, 'meanB');
    close(ab.stdB, 0.125, 1e-14, 'stdB');
    // stats.ttest_rel([0.5, 0.25, 0.65, 0.5], [0.2, 0.2, 0.9, 0.1]).pvalue
    close(rows[1]!.pValue, 0.45221090166445016, 1e-10, 'p A-C');
    close(rows[1]!.stdB, 0.36968455021364727, 1e-14, 'stdC');
    // stats.ttest_rel([0.45, 0.3, 0.6, 0.5], [0.2, 0.2, 0.9, 0.1]).pvalue
    close(rows[2]!.pValue, 0.5090665576408145, 1e-10, 'p B-C');
    assert.equal(rows[2]!.winRate, 0.75);
  });

  test('the median follows the reward: negated scores keep the same images, so A and B swap', () => {
    // With every A and B score negated the median images are the same and ties stay ties.
    assert.equal(rows[3]!.winRate, 1 - 0.625);
  });

  test('bootstrap interval of the mean difference is seeded and covers it', () => {
    for (const r of rows) {
      const diff = r.meanA - r.meanB;
      assert.ok(
        r.ci95[0] <= diff && diff <= r.ci95[1],
        `${r.reward} ${r.a}-${r.b}: ${diff} outside ${r.ci95}`,
      );
    }
    assert.deepEqual(winRateTable(rewards, { seed: 9, resamples: 2000 }), rows);
    // Another seed moves the interval (30 prompts, so the resampled means are nearly continuous).
    const wide = (k: number): number[][] => Array.from({ length: 30 }, (_, p) => [Math.sin(p * 1.3 + k) + k]);
    const table = (seed: number) =>
      winRateTable([{ reward: 'r', scores: { X: wide(1), Y: wide(0) } }], { seed, resamples: 2000 });
    assert.deepEqual(table(1), table(1));
    assert.notDeepEqual(table(1)[0]!.ci95, table(2)[0]!.ci95);
  });

  test('a single prompt has no p-value; mismatched inputs are errors naming reward and method', () => {
    const one = winRateTable([{ reward: 'r', scores: { A: [[1, 2, 3]], B: [[0, 5, 1]] } }], {
      seed: 1,
      resamples: 100,
    });
    assert.equal(one[0]!.pValue, null);
    assert.equal(one[0]!.winRate, 1);
    assert.throws(
      () => winRateTable([{ reward: 'r', scores: { A, B: B.slice(1) } }], { seed: 1 }),
      /reward "r": method "B" has 3 prompts, expected 4/,
    );
    assert.throws(
      () => winRateTable([{ reward: 'r', scores: { A } }], { seed: 1, methods: ['A', 'Z'] }),
      /no scores for method "Z"/,
    );
    assert.throws(
      () => winRateTable([{ reward: 'r', scores: { A, B: [[NaN], [1], [1], [1]] } }], { seed: 1 }),
      /method "B", prompt 0, image 0: score NaN is not finite/,
    );
  });
});

describe('protocolWinRateTable: one median image per method and prompt, chosen by the preference reward', () => {
  // Under "pick" (the preference reward) both methods keep images 1, 2, 0 of prompts 0, 1, 2.
  const pickB = [
    [3, 2, 1],
    [1, 3, 2],
    [2, 1, 3],
  ];
  const pickA = [
    [1, 2, 3],
    [3, 1, 2],
    [2, 3, 1],
  ].map((r) => r.map((v) => v + 0.5));
  // Under "hps" alone the medians would be other images: A 2, 0, 2 and B 2, 2, 0.
  const hpsA = [
    [0.9, 0.1, 0.5],
    [0.3, 0.6, 0.2],
    [0.4, 0.8, 0.7],
  ];
  const hpsB = [
    [0.3, 0.35, 0.32],
    [0.25, 0.5, 0.4],
    [0.5, 0.45, 0.6],
  ];
  const rewards = [
    { reward: 'pick', scores: { A: pickA, B: pickB } },
    { reward: 'hps', scores: { A: hpsA, B: hpsB } },
  ];
  const protocol = protocolWinRateTable(rewards, { seed: 3, resamples: 500, medianBy: 'pick' });
  const perReward = winRateTable(rewards, { seed: 3, resamples: 500 });

  test('the kept images are the preference reward medians, the same for every reward', () => {
    assert.equal(protocol.medianBy, 'pick');
    assert.deepEqual(protocol.kept, { A: [1, 2, 0], B: [1, 2, 0] });
    assert.deepEqual(
      protocol.rows.map((r) => [r.reward, r.medianBy, r.a, r.b]),
      [
        ['pick', 'pick', 'A', 'B'],
        ['hps', 'pick', 'A', 'B'],
      ],
    );
    const hps = protocol.rows[1]!;
    // The pick-median images' hps scores: A 0.1, 0.2, 0.4; B 0.35, 0.4, 0.5: B wins every prompt.
    assert.equal(hps.winRate, 0);
    close(hps.meanA, (0.1 + 0.2 + 0.4) / 3, 1e-15, 'meanA');
    close(hps.meanB, (0.35 + 0.4 + 0.5) / 3, 1e-15, 'meanB');
    assert.deepEqual(
      hps.ci95,
      protocolWinRateTable(rewards, { seed: 3, resamples: 500, medianBy: 'pick' }).rows[1]!.ci95,
    );
  });

  test('the per-reward-median table (the extra) keeps other images and differs', () => {
    assert.deepEqual(
      perReward.map((r) => [r.reward, r.medianBy]),
      [
        ['pick', 'pick'],
        ['hps', 'hps'],
      ],
    );
    // hps medians: A 0.5, 0.3, 0.7; B 0.32, 0.4, 0.5: A wins prompts 0 and 2.
    close(perReward[1]!.winRate, 2 / 3, 1e-15, 'per-reward win rate');
    close(perReward[1]!.meanA, 0.5, 1e-15, 'per-reward meanA');
    // Under the preference reward itself both tables keep the same images.
    assert.deepEqual(protocol.rows[0], perReward[0]);
    assert.equal(protocol.rows[0]!.winRate, 1);
  });

  test('the preference reward must be one of the rewards and score the same images', () => {
    assert.throws(
      () => protocolWinRateTable(rewards, { seed: 1, medianBy: 'clip' }),
      /preference reward "clip" is not one of the rewards \(pick, hps\)/,
    );
    assert.throws(
      () =>
        protocolWinRateTable(
          [rewards[0]!, { reward: 'hps', scores: { A: hpsA.map((r) => r.slice(0, 1)), B: hpsB } }],
          { seed: 1, medianBy: 'pick' },
        ),
      /reward "hps": method "A", prompt 0 has no score for image 1/,
    );
  });
});
