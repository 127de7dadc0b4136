/**
 * The headline durability property: a DRO training whose compute worker process is SIGKILLed in
 * the middle of a chunk resumes on a new worker process from the newest checkpoint the dead attempt
 * committed, and ends byte-identical (EMA UNet, model bundle, last checkpoint, loss history) to
 * the same training run without interruption. That holds also for a kill right after a checkpoint
 * is committed, before its heartbeat can reach the server (the SDK throttles heartbeats): the
 * retry finds the checkpoint in the store. Real dev server, real local store and S3 server
 * (versitygw), worker processes spawned with `node --import tsx test/harness/training-worker.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { initBackend } from '../../engine/backend';
import {
  LocalArtifactStore,
  openStore,
  type S3ArtifactStore,
  type ArtifactRef,
  type ArtifactStore,
} from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import type {
  ChunkRecord,
  TrainChunkHeartbeat,
  TrainingWorkflowInput,
  TrainingWorkflowResult,
} from '../../contracts/training';
import { trainingWorkflow } from '../../workflows/training';
import { startTemporalHarness, type RunningWorkers, type TemporalHarness } from '../harness/temporal';
import { startS3Server } from '../harness/s3-server';
import { putTinyInputs, tinyDroSettings, tinySftSettings } from '../harness/training-worker';
import { checkpointFileName } from '../../engine/training/checkpoint-selection';

const ROOT = path.resolve(__dirname, '..', '..');
const WORKER = path.join(ROOT, 'test', 'harness', 'training-worker.ts');
const STEPS = 24;
const STEPS_PER_ACTIVITY = 12;

interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  stderr: () => string;
}

function spawnWorker(
  temporal: TemporalHarness,
  storeConfig: object,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      DRO_TEST_STORE: JSON.stringify(storeConfig),
      DRO_TF_BACKEND: 'wasm',
      DRO_TRAINING_HEARTBEAT_SECONDS: '1',
      NODE_NO_WARNINGS: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-500_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start in 60 s:\n${err}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve({ child, exited, stderr: () => err });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}) before it was ready:\n${err}`));
    });
  });
}

async function stopWorker(w: WorkerProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!w || w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill(signal);
  const forced = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
  await w.exited;
  clearTimeout(forced);
}

/** The checkpoint step the server holds in a running trainChunk's heartbeat details, if any. */
async function heartbeatedStep(handle: WorkflowHandle): Promise<number | undefined> {
  const { raw } = await handle.describe();
  for (const a of raw.pendingActivities ?? []) {
    const payload = a.activityType?.name === 'trainChunk' ? a.heartbeatDetails?.payloads?.[0] : undefined;
    if (!payload) continue;
    const beat = defaultPayloadConverter.fromPayload<TrainChunkHeartbeat>(payload);
    if (typeof beat.checkpointStep === 'number') return beat.checkpointStep;
  }
  return undefined;
}

/** The JSON log lines of a worker's stderr with the given message. */
function logLines(stderr: string, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === msg) out.push(entry);
    } catch {
      // not a log line
    }
  }
  return out;
}

async function readSummary(store: ArtifactStore, ref: ArtifactRef) {
  return JSON.parse(new TextDecoder().decode(await store.get(ref.uri, ref.sha256))) as {
    history: Array<Record<string, number>>;
    steps: number;
    chunks: ChunkRecord[];
    totalChunks: number;
  };
}

