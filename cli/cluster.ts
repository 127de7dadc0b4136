/**
 * The cluster a command talks to, for the length of one job: Temporal resolved (the embedded dev
 * server, `dro server`'s, or an existing cluster), the compute and I/O workers started in this
 * process when asked, the job run, and everything shut down whatever happened.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { activitiesForQueue, createActivities } from '../activities';
import type { PipelineConfig } from '../config/schemas';
import { privateTaskQueues, TASK_QUEUES, type RunTaskQueues } from '../contracts/task-queues';
import { logger as rootLogger, type Logger } from '../infra/logger';
import { resolveTemporal, type ResolvedTemporal } from '../infra/temporal-server';
import { openStore, type ArtifactStore } from '../storage';
import { connectWorker, createWorker } from '../workers/create-worker';
import { installRuntime } from '../workers/runtime';
import { watchQueueBacklog } from '../workers/queue-backlog';
import { setDefaultInferenceRuntime, setDefaultInferenceThreads } from '../engine/onnx/runtime';
import { RunInterruptedError } from './interrupt';
import { checkRunIdArg, newRunId } from './run-ids';

export interface RunJobOptions {
  config: PipelineConfig;
  /**
   * Run id, which is also the pipeline's workflow id. Default: a new one (name + date + random).
   * The id of an earlier run that failed or was interrupted continues it: every stage that
   * finished returns its artifacts from the stage cache. A running or completed run is refused.
   */
  runId?: string;
  /** Stages to compute again although cached: `all` (`--no-cache`) or names (`--rerun`). */
  rerun?: 'all' | string[];
  /** Start the compute and I/O workers in this process. Default: true. */
  workers?: boolean;
  /**
   * The argument that needs a cluster outliving this process (`--submit`): no embedded dev server
   * is started, and without a cluster the command fails naming it (see resolveTemporal).
   */
  requireCluster?: string;
  /**
   * Print the `Workflow:` line before the workers start, for a workflow that already runs (`dro
   * resume --attach`): its work begins as soon as they poll. `announce` then prints nothing.
   */
  announceFirst?: boolean;
  /**
   * Give the run task queues of its own on the embedded server (privateTaskQueues), so these
   * workers never execute another run's work. Default: false (the shared TASK_QUEUES).
   */
  privateQueues?: boolean;
  /** Serve exactly these task queues (re-attaching to an open run). */
  taskQueues?: RunTaskQueues;
  /** Artifact store. Default: the one `config.storage` describes. */
  store?: ArtifactStore;
  /** Keep the backlog gauges of the run's task queues current for a metrics endpoint. Default: false. */
  metrics?: boolean;
  /** Ends the wait for the result early (Ctrl-C). */
  signal?: AbortSignal;
  /** Lines for people. Default: stdout. */
  out?: (line: string) => void;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface ClusterRun {
  workflowId: string;
  address: string;
  uiAddress: string | undefined;
}

