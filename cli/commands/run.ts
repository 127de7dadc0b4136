/**
 * `dro run`: the pipeline on the configured Temporal cluster (the embedded dev server by default),
 * with both workers in this process (`--submit`: none, for a cluster with `dro worker`s); without
 * `--config` it runs config/demo.json. What it prints while waiting and at the end: ../progress.ts,
 * ../run-ending.ts. `dro smoke`: the smoke workflow the same way. `dro server`: the embedded dev
 * server in the foreground.
 */
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load';
import type { PipelineConfig } from '../../config/schemas';
import { TASK_QUEUES, WORKFLOW_TASK_TIMEOUT } from '../../contracts/task-queues';
import { publishServer, startDevServer, TemporalUnavailableError } from '../../infra/temporal-server';
import { openStore } from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { startRunMetrics } from '../run-metrics';
import { pipelineWorkflow } from '../../workflows/pipeline';
import type { PipelineInput, PipelineResult } from '../../contracts/pipeline';
import { STAGE_NAMES } from '../../contracts/stages';
import { preflight } from '../preflight';
import { followRunToEnd, type LossSummary } from '../run-ending';
import { commandLogger, stdoutLine } from '../progress';
import { probeS3Endpoint } from '../../storage/s3-probe';
import { escapeControl } from '../terminal-text';
import type { SmokeResult } from '../../contracts/smoke';
import { smokeWorkflow } from '../../workflows/smoke';

import { interruptSignal, runInterruptibly } from '../interrupt';
import { withCluster, type ClusterRun, type RunJobOptions } from '../cluster';
import { provenance, searchAttributes } from '../provenance';
import { checkRunIdArg } from '../run-ids';

/** The embedded defaults of `dro run`: the built-in world, sized for a few minutes on a CPU. */
export const DEMO_CONFIG_FILE = path.join(__dirname, '..', '..', 'config', 'demo.json');

export interface RunJobResult extends PipelineResult, ClusterRun {
  /** First and last logged DRO loss and diff, when the summary has a history. */
  droLoss: LossSummary | undefined;
}

export interface SmokeJobResult extends SmokeResult, ClusterRun {}

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
  // The one check that talks to the network: an S3 endpoint that does not answer as S3 would
  // otherwise be found only after the server and workers started, through the SDK's retries.
  if (config.storage.kind === 's3') {
    const { kind: _kind, ...s3 } = config.storage;
    const answer = await probeS3Endpoint(s3);
    if (answer !== undefined) problems.push({ path: '$.storage.endpoint', message: answer });
  }
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
    .option(
      '--metrics <host:port>',
      'serve Prometheus metrics at /metrics there (default: workers.metricsAddress)',
    )
    .action(
      async (options: {
        config?: string;
        runId?: string;
        cache: boolean;
        rerun?: string[];
        set: string[];
        submit?: boolean;
        follow?: boolean;
        metrics?: string;
      }) => {
        if (options.follow && !options.submit)
          throw new Error('--follow: only with --submit (a plain `dro run` follows its run anyway)');
        const config = loadConfig(options.config, options.set);
        for (const stage of options.rerun ?? [])
          if (!(STAGE_NAMES as readonly string[]).includes(stage))
            throw new Error(`--rerun ${stage}: unknown stage (stages: ${STAGE_NAMES.join(', ')})`);
        if (options.runId !== undefined) checkRunIdArg(options.runId);
        const metrics = await startRunMetrics(options.metrics, config, options.submit === true);
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
            ...(metrics && { metrics: true }),
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
