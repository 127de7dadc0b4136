/**
 * The client host of the namespace test: a Temporal client and the cpu-queue worker (workflows
 * and I/O activities) in one process, driven by JSON lines on stdin, so that they run on the
 * client host's network while the test process itself stays on the host network.
 *
 * ```sh
 * TEMPORAL_ADDRESS=10.231.0.1:7233 DRO_TEST_STORE='{"kind":"s3",...,"credentials":{...}}' \
 *   node --import tsx test/netns/control.ts
 * ```
 *
 * Requests `{"id":1,"op":"start","args":{...}}`, answers `{"id":1,"ok":true,"value":...}` or
 * `{"id":1,"ok":false,"error":"..."}`; `{"ready":true}` once connected and polling.
 * Ops: `inputs` (stores the tiny start model and expert set), `start` ({workflowId, input}),
 * `result` ({workflowId}: the result and the sha256 of the final model's bytes as read back),
 * `describe` ({workflowId}: status and pending activities with attempt and last failure).
 */
import { createHash } from 'node:crypto';
import readline from 'node:readline';
import { BucketAlreadyOwnedByYou, CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { createActivities } from '../../activities';
import type { TrainingWorkflowInput, TrainingWorkflowResult } from '../../contracts/training';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { initBackend } from '../../engine/backend';
import { createLogger } from '../../infra/logger';
import { registerSearchAttributes, waitForTemporal } from '../../infra/temporal-server';
import { openStore, type S3Credentials, type StorageConfigInput } from '../../storage';
import { connectWorker, createWorker, WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { installRuntime } from '../../workers/runtime';
import { trainingWorkflow } from '../../workflows/training';
import { putTinyInputs } from '../harness/training-worker';

export interface PendingActivityInfo {
  type: string;
  attempt: number;
  state: string;
  lastFailure?: string;
}

export interface DescribeResult {
  status: string;
  pending: PendingActivityInfo[];
}

export interface ResultWithDigest {
  result: TrainingWorkflowResult;
  /** sha256 of the final model bundle as read back from the store. */
  modelDigest: string;
}

/** The SDK wraps the reason (say, a transport error) in a cause; the test wants to see it. */
function causeChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err; e !== undefined && parts.length < 5; e = e instanceof Error ? e.cause : undefined) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
  return parts.join(' <- ');
}

async function main(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS;
  const storeJson = process.env.DRO_TEST_STORE;
  if (!address || !storeJson) throw new Error('TEMPORAL_ADDRESS and DRO_TEST_STORE are required');
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  const { credentials, ...config } = JSON.parse(storeJson) as StorageConfigInput & {
    credentials: S3Credentials;
  };
  const logger = createLogger({ level: process.env.DRO_LOG_LEVEL ?? 'warn', destination: process.stderr });
  installRuntime({ logger });
  // The tiny inputs are built with TF.js here.
  await initBackend('wasm');

  await waitForTemporal(address, namespace, 90_000);
  await registerSearchAttributes(address, namespace);
  if (config.kind === 's3') {
    const s3 = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      credentials,
      forcePathStyle: true,
      maxAttempts: 3,
    });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: config.bucket }));
    } catch (err) {
      if (!(err instanceof BucketAlreadyOwnedByYou)) throw err;
    } finally {
      s3.destroy();
    }
  }
  const store = openStore(config, { credentials, maxAttempts: 1 });

  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const workerConnection = await connectWorker(address);
  const worker = await createWorker({
    connection: workerConnection,
    namespace,
    taskQueue: TASK_QUEUES.cpu,
    activities: createActivities({ store, logger }),
    logger,
    shutdownGraceTime: '2 seconds',
  });
  const running = worker.run();

  const ops: Record<string, (args: Record<string, unknown>) => Promise<unknown>> = {
    inputs: () => putTinyInputs(store),
    async start(args) {
      const handle = await client.workflow.start(trainingWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId: args.workflowId as string,
        args: [args.input as TrainingWorkflowInput],
      });
      return handle.firstExecutionRunId;
    },
    async result(args): Promise<ResultWithDigest> {
      const result: TrainingWorkflowResult = await client.workflow
        .getHandle(args.workflowId as string)
        .result();
      const bytes = await store.get(result.model.uri);
      return { result, modelDigest: createHash('sha256').update(bytes).digest('hex') };
    },
    async describe(args): Promise<DescribeResult> {
      const { status, raw } = await client.workflow.getHandle(args.workflowId as string).describe();
      return {
        status: status.name,
        pending: (raw.pendingActivities ?? []).map((a) => ({
          type: a.activityType?.name ?? '?',
          attempt: a.attempt ?? 0,
          state: String(a.state ?? ''),
          ...(a.lastFailure?.message ? { lastFailure: a.lastFailure.message } : {}),
        })),
      };
    },
  };

  const reply = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => {
    let request: { id: number; op: string; args?: Record<string, unknown> };
    try {
      request = JSON.parse(line) as typeof request;
    } catch {
      return;
    }
    const op = ops[request.op];
    const answer = op ? op(request.args ?? {}) : Promise.reject(new Error(`unknown op ${request.op}`));
    answer.then(
      (value) => reply({ id: request.id, ok: true, value }),
      (err: unknown) => reply({ id: request.id, ok: false, error: causeChain(err) }),
    );
  });
  // The test ends this process by closing stdin (or by a signal when it is stuck).
  input.once('close', () => worker.shutdown());
  reply({ ready: true });
  try {
    await running;
  } finally {
    await connection.close();
    await workerConnection.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `control failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
