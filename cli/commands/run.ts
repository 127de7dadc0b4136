/**
 * `dro run`: the pipeline on the configured Temporal cluster (the embedded dev server by default),
 * with both workers in this process (`--submit`: none, for a cluster with `dro worker`s); without
 * `--config` it runs config/demo.json. What it prints while waiting and at the end: ../progress.ts,
 * ../run-ending.ts. `dro smoke`: the smoke workflow the same way. `dro server`: the embedded dev
 * server in the foreground.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Command } from 'commander';
import { activitiesForQueue, createActivities } from '../../activities';
import { keySegment } from '../../activities/common';
import { canonicalJson, resultConfig } from '../../config/config-hash';
import { loadConfigFile } from '../../config/load';
import type { PipelineConfig } from '../../config/schemas';
import {
  privateTaskQueues,
  TASK_QUEUES,
  WORKFLOW_TASK_TIMEOUT,
  type RunTaskQueues,
} from '../../contracts/task-queues';
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
import { setDefaultInferenceRuntime } from '../../engine/onnx/runtime';
import { pipelineWorkflow } from '../../workflows/pipeline';
import type { PipelineInput, PipelineResult, RunProvenance } from '../../contracts/pipeline';
import { STAGE_NAMES } from '../../contracts/stages';
import { preflight } from '../preflight';
import { followRunToEnd, type LossSummary } from '../run-ending';
import { commandLogger, stdoutLine } from '../progress';
import { escapeControl } from '../terminal-text';
import type { SmokeResult } from '../../contracts/smoke';
import { smokeWorkflow } from '../../workflows/smoke';
import {
  DRO_CONFIG_HASH,
  DRO_CONFIG_NAME,
  DRO_GIT_COMMIT,
  DRO_RUN_ID,
} from '../../contracts/search-attributes';

export { commandLogger, followProgress, formatSeconds, progressLine, stdoutLine } from '../progress';
export { lossSummary, printRunEnding, runEnding, stageTable, type LossSummary } from '../run-ending';

/** The embedded defaults of `dro run`: the built-in world, sized for a few minutes on a CPU. */
export const DEMO_CONFIG_FILE = path.join(__dirname, '..', '..', 'config', 'demo.json');

/** Raised when the user interrupts a run; the workflow's history stays on the cluster. */
export class RunInterruptedError extends Error {
  override name = 'RunInterruptedError';
  constructor(
    message: string,
    /** The workflow left open (the run id for a pipeline run), once it was known. */
    readonly workflowId?: string,
  ) {
    super(message);
  }
}

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
  /** Ends the wait for the result early (Ctrl-C). */
  signal?: AbortSignal;
  /** Lines for people. Default: stdout. */
  out?: (line: string) => void;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

interface ClusterRun {
  workflowId: string;
  address: string;
  uiAddress: string | undefined;
}

/** What a job sees of the cluster besides its run. */
export interface ClusterContext {
  client: Client;
  namespace: string;
  uiAddress: string | undefined;
  out: (line: string) => void;
  store: ArtifactStore;
}

export interface RunJobResult extends PipelineResult, ClusterRun {
  /** First and last logged DRO loss and diff, when the summary has a history. */
  droLoss: LossSummary | undefined;
}

export interface SmokeJobResult extends SmokeResult, ClusterRun {}

/**
 * SHA-256 of what determines the run's results (config/config-hash.ts): not the cluster, store,
 * worker settings, activity chunking or name. The run's DroConfigHash.
 */
export function configHash(config: PipelineConfig): string {
  return createHash('sha256')
    .update(canonicalJson(resultConfig(config)))
    .digest('hex');
}

const PACKAGE_ROOT = path.join(__dirname, '..', '..');

/** The git commit of this checkout, or `unknown` outside one. */
export function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

export function provenance(config: PipelineConfig): RunProvenance {
  const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  return {
    configHash: configHash(config),
    packageVersion: pkg.version,
    gitCommit: gitCommit(),
    node: process.version,
  };
}

/** Run ids are workflow ids and artifact key segments: keep them to a safe, bounded alphabet. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkRunIdArg(runId: string): string {
  if (!RUN_ID.test(runId))
    throw new Error(
      `run id ${JSON.stringify(runId)}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  return runId;
}

/**
 * An existing run's id as a command names it. Besides the ids `dro run` makes, Temporal Schedules
 * name their runs `<schedule>-<RFC 3339 time>`, with ':' in the time.
 */
