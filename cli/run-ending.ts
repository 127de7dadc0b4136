/**
 * The ending every command that finishes a pipeline run prints (`dro run`, `dro run --submit
 * --follow`, `dro resume --attach`, `dro status --follow`): the stage table, the evaluation's
 * GenEval, win-rate and utility tables, the report (report.html, then report.md), the manifest, the
 * DRO model and the DRO loss summary. It is made from the run's result alone, so it comes after the
 * last stage, evaluation and report included, has finished.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { PipelineResult, StageRecord } from '../contracts/pipeline';
import { storeForUri, type ArtifactStore } from '../storage';
import { followProgress } from './progress';

export interface LossSummary {
  steps: [number, number];
  loss: [number, number];
  diff: [number | undefined, number | undefined];
}

/** One line per stage: status, wall time, cache hit and its source, note. */
export function stageTable(stages: readonly StageRecord[]): string[] {
  const lines = ['stage        status    seconds  cache       note'];
  for (const s of stages) {
    // The source run of a hit is in the note ("cached from run ...").
    const cache = s.cache ? (s.cache.hit ? 'hit' : s.cache.rejected ? 'recomputed' : 'miss') : '-';
    lines.push(
      `${s.stage.padEnd(12)} ${s.status.padEnd(9)} ${(s.seconds !== undefined ? s.seconds.toFixed(1) : '-').padStart(7)}  ${cache.padEnd(11)} ${s.note ?? ''}`.trimEnd(),
    );
  }
  return lines;
}

/** First and last entry of a training summary's history. */
export function lossSummary(summary: unknown): LossSummary | undefined {
  const history = (summary as { history?: Record<string, number>[] } | null)?.history;
  if (!Array.isArray(history) || history.length === 0) return undefined;
  const first = history[0]!;
  const last = history[history.length - 1]!;
  return {
    steps: [first.step ?? 0, last.step ?? 0],
    loss: [first.loss ?? NaN, last.loss ?? NaN],
    diff: [first.diff, last.diff],
  };
}

/** The DRO training's loss summary, read from the artifact the result names, if any. */
async function droLossOf(result: PipelineResult, store: ArtifactStore): Promise<LossSummary | undefined> {
  const ref = result.summaries.dro;
  if (!ref) return undefined;
  const source = ref.uri.startsWith(`${store.baseUri}/`) ? store : storeForUri(ref.uri);
  const bytes = await source.get(ref.uri, ref.sha256);
  return lossSummary(JSON.parse(new TextDecoder().decode(bytes)));
}

function formatLoss(droLoss: LossSummary): string {
  const fmt = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toExponential(3));
  return (
    `DRO loss:  ${fmt(droLoss.loss[0])} (step ${droLoss.steps[0]}) -> ${fmt(droLoss.loss[1])} (step ${droLoss.steps[1]}); ` +
    `diff ${fmt(droLoss.diff[0])} -> ${fmt(droLoss.diff[1])}`
  );
}

/** The ending's lines for a finished run, and its DRO loss summary. */
export async function runEnding(
  result: PipelineResult,
  store: ArtifactStore,
): Promise<{ lines: string[]; droLoss: LossSummary | undefined }> {
  const droLoss = await droLossOf(result, store);
  const lines = [
    ...stageTable(result.stages),
    ...(result.tables ? result.tables.trimEnd().split('\n') : []),
    `Report:    ${result.reportFiles.html.uri}`,
    `           ${result.reportFiles.markdown.uri}`,
    `Manifest:  ${result.manifest.uri}`,
    `DRO model: ${result.models.dro.uri}`,
    ...(droLoss ? [formatLoss(droLoss)] : []),
  ];
  return { lines, droLoss };
}

/** Prints the ending of a finished run on `out`; returns its DRO loss summary. */
export async function printRunEnding(
  result: PipelineResult,
  store: ArtifactStore,
  out: (line: string) => void,
): Promise<LossSummary | undefined> {
  const { lines, droLoss } = await runEnding(result, store);
  for (const line of lines) out(line);
  return droLoss;
}

/**
 * Follows a pipeline run to its end: a line per stage change while it runs, then its ending.
 * `wait` wraps the wait for the result (to race it against an interrupt or a failed worker).
 * Throws what the run failed with.
 */
export async function followRunToEnd(
  handle: WorkflowHandle,
  options: {
    store: ArtifactStore;
    out: (line: string) => void;
    wait?: (result: () => Promise<PipelineResult>) => Promise<PipelineResult>;
    everyMs?: number;
  },
): Promise<PipelineResult & { droLoss: LossSummary | undefined }> {
  const stop = new AbortController();
  const following = followProgress(handle, options.out, stop.signal, options.everyMs);
  let result: PipelineResult;
  try {
    const call = (): Promise<PipelineResult> => handle.result() as Promise<PipelineResult>;
    result = await (options.wait ? options.wait(call) : call());
  } finally {
    stop.abort();
    await following;
  }
  const droLoss = await printRunEnding(result, options.store, options.out);
  return { ...result, droLoss };
}
