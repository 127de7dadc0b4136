/**
 * report.html: one self-contained page. Images are inline `data:` PNGs and plots inline SVG, the
 * styles sit in the page, there is no script, and a Content-Security-Policy forbids every fetch
 * except inline images, so the page renders offline and cannot reach the network. The only links
 * are relative paths to other runs' reports in the same store (checked by `safeRelativeHref`).
 */
import { escapeHtml as h, safeRelativeHref } from './escape';
import type { ReportData } from './report-data';
import type { PreparedReport } from './sections';
import { configJson, formatDuration, plural, totalWallSeconds } from './sections';
import { runsTable, sourceRuns, stageTable } from './run-links';
import { leftAligned, utilitySkippedNote, type Table } from './tables';

export const REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'";

const STYLE = `
:root { color-scheme: light; --ink: #1d1d1f; --muted: #5f6368; --rule: #d9d9de; --band: #f5f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 40px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 15px; margin: 20px 0 8px; }
.meta { color: var(--muted); margin: 0 0 8px; }
.meta code { color: var(--ink); }
code, pre, .mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 13px; }
table { border-collapse: collapse; margin: 0 0 6px; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { color: var(--muted); font-size: 13px; margin: 0 0 18px; }
.caption { max-width: 880px; margin-top: 8px; }
a { color: #0b57d0; }
.wrap { overflow-x: auto; }
.samples th.prompt { font-weight: 400; font-size: 12px; max-width: 120px; vertical-align: bottom; }
.samples td { padding: 4px; border: none; }
.samples img { display: block; image-rendering: pixelated; image-rendering: crisp-edges; }
.samples .seed { color: var(--muted); }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
.plots svg { border: 1px solid var(--rule); max-width: 100%; height: auto; }
.artifacts td, .artifacts td.num, .artifacts th.num { text-align: left; white-space: normal; word-break: break-all; }
details pre { background: var(--band); padding: 12px; overflow-x: auto; }
`;

export function htmlTable(table: Table, className = ''): string {
  const cls = (j: number): string => (leftAligned(table, j) ? '' : ' class="num"');
  const cell = (c: string, i: number, j: number): string => {
    const href = safeRelativeHref(table.links?.[i]?.[j]);
    return href === undefined ? h(c) : `<a href="${h(href)}">${h(c)}</a>`;
  };
  const head = table.header.map((c, j) => `<th${cls(j)}>${h(c)}</th>`).join('');
  const body = table.rows
    .map((row, i) => `<tr>${row.map((c, j) => `<td${cls(j)}>${cell(c, i, j)}</td>`).join('')}</tr>`)
    .join('\n');
  const note = table.note ? `<p class="note">${h(table.note)}</p>` : '';
  return `<h3>${h(table.title)}</h3>
<div class="wrap"><table${className ? ` class="${className}"` : ''}><thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody></table></div>${note}`;
}

const dataUri = (png: Uint8Array): string => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;

function samplesSection(data: ReportData, prepared: PreparedReport): string {
  const grid = data.samples;
  if (!grid || prepared.samples.length === 0) return '';
  const head = grid.prompts
    .map((p, i) => `<th class="prompt">${h(p)}<br><span class="seed">seed ${grid.seeds[i]}</span></th>`)
    .join('');
  const rows = prepared.samples
    .map((s) => {
      const cells = s.cells
        .map(
          (png, i) =>
            `<td><img src="${dataUri(png)}" alt="${h(s.method)}: ${h(grid.prompts[i] ?? '')}" title="${h(grid.prompts[i] ?? '')}"></td>`,
        )
        .join('');
      return `<tr><th>${h(s.method)}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<h2>Samples</h2>
<p class="note">Every method on the same prompts and seeds, enlarged with nearest-neighbour so each model pixel shows.</p>
<div class="wrap"><table class="samples"><thead><tr><th></th>${head}</tr></thead>
<tbody>
${rows}
</tbody></table></div>`;
}

/** Inline SVG needs no namespace attribute in HTML; dropping it keeps the page free of URLs. */
const inlineSvg = (svg: string): string => svg.replace(' xmlns="http://www.w3.org/2000/svg"', '');

export function renderHtml(data: ReportData, prepared: PreparedReport): string {
  const parts: string[] = [];
  parts.push(`<h1>Run report: ${h(data.name)}</h1>
<p class="meta">Run <code>${h(data.runId)}</code> &middot; config hash <code>${h(data.configHash)}</code>${
    data.createdAt ? ` &middot; ${h(data.createdAt)}` : ''
  }${data.baseline ? ` &middot; baseline <b>${h(data.baseline)}</b>` : ''} &middot; stages ${h(
    formatDuration(totalWallSeconds(data)),
  )}</p>`);
  const sources = sourceRuns(data);
  if (sources.length) {
    const runs = sources.map((r) =>
      r.href === undefined
        ? `<code>${h(r.runId)}</code>`
        : `<a href="${h(r.href)}"><code>${h(r.runId)}</code></a>`,
    );
    parts.push(`<p class="meta">Reused stages computed by ${runs.join(', ')} (see Stages)</p>`);
  }
  if (prepared.tables.length) {
    parts.push('<h2>Results</h2>', ...prepared.tables.map((t) => htmlTable(t)));
  }
  if (data.utility?.skipped) parts.push(`<p class="note">${h(utilitySkippedNote(data.utility.skipped))}</p>`);
  if (data.humanStudy) {
    const s = data.humanStudy;
    parts.push(
      `<p class="note">Human study <code>${h(s.studyId)}</code>: ${plural(s.participants, 'participant')} counted, ${s.dropped} dropped for failed attention checks.</p>`,
    );
  }
  if (data.reward) {
    const r = data.reward;
    const ci = r.ci95 ? ` (95% CI ${(100 * r.ci95[0]).toFixed(1)}% to ${(100 * r.ci95[1]).toFixed(1)}%)` : '';
    parts.push(
      `<h2>Reward model</h2>
<p><b>${h(r.name)}</b>: pairwise accuracy <b>${(100 * r.accuracy).toFixed(1)}%</b>${ci} on ${r.heldOutPairs} held-out preference pairs.</p>`,
    );
  }
  parts.push(samplesSection(data, prepared));
  if (prepared.dro) {
    parts.push(
      '<h2>DRO terms</h2>',
      `<div class="plots">${prepared.dro.plots.map((p) => inlineSvg(p.svg)).join('\n')}</div>`,
      `<p class="note caption">${h(prepared.dro.caption)}</p>`,
    );
  }
  if (prepared.plots.length) {
    parts.push(
      '<h2>Loss curves</h2>',
      `<div class="plots">${prepared.plots.map((p) => inlineSvg(p.svg)).join('\n')}</div>`,
    );
  }
  parts.push(
    '<h2>Stages</h2>',
    htmlTable(stageTable(data)),
    htmlTable(runsTable(data)),
    '<h2>Artifacts</h2>',
    htmlTable(
      {
        title: plural(data.artifacts.length, 'artifact'),
        header: ['Role', 'URI', 'SHA-256'],
        rows: data.artifacts.map((a) => [a.role, a.uri, a.sha256]),
      },
      'artifacts mono',
    ),
    '<h2>Config</h2>',
    `<details><summary>Config JSON (hash <code>${h(data.configHash)}</code>)</summary><pre>${h(configJson(data.config))}</pre></details>`,
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${h(REPORT_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Run report: ${h(data.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${parts.filter((p) => p !== '').join('\n')}
</main>
</body>
</html>
`;
}
