/**
 * Where a report's results come from: the stage table names, for each reused stage, the run that
 * computed it, and the runs table lists this run and those runs with a link to their reports, so a
 * reader can open the run whose numbers a cached stage carries.
 */
import { safeRelativeHref } from './escape';
import type { ReportData } from './report-data';
import { formatDuration } from './sections';
import type { Table } from './tables';

function reportOf(data: ReportData, runId: string): string | undefined {
  return safeRelativeHref(data.linkedRuns?.find((r) => r.runId === runId)?.report);
}

function computedBy(runId: string, hit: boolean, fromRun: string | undefined): string {
  if (!hit) return 'this run';
  if (fromRun === undefined) return 'an earlier run';
  return fromRun === runId ? 'this run, an earlier execution' : fromRun;
}

/** Stage, wall time, whether it was reused, and the run that computed it (linked to its report). */
export function stageTable(data: ReportData): Table {
  return {
    title: 'Wall time',
    header: ['Stage', 'Wall time', 'Reused', 'Computed by'],
    align: ['left', 'right', 'left', 'left'],
    rows: data.stages.map((s) => [
      s.stage,
      formatDuration(s.wallSeconds),
      s.cacheHit ? 'yes' : 'no',
      computedBy(data.runId, s.cacheHit, s.fromRun),
    ]),
    links: data.stages.map((s) => [
      undefined,
      undefined,
      undefined,
      s.cacheHit && s.fromRun !== undefined && s.fromRun !== data.runId
        ? reportOf(data, s.fromRun)
        : undefined,
    ]),
  };
}

/** This run, then every other run the report draws on, each with its report when there is one. */
export function runsTable(data: ReportData): Table {
  const others = (data.linkedRuns ?? []).filter((r) => r.runId !== data.runId);
  return {
    title: 'Runs',
    header: ['Run', 'Relation', 'Report'],
    align: ['left', 'left', 'left'],
    rows: [
      [data.runId, 'this run', 'this report'],
      ...others.map((r) => [
        r.runId,
        r.relation,
        safeRelativeHref(r.report) ? 'report.html' : 'no report in this store',
      ]),
    ],
    links: [[], ...others.map((r) => [undefined, undefined, safeRelativeHref(r.report)])],
    ...(others.length
      ? { note: 'Links are relative to this report in the store (runs/<run>/executions/<execution>/).' }
      : {}),
  };
}

/** The other runs the report draws on, for its header: each id with its report's link, if any. */
export function sourceRuns(data: ReportData): { runId: string; href?: string }[] {
  return (data.linkedRuns ?? [])
    .filter((r) => r.runId !== data.runId)
    .map((r) => {
      const href = safeRelativeHref(r.report);
      return href === undefined ? { runId: r.runId } : { runId: r.runId, href };
    });
}
