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
  };
}

export type Activities = ReturnType<typeof createActivities>;
