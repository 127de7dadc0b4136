/**
 * A real Temporal dev server for integration tests: the pinned `temporal` binary (same resolution
 * as `dro run`) on 127.0.0.1, a random free port and a temporary SQLite file, wrapped in the SDK's
 * TestWorkflowEnvironment.
 *
 * ```ts
 * const temporal = await startTemporalHarness();
 * const workers = await temporal.startWorkers({ store });
 * const result = await temporal.client.workflow.execute(smokeWorkflow, { taskQueue: WORKFLOW_TASK_QUEUE, ... });
 * await workers.stop();
 * await temporal.teardown();
 * ```
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import { TASK_QUEUES, type TaskQueue } from '../../contracts/task-queues';
import { createLogger, type Logger } from '../../infra/logger';
import { startDevServer, type DevServer } from '../../infra/temporal-server';
import type { ArtifactStore } from '../../storage/artifact-store';
import { createWorker } from '../../workers/create-worker';
import { installRuntime } from '../../workers/runtime';

export interface RunningWorkers {
  workers: Worker[];
  /** Shuts the workers down and waits until they have stopped; rejects if one had failed. */
  stop(): Promise<void>;
}

export interface StartWorkersOptions {
  store: ArtifactStore;
  /** Default: both queues. */
  taskQueues?: TaskQueue[];
  /** Replaces activities by name (to make one fail on purpose). */
  override?: (activities: Activities) => Partial<Activities>;
}

export interface TemporalHarness {
  server: DevServer;
  env: TestWorkflowEnvironment;
  client: Client;
  address: string;
  namespace: string;
  /** Logger used by the SDK runtime and the activities. */
  logger: Logger;
  /** Temporary directory holding the database; removed by teardown. */
  dir: string;
  /** Starts the gpu and cpu workers in this process with real activities on `store`. */
  startWorkers(options: StartWorkersOptions): Promise<RunningWorkers>;
  /** Stops the server and starts it again on the same database file and port. */
  restartServer(): Promise<void>;
  /** Closes the connections, stops the server and removes the directory. Stop workers first. */
  teardown(): Promise<void>;
}

export interface TemporalHarnessOptions {
  /**
   * Logger for the SDK runtime and the activities. Default: stderr at DRO_LOG_LEVEL or warn.
   * The runtime is installed once per process, so only the first harness's logger gets SDK entries.
   */
  logger?: Logger;
}

export async function startTemporalHarness(options: TemporalHarnessOptions = {}): Promise<TemporalHarness> {
  const logger =
    options.logger ??
    createLogger({ level: process.env.DRO_LOG_LEVEL ?? 'warn', destination: process.stderr });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-temporal-'));
  let server: DevServer | undefined;
  // The dev server picks more ports than the one it is given (its internal services take free
  // ports of their own), and one of those can be taken between its check and its bind on a busy
  // machine; it then stops during start-up. A fresh database and port is a fair second try.
  for (let attempt = 1; server === undefined; attempt++) {
    try {
      server = await startDevServer({
        dbFile: path.join(dir, attempt === 1 ? 'temporal.db' : `temporal-${attempt}.db`),
        port: 0,
        headless: true,
        log: () => {},
      });
    } catch (err) {
      if (attempt < 3 && /stopped during start-up/.test((err as Error).message)) {
        process.stderr.write(
          `dev server start-up failed (attempt ${attempt}), trying again: ${(err as Error).message.split('\n')[0]}\n`,
        );
        continue;
      }
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  let env: TestWorkflowEnvironment;
  try {
    // Before the first connection, or the SDK installs its own console logger.
    installRuntime({ logger, shutdownSignals: [] });
    env = await TestWorkflowEnvironment.createFromExistingServer({
      address: server.address,
      namespace: server.namespace,
    });
  } catch (err) {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    server,
    env,
    client: env.client,
    address: server.address,
    namespace: server.namespace,
    logger,
    dir,
    async startWorkers(options) {
      const real = createActivities({ store: options.store, logger });
      const activities = { ...real, ...options.override?.(real) };
      const workers: Worker[] = [];
      for (const taskQueue of options.taskQueues ?? [TASK_QUEUES.gpu, TASK_QUEUES.cpu]) {
        workers.push(
          await createWorker({
            connection: env.nativeConnection,
            namespace: server.namespace,
            taskQueue,
            activities,
            logger,
            shutdownGraceTime: '2 seconds',
          }),
        );
      }
      const running = workers.map((w) => w.run());
      // A worker that fails early surfaces in stop(); until then its rejection is not "unhandled".
      for (const r of running) r.catch(() => undefined);
      return {
        workers,
        async stop() {
          for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
          const results = await Promise.allSettled(running);
          const failed = results.find((r) => r.status === 'rejected');
          if (failed) throw failed.reason;
        },
      };
    },
    restartServer: () => server.restart(),
    async teardown() {
      try {
        await env.teardown();
      } finally {
        await server.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
