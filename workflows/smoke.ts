/**
 * The smoke workflow: write an artifact on the compute queue, wait durably, verify it on the I/O
 * queue. The wait (a signal or a timer, whichever comes first) is where a server restart can
 * happen: the workflow must resume from its history and finish.
 */
import {
  condition,
  defineQuery,
  defineSignal,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { TASK_QUEUES } from '../config/task-queues';
import { DRO_STAGE } from '../config/search-attributes';

export interface SmokeInput {
  /** Text written by the first activity and expected back by the second. Default: `dro smoke`. */
  message?: string;
  /** Longest wait between the activities, in ms; the `continueSmoke` signal ends it early. Default: 1000. */
  pauseMs?: number;
}

export interface SmokeResult {
  uri: string;
  /** Hex SHA-256 of the artifact. */
  sha256: string;
  size: number;
}

export type SmokeStage = 'writing' | 'waiting' | 'verifying' | 'done';

/** Ends the wait between the two activities. */
export const continueSmokeSignal = defineSignal('continueSmoke');
/** Where the workflow is; `waiting` means the artifact is written and the verifier has not run. */
export const smokeStageQuery = defineQuery<SmokeStage>('smokeStage');

const compute = proxyActivities<activities.Activities>({
  taskQueue: TASK_QUEUES.gpu,
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

const io = proxyActivities<activities.Activities>({
  taskQueue: TASK_QUEUES.cpu,
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

export async function smokeWorkflow(input: SmokeInput = {}): Promise<SmokeResult> {
  const message = input.message ?? 'dro smoke';
  let stage: SmokeStage = 'writing';
  let released = false;
  setHandler(smokeStageQuery, () => stage);
  setHandler(continueSmokeSignal, () => {
    released = true;
  });
  const enter = (next: SmokeStage): void => {
    stage = next;
    upsertSearchAttributes([{ key: DRO_STAGE, value: `smoke-${next}` }]);
  };

  enter('writing');
  const artifact = await compute.writeSmokeArtifact({ message });
  enter('waiting');
  await condition(() => released, input.pauseMs ?? 1000);
  enter('verifying');
  const verified = await io.verifySmokeArtifact({ artifact, message });
  enter('done');
  return { uri: verified.uri, sha256: verified.sha256, size: verified.size };
}
