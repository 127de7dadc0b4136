/**
 * The training workflow on a real dev server and local store, workers in this process:
 * continue-as-new with progress query and search attribute, cancellation at an update boundary,
 * a NaN failing the workflow without retries, and a corrupt checkpoint refused on resume.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import { checkpointKey } from '../../activities/training';
import { initBackend } from '../../engine/backend';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import {
  trainingProgressQuery,
  type TrainChunkHeartbeat,
  type TrainingWorkflowInput,
} from '../../contracts/training';
import { trainingWorkflow } from '../../workflows/training';
import { startTemporalHarness, type RunningWorkers, type TemporalHarness } from '../harness/temporal';
import { putTinyInputs, tinyDroSettings } from '../harness/training-worker';

let temporal: TemporalHarness;
let storeDir: string;
let store: LocalArtifactStore;
let workers: RunningWorkers | undefined;
let inputs: { startModel: ArtifactRef; data: ArtifactRef };

function input(
  runId: string,
  steps: number,
  extra: Partial<TrainingWorkflowInput> = {},
): TrainingWorkflowInput {
  return {
    runId,
    stage: 'dro',
    settings: tinyDroSettings(steps),
    ...inputs,
    stepsPerActivity: steps,
    heartbeatTimeoutSeconds: 3,
    ...extra,
  };
}

function start(workflowId: string, args: TrainingWorkflowInput) {
  return temporal.client.workflow.start(trainingWorkflow, {
    taskQueue: WORKFLOW_TASK_QUEUE,
    workflowId,
    args: [args],
  });
}

async function failureOf(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const err = await handle.result().then(
    () => assert.fail('the workflow succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
  return err.cause;
}

async function chunkAttempts(handle: WorkflowHandle): Promise<number[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
}

before(async () => {
  await initBackend('wasm');
  temporal = await startTemporalHarness();
  storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-training-workflow-'));
  store = new LocalArtifactStore({ root: storeDir });
  inputs = await putTinyInputs(store);
  workers = await temporal.startWorkers({ store });
});

after(async () => {
  await workers?.stop();
  await temporal?.teardown();
  if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
});

describe('training workflow', { timeout: 180_000 }, () => {
  test('continues as new between chunks and reports progress', async () => {
    const handle = await start('training-can', input('can', 8, { stepsPerActivity: 4, chunksPerRun: 1 }));
    const result = await handle.result();
    assert.equal(result.steps, 8);
    assert.equal(result.lastCheckpoint.uri, `${store.baseUri}/${checkpointKey('can', 'dro', 8)}`);
    const first = await temporal.client.workflow
      .getHandle('training-can', handle.firstExecutionRunId)
      .describe();
    assert.equal(first.status.name, 'CONTINUED_AS_NEW');
    const progress = await handle.query(trainingProgressQuery);
    assert.deepEqual(
      { stage: progress.stage, step: progress.step, totalSteps: progress.totalSteps },
      { stage: 'dro', step: 8, totalSteps: 8 },
    );
    assert.equal(progress.lastMetrics?.step, 8);
    const latest = await handle.describe();
    assert.deepEqual(latest.searchAttributes.DroStage, ['dro:8/8']);
    const summary = JSON.parse(
      new TextDecoder().decode(await store.get(result.summary.uri, result.summary.sha256)),
    ) as { totalChunks: number; chunks: Array<{ fromStep: number }>; history: unknown[] };
    assert.equal(summary.totalChunks, 2);
    assert.deepEqual(
      summary.chunks.map((c) => c.fromStep),
      [0, 4],
    );
    assert.equal(summary.history.length, 4);
  });

  test('cancelling stops the running chunk at an update boundary and keeps its checkpoint', async () => {
    const handle = await start('training-cancel', input('cancel', 40));
    for (;;) {
      const { raw } = await handle.describe();
      const payload = raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
      const beat = payload ? defaultPayloadConverter.fromPayload<TrainChunkHeartbeat>(payload) : undefined;
      if (beat?.checkpoint) break;
      await sleep(150);
    }
    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail('the workflow finished despite the cancellation'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
    const keys = (await store.list('runs/cancel/dro/checkpoints/')).sort();
    assert.ok(keys.length > 0);
    assert.ok(!keys.includes(checkpointKey('cancel', 'dro', 40)), 'ran to the end despite the cancellation');
    const progress = await handle.query(trainingProgressQuery);
    assert.equal(
      progress.checkpoint?.uri,
      `${store.baseUri}/${keys.at(-1)!}`,
      'query does not name the kept checkpoint',
    );
    assert.equal(progress.step % 2, 0);
  });

  test('a NaN fails the workflow with a non-retryable NonFiniteTrainingError and keeps the good checkpoint', async () => {
    const settings = tinyDroSettings(40, { learningRate: 1e30, weightDecay: 0 });
    const handle = await start('training-nan', input('nan', 40, { settings }));
    const failure = await failureOf(handle);
    assert.equal(failure.type, 'NonFiniteTrainingError');
    assert.equal(failure.nonRetryable, true);
    const step = (failure.details?.[0] as { step: number }).step;
    assert.match(failure.message, new RegExp(`^dro training: .* at micro-step ${step}\\b`));
    assert.deepEqual(await chunkAttempts(handle), [1], 'the failed chunk was retried');
    const keys = await store.list('runs/nan/dro/checkpoints/');
    assert.ok(keys.includes(checkpointKey('nan', 'dro', 2)), `no good checkpoint kept: ${keys.join(', ')}`);
  });

  test('resuming from a corrupt checkpoint fails at once with DigestMismatchError', async () => {
    const first = await start('training-good', input('good', 2)).then((h) => h.result());
    const file = new URL(first.lastCheckpoint.uri).pathname;
    const bytes = fs.readFileSync(file);
    bytes[100]! ^= 0x01;
    fs.writeFileSync(file, bytes);
    const handle = await start(
      'training-corrupt',
      input('corrupt', 4, { stepsPerActivity: 2, resume: { checkpoint: first.lastCheckpoint, step: 2 } }),
    );
    const failure = await failureOf(handle);
    assert.equal(failure.type, 'DigestMismatchError');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /step-0000002\.safetensors/);
    assert.deepEqual(await chunkAttempts(handle), [1]);
  });

  test('a stage run with the wrong method is refused before any activity', async () => {
    const handle = await start('training-bad-stage', input('bad-stage', 2, { stage: 'sft' }));
    const failure = await failureOf(handle);
    assert.equal(failure.type, 'TrainingInputError');
    assert.match(failure.message, /stage 'sft' needs method 'sft', got 'dro'/);
    assert.deepEqual(await chunkAttempts(handle), []);
  });
});
