/**
 * The report's tables, built once as plain cells and rendered as aligned text (the terminal, at
 * the end of `dro run`), Markdown or HTML.
 *
 * Layout follows the paper: methods as rows, metrics as columns, significance against the baseline
 * marked * p < 0.05, ** p < 0.01, *** p < 0.001.
 */
import type {
  GenEvalRow,
  HumanStudyRow,
  Interval,
  UtilityModelRow,
  UtilityReport,
  UtilityWinRow,
  WinRateRow,
} from './report-data';

export interface Table {
  title: string;
  header: string[];
  rows: string[][];
  /** One line under the table, e.g. the significance legend. */
  note?: string;
  /** Per column: 'left' for text, 'right' for numbers. Default: the first left, the others right. */
  align?: ('left' | 'right')[];
  /** Per row and column, a relative link the cell's text points to (HTML and Markdown only). */
  links?: (string | undefined)[][];
}

/** Whether column `j` of `table` holds text (left-aligned) rather than numbers. */
export function leftAligned(table: Table, j: number): boolean {
  return (table.align?.[j] ?? (j === 0 ? 'left' : 'right')) === 'left';
}

export const SIGNIFICANCE_NOTE = '* p < 0.05, ** p < 0.01, *** p < 0.001';

/** "***" below 0.001, "**" below 0.01, "*" below 0.05, else "" (also for a missing p). */
export function significanceMark(p: number | null | undefined): string {
  if (p === undefined || p === null || !Number.isFinite(p)) return '';
  if (p < 0.001) return '***';
  if (p < 0.01) return '**';
  if (p < 0.05) return '*';
  return '';
}

/** GenEval's own tag names, in the order of its published tables. */
const TAG_LABELS: Record<string, string> = {
  single_object: 'Single obj.',
  two_object: 'Two obj.',
  counting: 'Counting',
  colors: 'Colors',
  position: 'Position',
  color_attr: 'Color attr.',
};

/** A tag's column title, e.g. "Two obj." for two_object; other tags as written. */
export function tagLabel(tag: string): string {
  return TAG_LABELS[tag] ?? tag;
}

export const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const percent = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
export const interval = (ci: Interval, format: (x: number) => string): string =>
  `[${format(ci[0])}, ${format(ci[1])}]`;

/** Compact number for reward means, which range from ~1e-3 to ~1e2 across reward models. */
function score(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  return a !== 0 && (a < 0.01 || a >= 1e4) ? x.toExponential(2) : x.toFixed(a >= 100 ? 1 : 3);
}

function pValue(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return 'n/a';
  return p < 0.001 ? p.toExponential(1) : p.toFixed(3);
}

/** Tags in GenEval order, then any others alphabetically. */
export function tagColumns(rows: readonly GenEvalRow[]): string[] {
  const present = new Set(rows.flatMap((r) => Object.keys(r.perTag)));
  const known = Object.keys(TAG_LABELS).filter((t) => present.has(t));
  const other = [...present].filter((t) => !(t in TAG_LABELS)).sort();
  return [...known, ...other];
}

/** Methods as rows; per-tag accuracy, overall (marked against the baseline) and mean score. */
export function genevalTable(rows: readonly GenEvalRow[]): Table {
  const tags = tagColumns(rows);
  return {
    title: 'GenEval',
    header: ['Method', ...tags.map((t) => TAG_LABELS[t] ?? t), 'Overall', 'Mean score'],
    rows: rows.map((r) => [
      r.method,
      ...tags.map((t) => (r.perTag[t] === undefined ? '-' : fixed(r.perTag[t], 2))),
      fixed(r.overall, 2) + significanceMark(r.pValueVsBaseline),
      fixed(r.meanScore, 3),
    ]),
    note: `${SIGNIFICANCE_NOTE} (overall score against the baseline)`,
  };
}

/** The title of a win-rate table: which reward chose the kept image. */
function winRateTitle(rows: readonly WinRateRow[], perReward: boolean): string {
  if (perReward) return 'Win rate, median image chosen separately under each reward (extra table)';
  const by = unique(rows.flatMap((r) => (r.medianBy === undefined ? [] : [r.medianBy])));
  return by.length === 1
    ? `Win rate (median image by ${by[0]}, the same image under every reward)`
    : 'Win rate';
}

/**
 * The paper's win-rate table: one row per compared pair ("dro vs base"), one column per reward
 * model, each cell the share of prompts where the first method's image scored higher. With
 * `perReward` the title says that each reward chose its own median image (the extra table).
 */
export function winRateTable(rows: readonly WinRateRow[], perReward = false): Table {
  const rewards = unique(rows.map((r) => r.reward));
  const pairs = unique(rows.map((r) => pairLabel(r.a, r.b)));
  const cell = new Map(rows.map((r) => [`${pairLabel(r.a, r.b)}\u0000${r.reward}`, r]));
  return {
    title: winRateTitle(rows, perReward),
    header: ['Method', ...rewards],
    rows: pairs.map((pair) => [
      pair,
      ...rewards.map((reward) => {
        const r = cell.get(`${pair}\u0000${reward}`);
        return r === undefined ? '-' : percent(r.winRate) + significanceMark(r.pValue);
      }),
    ]),
    note: `${SIGNIFICANCE_NOTE} (paired test of the score difference)`,
  };
}

