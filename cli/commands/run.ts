/**
 * `dro run`: the pipeline on the configured Temporal cluster (the embedded dev server by default),
 * with both workers in this process. `dro server`: the embedded dev server in the foreground.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Command } from 'commander';
import { createActivities } from '../../activities';
import { defaultConfig, loadConfigFile } from '../../config/load';
import type { PipelineConfig } from '../../config/schemas';
import { TASK_QUEUES } from '../../config/task-queues';
import { logger as rootLogger, type Logger } from '../../infra/logger';
import {
  publishServer,
  resolveTemporal,
  startDevServer,
  TemporalUnavailableError,
  type ResolvedTemporal,
} from '../../infra/temporal-server';
import { openStore, type ArtifactStore } from '../../storage';
import { WORKFLOW_TASK_QUEUE, connectWorker, createWorker } from '../../workers/create-worker';
import { installRuntime } from '../../workers/runtime';
import { smokeWorkflow, type SmokeResult } from '../../workflows/smoke';

const DRO_RUN_ID = defineSearchAttributeKey('DroRunId', 'KEYWORD');
const DRO_CONFIG_HASH = defineSearchAttributeKey('DroConfigHash', 'KEYWORD');

/** Raised when the user interrupts a run; the workflow's history stays on the cluster. */
export class RunInterruptedError extends Error {
  override name = 'RunInterruptedError';
}