const RUN_ID_REF = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function checkRunIdRef(runId: string): string {
  if (!RUN_ID_REF.test(runId))
    throw new Error(
      `run id ${JSON.stringify(runId)}: use 1-128 letters, digits, '.', '_', '-' or ':', starting with a letter or digit`,
    );
  return runId;
}

/** Where a run's records are in the artifact store (its id made a safe key segment, as stages do). */
export function runRecordsKey(runId: string): string {
  return `runs/${keySegment(runId)}`;
}

export function newRunId(config: PipelineConfig): string {
  const name =
    config.name
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64)
      .replace(/^[^A-Za-z0-9]+/, '') || 'run';
  return `${name}-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
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
type Job<T> = (ctx: {
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
    devServer: { port: config.temporal.embeddedPort, uiPort: config.temporal.embeddedUiPort },
    log: (line) => out(line),
    ...(options.requireCluster !== undefined && { requireCluster: options.requireCluster }),
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
  const pending: Promise<unknown>[] = [];
  try {
    // Signals are handled by the caller, which stops the workers and the server in order.
    // The native runtime lives as long as its workers; a command without workers needs none.
    if (options.workers !== false) {
      installRuntime({ logger: log, shutdownSignals: [] });
      setDefaultInferenceRuntime(config.workers.inferenceRuntime);
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
      workerConnection ??= await connectWorker(address);
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

    clientConnection = await Connection.connect({ address });
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

export function searchAttributes(runId: string, config: PipelineConfig, commit = gitCommit()) {
  return [
    { key: DRO_RUN_ID, value: runId },
    { key: DRO_CONFIG_HASH, value: configHash(config) },
    { key: DRO_CONFIG_NAME, value: config.name },
    { key: DRO_GIT_COMMIT, value: commit },
  ];
}

/**
 * Names the runs left open on the cluster (an interrupted `dro run`): their work stays where it
 * is, on their own task queues, until the user resumes or cancels them.
 */
export async function reportOpenRuns(
  client: Client,
  runId: string,
  out: (line: string) => void,
): Promise<string[]> {
  const open: string[] = [];
  try {
    for await (const w of client.workflow.list({
      query: "WorkflowType = 'pipelineWorkflow' AND ExecutionStatus = 'Running'",
    })) {
      if (w.workflowId !== runId) open.push(w.workflowId);
      if (open.length >= 20) break;
    }
  } catch {
    return open;
  }
  for (const id of open)
    out(
      `Open run ${id} (from an earlier, interrupted dro run) is left alone: \`dro resume ${id} --attach\` finishes it, \`dro cancel ${id} --force\` ends it.`,
    );
  return open;
}

/** A run id that is taken: what the user can do about it. */
export class RunExistsError extends Error {
  override name = 'RunExistsError';
}

/**
 * Starts the pipeline workflow whose id is the run id. One live run per id: a running run is
 * refused, and so is a completed one (its results stand); a failed, cancelled or terminated run
 * of that id is continued (its finished stages come from the stage cache).
 */
