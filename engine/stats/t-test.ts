/**
 * Student's t-tests over paired observations (two-sided), as scipy.stats.ttest_rel / ttest_1samp.
 *
 * t = mean(d) / (sd(d) / sqrt(n)), sd with n - 1 in the denominator, df = n - 1, and the p-value is
 * the two-sided tail of Student's t: P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2).
 *
 * Zero variance (every difference equal) is decided exactly, not through a tiny floating sd:
 * all differences 0 gives t = 0 and p = 1 (no evidence of a difference; scipy returns NaN there);
 * a constant non-zero difference gives t = ±Infinity and p = 0 (as scipy).
 */
import { studentTTwoSided } from './special-functions';

export interface TTestResult {
  /** t statistic; ±Infinity for a constant non-zero difference. */
  t: number;
  /** Degrees of freedom, n - 1. */
  df: number;
  /** Two-sided p-value. */
  pValue: number;
  /** Mean of the differences (or of the sample for the one-sample test). */
  mean: number;
  /** Sample standard deviation of the differences (n - 1 in the denominator). */
  sd: number;
  n: number;
}

/** The arithmetic mean; NaN for an empty list. */
export function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (n - 1 in the denominator, numpy's ddof=1); 0 for a single value. */
export function sampleStd(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (values.length - 1));
}

function checkFinite(values: readonly number[], what: string): void {
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new RangeError(`${what}[${i}] is not a finite number (${v})`);
  });
}

/** Two-sided one-sample t-test of H0: the population mean equals `mu` (default 0). Needs n >= 2. */
export function oneSampleTTest(values: readonly number[], mu = 0): TTestResult {
  checkFinite(values, 'values');
  const n = values.length;
  if (n < 2) throw new RangeError(`a t-test needs at least 2 observations, got ${n}`);
  const d = values.map((v) => v - mu);
  const m = mean(d);
  const sd = sampleStd(d);
  const df = n - 1;
  const constant = d.every((v) => v === d[0]);
  if (constant) {
    const t = d[0] === 0 ? 0 : d[0]! > 0 ? Infinity : -Infinity;
    return { t, df, pValue: t === 0 ? 1 : 0, mean: m, sd: 0, n };
  }
  const t = m / (sd / Math.sqrt(n));
  return { t, df, pValue: studentTTwoSided(t, df), mean: m, sd, n };
}

/**
 * Two-sided paired t-test of H0: mean(a - b) = 0, over pairs (a[i], b[i]). Needs at least 2 pairs of
 * equal-length, finite arrays.
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): TTestResult {
  if (a.length !== b.length)
    throw new RangeError(`paired t-test needs equal lengths, got ${a.length} and ${b.length}`);
  checkFinite(a, 'a');
  checkFinite(b, 'b');
  return oneSampleTTest(a.map((v, i) => v - b[i]!));
}
