/**
 * Per-execution records of a run under `runs/<runId>/executions/<execution>/`: the report
 * (`report.json`, and for people `report.md` + a self-contained `report.html` with the sample
 * grids and loss curves beside it) and the manifest (`manifest.json`). Each execution of a run (a
 * first try, a resume) writes its own, so none is ever replaced; a retried write of the same
 * execution returns what is already there.
 */
import {
  renderReport,
  type DroTermPoint,
  type DroTerms,
  type LinkedRun,
  type ReportData,
} from '../engine/report';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import type { RunReport } from '../contracts/pipeline';
import { activityLogger, keySegment } from './common';
import {
  decodeEvaluationSamples,
  evaluationReportData,
  type EvaluationDocument,
  type EvaluationSamples,
} from './evaluation';
import {
  badInput,
  checkRunId,
  encodeJson,
  finished,
  putArtifact,
  readJsonArtifact,
  stageCall,
  type StageDeps,
} from './stage';

export interface WriteRunRecordInput {
  runId: string;
  /** The execution id (workflows/pipeline.ts executionId). */
  execution: string;
  /** JSON-serializable body. */
  report?: Record<string, unknown>;
  manifest?: Record<string, unknown>;
}

export interface RunReportFiles {
  /** report.json */
  report: ArtifactRef;
  /** report.md */
  markdown: ArtifactRef;
  /** report.html: one file, images inline, renders offline. */
  html: ArtifactRef;
}

/** `runs/<runId>/executions/<execution>/<name>`. */
export function executionKey(runId: string, execution: string, name: string): string {
  return `runs/${keySegment(runId)}/executions/${keySegment(execution)}/${name}`;
}

type HistoryRow = Record<string, unknown>;

/** The DRO hinge's terms per update, from the DRO training summary's history rows. */
export function droTermPoints(history: readonly HistoryRow[] | undefined): DroTermPoint[] {
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const points: DroTermPoint[] = [];
  for (const row of history ?? []) {
    const step = num(row.step);
    if (step === undefined) continue;
    const point: DroTermPoint = { step };
    for (const key of ['diff', 'expertDiff', 'policyDiff', 'hingeOpen'] as const) {
      const v = num(row[key]);
      if (v !== undefined) point[key] = v;
    }
    points.push(point);
  }
  return points;
}

/**
 * The runs that computed this run's reused stages, each linked to its newest report in the store
 * (relative to this report, `runs/<run>/executions/<execution>/report.html`). A run whose report
 * cannot be found is listed without a link.
 */
export async function linkedRuns(store: ArtifactStore, report: RunReport): Promise<LinkedRun[]> {
  const stagesBy = new Map<string, string[]>();
  for (const s of report.stages) {
    const from = s.cache?.hit ? s.cache.fromRun : undefined;
    if (from === undefined || from === report.runId) continue;
    stagesBy.set(from, [...(stagesBy.get(from) ?? []), s.stage]);
  }
  const out: LinkedRun[] = [];
  for (const [runId, stages] of stagesBy) {
    const run: LinkedRun = { runId, relation: `computed ${stages.join(', ')} (reused here)` };
    const prefix = `runs/${keySegment(runId)}/executions/`;
    const keys = await store.list(prefix).catch(() => [] as string[]);
    // Execution ids begin with their start time, so the greatest is the newest.
    const newest = keys
      .filter((k) => /^[^/]+\/report\.html$/.test(k.slice(prefix.length)))
      .sort()
      .at(-1);
    if (newest !== undefined) {
      const execution = newest.slice(prefix.length).split('/')[0]!;
      run.report = ['..', '..', '..', keySegment(runId), 'executions', execution, 'report.html']
        .map((seg) => (seg === '..' ? seg : encodeURIComponent(seg)))
        .join('/');
    }
    out.push(run);
  }
  return out;
}

/** Loss history of a training summary as (step, loss) points. */
function lossPoints(summary: { history?: HistoryRow[] }): { step: number; loss: number }[] {
  return (summary.history ?? []).flatMap((h) =>
    typeof h.step === 'number' && typeof h.loss === 'number' ? [{ step: h.step, loss: h.loss }] : [],
  );
}