/** Every win-rate comparison with its means, p value and interval. */
export function winRateDetailTable(rows: readonly WinRateRow[], perReward = false): Table {
  return {
    title: perReward
      ? 'Win rate details, median image chosen under each reward (extra table)'
      : 'Win rate details',
    header: ['Method', 'Reward', 'Win rate', 'Mean A', 'Mean B', 'p', '95% CI of A - B'],
    rows: rows.map((r) => [
      pairLabel(r.a, r.b),
      r.reward,
      percent(r.winRate) + significanceMark(r.pValue),
      score(r.meanA),
      score(r.meanB),
      pValue(r.pValue),
      interval(r.ci95, score),
    ]),
  };
}

/** The simulated users' mean utility per model, with its 95% interval. */
export function utilityTable(rows: readonly UtilityModelRow[]): Table {
  return {
    title: "Users' utility (simulated users, noise-free, held-out GenEval images)",
    header: ['Method', 'Mean utility', '95% CI', 'Images', 'Prompts'],
    rows: rows.map((r) => [
      r.method,
      fixed(r.mean, 3),
      interval(r.ci95, (x) => fixed(x, 3)),
      String(r.images),
      String(r.prompts),
    ]),
    note: 'CI: percentile bootstrap over prompts',
  };
}

/** Head to head under the users' utility: per prompt, the mean utility of its images. */
export function utilityWinRateTable(rows: readonly UtilityWinRow[]): Table {
  return {
    title: "Win rate under the users' utility",
    header: ['Method', 'Win rate', 'W / T / L', 'Mean A', 'Mean B', 'p', '95% CI of A - B'],
    rows: rows.map((r) => [
      pairLabel(r.a, r.b),
      percent(r.winRate) + significanceMark(r.pValue),
      `${r.wins} / ${r.ties} / ${r.losses}`,
      fixed(r.meanA, 3),
      fixed(r.meanB, 3),
      pValue(r.pValue),
      interval(r.ci95, (x) => fixed(x, 3)),
    ]),
    note: `per prompt: mean utility of its images; ties count half; ${SIGNIFICANCE_NOTE} (paired t-test over prompts)`,
  };
}

/** The line that says why the users' utility was not computed. */
export function utilitySkippedNote(reason: string): string {
  return `Users' utility: not computed (${reason}).`;
}

/** The users' utility tables, or the one line saying why there are none. */
export function utilityTables(utility: UtilityReport | undefined): (Table | string)[] {
  if (!utility) return [];
  if (utility.skipped) return [utilitySkippedNote(utility.skipped)];
  const out: (Table | string)[] = [];
  if (utility.models.length) out.push(utilityTable(utility.models));
  if (utility.comparisons.length) out.push(utilityWinRateTable(utility.comparisons));
  return out;
}

export function humanStudyTable(rows: readonly HumanStudyRow[]): Table {
  return {
    title: 'Human preference',
    header: ['Method', 'Wins', 'Answers', 'Win rate', 'Wilson 95% CI'],
    rows: rows.map((r) => [
      pairLabel(r.a, r.b),
      String(r.winsA),
      String(r.total),
      percent(r.winRate),
      interval(r.ci95, percent),
    ]),
  };
}

export function pairLabel(a: string, b: string): string {
  return `${a} vs ${b}`;
}

/** Aligned plain text: numbers right-aligned, the first column left-aligned. */
export function formatTextTable(table: Table): string {
  // Control characters in a name (an ANSI escape, a newline) must not reach the terminal.
  // eslint-disable-next-line no-control-regex
  const clean = (c: string): string => c.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ');
  const cells = [table.header, ...table.rows].map((row) => row.map(clean));
  const widths = table.header.map((_, j) => Math.max(...cells.map((row) => (row[j] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((c, j) =>
        leftAligned(table, j) ? c.padEnd(widths[j] as number) : c.padStart(widths[j] as number),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [table.title, line(cells[0] as string[]), rule, ...cells.slice(1).map(line)];
  if (table.note) out.push(table.note);
  return out.join('\n');
}

/** The tables `dro run` prints at the end: GenEval, win rate and the users' utility. */
export function formatRunTables(data: {
  geneval: readonly GenEvalRow[];
  winRates: readonly WinRateRow[];
  utility?: UtilityReport;
}): string {
  const parts: string[] = [];
  if (data.geneval.length) parts.push(formatTextTable(genevalTable(data.geneval)));
  if (data.winRates.length) parts.push(formatTextTable(winRateTable(data.winRates)));
  for (const t of utilityTables(data.utility)) parts.push(typeof t === 'string' ? t : formatTextTable(t));
  return parts.join('\n\n');
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}
