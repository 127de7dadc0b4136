/**
 * Statistics for evaluation reports: paired t-test, exact binomial and McNemar tests, seeded
 * percentile bootstrap, Wilson interval. Pure functions over plain arrays.
 *
 * @example
 * import { pairedTTest, pairedBootstrapMeanDiffCI, mcnemarExact, wilsonInterval } from './stats';
 * pairedTTest([0.8, 0.7, 0.9], [0.6, 0.7, 0.5]).pValue;
 * pairedBootstrapMeanDiffCI(a, b, { seed: 7 }); // [lo, hi], 10,000 resamples
 * mcnemarExact(12, 3).pValue;
 * wilsonInterval(81, 263); // [0.2553, 0.3662]
 */
export * from './special-functions';
export * from './t-test';
export * from './binomial';
export * from './bootstrap';
export * from './wilson';
