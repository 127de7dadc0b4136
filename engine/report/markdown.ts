/**
 * report.md: the run report as Markdown, with the sample grids and plots as files beside it
 * (`grid-<method>.png`, `loss-<stage>.svg`, `dro-terms.svg`, `dro-hinge-open.svg`). Every piece of
 * run text is escaped.
 */
import { escapeMarkdown as md, safeRelativeHref } from './escape';
import type { ReportData } from './report-data';
import type { PreparedReport } from './sections';
import { configJson, formatDuration, plural, totalWallSeconds } from './sections';
import { runsTable, sourceRuns, stageTable } from './run-links';
import { leftAligned, utilitySkippedNote, type Table } from './tables';

export function markdownTable(table: Table): string {
  const row = (cells: readonly string[], i?: number): string =>
    `| ${cells.map((c, j) => link(md(c), i === undefined ? undefined : table.links?.[i]?.[j])).join(' | ')} |`;
  const align = table.header.map((_, j) => (leftAligned(table, j) ? ':---' : '---:'));
  const lines = [`### ${md(table.title)}`, '', row(table.header), `| ${align.join(' | ')} |`];
  lines.push(...table.rows.map((r, i) => row(r, i)));
  if (table.note) lines.push('', md(table.note));
  return lines.join('\n');
}

/** `text` linked to `href` when that is a plain relative path (nothing else is linked). */
function link(text: string, href: string | undefined): string {
  const safe = safeRelativeHref(href);
  return safe === undefined ? text : `[${text}](${safe})`;
}

/** A fenced block whose fence is longer than any backtick run inside, so text cannot close it. */
function fenced(text: string, lang = ''): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${lang}\n${text}\n${fence}`;
}

export function renderMarkdown(data: ReportData, prepared: PreparedReport): string {
  const out: string[] = [`# Run report: ${md(data.name)}`, ''];
  out.push(`- Run id: \`${md(data.runId)}\``, `- Config hash: \`${md(data.configHash)}\``);
  if (data.createdAt) out.push(`- Created: ${md(data.createdAt)}`);
  if (data.baseline) out.push(`- Baseline: ${md(data.baseline)}`);
  const sources = sourceRuns(data).map((r) => link(md(r.runId), r.href));
  if (sources.length) out.push(`- Reused stages computed by: ${sources.join(', ')}`);
  out.push(`- Total stage wall time: ${formatDuration(totalWallSeconds(data))}`, '');

  if (prepared.tables.length) {
    out.push('## Results', '');
    for (const t of prepared.tables) out.push(markdownTable(t), '');
  }
  if (data.utility?.skipped) out.push(md(utilitySkippedNote(data.utility.skipped)), '');
  if (data.humanStudy) {
    const h = data.humanStudy;
    out.push(
      `Human study \`${md(h.studyId)}\`: ${plural(h.participants, 'participant')} counted, ${h.dropped} dropped for failed attention checks.`,
      '',
    );
  }
  if (data.reward) {
    const r = data.reward;
    const ci = r.ci95 ? ` (95% CI ${(100 * r.ci95[0]).toFixed(1)}%-${(100 * r.ci95[1]).toFixed(1)}%)` : '';
    out.push(
      '## Reward model',
      '',
      `${md(r.name)}: pairwise accuracy ${(100 * r.accuracy).toFixed(1)}%${ci} on ${r.heldOutPairs} held-out pairs.`,
      '',
    );
  }
  if (prepared.samples.length && data.samples) {
    out.push('## Samples', '', 'Every method on the same prompts and seeds, left to right:', '');
    data.samples.prompts.forEach((p, i) => out.push(`${i + 1}. ${md(p)} (seed ${data.samples?.seeds[i]})`));
    out.push('');
    for (const s of prepared.samples)
      out.push(`**${md(s.method)}**`, '', `![${md(s.method)}](${s.gridFile})`, '');
  }
  if (prepared.dro) {
    out.push('## DRO terms', '');
    for (const p of prepared.dro.plots) out.push(`![${md(p.title)}](${p.file})`, '');
    out.push(md(prepared.dro.caption), '');
  }
  if (prepared.plots.length) {
    out.push('## Loss curves', '');
    for (const p of prepared.plots) out.push(`![${md(p.stage)} loss](${p.file})`, '');
  }
  out.push(
    '## Stages',
    '',
    markdownTable(stageTable(data)),
    '',
    markdownTable(runsTable(data)),
    '',
    '## Artifacts',
    '',
    markdownTable({
      title: 'Artifacts',
      header: ['Role', 'URI', 'SHA-256'],
      rows: data.artifacts.map((a) => [a.role, a.uri, a.sha256]),
    }),
    '',
    '## Config',
    '',
    fenced(configJson(data.config), 'json'),
    '',
  );
  return out.join('\n');
}
