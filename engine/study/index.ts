/**
 * The blinded pairwise user study: `exportStudy` builds a static study folder (open index.html
 * from a file:// URL) and a separate unblinding key; `importStudyResults` validates the answer
 * files participants download and turns them into human win rates with Wilson 95% intervals.
 *
 * ```ts
 * const study = exportStudy({ runId, comparisons: selectComparisons(samples, { pairs: 24, seed: 1 }),
 *   attentionChecks: attentionChecks(renders, { seed: 1 }), seed: 1 });
 * // later, with the files participants sent back:
 * const result = importStudyResults(
 *   { name: 'study/study.json', bytes: manifest }, { name: 'study-key.json', bytes: key },
 *   [{ name: 'study-results-p01.json', bytes }]);
 * reportData.humanStudy = result.summary;
 * ```
 */
export * from './export';
export * from './import';
export type { StudyKey, StudyManifest, StudyResults } from './study-format';
