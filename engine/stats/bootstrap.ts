/**
 * Seeded percentile bootstrap (Efron & Tibshirani 1993, ch. 13).
 *
 * Each resample draws n indices uniformly with replacement from a `Rng` seeded by `seed`, so an
 * interval is a pure function of (data, seed, resamples, confidence). The interval is the
 * (1 - confidence)/2 and (1 + confidence)/2 quantiles of the resampled statistic, with linear
 * interpolation between order statistics (numpy.percentile's default).
 */
import { Rng } from '../rng';

export interface BootstrapOptions {
  /** Seed of the resampling stream (number or string). */
  seed: number | string;
  /** Resamples drawn. Default 10,000. */
  resamples?: number;
  /** Coverage of the interval. Default 0.95. */
  confidence?: number;
}

export const DEFAULT_BOOTSTRAP_RESAMPLES = 10_000;

/** Quantile q in [0, 1] of ascending-sorted `sorted` by linear interpolation (numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty list');
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

function resolve(options: BootstrapOptions): { resamples: number; confidence: number } {
  const resamples = options.resamples ?? DEFAULT_BOOTSTRAP_RESAMPLES;
  const confidence = options.confidence ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1)
    throw new RangeError(`bootstrap resamples must be a positive integer, got ${resamples}`);
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  return { resamples, confidence };
}

/**
 * Percentile interval of a statistic whose resampled value `draw(rng)` computes (for resampling
 * schemes other than plain i.i.d. indices, e.g. stratified by group).
 */
export function bootstrapInterval(draw: (rng: Rng) => number, options: BootstrapOptions): [number, number] {
  const { resamples, confidence } = resolve(options);
  const rng = new Rng(options.seed);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) stats[r] = draw(rng);
  stats.sort();
  return [quantileSorted(stats, (1 - confidence) / 2), quantileSorted(stats, (1 + confidence) / 2)];
}

/** Percentile bootstrap interval of the mean of `values` (i.i.d. resampling). */
export function bootstrapMeanCI(values: readonly number[], options: BootstrapOptions): [number, number] {
  const n = values.length;
  if (n === 0) throw new RangeError('bootstrap of an empty sample');
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new RangeError(`values[${i}] is not a finite number (${v})`);
  });
  return bootstrapInterval((rng) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(n)]!;
    return s / n;
  }, options);
}

/** Percentile bootstrap interval of mean(a - b) over pairs: the pairs are resampled together. */
export function pairedBootstrapMeanDiffCI(
  a: readonly number[],
  b: readonly number[],
  options: BootstrapOptions,
): [number, number] {
  if (a.length !== b.length)
    throw new RangeError(`paired bootstrap needs equal lengths, got ${a.length} and ${b.length}`);
  return bootstrapMeanCI(
    a.map((v, i) => v - b[i]!),
    options,
  );
}
