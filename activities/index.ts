/**
 * All activities, built from their dependencies when a worker is created:
 *
 * ```ts
 * const activities = createActivities({ store: new LocalArtifactStore(dir), logger: logger() });
 * await Worker.create({ taskQueue: TASK_QUEUES.cpu, activities, ... });
 * ```
 *
 * Workflows import this module as types only (`import type * as activities from '../activities'`).
 */
import type { Logger } from '../infra/logger';
import type { ArtifactStore } from '../storage/artifact-store';
import { createSmokeActivities } from './smoke';
import { createTrainingActivities } from './training';
import { createPreferenceActivities } from './preferences';
import { createRankingActivities } from './ranking';
import { createReportActivities } from './report';
import { createRewardActivities } from './reward';
import { createStageCacheActivities } from './stage-cache';
import { createEvaluationActivities } from './evaluation';
import { createEvaluationReportActivities } from './evaluation-report';
import { createLatestRunActivities } from './latest-run';
import { createWorldActivities } from './world';

export type { SmokeArtifact, VerifySmokeInput, WriteSmokeInput } from './smoke';
export { SMOKE_ERRORS } from './smoke';

/** What activities may use; tests pass fakes or temporary stores. */
export interface ActivityDeps {
  store: ArtifactStore;
  logger: Logger;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createSmokeActivities(deps),
    ...createTrainingActivities(deps),
    ...createWorldActivities(deps),
    ...createPreferenceActivities(deps),
    ...createRewardActivities(deps),
    ...createRankingActivities(deps),
    ...createReportActivities(deps),
    ...createStageCacheActivities(deps),
    ...createEvaluationActivities(deps),
    ...createEvaluationReportActivities(deps),
    ...createLatestRunActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

/**
 * Which activities each task queue's worker registers; the workflows' proxies use the same split.
 * A worker of one queue never picks up the other queue's work.
 */
export const QUEUE_ACTIVITIES = {
  gpu: [
    'writeSmokeArtifact',
    'prepareWorld',
    'simulatePreferences',
    'trainRewardModel',
    'rankExperts',
    'scoreRankingShards',
    'trainChunk',
    'finalizeTraining',
    'findCheckpoint',
    'evaluateShard',
    'summarizeEvaluation',
  ],
  cpu: [
    'verifySmokeArtifact',
    'importBaseModel',
    'importPreferences',
    'writeRunReport',
    'writeRunManifest',
    'lookupStage',
    'commitStage',
    'planEvaluation',
    'writeEvaluationReport',
    'resolveLatestRun',
  ],
} as const satisfies Record<'gpu' | 'cpu', readonly (keyof Activities)[]>;

/** The activities a worker of `queue` registers. */
export function activitiesForQueue(queue: 'gpu' | 'cpu', all: Activities): Partial<Activities> {
  const names: readonly string[] = QUEUE_ACTIVITIES[queue];
  return Object.fromEntries(
    Object.entries(all).filter(([name]) => names.includes(name)),
  ) as Partial<Activities>;
}
