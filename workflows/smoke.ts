/**
 * The smoke workflow: write an artifact on the compute queue, wait durably, verify it on the I/O
 * queue. The wait (a signal or a timer, whichever comes first) is where a server restart can
 * happen: the workflow must resume from its history and finish.
 */
import { condition, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type * as activities from '../activities';
import { DRO_STAGE } from '../contracts/search-attributes';
import {
  continueSmokeSignal,
  smokeStageQuery,
  type SmokeInput,
  type SmokeResult,
  type SmokeStage,
} from '../contracts/smoke';
import { TASK_QUEUES } from '../contracts/task-queues';

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
