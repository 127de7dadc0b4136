/**
 * The shared worker factory. Workflows run on the I/O queue only, so that a long compute
 * activity never delays a workflow task; the compute queue's worker runs activities alone.
 */
import { setDefaultInferenceRuntime, setDefaultInferenceThreads } from '../engine/onnx/runtime';
import path from 'node:path';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { DEFAULT_NAMESPACE, TASK_QUEUES, type TaskQueue } from '../contracts/task-queues';
import { activitiesForQueue, createActivities } from '../activities';
import { defaultConfig, loadConfigFile } from '../config/load';
import type { PipelineConfig } from '../config/schemas';
import { logger as rootLogger, type Logger } from '../infra/logger';
import {
  explainConnectFailure,
  plainConnection,
  type TemporalConnection,
} from '../infra/temporal-connection';
import { findRunningTemporal } from '../infra/temporal-server';
import { openStore } from '../storage';
import { startMetricsEndpoint } from './metrics-endpoint';
import { watchQueueBacklog } from './queue-backlog';
import { PinoTemporalLogger, installRuntime } from './runtime';

/** Task queue on which the pipeline's workflows are started and run. */
export const WORKFLOW_TASK_QUEUE: TaskQueue = TASK_QUEUES.cpu;

/** Entry point of the workflow bundle. */
export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index.ts');

let bundle: Promise<WorkflowBundle> | undefined;

/** Bundles the workflows once per process (webpack + swc, a few seconds); every worker shares it. */
export function workflowBundle(log: Logger = rootLogger()): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: new PinoTemporalLogger(log.child({ component: 'workflow-bundler' }), { infoAsDebug: true }),
  }).catch((err: unknown) => {
    bundle = undefined;
    throw err;
  });
  return bundle;
}

/**
 * Longest time the SDK holds back an activity's newest heartbeat (it sends at most one per
 * interval, by default 0.8 x the heartbeat timeout: 24 s for a training chunk's 30 s). Short, so
 * the checkpoint a training chunk heartbeats when it commits one reaches the server within a
 * second. A retried chunk does not depend on it (it scans the store for the newest committed
 * checkpoint); it keeps what the server shows of a running activity (`temporal workflow describe`,
 * the Web UI) current.
 */
export const MAX_HEARTBEAT_THROTTLE = '1 second';

export interface CreateWorkerOptions {
  /** Connection to the cluster; connect with {@link connectWorker}. */
  connection: NativeConnection;
  /** Default: `default`. */
  namespace?: string;
  taskQueue: string;
  /** Activity functions, usually `createActivities(deps)`. */
  activities: object;
  /** Whether this worker also runs workflow tasks. Default: whether `taskQueue` is the workflow queue. */
  runsWorkflows?: boolean;
  /** Activities run at once. Default: 1 on the compute queue (one model in memory), 8 elsewhere. */
  maxConcurrentActivityTaskExecutions?: number;
  /** How long running activities get to finish on shutdown. Default: 10 s. */
  shutdownGraceTime?: string;
  logger?: Logger;
}

/**
 * Connects a worker to `target`: an address (plain gRPC) or a resolved connection with its TLS
 * and API key. Installs the Runtime first, as the SDK requires. A refused TLS handshake is
 * reported with the setting to fix instead of the native client's transport error.
 */
export async function connectWorker(target: string | TemporalConnection): Promise<NativeConnection> {
  installRuntime();
  const connection = typeof target === 'string' ? plainConnection(target) : target;
  try {
    return await NativeConnection.connect(connection.workerOptions());
  } catch (err) {
    const refused = await explainConnectFailure(connection, err);
    if (refused) throw refused;
    throw new Error(
      `cannot connect a worker to ${connection.address} (${connection.describe()}): ` +
        connection.redact(err instanceof Error ? err.message : String(err)),
    );
  }
}

