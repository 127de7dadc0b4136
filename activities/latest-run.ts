/**
 * `resolveLatestRun` (I/O queue): the newest completed pipeline run of a config hash, found in the
 * cluster's visibility store when it is called, with the models it produced and the reward model
 * and preference set its own evaluation used. A scheduled evaluation (`dro schedule create
 * --latest-of`) calls it at every trigger, so each evaluation follows the newest run.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../infra/logger';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import { isSha256Hex } from '../storage/digest';
import type { EvalModelInput, EvalRewardInput } from '../contracts/evaluation';
import type { PipelineResult, RunManifest } from '../contracts/pipeline';
import { activityLogger, storeCall } from './common';

export interface LatestRunInput {
  /** `DroConfigHash` of the runs to choose from (`dro runs show` prints it). */
  configHash: string;
}

export interface LatestRunResult {
  runId: string;
  /** When the chosen run closed (ISO-8601). */
  closedAt: string;
  manifest: ArtifactRef;
  /** The run's models under their stage names, as its own evaluation named them. */
  models: EvalModelInput[];
  /** The run's reward model, unless it ranked with the built-in detector. */
  rewards: EvalRewardInput[];
  /** The run's preference set, so its training prompts stay out of the evaluation suite. */
  trainingPrompts?: ArtifactRef;
}

/** A completed pipeline run as the visibility store lists it. */
export interface CompletedRun {
  workflowId: string;
  closeTime?: Date;
}

export interface LatestRunDeps {
  store: ArtifactStore;
  logger: Logger;
  /**
   * Completed pipeline runs of a config hash, and the result of one. Default: the worker's own
   * Temporal client (visibility query, then the run's result from its history).
   */
  runs?: {
    list(configHash: string): AsyncIterable<CompletedRun>;
    result(workflowId: string): Promise<PipelineResult>;
  };
}

export const NO_COMPLETED_RUN = 'NoCompletedRunError';

/** The visibility query for completed pipeline runs of `configHash` (a checked hex digest). */
export function completedRunsQuery(configHash: string): string {
  return `WorkflowType = 'pipelineWorkflow' AND ExecutionStatus = 'Completed' AND DroConfigHash = '${configHash}'`;
}

/** The run that closed last; ties go to the greater workflow id, so the choice is stable. */
export function newestRun(runs: readonly CompletedRun[]): CompletedRun | undefined {
  let best: CompletedRun | undefined;
  for (const r of runs) {
    const t = r.closeTime?.getTime() ?? 0;
    const b = best?.closeTime?.getTime() ?? 0;
    if (best === undefined || t > b || (t === b && r.workflowId > best.workflowId)) best = r;
  }
  return best;
}

/** The models a run produced, named by stage, base first (the evaluation's baseline). */
export function runModels(result: Pick<PipelineResult, 'models'>): EvalModelInput[] {
  return (['base', 'sft', 'dro', 'dpo'] as const)
    .filter((name) => result.models[name] !== undefined)
    .map((name) => ({ name, model: result.models[name]! }));
}

function artifactOf(manifest: RunManifest, stage: string, role: string): ArtifactRef | undefined {
  const a = manifest.artifacts.find((x) => x.stage === stage && x.role === role);
  return a && { uri: a.uri, sha256: a.sha256, size: a.size };
}

function clientRuns(): NonNullable<LatestRunDeps['runs']> {
  return {
    async *list(configHash) {
      for await (const w of Context.current().client.workflow.list({ query: completedRunsQuery(configHash) }))
        yield { workflowId: w.workflowId, ...(w.closeTime && { closeTime: w.closeTime }) };
    },
    result: (workflowId) =>
      Context.current().client.workflow.getHandle(workflowId).result() as Promise<PipelineResult>,
  };
}

function notFound(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: NO_COMPLETED_RUN, nonRetryable: true });
}

export function createLatestRunActivities(deps: LatestRunDeps) {
  const { store } = deps;
  return {
    async resolveLatestRun(input: LatestRunInput): Promise<LatestRunResult> {
      const hash = input.configHash;
      if (typeof hash !== 'string' || !isSha256Hex(hash))
        throw ApplicationFailure.create({
          message: `field "configHash" must be a config hash (64 lower-case hex digits), got ${JSON.stringify(hash)}`,
          type: 'PipelineBadInput',
          nonRetryable: true,
        });
      const runs = deps.runs ?? clientRuns();
      const completed: CompletedRun[] = [];
      for await (const r of runs.list(hash)) completed.push(r);
      const newest = newestRun(completed);
      if (newest === undefined)
        throw notFound(
          `no completed run with config hash ${hash} on this cluster (see \`dro runs list --config-hash ${hash}\`)`,
        );
      const result = await runs.result(newest.workflowId);
      const manifestBytes = await storeCall(() => store.get(result.manifest.uri, result.manifest.sha256));
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as RunManifest;
      const models = runModels(result);
      for (const m of models) {
        if (!(await storeCall(() => store.exists(m.model.uri))))
          throw notFound(
            `run ${newest.workflowId} (config hash ${hash}): its ${m.name} model ${m.model.uri} is no longer in the store`,
          );
      }
      const reward = artifactOf(manifest, 'reward', 'reward');
      const rewardModel = manifest.config.ranking.rewardModel;
      const trainingPrompts = artifactOf(manifest, 'preferences', 'preferences');
      const closedAt = (newest.closeTime ?? new Date(manifest.finishedAt)).toISOString();
      activityLogger(deps.logger).info(
        { configHash: hash, runId: newest.workflowId, closedAt, candidates: completed.length },
        'newest completed run resolved',
      );
      return {
        runId: newest.workflowId,
        closedAt,
        manifest: result.manifest,
        models,
        rewards: rewardModel !== 'detector' && reward ? [{ name: rewardModel, reward }] : [],
        ...(trainingPrompts && { trainingPrompts }),
      };
    },
  };
}
