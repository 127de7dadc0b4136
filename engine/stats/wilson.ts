/**
 * Wilson score interval for a binomial proportion (Wilson 1927; Newcombe 1998, method 3):
 *   center = (k + z^2/2) / (n + z^2),  half = z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4),
 * z the two-sided normal quantile of `confidence`. Unlike the Wald interval it stays inside [0, 1]
 * and does not collapse at k = 0 or k = n, which matters for per-tag accuracies near 0 or 1.
 */
import { normalQuantile } from './special-functions';

/** Wilson interval [lo, hi] for `successes` of `n` trials; confidence defaults to 0.95. */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): [number, number] {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Wilson interval needs n >= 1 trials, got ${n}`);
  if (!Number.isInteger(successes) || successes < 0 || successes > n)
    throw new RangeError(`Wilson interval needs 0 <= successes <= n (${n}), got ${successes}`);
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const z2 = z * z;
  const center = (successes + z2 / 2) / (n + z2);
  const half = (z / (n + z2)) * Math.sqrt((successes * (n - successes)) / n + z2 / 4);
  return [Math.max(0, center - half), Math.min(1, center + half)];
}
