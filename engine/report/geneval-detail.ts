/**
 * The GenEval tables beside the paper's: per tag and method the images judged with the accuracy's
 * Wilson interval (a tag of 8 images says little however its accuracy reads), and what the suite
 * left out (tags without prompts and why, prompts removed because a model trained on them).
 */
import type { GenEvalExclusions, GenEvalRow } from './report-data';
import { fixed, interval, tagColumns, tagLabel, type Table } from './tables';

/**
 * Tags as rows (GenEval's order), one column per method, each cell the accuracy, its Wilson 95%
 * interval and the count it rests on: `0.33 [0.14, 0.61] (4/12)`.
 */
export function genevalTagTable(rows: readonly GenEvalRow[]): Table | undefined {
  const methods = rows.filter((r) => r.perTagCounts && Object.keys(r.perTagCounts).length > 0);
  if (methods.length === 0) return undefined;
  const cell = (r: GenEvalRow, tag: string): string => {
    const c = r.perTagCounts?.[tag];
    if (!c) return '-';
    const accuracy = fixed(c.total === 0 ? Number.NaN : c.correct / c.total, 2);
    return `${accuracy} ${interval(c.ci95, (x) => fixed(x, 2))} (${c.correct}/${c.total})`;
  };
  return {
    title: 'GenEval per tag: accuracy, 95% interval and images judged',
    header: ['Tag', ...methods.map((r) => r.method)],
    rows: tagColumns(methods).map((tag) => [tagLabel(tag), ...methods.map((r) => cell(r, tag))]),
    note: 'Each cell: accuracy [Wilson 95% interval] (correct / judged images of the tag: its prompts times eval.imagesPerPrompt)',
  };
}

/**
 * One row per tag that lost prompts to the training data or has no GenEval prompt at all; undefined
 * when the suite left nothing out.
 */
export function genevalExclusionsTable(suite: GenEvalExclusions): Table | undefined {
  const reasons = new Map(suite.excludedTags.map((e) => [e.tag, e.reason]));
  const tags = tagColumns([{ method: '', perTag: { ...suite.excludedPerTag }, overall: 0, meanScore: 0 }]);
  for (const tag of reasons.keys()) if (!tags.includes(tag)) tags.push(tag);
  const rows = tags
    .filter((t) => (suite.excludedPerTag[t] ?? 0) > 0 || reasons.has(t))
    .map((t) => [
      tagLabel(t),
      String(suite.excludedPerTag[t] ?? 0),
      reasons.has(t) ? `yes: ${reasons.get(t)}` : 'no',
    ]);
  if (rows.length === 0) return undefined;
  const removed = Object.values(suite.excludedPerTag).reduce((a, n) => a + n, 0);
  return {
    title: 'GenEval: excluded prompts and tags',
    header: ['Tag', 'Prompts removed', 'Left out of GenEval'],
    align: ['left', 'right', 'left'],
    rows,
    note:
      `Removed: prompts a training caption equals (${removed} of ${suite.drawn} distinct prompts); ` +
      `a tag left out is not in the overall score. Prompts: ${suite.source}`,
  };
}
