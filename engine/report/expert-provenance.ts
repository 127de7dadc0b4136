/**
 * The report's "Expert provenance" table: per generator of a pooled preference set (config
 * `data.generators`, docs/world.md), the images it drew, the experts the ranking took from it and
 * the share of each the built-in world's GenEval judge finds correct.
 */
import type { Table } from './tables';

/** One generator's counts, as the ranking JSON's `provenance` holds them. */
export interface ExpertProvenanceRow {
  name: string;
  images: number;
  imagesCorrect: number | null;
  experts: number;
  expertsCorrect: number | null;
}

const percent = (part: number | null, whole: number): string =>
  part === null || whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(1)}%`;

export function expertProvenanceTable(rows: readonly ExpertProvenanceRow[]): Table {
  const experts = rows.reduce((a, r) => a + r.experts, 0);
  const correct = rows.every((r) => r.expertsCorrect !== null)
    ? rows.reduce((a, r) => a + (r.expertsCorrect ?? 0), 0)
    : null;
  return {
    title: 'Expert provenance',
    header: [
      'Generator',
      'Images',
      'GenEval-correct',
      'Experts',
      'Share of experts',
      'Experts GenEval-correct',
    ],
    rows: rows.map((r) => [
      r.name,
      String(r.images),
      percent(r.imagesCorrect, r.images),
      String(r.experts),
      percent(r.experts, experts),
      percent(r.expertsCorrect, r.experts),
    ]),
    note: `${experts} experts, ${percent(correct, experts)} GenEval-correct (judged on the stored preference images)`,
  };
}