describe('training durability', { timeout: 600_000 }, () => {
  let temporal: TemporalHarness;
  let storeDir: string;
  let store: LocalArtifactStore;
  let workflowWorkers: RunningWorkers | undefined;
  const spawned: WorkerProcess[] = [];
  let baseInput: Omit<TrainingWorkflowInput, 'runId'> | undefined;
  let localStraight: TrainingWorkflowResult | undefined;

  before(async () => {
    await initBackend('wasm');
    temporal = await startTemporalHarness();
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-training-durability-'));
    store = new LocalArtifactStore({ root: storeDir });
    // Workflows only here; the compute queue is served by the spawned processes.
    workflowWorkers = await temporal.startWorkers({ store, taskQueues: [TASK_QUEUES.cpu] });
  });

  after(async () => {
    for (const w of spawned) await stopWorker(w, 'SIGKILL');
    await workflowWorkers?.stop();
    await temporal?.teardown();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  });

  /**
   * Runs `input` with a worker process that SIGKILLs itself the moment the checkpoint of micro-step
   * `killAfter` is committed (before the activity can heartbeat it, so the server holds at most an
   * older checkpoint), finishes it on a fresh worker process, and checks from the chunk records and
   * that worker's step log that the retry continued from exactly that checkpoint.
   */
  async function runHardKilled(
    workflowId: string,
    input: TrainingWorkflowInput,
    killAfter: number,
    storeConfig: object,
    runStore: ArtifactStore,
  ) {
    const first = await spawnWorker(temporal, storeConfig, {
      DRO_TEST_SIGKILL_AFTER_CHECKPOINT: String(killAfter),
    });
    spawned.push(first);
    const t0 = Date.now();
    const handle = await temporal.client.workflow.start(trainingWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId,
      args: [input],
    });
    const outcome = handle.result();
    outcome.catch(() => undefined);
    const ended = await Promise.race([
      first.exited.then(() => 'killed'),
      outcome.then(
        () => 'finished',
        () => 'failed',
      ),
      sleep(180_000).then(() => 'timed out'),
    ]);
    assert.equal(ended, 'killed', `the worker was not killed at step ${killAfter}:\n${first.stderr()}`);
    assert.equal(first.child.signalCode, 'SIGKILL');
    const killMs = Date.now() - t0;
    // Committed, but never heartbeated: only the store knows of it.
    const key = `${input.out ?? `runs/${input.runId}/${input.stage}`}/checkpoints/${checkpointFileName(killAfter)}`;
    const committed = await runStore.head(key);
    assert.ok(committed, `${key} was not committed`);
    const beat = await heartbeatedStep(handle);
    assert.ok(beat === undefined || beat < killAfter, `the server holds a heartbeat of step ${beat}`);

    const second = await spawnWorker(temporal, storeConfig, { DRO_LOG_LEVEL: 'info' });
    spawned.push(second);
    const result: TrainingWorkflowResult = await outcome;
    const totalMs = Date.now() - t0;
    await stopWorker(second);
    assert.equal(result.steps, input.settings.steps);

    const summary = await readSummary(runStore, result.summary);
    const retried = summary.chunks.filter((c) => c.attempt >= 2);
    assert.equal(retried.length, 1, JSON.stringify(summary.chunks));
    assert.equal(retried[0]!.restoredFrom, 'store', JSON.stringify(retried[0]));
    assert.equal(retried[0]!.fromStep, killAfter, JSON.stringify(retried[0]));
    assert.deepEqual(retried[0]!.restoredCheckpoint, {
      uri: committed.ref.uri,
      sha256: committed.ref.sha256,
      step: killAfter,
    });
    // The step log of the worker that took over: the retried chunk started at that checkpoint and
    // no micro-step up to it was trained (or checkpointed) again.
    const log = second.stderr();
    const started = logLines(log, 'training chunk started');
    assert.ok(started.length >= 1, log.slice(-5000));
    assert.deepEqual(
      [started[0]!.fromStep, started[0]!.restoredFrom, started[0]!.checkpoint],
      [killAfter, 'store', committed.ref.uri],
    );
    assert.ok((started[0]!.attempt as number) >= 2);
    const written = logLines(log, 'checkpoint written').map((l) => l.step as number);
    assert.equal(written[0], killAfter + input.settings.checkpointEvery, JSON.stringify(written));
    const progress = logLines(log, 'training progress').map((l) => l.step as number);
    assert.ok(
      progress.every((step) => step > killAfter),
      `trained again up to ${Math.min(...progress)}`,
    );
    return { result, summary, killMs, totalMs };
  }

  test('a worker SIGKILLed mid-chunk resumes from its heartbeated checkpoint and ends bit-identical', async () => {
    const inputs = await putTinyInputs(store);
    const base: Omit<TrainingWorkflowInput, 'runId'> = {
      stage: 'dro',
      settings: tinyDroSettings(STEPS),
      ...inputs,
      stepsPerActivity: STEPS_PER_ACTIVITY,
      heartbeatTimeoutSeconds: 3,
    };
    const t0 = Date.now();
    const first = await spawnWorker(temporal, { kind: 'local', root: storeDir });
    spawned.push(first);
    const handle = await temporal.client.workflow.start(trainingWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId: 'training-killed',
      args: [{ ...base, runId: 'killed' }],
    });
    const outcome = handle.result();
    outcome.catch(() => undefined);

    // Kill once the server holds a checkpoint heartbeat from inside a chunk (not at its end), so
    // the only way to continue without redoing the chunk is to resume from that heartbeat.
    let killedAt: number | undefined;
    while (killedAt === undefined) {
      const step = await heartbeatedStep(handle).catch(() => undefined);
      if (step !== undefined && step % STEPS_PER_ACTIVITY !== 0) killedAt = step;
      else if (
        await Promise.race([
          outcome.then(
            () => true,
            () => true,
          ),
          sleep(150).then(() => false),
        ])
      ) {
        assert.fail(
          `the workflow ended before a mid-chunk checkpoint heartbeat was seen:\n${first.stderr()}`,
        );
      }
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const killMs = Date.now() - t0;
    const second = await spawnWorker(temporal, { kind: 'local', root: storeDir });
    spawned.push(second);
    const killed: TrainingWorkflowResult = await outcome;
    const killedMs = Date.now() - t0;

    const t1 = Date.now();
    const straight = await temporal.client.workflow.execute(trainingWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId: 'training-straight',
      args: [{ ...base, runId: 'straight' }],
    });
    const straightMs = Date.now() - t1;
    await stopWorker(second);
    baseInput = base;
    localStraight = straight;

    assert.equal(killed.steps, STEPS);
    assert.notEqual(killed.unet.uri, straight.unet.uri);
    assert.equal(killed.unet.sha256, straight.unet.sha256, 'EMA UNet differs after the kill');
    assert.equal(killed.model.sha256, straight.model.sha256, 'model bundle differs after the kill');
    assert.equal(killed.lastCheckpoint.sha256, straight.lastCheckpoint.sha256);
    const a = await readSummary(store, killed.summary);
    const b = await readSummary(store, straight.summary);
    assert.equal(a.history.length, STEPS / 2);
    assert.deepEqual(a.history, b.history);

    // The retried chunk started from the killed attempt's heartbeated checkpoint or a newer one it
    // committed (found in the store), not from scratch.
    const resumed = a.chunks.find((c) => c.restoredFrom === 'heartbeat' || c.restoredFrom === 'store');
    assert.ok(resumed, `no chunk resumed from a checkpoint: ${JSON.stringify(a.chunks)}`);
    assert.ok(resumed.attempt >= 2);
    assert.ok(
      resumed.fromStep >= killedAt && resumed.fromStep % STEPS_PER_ACTIVITY !== 0,
      JSON.stringify(resumed),
    );
    assert.deepEqual(
      b.chunks.map((c) => [c.fromStep, c.toStep, c.restoredFrom]),
      [
        [0, 12, 'fresh'],
        [12, 24, 'input'],
      ],
    );
    assert.equal(a.totalChunks, 2);
    console.log(
      JSON.stringify({
        killedAtCheckpointStep: killedAt,
        resumedFromStep: resumed.fromStep,
        killAfterMs: killMs,
        killedRunMs: killedMs,
        straightRunMs: straightMs,
        chunks: a.chunks,
      }),
    );
  });

  test('the same training on the S3 store (versitygw) gives the same bytes', async (t) => {
    if (!baseInput || !localStraight) return t.skip('needs the local runs');
    const s3 = await startS3Server();
    const config = {
      kind: 's3' as const,
      bucket: s3.bucket,
      prefix: 'training',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
    };
    const s3Store = openStore(config, { credentials: s3.credentials, maxAttempts: 1 }) as S3ArtifactStore;
    let worker: WorkerProcess | undefined;
    try {
      const inputs = await putTinyInputs(s3Store);
      assert.equal(inputs.startModel.sha256, baseInput.startModel.sha256);
      worker = await spawnWorker(temporal, { ...config, credentials: s3.credentials });
      spawned.push(worker);
      const result = await temporal.client.workflow.execute(trainingWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId: 'training-s3',
        args: [{ ...baseInput, ...inputs, runId: 's3' }],
      });
      assert.match(result.unet.uri, /^s3:\/\//);
      assert.equal(result.unet.sha256, localStraight.unet.sha256);
      assert.equal(result.lastCheckpoint.sha256, localStraight.lastCheckpoint.sha256);
      const a = await readSummary(s3Store, result.summary);
      const b = await readSummary(store, localStraight.summary);
      assert.deepEqual(a.history, b.history);
    } finally {
      await stopWorker(worker);
      s3Store.destroy();
      await s3.stop();
    }
  });

  test('DRO: a worker SIGKILLed right after a checkpoint commits, before its heartbeat, resumes from that checkpoint', async () => {
    const inputs = await putTinyInputs(store);
    const base: Omit<TrainingWorkflowInput, 'runId'> = baseInput ?? {
      stage: 'dro',
      settings: tinyDroSettings(STEPS),
      ...inputs,
      stepsPerActivity: STEPS_PER_ACTIVITY,
      heartbeatTimeoutSeconds: 3,
    };
    // Mid-way through the second chunk: the retry's input checkpoint is step 12, the store holds 18.
    const killed = await runHardKilled(
      'training-dro-hard-kill',
      { ...base, runId: 'dro-hard-kill' },
      18,
      { kind: 'local', root: storeDir },
      store,
    );
    let straight = localStraight;
    if (!straight) {
      const worker = await spawnWorker(temporal, { kind: 'local', root: storeDir });
      spawned.push(worker);
      straight = await temporal.client.workflow.execute(trainingWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId: 'training-dro-straight',
        args: [{ ...base, runId: 'dro-straight' }],
      });
      await stopWorker(worker);
    }
    assert.equal(killed.result.unet.sha256, straight.unet.sha256, 'EMA UNet differs after the kill');
    assert.equal(killed.result.model.sha256, straight.model.sha256, 'model bundle differs after the kill');
    assert.equal(killed.result.lastCheckpoint.sha256, straight.lastCheckpoint.sha256);
    assert.deepEqual(killed.summary.history, (await readSummary(store, straight.summary)).history);
    assert.deepEqual(
      killed.summary.chunks.map((c) => [c.fromStep, c.toStep, c.restoredFrom]),
      [
        [0, 12, 'fresh'],
        [18, 24, 'store'],
      ],
    );
    console.log(JSON.stringify({ dro: { killAfterMs: killed.killMs, runMs: killed.totalMs } }));
  });

  test('SFT on S3: a worker SIGKILLed right after a checkpoint commits, before its heartbeat, resumes from that checkpoint', async () => {
    const base: Omit<TrainingWorkflowInput, 'runId' | 'startModel' | 'data'> = {
      stage: 'sft',
      settings: tinySftSettings(STEPS),
      stepsPerActivity: STEPS_PER_ACTIVITY,
      heartbeatTimeoutSeconds: 3,
    };
    const localInputs = await putTinyInputs(store);
    const worker = await spawnWorker(temporal, { kind: 'local', root: storeDir });
    spawned.push(worker);
    const straight = await temporal.client.workflow.execute(trainingWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId: 'training-sft-straight',
      args: [{ ...base, ...localInputs, runId: 'sft-straight' }],
    });
    await stopWorker(worker);

    const s3 = await startS3Server();
    const config = {
      kind: 's3' as const,
      bucket: s3.bucket,
      prefix: 'hard-kill',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
    };
    const s3Store = openStore(config, { credentials: s3.credentials, maxAttempts: 1 }) as S3ArtifactStore;
    try {
      const inputs = await putTinyInputs(s3Store);
      // In the first chunk, as a stage of the pipeline does (a stage-cache prefix, no input
      // checkpoint): before the store was scanned, this retry started again from step 0.
      const killed = await runHardKilled(
        'training-sft-hard-kill',
        { ...base, ...inputs, runId: 'sft-hard-kill', out: 'stages/sft/0123456789abcdef/a' },
        8,
        { ...config, credentials: s3.credentials },
        s3Store,
      );
      assert.match(killed.result.unet.uri, /^s3:\/\/.*\/stages\/sft\/0123456789abcdef\/a\//);
      assert.equal(killed.result.unet.sha256, straight.unet.sha256, 'EMA UNet differs after the kill');
      assert.equal(killed.result.model.sha256, straight.model.sha256, 'model bundle differs after the kill');
      assert.equal(killed.result.lastCheckpoint.sha256, straight.lastCheckpoint.sha256);
      assert.deepEqual(killed.summary.history, (await readSummary(store, straight.summary)).history);
      assert.deepEqual(
        killed.summary.chunks.map((c) => [c.fromStep, c.toStep, c.restoredFrom]),
        [
          [8, 12, 'store'],
          [12, 24, 'input'],
        ],
      );
      console.log(JSON.stringify({ sft: { killAfterMs: killed.killMs, runMs: killed.totalMs } }));
    } finally {
      s3Store.destroy();
      await s3.stop();
    }
  });
});
