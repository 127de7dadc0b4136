/**
 * Statistics against reference values computed with scipy 1.17.1 / numpy 2.4.6, each with the
 * Python expression that produced it (python3 -m venv v && v/bin/pip install scipy numpy;
 * `from scipy import stats, special; import numpy as np`).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binomialTest,
  bootstrapMeanCI,
  erfc,
  logGamma,
  mcnemarExact,
  mcnemarFromPairs,
  normalCdf,
  normalQuantile,
  oneSampleTTest,
  pairedBootstrapMeanDiffCI,
  pairedTTest,
  quantileSorted,
  regularizedIncompleteBeta,
  studentTCdf,
  studentTTwoSided,
  wilsonInterval,
} from '../../engine/stats';

function close(actual: number, expected: number, rel = 1e-10, what = ''): void {
  const tol = rel * Math.max(Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} != ${expected} (rel tol ${rel})`);
}

describe('special functions', () => {
  test('log-gamma', () => {
    close(logGamma(0.5), 0.5723649429247, 1e-12, 'special.gammaln(0.5)');
    close(logGamma(10.3), 13.482036786138359, 1e-13, 'special.gammaln(10.3)');
    close(logGamma(1e-3), 6.907178885383853, 1e-13, 'special.gammaln(1e-3)');
  });

  test('regularized incomplete beta, including a far tail', () => {
    close(
      regularizedIncompleteBeta(0.3, 2.5, 0.5),
      0.018927124071945658,
      1e-12,
      'special.betainc(2.5, 0.5, 0.3)',
    );
    close(
      regularizedIncompleteBeta(0.999, 0.5, 0.5),
      0.9798649583666235,
      1e-12,
      'special.betainc(0.5, 0.5, 0.999)',
    );
    close(
      regularizedIncompleteBeta(0.2, 50, 0.5),
      9.994267861337003e-37,
      1e-10,
      'special.betainc(50, 0.5, 0.2)',
    );
    assert.equal(regularizedIncompleteBeta(0, 2, 3), 0);
    assert.equal(regularizedIncompleteBeta(1, 2, 3), 1);
    assert.throws(() => regularizedIncompleteBeta(1.5, 2, 3), /x in \[0, 1\]/);
  });

  test('Student t distribution', () => {
    close(studentTCdf(-2.3, 3), 0.05249418032223499, 1e-12, 'stats.t.cdf(-2.3, 3)');
    close(studentTCdf(1.7, 1), 0.8307469726696672, 1e-12, 'stats.t.cdf(1.7, 1)');
    close(studentTCdf(0.4, 2.5), 0.6395903655346387, 1e-12, 'stats.t.cdf(0.4, 2.5)');
    close(studentTTwoSided(12, 4), 0.000276428548502973, 1e-10, 'stats.t.sf(12.0, 4)*2');
    close(studentTTwoSided(3, 200), 0.003043047113905905, 1e-10, 'stats.t.sf(3.0, 200)*2');
  });

  test('normal distribution', () => {
    close(normalCdf(-3.1), 0.0009676032132183563, 1e-12, 'stats.norm.cdf(-3.1)');
    close(erfc(4.2), 2.855494179592188e-9, 1e-11, 'special.erfc(4.2)');
    close(normalQuantile(0.975), 1.959963984540054, 1e-14, 'stats.norm.ppf(0.975)');
    close(normalQuantile(1e-6), -4.753424308822899, 1e-12, 'stats.norm.ppf(1e-6)');
  });
});

describe('t-tests', () => {
  test('paired t-test matches scipy.stats.ttest_rel', () => {
    const a = [0.81, 0.62, 0.77, 0.9, 0.55, 0.71, 0.68, 0.84];
    const b = [0.7, 0.6, 0.79, 0.72, 0.5, 0.66, 0.69, 0.71];
    // stats.ttest_rel(a, b) -> statistic 2.557776500248718, pvalue 0.037673625672586905
    const r = pairedTTest(a, b);
    close(r.t, 2.557776500248718, 1e-11, 't');
    close(r.pValue, 0.037673625672586905, 1e-10, 'p');
    assert.equal(r.df, 7);
  });

  test('small n: two and three pairs', () => {
    // stats.ttest_rel([1.0, 2.0], [0.5, 0.5]) -> 2.0, 0.2951672353008665
    const two = pairedTTest([1, 2], [0.5, 0.5]);
    close(two.t, 2, 1e-12, 't');
    close(two.pValue, 0.2951672353008665, 1e-11, 'p');
    // stats.ttest_rel([3.0, 1.0, 2.0], [1.0, 2.0, 0.5]) -> 0.8980265101338746, 0.46394373258110255
    const three = pairedTTest([3, 1, 2], [1, 2, 0.5]);
    close(three.t, 0.8980265101338746, 1e-12, 't');
    close(three.pValue, 0.46394373258110255, 1e-11, 'p');
    assert.throws(() => pairedTTest([1], [2]), /at least 2 observations/);
  });

  test('one-sample t-test matches scipy.stats.ttest_1samp', () => {
    // stats.ttest_1samp([0.2, -0.1, 0.4, 0.3, 0.05], 0.0) -> 1.9126494315742406, 0.12835348651691136
    const r = oneSampleTTest([0.2, -0.1, 0.4, 0.3, 0.05]);
    close(r.t, 1.9126494315742406, 1e-12, 't');
    close(r.pValue, 0.12835348651691136, 1e-11, 'p');
  });

  test('zero variance: constant non-zero difference gives p = 0, identical samples p = 1', () => {
    // stats.ttest_rel([1.0, 2.0, 3.0], [0.5, 1.5, 2.5]) -> inf, 0.0
    const shifted = pairedTTest([1, 2, 3], [0.5, 1.5, 2.5]);
    assert.equal(shifted.t, Infinity);
    assert.equal(shifted.pValue, 0);
    // stats.ttest_rel(x, x) -> nan, nan; no difference at all is reported as p = 1 instead.
    const same = pairedTTest([1, 2, 3], [1, 2, 3]);
    assert.equal(same.t, 0);
    assert.equal(same.pValue, 1);
    // 0.1 + 0.2 style values whose floating mean is not exact must still count as constant.
    const inexact = pairedTTest([0.3, 0.3, 0.3], [0.1, 0.1, 0.1]);
    assert.equal(inexact.pValue, 0);
  });
});

describe('binomial and McNemar', () => {
  test('two-sided exact binomial test matches scipy.stats.binomtest', () => {
    close(binomialTest(3, 20), 0.0025768280029296875, 1e-11, 'binomtest(3, 20, 0.5)');
    close(binomialTest(7, 30, 0.3), 0.5510063218841574, 1e-11, 'binomtest(7, 30, 0.3)');
    close(binomialTest(18, 25), 0.043285250663757324, 1e-11, 'binomtest(18, 25, 0.5)');
    close(binomialTest(0, 10), 0.001953125, 1e-11, 'binomtest(0, 10, 0.5)');
    close(binomialTest(460, 1000), 0.012444146277171799, 1e-9, 'binomtest(460, 1000, 0.5)');
    close(binomialTest(1, 40), 7.457856554538012e-11, 1e-9, 'binomtest(1, 40, 0.5)');
    assert.equal(binomialTest(5, 10), 1);
  });

  test('one-sided alternative', () => {
    close(
      binomialTest(3, 20, 0.5, 'less'),
      0.0012884140014648438,
      1e-11,
      "binomtest(3, 20, 0.5, alternative='less')",
    );
  });

  test('McNemar exact test is the binomial test of min(b, c) in b + c', () => {
    // stats.binomtest(3, 15, 0.5).pvalue (statsmodels mcnemar([[., 12], [3, .]], exact=True))
    close(mcnemarExact(12, 3).pValue, 0.03515625, 1e-12, 'mcnemar 12/3');
    close(mcnemarExact(3, 12).pValue, 0.03515625, 1e-12, 'mcnemar 3/12');
    // stats.binomtest(40, 100, 0.5).pvalue
    close(mcnemarExact(60, 40).pValue, 0.05688793364098089, 1e-10, 'mcnemar 60/40');
    assert.equal(mcnemarExact(0, 0).pValue, 1);
    assert.equal(mcnemarExact(1, 0).pValue, 1);
    const fromPairs = mcnemarFromPairs([true, true, false, false, true], [false, true, true, false, false]);
    assert.deepEqual([fromPairs.b, fromPairs.c], [2, 1]);
  });

  test('bad counts are errors', () => {
    assert.throws(() => binomialTest(5, 3), /must not exceed n/);
    assert.throws(() => mcnemarExact(-1, 2), /b must be a non-negative integer/);
  });
});

describe('Wilson interval', () => {
  test("matches Newcombe (1998) and scipy's proportion_ci(method='wilson')", () => {
    // Newcombe 1998, Table I: 81/263 -> 0.2553 to 0.3662.
    // stats.binomtest(81, 263).proportion_ci(method='wilson') -> (0.2552885198782742, 0.36620957698280004)
    const [lo, hi] = wilsonInterval(81, 263);
    close(lo, 0.2552885198782742, 1e-12, 'lo');
    close(hi, 0.36620957698280004, 1e-12, 'hi');
    // stats.binomtest(0, 10).proportion_ci(method='wilson') -> (0.0, 0.27753279986288926)
    const zero = wilsonInterval(0, 10);
    assert.equal(zero[0], 0);
    close(zero[1], 0.27753279986288926, 1e-12, 'hi at k = 0');
    // stats.binomtest(15, 20).proportion_ci(confidence_level=0.9, method='wilson') -> (0.5677982498398755, 0.8726228314796423)
    const ninety = wilsonInterval(15, 20, 0.9);
    close(ninety[0], 0.5677982498398755, 1e-12, '90% lo');
    close(ninety[1], 0.8726228314796423, 1e-12, '90% hi');
    assert.throws(() => wilsonInterval(1, 0), /n >= 1/);
  });
});

describe('bootstrap', () => {
  test('quantiles interpolate as numpy.percentile', () => {
    // np.percentile([1, 2, 3, 4, 10], [2.5, 97.5]) -> [1.1, 9.4]
    close(quantileSorted([1, 2, 3, 4, 10], 0.025), 1.1, 1e-12, 'p2.5');
    close(quantileSorted([1, 2, 3, 4, 10], 0.975), 9.4, 1e-12, 'p97.5');
    assert.equal(quantileSorted([5], 0.025), 5);
  });

  test('is deterministic per seed, differs across seeds, and covers the mean', () => {
    const values = Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.7) + i / 40);
    const m = values.reduce((s, v) => s + v, 0) / values.length;
    const a = bootstrapMeanCI(values, { seed: 11 });
    const b = bootstrapMeanCI(values, { seed: 11 });
    const c = bootstrapMeanCI(values, { seed: 12 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(a[0] < m && m < a[1], `${m} outside [${a[0]}, ${a[1]}]`);
  });

  test('agrees with the normal-theory interval on a large sample', () => {
    // mean ± 1.96 sd / sqrt(n): the percentile bootstrap of a mean converges to it.
    const values = Array.from({ length: 400 }, (_, i) => ((i * 7919) % 101) / 100);
    const n = values.length;
    const m = values.reduce((s, v) => s + v, 0) / n;
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1));
    const half = (1.959963984540054 * sd) / Math.sqrt(n);
    const [lo, hi] = bootstrapMeanCI(values, { seed: 'normal-theory', resamples: 20_000 });
    assert.ok(Math.abs(lo - (m - half)) < 0.1 * half, `lo ${lo} vs ${m - half}`);
    assert.ok(Math.abs(hi - (m + half)) < 0.1 * half, `hi ${hi} vs ${m + half}`);
  });

  test('paired difference resamples pairs together', () => {
    // B = A - 0.1 exactly: every resample has mean difference 0.1, so the interval is a point.
    const a = [0.9, 0.4, 0.7, 0.2, 0.55];
    const [lo, hi] = pairedBootstrapMeanDiffCI(
      a,
      a.map((v) => v - 0.1),
      { seed: 3, resamples: 500 },
    );
    close(lo, 0.1, 1e-9, 'lo');
    close(hi, 0.1, 1e-9, 'hi');
    assert.throws(() => pairedBootstrapMeanDiffCI([1, 2], [1], { seed: 1 }), /equal lengths/);
    assert.throws(() => bootstrapMeanCI([], { seed: 1 }), /empty/);
  });
});