export async function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  installRuntime();
  const runsWorkflows = options.runsWorkflows ?? options.taskQueue === WORKFLOW_TASK_QUEUE;
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? DEFAULT_NAMESPACE,
    taskQueue: options.taskQueue,
    activities: options.activities,
    ...(runsWorkflows ? { workflowBundle: await workflowBundle(options.logger) } : {}),
    maxConcurrentActivityTaskExecutions:
      options.maxConcurrentActivityTaskExecutions ?? (options.taskQueue === TASK_QUEUES.gpu ? 1 : 8),
    shutdownGraceTime: options.shutdownGraceTime ?? '10 seconds',
    maxHeartbeatThrottleInterval: MAX_HEARTBEAT_THROTTLE,
  });
}

/**
 * Runs one task queue's worker until SIGINT/SIGTERM: the body of `workers/gpu.ts` and
 * `workers/cpu.ts`. Joins TEMPORAL_ADDRESS or a running `dro server`; the run config comes from
 * the file named by DRO_CONFIG (default: the embedded defaults).
 */
export async function runStandaloneWorker(
  taskQueue: TaskQueue,
  options: {
    configFile?: string;
    concurrency?: number;
    onStarted?: (address: string) => void;
    /** `host:port` for Prometheus metrics (`--metrics`); default: `workers.metricsAddress`. */
    metricsAddress?: string;
    onMetrics?: (url: string) => void;
  } = {},
): Promise<void> {
  const log = rootLogger().child({ taskQueue });
  const configFile = options.configFile ?? process.env.DRO_CONFIG;
  const config = configFile ? loadConfigFile(configFile) : defaultConfig();
  // Bound before the cluster is looked up, so a bad or taken address fails before anything connects.
  const metricsAddress = options.metricsAddress ?? config.workers.metricsAddress;
  const metrics =
    metricsAddress === undefined
      ? undefined
      : await startMetricsEndpoint(
          metricsAddress,
          options.metricsAddress !== undefined ? '--metrics' : 'workers.metricsAddress',
        );
  if (metrics) options.onMetrics?.(metrics.url);
  try {
    await serveQueue(taskQueue, config, log, options);
  } finally {
    await metrics?.close();
  }
}

/** Connects to the cluster and runs the queue's worker until it stops. */
async function serveQueue(
  taskQueue: TaskQueue,
  config: PipelineConfig,
  log: Logger,
  options: { concurrency?: number; onStarted?: (address: string) => void },
): Promise<void> {
  const queue = taskQueue === TASK_QUEUES.gpu ? 'gpu' : 'cpu';
  const cluster = findRunningTemporal(
    {
      ...process.env,
      TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS || config.temporal.address,
      TEMPORAL_NAMESPACE: process.env.TEMPORAL_NAMESPACE || config.temporal.namespace,
    },
    config.temporal,
  );
  const { address, namespace } = cluster;
  installRuntime({ logger: log });
  setDefaultInferenceRuntime(config.workers.inferenceRuntime);
  setDefaultInferenceThreads(config.workers.threads);
  const connection = await connectWorker(cluster.connection);
  const stopWatching = watchQueueBacklog(connection, namespace, [
    { taskQueue, kinds: taskQueue === WORKFLOW_TASK_QUEUE ? ['workflow', 'activity'] : ['activity'] },
  ]);
  try {
    const worker = await createWorker({
      connection,
      namespace,
      taskQueue,
      activities: activitiesForQueue(
        queue,
        createActivities({ store: openStore(config.storage), logger: log }),
      ),
      maxConcurrentActivityTaskExecutions:
        options.concurrency ??
        (taskQueue === TASK_QUEUES.gpu ? config.workers.gpuConcurrency : config.workers.cpuConcurrency),
      logger: log,
    });
    log.info({ address, namespace, connection: cluster.connection.describe() }, 'worker started');
    options.onStarted?.(address);
    await worker.run();
    log.info('worker stopped');
  } finally {
    stopWatching();
    await connection.close();
  }
}
