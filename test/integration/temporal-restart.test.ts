/**
 * Durability: the dev server is stopped while the smoke workflow waits between its activities and
 * started again on the same database file; the workflow resumes from its history and completes
 * without running its first activity again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalArtifactStore } from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { continueSmokeSignal, smokeStageQuery, type SmokeStage } from '../../contracts/smoke';
import { smokeWorkflow } from '../../workflows/smoke';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';

async function waitForStage(temporal: TemporalHarness, workflowId: string, stage: SmokeStage): Promise<void> {
  const handle = temporal.client.workflow.getHandle(workflowId);
  const deadline = Date.now() + 30_000;
  let last: SmokeStage | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(smokeStageQuery);
    if (last === stage) return;
    await sleep(100);
  }
  assert.fail(`workflow ${workflowId} did not reach stage ${stage} (last: ${last})`);
}

describe('Temporal dev server restart', { timeout: 120_000 }, () => {
  let temporal: TemporalHarness;
  let storeDir: string;

  before(async () => {
    temporal = await startTemporalHarness();
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-restart-store-'));
  });

  after(async () => {
    await temporal?.teardown();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  });

  test('a workflow waiting between activities survives a server restart', async () => {
    const store = new LocalArtifactStore({ root: storeDir });
    const workers = await temporal.startWorkers({ store });
    try {
      const workflowId = 'smoke-restart';
      // A wait far longer than the test: only the signal sent after the restart can end it.
      const handle = await temporal.client.workflow.start(smokeWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId,
        args: [{ message: 'across a restart', pauseMs: 10 * 60_000 }],
      });
      await waitForStage(temporal, workflowId, 'waiting');

      const pidBefore = temporal.server.pid;
      await temporal.restartServer();
      assert.notEqual(temporal.server.pid, pidBefore, 'the server process was not replaced');

      await handle.signal(continueSmokeSignal);
      const result = await handle.result();
      assert.equal((await store.head(result.uri))?.ref.sha256, result.sha256);

      const history = await handle.fetchHistory();
      const scheduled = (history.events ?? [])
        .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
        .filter((name) => name !== undefined);
      assert.deepEqual(scheduled, ['writeSmokeArtifact', 'verifySmokeArtifact']);
      const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
      assert.deepEqual(
        started.map((e) => e.activityTaskStartedEventAttributes?.attempt),
        [1, 1],
        'an activity ran more than once',
      );
    } finally {
      await workers.stop();
    }
  });
});
