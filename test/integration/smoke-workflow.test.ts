/**
 * The smoke workflow on a real Temporal dev server with both workers: the artifact is written on
 * the compute queue, verified on the I/O queue, and is really in the store (local filesystem and a
 * real S3 server).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, S3ArtifactStore, parseArtifactUri } from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { smokeWorkflow } from '../../workflows/smoke';
import { startS3Server, type S3TestServer } from '../harness/s3-server';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Task queue of every activity the workflow scheduled, in order, read from its history. */
async function activityQueues(temporal: TemporalHarness, workflowId: string): Promise<[string, string][]> {
  const history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes)
    .filter((a) => a != null)
    .map((a) => [a.activityType?.name ?? '', a.taskQueue?.name ?? '']);
}

interface LogLine {
  msg: string;
  level: number;
  [field: string]: unknown;
}

describe('smoke workflow on a real Temporal dev server', { timeout: 120_000 }, () => {
  let temporal: TemporalHarness;
  let s3: S3TestServer;
  let localDir: string;
  const logLines: LogLine[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void logLines.push(JSON.parse(line) as LogLine) },
  });

  before(async () => {
    [temporal, s3] = await Promise.all([startTemporalHarness({ logger }), startS3Server()]);
    localDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-smoke-local-'));
  });

  after(async () => {
    await temporal?.teardown();
    await s3?.stop();
    if (localDir) fs.rmSync(localDir, { recursive: true, force: true });
  });

  test('writes on dro-gpu, verifies on dro-cpu, artifact in the local store', async () => {
    const store = new LocalArtifactStore({ root: localDir });
    const workers = await temporal.startWorkers({ store });
    try {
      // One compute activity at a time (one model in memory); workflows only on the I/O worker.
      const byQueue = new Map(workers.workers.map((w) => [w.options.taskQueue, w.options]));
      const gpuSlots = byQueue.get(TASK_QUEUES.gpu)?.tuner.activityTaskSlotSupplier;
      assert.ok(gpuSlots && 'numSlots' in gpuSlots && gpuSlots.numSlots === 1, JSON.stringify(gpuSlots));
      assert.equal(byQueue.get(TASK_QUEUES.gpu)?.workflowBundle, undefined);
      assert.notEqual(byQueue.get(TASK_QUEUES.cpu)?.workflowBundle, undefined);

      const workflowId = 'smoke-local';
      const result = await temporal.client.workflow.execute(smokeWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId,
        args: [{ message: 'hello local', pauseMs: 50 }],
      });
      assert.ok(result.uri.startsWith(`${store.baseUri}/`), `${result.uri} is outside ${store.baseUri}`);
      const bytes = fs.readFileSync(fileURLToPath(result.uri));
      assert.equal(result.sha256, sha256(bytes));
      assert.equal(result.size, bytes.byteLength);
      assert.equal((JSON.parse(bytes.toString('utf8')) as { message: string }).message, 'hello local');

      assert.deepEqual(await activityQueues(temporal, workflowId), [
        ['writeSmokeArtifact', TASK_QUEUES.gpu],
        ['verifySmokeArtifact', TASK_QUEUES.cpu],
      ]);
      const description = await temporal.client.workflow.getHandle(workflowId).describe();
      assert.equal(
        description.typedSearchAttributes.get(defineSearchAttributeKey('DroStage', 'KEYWORD')),
        'smoke-done',
      );

      // Activity logs carry their workflow and attempt; SDK entries reach the same pino logger.
      const written = logLines.find((l) => l.msg === 'smoke artifact written' && l.workflowId === workflowId);
      assert.ok(written, 'no "smoke artifact written" log line');
      assert.equal(written.activity, 'writeSmokeArtifact');
      assert.equal(written.attempt, 1);
      assert.equal(written.runId, description.runId);
      assert.ok(
        logLines.some((l) => l.component === 'temporal-sdk' && l.sdkComponent === 'worker'),
        'no SDK log entry was forwarded to the project logger',
      );
    } finally {
      await workers.stop();
    }
  });

  test('`dro smoke` starts its own dev server, runs the smoke workflow, prints the result and cleans up', async () => {
    const dir = path.join(localDir, 'cli');
    fs.mkdirSync(dir);
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ temporal: { embeddedPort: 0, embeddedUiPort: 0 } }));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DRO_STATE_DIR: path.join(dir, 'state'),
      DRO_LOG_LEVEL: 'warn',
    };
    delete env.TEMPORAL_ADDRESS;
    const dro = path.resolve(__dirname, '..', '..', 'bin', 'dro.cjs');
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve, reject) => {
      const child = spawn(process.execPath, [dro, 'smoke', '--config', configFile], { env, cwd: dir });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    assert.equal(code, 0, `dro smoke failed:\n${stdout}\n${stderr}`);
    const field = (name: string): string => {
      const m = new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(stdout);
      assert.ok(m?.[1], `no "${name}:" line in:\n${stdout}`);
      return m[1];
    };
    assert.match(field('Web UI'), /^http:\/\/127\.0\.0\.1:\d+$/);
    const bytes = fs.readFileSync(fileURLToPath(field('Artifact')));
    assert.equal(field('SHA-256'), sha256(bytes));
    assert.ok(fs.existsSync(path.join(dir, 'state', 'temporal.db')), 'history is not in the state directory');
    // The embedded server is gone once the command returns.
    const [host, port] = field('Temporal').split(':');
    const listening = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port: Number(port) });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    assert.equal(listening, false, 'the embedded dev server is still listening');
  });

  test('the same workflow with artifacts in a real S3 server', async () => {
    const store = new S3ArtifactStore({
      bucket: s3.bucket,
      prefix: 'runs',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    const workers = await temporal.startWorkers({ store });
    try {
      const result = await temporal.client.workflow.execute(smokeWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId: 'smoke-s3',
        args: [{ message: 'hello s3', pauseMs: 50 }],
      });
      const parsed = parseArtifactUri(result.uri);
      assert.equal(parsed.scheme, 's3');
      assert.ok(
        parsed.scheme === 's3' && parsed.bucket === s3.bucket && parsed.key.startsWith('runs/smoke/'),
      );
      // Read back with a plain S3 client, independent of the store under test.
      const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: parsed.key }));
      const bytes = await object.Body!.transformToByteArray();
      assert.equal(result.sha256, sha256(bytes));
      assert.equal(
        (JSON.parse(Buffer.from(bytes).toString('utf8')) as { message: string }).message,
        'hello s3',
      );
    } finally {
      await workers.stop();
    }
  });
});