export interface RunJobOptions {
  config: PipelineConfig;
  /** Artifact store. Default: the one `config.storage` describes. */
  store?: ArtifactStore;
  /** Ends the wait for the result early (Ctrl-C). */
  signal?: AbortSignal;
  /** Lines for people. Default: stdout. */
  out?: (line: string) => void;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface RunJobResult extends SmokeResult {
  workflowId: string;
  address: string;
  uiAddress: string | undefined;
}

/** SHA-256 of the parsed config (schema key order, defaults filled), the run's DroConfigHash. */
export function configHash(config: PipelineConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

function workflowUrl(uiAddress: string, namespace: string, workflowId: string): string {
  return `${uiAddress}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;
    const fail = (): void => reject(new RunInterruptedError('interrupted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

/**
 * Resolves Temporal, starts both workers in this process, runs the main job (for now the smoke
 * workflow) and shuts everything down, whatever happened.
 */
export async function runJob(options: RunJobOptions): Promise<RunJobResult> {
  const out = options.out ?? ((line: string) => console.log(line));
  const log = options.logger ?? rootLogger();
  const { config } = options;
  const store = options.store ?? openStore(config.storage);

  const temporal: ResolvedTemporal = await resolveTemporal({
    env: options.env,
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    devServer: { port: config.temporal.embeddedPort, uiPort: config.temporal.embeddedUiPort },
    log: (line) => out(line),
  });
  const { address, namespace, uiAddress } = temporal;
  const where =
    temporal.source === 'embedded'
      ? `embedded dev server, history in ${temporal.server?.dbFile}`
      : temporal.source === 'shared'
        ? 'dev server of `dro server`'
        : 'external cluster';
  out(`Temporal: ${address} (${where})`);
  if (uiAddress) out(`Web UI:   ${uiAddress}`);

  let workerConnection: NativeConnection | undefined;
  let clientConnection: Connection | undefined;
  const workers: Worker[] = [];
  const running: Promise<void>[] = [];
  // Cancels client calls still in flight (the long poll for the result) before their connection closes.
  const calls = new AbortController();
  let pendingResult: Promise<unknown> = Promise.resolve();
  try {
    // Signals are handled by the caller, which stops the workers and the server in order.
    installRuntime({ logger: log, shutdownSignals: [] });
    workerConnection = await connectWorker(address);
    const activities = createActivities({ store, logger: log });
    for (const [taskQueue, concurrency] of [
      [TASK_QUEUES.gpu, config.workers.gpuConcurrency],
      [TASK_QUEUES.cpu, config.workers.cpuConcurrency],
    ] as const) {
      const worker = await createWorker({
        connection: workerConnection,
        namespace,
        taskQueue,
        activities,
        maxConcurrentActivityTaskExecutions: concurrency,
        logger: log,
      });
      workers.push(worker);
      const run = worker.run();
      // Observed below (race, allSettled); this keeps an early failure from being reported as unhandled.
      run.catch(() => undefined);
      running.push(run);
    }

    clientConnection = await Connection.connect({ address });
    const client = new Client({ connection: clientConnection, namespace });
    const runId = `${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    const workflowId = `${config.name}-${runId}`;
    const handle = await client.workflow.start(smokeWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId,
      args: [{ message: `dro run ${runId}` }],
      typedSearchAttributes: [
        { key: DRO_RUN_ID, value: runId },
        { key: DRO_CONFIG_HASH, value: configHash(config) },
      ],
    });
    out(`Workflow: ${workflowId}${uiAddress ? ` (${workflowUrl(uiAddress, namespace, workflowId)})` : ''}`);
    // A failed worker would otherwise leave the wait for the result hanging.
    const workerFailed = Promise.race(running).then(() => {
      throw new Error('a worker stopped before the workflow finished');
    });
    const result = client.withAbortSignal(calls.signal, () => handle.result());
    pendingResult = result.catch(() => undefined);
    workerFailed.catch(() => undefined);
    const done = await Promise.race([result, untilAborted(options.signal), workerFailed]);
    out(`Artifact: ${done.uri}`);
    out(`SHA-256:  ${done.sha256} (${done.size} bytes)`);
    return { ...done, workflowId, address, uiAddress };
  } finally {
    calls.abort();
    await pendingResult;
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    const stopped = await Promise.allSettled(running);
    await clientConnection?.close();
    await workerConnection?.close();
    await temporal.stop();
    for (const s of stopped)
      if (s.status === 'rejected') log.error({ err: s.reason as unknown }, 'worker failed');
  }
}

function loadConfig(file: string | undefined): PipelineConfig {
  return file ? loadConfigFile(file) : defaultConfig();
}

/** An AbortSignal fired by the first SIGINT/SIGTERM; the handlers go away with `dispose`. */
function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      'run the pipeline on the embedded Temporal dev server (or TEMPORAL_ADDRESS) with both workers',
    )
    .option('-c, --config <file>', 'pipeline config file (JSON); default: the embedded defaults')
    .action(async (options: { config?: string }) => {
      const config = loadConfig(options.config);
      const interrupt = interruptSignal();
      try {
        await runJob({ config, signal: interrupt.signal });
      } catch (err) {
        if (err instanceof RunInterruptedError) {
          console.error('Interrupted; the workflow history is kept on the Temporal cluster.');
          process.exitCode = 130;
          return;
        }
        throw err;
      } finally {
        interrupt.dispose();
      }
    });
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('run the embedded Temporal dev server in the foreground until Ctrl-C')
    .option('-c, --config <file>', 'pipeline config file (JSON) for the ports; default: 7233 and 8233')
    .action(async (options: { config?: string }) => {
      const config = loadConfig(options.config);
      const interrupt = interruptSignal();
      const server = await startDevServer({
        port: config.temporal.embeddedPort,
        uiPort: config.temporal.embeddedUiPort,
        namespace: config.temporal.namespace,
      });
      const unpublish = publishServer(server);
      try {
        console.log(`Temporal dev server: ${server.address} (namespace ${server.namespace})`);
        console.log(`Web UI:              ${server.uiAddress ?? 'disabled'}`);
        console.log(`History:             ${server.dbFile} (server log ${server.logFile})`);
        console.log('Press Ctrl-C to stop.');
        const stoppedByUser = new Promise<'signal'>((resolve) =>
          interrupt.signal.addEventListener('abort', () => resolve('signal'), { once: true }),
        );
        const why = await Promise.race([stoppedByUser, server.exited.then(() => 'exit' as const)]);
        if (why === 'exit') {
          throw new TemporalUnavailableError(
            `the Temporal dev server exited unexpectedly; see ${server.logFile}`,
          );
        }
        console.log('Stopping the Temporal dev server...');
      } finally {
        unpublish();
        await server.stop();
        interrupt.dispose();
      }
    });
}
