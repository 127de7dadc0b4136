/**
 * What the report shows of an evaluation beyond the paper's GenEval table: each tag's judged images
 * with the accuracy's Wilson interval, and what the suite left out with why. Evaluations written
 * before the reasons were recorded get them derived from their per-tag counts.
 */
import { wilsonInterval } from '../stats/wilson';
import type { GenEvalExclusions, GenEvalRow, GenEvalTagCount } from '../report/report-data';

/** A summary's per-tag counts, as GenEval scoring writes them (`ci95` since the Wilson intervals). */
interface TagCounts {
  perTag: Partial<Record<string, { correct: number; total: number; ci95?: readonly [number, number] }>>;
}

/** The suite part of an evaluation document (fields added later are optional). */
export interface SuiteRecord {
  source: string;
  drawn: number;
  excludedPerTag: Record<string, number>;
  missingTags: string[];
  excludedTags?: { tag: string; reason: string }[];
}

/** Per tag: images judged, correct ones and the Wilson 95% interval of the accuracy. */
export function tagCounts(summary: TagCounts): Record<string, GenEvalTagCount> {
  const out: Record<string, GenEvalTagCount> = {};
  for (const [tag, s] of Object.entries(summary.perTag)) {
    if (!s || s.total <= 0) continue;
    const ci95 = s.ci95 ?? wilsonInterval(s.correct, s.total);
    out[tag] = { correct: s.correct, total: s.total, ci95: [ci95[0], ci95[1]] };
  }
  return out;
}

/** The GenEval table's rows with each method's per-tag counts from its summary. */
export function withTagCounts(
  rows: readonly GenEvalRow[],
  summaries: Readonly<Record<string, TagCounts>>,
): GenEvalRow[] {
  return rows.map((r) => {
    const summary = summaries[r.method];
    return summary ? { ...r, perTagCounts: tagCounts(summary) } : r;
  });
}

/**
 * The suite's exclusions; an older record's missing tags get a reason from its counts, and a record
 * without counts (an evaluation written by hand or by an older version) reads as excluding nothing.
 */
export function suiteExclusions(suite: Partial<SuiteRecord>): GenEvalExclusions {
  const perTag: Partial<Record<string, number>> = suite.excludedPerTag ?? {};
  const excludedTags =
    suite.excludedTags ??
    (suite.missingTags ?? []).map((tag) => ({
      tag,
      reason:
        (perTag[tag] ?? 0) > 0
          ? `its ${perTag[tag]} drawn prompts that occur in the training data were removed`
          : 'no GenEval prompt of this tag was selected',
    }));
  return {
    source: suite.source ?? 'unknown',
    drawn: suite.drawn ?? 0,
    excludedPerTag: { ...suite.excludedPerTag },
    excludedTags: excludedTags.map((e) => ({ tag: e.tag, reason: e.reason })),
  };
}