function workflowUrl(uiAddress: string, namespace: string, workflowId: string): string {
  return `${uiAddress}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function untilAborted(signal: AbortSignal | undefined, workflowId: string): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;
    const fail = (): void => reject(new RunInterruptedError('interrupted', workflowId));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

/** What a job does once the cluster and both workers are up. */
export type Job<T> = (ctx: {
  client: Client;
  namespace: string;
  store: ArtifactStore;
  /** The task queues the run uses (and the in-process workers serve). */
  queues: RunTaskQueues;
  runId: string;
  workflowId: string;
  /** Starts the workflow with the run's search attributes and prints its address. */
  announce: (handle: WorkflowHandle) => void;
  /** Rejects when a worker stops before the workflow finished, or the user interrupts. */
  guard: <R>(call: () => Promise<R>) => Promise<R>;
}) => Promise<T>;

/**
 * Resolves Temporal, starts both workers in this process, runs `job` and shuts everything down,
 * whatever happened.
 */
export async function withCluster<T>(
  options: RunJobOptions,
  job: Job<T>,
): Promise<T & ClusterRun & { namespace: string; client: Client }> {
  const out = options.out ?? ((line: string) => console.log(line));
  const log = options.logger ?? rootLogger();
  const { config } = options;
  const store = options.store ?? openStore(config.storage);

  const temporal: ResolvedTemporal = await resolveTemporal({
    env: options.env,
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    security: config.temporal,
    devServer: { port: config.temporal.embeddedPort, uiPort: config.temporal.embeddedUiPort },
    log: (line) => out(line),
    ...(options.requireCluster !== undefined && { requireCluster: options.requireCluster }),
  });
  const { address, namespace, uiAddress, connection } = temporal;
  const where =
    temporal.source === 'embedded'
      ? `embedded dev server, history in ${temporal.server?.dbFile}`
      : temporal.source === 'shared'
        ? 'dev server of `dro server`'
        : `external cluster; ${connection.describe()}`;
  out(`Temporal: ${address} (${where})`);
  if (uiAddress) out(`Web UI:   ${uiAddress}`);

  let workerConnection: NativeConnection | undefined;
  let clientConnection: Connection | undefined;
  const workers: Worker[] = [];
  const running: Promise<void>[] = [];
  // Cancels client calls still in flight (the long poll for the result) before their connection closes.
  const calls = new AbortController();
  const pending: Promise<unknown>[] = [];
  let stopWatching: (() => void) | undefined;
  try {
    // Signals are handled by the caller, which stops the workers and the server in order.
    // The native runtime lives as long as its workers; a command without workers needs none.
    if (options.workers !== false) {
      installRuntime({ logger: log, shutdownSignals: [] });
      setDefaultInferenceRuntime(config.workers.inferenceRuntime);
      setDefaultInferenceThreads(config.workers.threads);
    }
    const activities = createActivities({ store, logger: log });
    const runId = options.runId !== undefined ? checkRunIdArg(options.runId) : newRunId(config);
    const workflowId = runId;
    const workflowLine = (): void =>
      out(`Workflow: ${workflowId}${uiAddress ? ` (${workflowUrl(uiAddress, namespace, workflowId)})` : ''}`);
    if (options.announceFirst) workflowLine();
    const queues: RunTaskQueues =
      options.taskQueues ??
      (options.privateQueues && temporal.source === 'embedded' ? privateTaskQueues(runId) : TASK_QUEUES);
    for (const [queue, taskQueue, concurrency] of options.workers === false
      ? []
      : ([
          ['gpu', queues.gpu, config.workers.gpuConcurrency],
          ['cpu', queues.cpu, config.workers.cpuConcurrency],
        ] as const)) {
      workerConnection ??= await connectWorker(connection);
      const worker = await createWorker({
        connection: workerConnection,
        namespace,
        taskQueue,
        // A run's private workflow queue is its I/O queue; the worker of that queue runs its workflows.
        runsWorkflows: queue === 'cpu',
        activities: activitiesForQueue(queue, activities),
        maxConcurrentActivityTaskExecutions: concurrency,
        logger: log,
      });
      workers.push(worker);
      const run = worker.run();
      // Observed below (race, allSettled); this keeps an early failure from being reported as unhandled.
      run.catch(() => undefined);
      running.push(run);
    }
    if (options.metrics && workerConnection)
      stopWatching = watchQueueBacklog(workerConnection, namespace, [
        { taskQueue: queues.gpu, kinds: ['activity'] },
        { taskQueue: queues.cpu, kinds: ['workflow', 'activity'] },
      ]);

    clientConnection = await Connection.connect(connection.clientOptions());
    const client = new Client({ connection: clientConnection, namespace });
    // A failed worker would otherwise leave the wait for the result hanging.
    const workerFailed =
      running.length === 0
        ? new Promise<never>(() => undefined)
        : Promise.race(running).then(() => {
            throw new Error('a worker stopped before the workflow finished');
          });
    workerFailed.catch(() => undefined);
    const done = await job({
      client,
      namespace,
      store,
      queues,
      runId,
      workflowId,
      announce: () => {
        if (!options.announceFirst) workflowLine();
      },
      guard: (call) => {
        // Called inside withAbortSignal so that stopping aborts the long poll itself.
        const inFlight = client.withAbortSignal(calls.signal, call);
        pending.push(inFlight.catch(() => undefined));
        return Promise.race([inFlight, untilAborted(options.signal, workflowId), workerFailed]);
      },
    });
    return { ...done, workflowId, address, uiAddress, namespace, client };
  } finally {
    stopWatching?.();
    calls.abort();
    await Promise.all(pending);
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    const stopped = await Promise.allSettled(running);
    await clientConnection?.close();
    await workerConnection?.close();
    await temporal.stop();
    for (const s of stopped)
      if (s.status === 'rejected') log.error({ err: s.reason as unknown }, 'worker failed');
  }
}