export function createReportActivities(deps: StageDeps) {
  async function write(
    input: WriteRunRecordInput,
    name: string,
    kind: string,
    bytes: Uint8Array,
  ): Promise<ArtifactRef> {
    const key = executionKey(input.runId, input.execution, name);
    const done = await finished(deps.store, key);
    if (done) return done.ref;
    return putArtifact(deps.store, key, bytes, { kind, producer: 'pipelineWorkflow' });
  }
  function check(input: WriteRunRecordInput, body: unknown, field: string): void {
    checkRunId(input.runId);
    if (typeof input.execution !== 'string' || input.execution === '')
      throw badInput('field "execution" must be a non-empty string');
    if (typeof body !== 'object' || body === null) throw badInput(`field "${field}" must be an object`);
  }

  /** The report's content for people, from the run report and the artifacts it names. */
  async function reportData(report: RunReport): Promise<ReportData> {
    const lossCurves = [];
    let droTerms: DroTerms | undefined;
    for (const [stage, ref] of Object.entries(report.summaries)) {
      if (!ref) continue;
      const summary = await readJsonArtifact<{ history?: HistoryRow[] }>(deps.store, ref);
      lossCurves.push({ stage, points: lossPoints(summary) });
      if (stage === 'dro') {
        const margin = (report.config as { dro?: { margin?: unknown } } | undefined)?.dro?.margin;
        droTerms = {
          ...(typeof margin === 'number' ? { margin } : {}),
          points: droTermPoints(summary.history),
        };
      }
    }
    const links = await linkedRuns(deps.store, report);
    const data: ReportData = {
      runId: report.runId,
      name: report.name,
      createdAt: report.finishedAt,
      config: report.config,
      configHash: report.configHash ?? '',
      stages: report.stages
        .filter((s) => s.status === 'done')
        .map((s) => ({
          stage: s.stage,
          wallSeconds: s.seconds ?? 0,
          cacheHit: s.cache?.hit ?? false,
          ...(s.cache?.hit && s.cache.fromRun !== undefined ? { fromRun: s.cache.fromRun } : {}),
        })),
      artifacts: report.stages.flatMap((s) =>
        Object.entries(s.artifacts ?? {}).map(([role, ref]) => ({
          role: `${s.stage}/${role}`,
          uri: ref.uri,
          sha256: ref.sha256,
        })),
      ),
      geneval: [],
      winRates: [],
      lossCurves,
      ...(droTerms ? { droTerms } : {}),
      ...(links.length ? { linkedRuns: links } : {}),
    };
    const reward = report.rewardModel;
    if (reward?.accuracy != null && reward.identity)
      data.reward = {
        name: reward.identity.name,
        accuracy: reward.accuracy,
        heldOutPairs: reward.accuracyPairs,
      };
    if (report.expertSet?.provenance) data.expertProvenance = report.expertSet.provenance.generators;
    if (report.evaluation) {
      const doc = await readJsonArtifact<EvaluationDocument>(deps.store, report.evaluation.evaluation);
      Object.assign(data, evaluationReportData(doc));
      const samples = await readJsonArtifact<EvaluationSamples>(deps.store, report.evaluation.samples);
      data.samples = decodeEvaluationSamples(samples);
    }
    return data;
  }

  return {
    /** Writes report.json, report.md, report.html and the images the report shows. */
    async writeRunReport(input: WriteRunRecordInput): Promise<RunReportFiles> {
      const log = activityLogger(deps.logger);
      check(input, input.report, 'report');
      const report = input.report as unknown as RunReport;
      const json = await write(input, 'report.json', 'run-report', encodeJson(report));
      const files = await stageCall('report', async () => renderReport(await reportData(report)));
      const refs: Record<string, ArtifactRef> = {};
      // The HTML and Markdown come last: a report file never names an image that is not written yet.
      const names = Object.keys(files).sort(
        (a, b) => Number(a.startsWith('report.')) - Number(b.startsWith('report.')),
      );
      for (const name of names) refs[name] = await write(input, name, 'run-report-view', files[name]!);
      log.info({ html: refs['report.html']?.uri }, 'run report written');
      return { report: json, markdown: refs['report.md']!, html: refs['report.html']! };
    },
    async writeRunManifest(input: WriteRunRecordInput): Promise<ArtifactRef> {
      check(input, input.manifest, 'manifest');
      const ref = await write(input, 'manifest.json', 'run-manifest', encodeJson(input.manifest));
      activityLogger(deps.logger).info({ uri: ref.uri }, 'run manifest written');
      return ref;
    },
  };
}
