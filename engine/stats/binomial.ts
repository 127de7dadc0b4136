/**
 * Exact binomial test and McNemar's exact test.
 *
 * The two-sided binomial p-value follows scipy.stats.binomtest: the total probability of every
 * outcome no more likely than the observed one, P = sum over x with pmf(x) <= pmf(k) * (1 + 1e-7)
 * (the relative tolerance keeps outcomes of equal probability from being split by rounding).
 *
 * McNemar's exact test compares two classifiers on the same items: of the discordant pairs, `b` are
 * right only under the first and `c` only under the second; under H0 (same accuracy) b ~ Bin(b + c,
 * 1/2), so p = binomial two-sided test of min(b, c) in b + c trials (statsmodels' mcnemar(exact=True)).
 */
import { logChoose } from './special-functions';

export type Alternative = 'two-sided' | 'greater' | 'less';

function checkCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
}

/** P(X = k) for X ~ Bin(n, p). */
export function binomialPmf(k: number, n: number, p: number): number {
  if (k < 0 || k > n) return 0;
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  return Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
}

/**
 * Exact binomial test of H0: success probability = `p` (default 0.5), given `k` successes in `n`
 * trials. `alternative` 'greater' tests P(X >= k), 'less' P(X <= k). Returns the p-value in [0, 1].
 */
export function binomialTest(k: number, n: number, p = 0.5, alternative: Alternative = 'two-sided'): number {
  checkCount(k, 'k');
  checkCount(n, 'n');
  if (k > n) throw new RangeError(`k (${k}) must not exceed n (${n})`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
  let total = 0;
  if (alternative === 'greater') {
    for (let x = k; x <= n; x++) total += binomialPmf(x, n, p);
  } else if (alternative === 'less') {
    for (let x = 0; x <= k; x++) total += binomialPmf(x, n, p);
  } else {
    if (k === p * n) return 1;
    const bound = binomialPmf(k, n, p) * (1 + 1e-7);
    for (let x = 0; x <= n; x++) {
      const px = binomialPmf(x, n, p);
      if (px <= bound) total += px;
    }
  }
  return Math.min(1, total);
}

export interface McNemarResult {
  /** Pairs right under the first method only. */
  b: number;
  /** Pairs right under the second method only. */
  c: number;
  /** min(b, c), the statistic of the exact test. */
  statistic: number;
  /** Two-sided exact p-value; 1 when there is no discordant pair. */
  pValue: number;
}

/** McNemar's exact test from the two discordant counts. */
export function mcnemarExact(b: number, c: number): McNemarResult {
  checkCount(b, 'b');
  checkCount(c, 'c');
  const statistic = Math.min(b, c);
  return { b, c, statistic, pValue: b + c === 0 ? 1 : binomialTest(statistic, b + c, 0.5) };
}

/** McNemar's exact test from paired outcomes (first[i], second[i]) of the same items. */
export function mcnemarFromPairs(first: readonly boolean[], second: readonly boolean[]): McNemarResult {
  if (first.length !== second.length)
    throw new RangeError(
      `McNemar needs paired outcomes of equal length, got ${first.length} and ${second.length}`,
    );
  let b = 0;
  let c = 0;
  first.forEach((x, i) => {
    if (x && !second[i]) b++;
    else if (!x && second[i]) c++;
  });
  return mcnemarExact(b, c);
}
