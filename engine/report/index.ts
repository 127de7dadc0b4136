/**
 * The run report: `renderReport(data)` returns the files of `report/` (report.md, report.html and
 * the PNG grids and SVG plots that report.md shows) as bytes; the caller writes them.
 *
 * ```ts
 * const files = renderReport(data);            // { 'report.md': bytes, 'report.html': bytes, ... }
 * for (const [name, bytes] of Object.entries(files)) await store.put(`runs/${id}/report/${name}`, bytes);
 * console.log(formatRunTables(data));          // the tables `dro run` prints at the end
 * ```
 */
import { renderHtml } from './html';
import { renderMarkdown } from './markdown';
import type { ReportData } from './report-data';
import { prepareReport } from './sections';

export type * from './report-data';
export { genevalRow } from './report-data';
export { escapeHtml, escapeMarkdown, slug } from './escape';
export { composeGrid, renderGridPng, upscaleNearest } from './image-grid';
export { renderLinePlot } from './svg-plot';
export { droTermsFigure } from './dro-terms';
export { genevalExclusionsTable, genevalTagTable } from './geneval-detail';
export { runsTable, stageTable } from './run-links';
export {
  formatRunTables,
  formatTextTable,
  genevalTable,
  significanceMark,
  utilityTable,
  utilityWinRateTable,
  winRateTable,
} from './tables';

/**
 * Every file of the report directory, by name. Throws a RangeError naming the field on
 * inconsistent data (before anything is rendered, so nothing is written half-way).
 */
export function renderReport(data: ReportData): Record<string, Uint8Array> {
  const prepared = prepareReport(data);
  const text = new TextEncoder();
  const files: Record<string, Uint8Array> = {
    'report.md': text.encode(renderMarkdown(data, prepared)),
    'report.html': text.encode(renderHtml(data, prepared)),
  };
  for (const s of prepared.samples) files[s.gridFile] = s.gridPng;
  for (const p of [...prepared.plots, ...(prepared.dro?.plots ?? [])]) files[p.file] = text.encode(p.svg);
  return files;
}