export async function startPipeline(
  client: Client,
  input: PipelineInput,
): Promise<WorkflowHandle<typeof pipelineWorkflow>> {
  const prov = input.provenance ?? provenance(input.config);
  try {
    return await client.workflow.start(pipelineWorkflow, {
      taskQueue: input.taskQueues?.cpu ?? WORKFLOW_TASK_QUEUE,
      workflowId: input.runId,
      workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
      args: [{ ...input, provenance: prov }],
      typedSearchAttributes: searchAttributes(input.runId, input.config, prov.gitCommit),
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const status = (await client.workflow.getHandle(input.runId).describe()).status.name;
    throw new RunExistsError(
      status === 'RUNNING'
        ? `run ${input.runId} is already running; follow it with \`dro status ${input.runId} --follow\` or stop it with \`dro cancel ${input.runId}\``
        : `run ${input.runId} already ${status.toLowerCase()}; its results stand (\`dro runs show ${input.runId}\`). Start a new run without --run-id, or force stages with --rerun`,
    );
  }
}

/** The smoke workflow on the cluster: proves workers, queues, store and history fit together. */
export async function runSmokeJob(options: RunJobOptions): Promise<SmokeJobResult> {
  const out = options.out ?? ((line: string) => console.log(line));
  return withCluster(options, async ({ client, runId, workflowId, announce, guard }) => {
    const handle = await client.workflow.start(smokeWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId,
      args: [{ message: `dro smoke ${runId}` }],
      typedSearchAttributes: searchAttributes(runId, options.config),
    });
    announce(handle);
    const done = await guard(() => handle.result());
    out(`Artifact: ${done.uri}`);
    out(`SHA-256:  ${done.sha256} (${done.size} bytes)`);
    return done;
  });
}

/**
 * The main job: the pipeline workflow on the cluster, with a line per stage while it runs and, at
 * the end, the report, the DRO model and the DRO loss summary.
 */
export async function runJob(options: RunJobOptions): Promise<RunJobResult> {
  const out = options.out ?? ((line: string) => console.log(line));
  const store = options.store ?? openStore(options.config.storage);
  return withCluster(
    { privateQueues: true, ...options, store },
    async ({ client, runId, queues, announce, guard }) => {
      await reportOpenRuns(client, runId, out);
      const handle = await startPipeline(client, {
        runId,
        config: options.config,
        ...(queues !== TASK_QUEUES && { taskQueues: queues }),
        ...(options.rerun !== undefined && { rerun: options.rerun }),
      });
      announce(handle);
      out(`Run:      ${runId} (records under ${store.baseUri}/runs/${runId}/)`);
      return followRunToEnd(handle, { store, out, wait: guard });
    },
  );
}

export interface SubmitJobOptions extends Omit<RunJobOptions, 'workers' | 'privateQueues' | 'taskQueues'> {
  /** Follow the run to its end (like `dro status --follow`) instead of returning once it started. */
  follow?: boolean;
}

/**
 * `dro run --submit`: starts the pipeline on a cluster whose workers run elsewhere (`dro server`
 * with `dro worker` processes, or TEMPORAL_ADDRESS) and starts no worker here, so ending this
 * process never stalls a stage. Returns once the run is started, or with `follow`, once it ended
 * (with the ending `dro run` prints). Never starts an embedded dev server.
 */
export async function submitJob(
  options: SubmitJobOptions,
): Promise<{ runId: string; result?: PipelineResult & { droLoss: LossSummary | undefined } }> {
  const out = options.out ?? ((line: string) => console.log(line));
  const store = options.store ?? openStore(options.config.storage);
  const done = await withCluster(
    { requireCluster: '--submit', ...options, store, workers: false, privateQueues: false },
    async ({ client, runId, announce, guard }) => {
      const handle = await startPipeline(client, {
        runId,
        config: options.config,
        ...(options.rerun !== undefined && { rerun: options.rerun }),
      });
      announce(handle);
      out(`Run:      ${runId} (records under ${store.baseUri}/runs/${runId}/)`);
      if (!options.follow) {
        out(
          `Submitted: the cluster's workers run it. Follow it with \`dro status ${runId} --follow\`; ` +
            `stop it with \`dro cancel ${runId}\`.`,
        );
        return { runId };
      }
      return { runId, result: await followRunToEnd(handle, { store, out, wait: guard, everyMs: 15_000 }) };
    },
  );
  return { runId: done.runId, ...(done.result && { result: done.result }) };
}

/** A config that cannot run here: every problem, found before any server starts. */
export class PreflightError extends Error {
  override name = 'PreflightError';
}

/** Runs the pre-flight checks that `dro validate` runs; throws PreflightError listing every problem. */
export async function checkBeforeRun(config: PipelineConfig, runId?: string): Promise<void> {
  const problems = await preflight(config, runId === undefined ? {} : { runId });
  if (problems.length === 0) return;
  throw new PreflightError(
    [
      `the config cannot run (${problems.length} problem(s)); nothing was started:`,
      ...problems.map((p) => `  ${escapeControl(`${p.path}: ${p.message}`, false)}`),
    ].join('\n'),
  );
}

export function loadConfig(file: string | undefined, overrides: readonly string[] = []): PipelineConfig {
  return loadConfigFile(file ?? DEMO_CONFIG_FILE, overrides);
}

/** Commander collector for a repeatable option. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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

/** What to do about a workflow left open by an interrupt: continue a pipeline run, end anything else. */
export type InterruptHint = 'resume' | 'cancel' | 'follow';

/** The line printed when the user interrupts a command that waits for a workflow. */
export function interruptedMessage(workflowId: string | undefined, hint: InterruptHint = 'resume'): string {
  if (workflowId === undefined)
    return 'Interrupted: the workers stopped; see `dro runs list --status running` for a run left open.';
  if (hint === 'follow')
    return (
      `Stopped following: run ${workflowId} goes on with the cluster's workers. ` +
      `Follow it again with \`dro status ${workflowId} --follow\`, or stop it with \`dro cancel ${workflowId}\`.`
    );
  return hint === 'resume'
    ? `Interrupted: the workers stopped, run ${workflowId} stays open on the Temporal cluster with its history. ` +
        `Continue it with \`dro resume ${workflowId} --attach\`, or end it with \`dro cancel ${workflowId} --force\`.`
    : `Interrupted: the workers stopped, workflow ${workflowId} stays open on the Temporal cluster. ` +
        `End it with \`dro cancel ${workflowId} --force\`.`;
}

export async function runInterruptibly(
  run: (signal: AbortSignal) => Promise<unknown>,
  hint: InterruptHint = 'resume',
): Promise<void> {
  const interrupt = interruptSignal();
  try {
    await run(interrupt.signal);
  } catch (err) {
    if (err instanceof RunInterruptedError) {
      console.error(interruptedMessage(err.workflowId, hint));
      process.exitCode = 130;
      return;
    }
    throw err;
  } finally {
    interrupt.dispose();
  }
}

/** Registers `dro run` (the pipeline) and `dro smoke` (the smoke workflow). */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      'run the pipeline on the embedded Temporal dev server (or TEMPORAL_ADDRESS) with both workers',
    )
    .option('-c, --config <file>', 'pipeline config file (JSON); default: the embedded config/demo.json')
    .option('--run-id <id>', 'the run id (default: <name>-<date>-<random>); an earlier failed run continues')
    .option('--no-cache', 'compute every stage again, ignoring the stage cache (nothing is overwritten)')
    .option('--rerun <stage...>', `compute these stages again although cached (${STAGE_NAMES.join(', ')})`)
    .option(
      '--set <path=value>',
      'override one config field before validation (repeatable), e.g. --set seed=1 --set dro.margin=0',
      collect,
      [] as string[],
    )
    .option(
      '--submit',
      'start no workers here: start the run on `dro server` or TEMPORAL_ADDRESS, whose workers run it, and return',
    )
    .option('--follow', 'with --submit: follow the run to its end, as `dro status --follow` does')
    .action(
      async (options: {
        config?: string;
        runId?: string;
        cache: boolean;
        rerun?: string[];
        set: string[];
        submit?: boolean;
        follow?: boolean;
      }) => {
        if (options.follow && !options.submit)
          throw new Error('--follow: only with --submit (a plain `dro run` follows its run anyway)');
        const config = loadConfig(options.config, options.set);
        for (const stage of options.rerun ?? [])
          if (!(STAGE_NAMES as readonly string[]).includes(stage))
            throw new Error(`--rerun ${stage}: unknown stage (stages: ${STAGE_NAMES.join(', ')})`);
        if (options.runId !== undefined) checkRunIdArg(options.runId);
        await checkBeforeRun(config, options.runId);
        const rerun = !options.cache
          ? { rerun: 'all' as const }
          : options.rerun
            ? { rerun: options.rerun }
            : {};
        if (options.submit) {
          await runInterruptibly(
            (signal) =>
              submitJob({
                config,
                signal,
                follow: options.follow === true,
                ...(options.runId ? { runId: options.runId } : {}),
                ...rerun,
              }),
            'follow',
          );
          return;
        }
        await runInterruptibly((signal) =>
          runJob({
            config,
            signal,
            logger: commandLogger(stdoutLine),
            ...(options.runId ? { runId: options.runId } : {}),
            ...(!options.cache ? { rerun: 'all' as const } : options.rerun ? { rerun: options.rerun } : {}),
          }),
        );
      },
    );
  program
    .command('smoke')
    .description('run the smoke workflow (write, wait, verify one artifact) with both workers')
    .option('-c, --config <file>', 'pipeline config file (JSON) for Temporal and storage; default: demo')
    .action(async (options: { config?: string }) => {
      const config = loadConfig(options.config);
      await runInterruptibly(
        (signal) => runSmokeJob({ config, signal, logger: commandLogger(stdoutLine) }),
        'cancel',
      );
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
