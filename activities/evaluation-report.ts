/**
 * The report of an evaluation that is not a pipeline run's (`dro eval`, a scheduled evaluation):
 * the same pages a run's report has, built from evaluation.json and samples.json, written under
 * `<out>/report/`. The CLI calls `writeEvaluationReport` directly; a scheduled evaluation calls it
 * as the activity `writeEvaluationReport`, so both write the same report.
 */
import type { EvalModelInput } from '../contracts/evaluation';
import { renderReport, type ReportData } from '../engine/report';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import {
  decodeEvaluationSamples,
  evaluationReportData,
  type EvaluationDocument,
  type EvaluationSamples,
} from './evaluation';
import { activityLogger, storeCall } from './common';
import { finished, readJsonArtifact, type StageDeps } from './stage';

/** One line on the suite an evaluation judged and what it left out, for the output and the report. */
export function suiteSummary(doc: EvaluationDocument, like?: string): string {
  const s = doc.suite;
  const exclusion =
    s.trainingPrompts === 0
      ? like === undefined
        ? 'no training prompts excluded (name a run with --like to use its suite rules)'
        : 'no training prompts to exclude'
      : `${s.excluded} of ${s.drawn} drawn prompts excluded as training prompts${like ? ` of run ${like}` : ''}`;
  const rewards = [...new Set([doc.preferenceReward, ...doc.rewards.map((r) => r.name)])].join(', ');
  return `${s.source}; ${exclusion}; ${s.genevalPrompts} GenEval and ${s.winratePrompts} win-rate prompts; win rates under ${rewards}`;
}

export function reportFromEvaluation(
  id: string,
  doc: EvaluationDocument,
  samples: EvaluationSamples,
  extra: { config: unknown; artifacts: ReportData['artifacts'] },
): ReportData {
  return {
    runId: id,
    name: id,
    createdAt: new Date().toISOString(),
    config: extra.config,
    configHash: '',
    stages: [],
    artifacts: extra.artifacts,
    lossCurves: [],
    ...evaluationReportData(doc),
    samples: decodeEvaluationSamples(samples),
  };
}

export async function writeFiles(
  store: ArtifactStore,
  prefix: string,
  files: Record<string, Uint8Array>,
): Promise<Record<string, ArtifactRef>> {
  const refs: Record<string, ArtifactRef> = {};
  const names = Object.keys(files).sort(
    (a, b) => Number(a.startsWith('report.')) - Number(b.startsWith('report.')),
  );
  for (const name of names)
    refs[name] = await store.put(`${prefix}/${name}`, files[name]!, { kind: 'report-view', producer: 'dro' });
  return refs;
}

export interface EvaluationReportInput {
  /** The evaluation's id: `dro eval`'s `eval-...` or the scheduled workflow's id. */
  id: string;
  /** The evaluation's key prefix; the report goes under `<out>/report/`. */
  out: string;
  evaluation: ArtifactRef;
  samples: ArtifactRef;
  models: EvalModelInput[];
  /** Shown in the report's settings section. */
  config: unknown;
  /** The run a `--like` or `--latest-of` evaluation took its rules or models from. */
  like?: string;
}

export interface EvaluationReportFiles {
  html: ArtifactRef;
  markdown: ArtifactRef;
  /** One line on the suite and its exclusions (suiteSummary). */
  suite: string;
}

/** Renders and writes an evaluation's report; a second call returns what the first wrote. */
export async function writeEvaluationReport(
  store: ArtifactStore,
  input: EvaluationReportInput,
): Promise<EvaluationReportFiles> {
  const doc = await readJsonArtifact<EvaluationDocument>(store, input.evaluation);
  const suite = suiteSummary(doc, input.like);
  const prefix = `${input.out}/report`;
  const html = await finished(store, `${prefix}/report.html`);
  const markdown = await finished(store, `${prefix}/report.md`);
  if (html && markdown) return { html: html.ref, markdown: markdown.ref, suite };
  const samples = await readJsonArtifact<EvaluationSamples>(store, input.samples);
  const files = renderReport(
    reportFromEvaluation(input.id, doc, samples, {
      config: { ...(input.config as object), suite, ...(input.like && { like: input.like }) },
      artifacts: [
        ...input.models.map((m) => ({ role: `model/${m.name}`, uri: m.model.uri, sha256: m.model.sha256 })),
        { role: 'evaluation', uri: input.evaluation.uri, sha256: input.evaluation.sha256 },
      ],
    }),
  );
  const written = await storeCall(() => writeFiles(store, prefix, files));
  return { html: written['report.html']!, markdown: written['report.md']!, suite };
}

export function createEvaluationReportActivities(deps: StageDeps) {
  return {
    /** The report of a scheduled evaluation (I/O queue). */
    async writeEvaluationReport(input: EvaluationReportInput): Promise<EvaluationReportFiles> {
      const files = await writeEvaluationReport(deps.store, input);
      activityLogger(deps.logger).info({ report: files.html.uri }, 'evaluation report written');
      return files;
    },
  };
}
