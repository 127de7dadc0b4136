/**
 * Operating runs: `dro status`, `dro cancel`, `dro resume` and `dro runs list|show|verify`, and the
 * helpers `dro schedule` (./schedule.ts) shares with them. Each talks to the configured cluster
 * (the embedded dev server, started on the same history file, when nothing else is configured);
 * every command takes `--json` for scripts.
 */
import {
  WorkflowFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Command } from 'commander';
import type { PipelineConfig } from '../../config/schemas';
import { completedRunsQuery, newestRun, type CompletedRun } from '../../activities/latest-run';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { isSha256Hex, openStore, storeForUri, type ArtifactStore } from '../../storage';
import { ArtifactNotFoundError, DigestMismatchError } from '../../storage/errors';
import {
  pipelineProgressQuery,
  type PipelineInput,
  type PipelineProgress,
  type PipelineResult,
  type RunManifest,
} from '../../contracts/pipeline';
import { checkBeforeRun, loadConfig, startPipeline } from './run';
import { checkRunIdRef, runRecordsKey } from '../run-ids';
import { commandLogger, stdoutLine } from '../progress';
import { configHash, provenance } from '../provenance';
import { runInterruptibly } from '../interrupt';
import { stageTable } from '../run-ending';
import { withCluster } from '../cluster';
import { commonOptions, emit, RunCommandError, withClient, type CommonOptions } from '../command-kit';
import { parseModelArgs } from '../model-args';
import { followRunToEnd, printRunEnding } from '../run-ending';

async function describeRun(client: Client, runId: string): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(checkRunIdRef(runId)).describe();
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError')
      throw new RunCommandError(`run id ${runId}: no such run on this cluster (see \`dro runs list\`)`);
    throw err;
  }
}

/** The newest manifest of a run in the store, if any execution finished. */
async function newestManifest(store: ArtifactStore, runId: string): Promise<RunManifest | undefined> {
  const keys = (await store.list(`${runRecordsKey(runId)}/executions/`))
    .filter((k) => k.endsWith('/manifest.json'))
    .sort();
  const key = keys.at(-1);
  if (key === undefined) return undefined;
  return JSON.parse(new TextDecoder().decode(await store.get(key))) as RunManifest;
}

/** The pipeline input the run was first started with, from its history. */
async function startedInput(client: Client, runId: string): Promise<PipelineInput> {
  const history = await client.workflow.getHandle(runId).fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  if (!payload) throw new RunCommandError(`run ${runId}: its history holds no pipeline input`);
  return defaultPayloadConverter.fromPayload<PipelineInput>(payload);
}

async function progressOf(client: Client, runId: string): Promise<PipelineProgress | undefined> {
  try {
    // A run without workers cannot answer; do not wait for one.
    return await client.withDeadline(Date.now() + 5000, () =>
      client.workflow.getHandle(runId).query(pipelineProgressQuery),
    );
  } catch {
    return undefined;
  }
}

function quoteVisibility(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** What `dro runs list` lists: pipeline runs and the evaluations schedules start. */
const LISTED_TYPES: Record<string, NonNullable<RunRow['kind']>> = {
  pipelineWorkflow: 'pipeline',
  scheduledEvaluationWorkflow: 'evaluation',
};

/** The visibility query of `dro runs list`. */
export function runsQuery(filters: {
  status?: string;
  since?: string;
  configHash?: string;
  name?: string;
}): string {
  const types = Object.keys(LISTED_TYPES).map((t) => `WorkflowType = '${t}'`);
  const clauses = [`(${types.join(' OR ')})`];
  if (filters.status) {
    const statuses: Record<string, string> = {
      running: 'Running',
      completed: 'Completed',
      failed: 'Failed',
      cancelled: 'Canceled',
      canceled: 'Canceled',
      terminated: 'Terminated',
      'timed-out': 'TimedOut',
    };
    const s = statuses[filters.status.toLowerCase()];
    if (!s)
      throw new RunCommandError(`--status ${filters.status}: use one of ${Object.keys(statuses).join(', ')}`);
    clauses.push(`ExecutionStatus = '${s}'`);
  }
  if (filters.since) {
    const t = Date.parse(filters.since);
    if (Number.isNaN(t))
      throw new RunCommandError(`--since ${filters.since}: not a date (e.g. 2026-11-30 or an ISO time)`);
    clauses.push(`StartTime >= '${new Date(t).toISOString()}'`);
  }
  if (filters.configHash) clauses.push(`DroConfigHash = ${quoteVisibility(filters.configHash)}`);
  if (filters.name) clauses.push(`DroConfigName = ${quoteVisibility(filters.name)}`);
  return clauses.join(' AND ');
}

/** `1d`, `12h`, `30m`, `45s` -> a Temporal duration string; a clear error otherwise. */
export function parseEvery(every: string): string {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(every.trim());
  if (!m || Number(m[1]) <= 0)
    throw new RunCommandError(
      `--every ${JSON.stringify(every)}: use a positive number with s, m, h or d (e.g. 1d, 6h)`,
    );
  const unit = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days' }[m[2] as 's' | 'm' | 'h' | 'd'];
  return `${m[1]} ${unit}`;
}

/** Checks the shape of a 5-field cron expression (the server checks the values). */
export function checkCron(cron: string): string {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 || !fields.every((f) => /^[\d*/,\-A-Za-z?]+$/.test(f)))
    throw new RunCommandError(
      `--cron ${JSON.stringify(cron)}: use 5 fields "minute hour day-of-month month day-of-week", e.g. "0 3 * * *"`,
    );
  return fields.join(' ');
}

export interface VerifyResult {
  uri: string;
  stage: string;
  role: string;
  status: 'ok' | 'missing' | 'changed';
  detail?: string;
}

/** Re-hashes every artifact of a manifest, each in the store its URI names. */
export async function verifyManifest(manifest: RunManifest): Promise<VerifyResult[]> {
  const out: VerifyResult[] = [];
  for (const a of manifest.artifacts) {
    const where = { uri: a.uri, stage: a.stage, role: a.role };
    try {
      await storeForUri(a.uri, manifest.config.storage).get(a.uri, a.sha256);
      out.push({ ...where, status: 'ok' });
    } catch (err) {
      if (err instanceof ArtifactNotFoundError)
        out.push({ ...where, status: 'missing', detail: err.message });
      else if (err instanceof DigestMismatchError)
        out.push({ ...where, status: 'changed', detail: err.message });
      else throw err;
    }
  }
  return out;
}

/** `--model NAME=URI` pairs of `schedule create`, with the same rules as `dro eval`. */
export function parseScheduleModels(args: readonly string[]): { name: string; uri: string }[] {
  try {
    return parseModelArgs(args);
  } catch (err) {
    throw new RunCommandError(`schedule create: ${(err as Error).message}`);
  }
}

/** The shortest config hash prefix taken (`dro runs list` prints 12 digits). */
export const MIN_HASH_PREFIX = 6;

/**
 * A config hash argument as given: the whole hash (64 hex digits, as `dro runs show` prints it) or
 * a prefix of at least MIN_HASH_PREFIX digits (`dro runs list` prints 12), lower-cased. Checked
 * before any cluster is asked; resolveHashPrefix turns a prefix into the hash.
 */
export function checkConfigHash(hash: string, option = '--latest-of'): string {
  const value = hash.trim().toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${MIN_HASH_PREFIX},64}$`).test(value))
    throw new RunCommandError(
      `${option} ${JSON.stringify(hash)}: give a config hash (64 hex digits, \`dro runs show\`) or its first ` +
        `${MIN_HASH_PREFIX} or more digits (\`dro runs list\` prints 12)`,
    );
  return value;
}

/**
 * The config hash a checked argument names among `known` hashes: itself when whole, else the one
 * known hash it begins; no match and several matches are errors naming the option.
 */
export function resolveHashPrefix(option: string, value: string, known: Iterable<string>): string {
  if (isSha256Hex(value)) return value;
  const matches = [...new Set(known)].filter((h) => h.startsWith(value)).sort();
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0)
    throw new RunCommandError(
      `${option} ${value}: no run on this cluster has a config hash starting with ${value} (see \`dro runs list\`); ` +
        'give the whole hash for a config that has not run yet',
    );
  throw new RunCommandError(
    `${option} ${value}: ambiguous, ${matches.length} config hashes start with it ` +
      `(${matches.map((h) => h.slice(0, 16)).join(', ')}); give more digits`,
  );
}

/** The config hashes of the pipeline runs on the cluster (DroConfigHash), where a prefix is looked up. */
async function knownConfigHashes(client: Client): Promise<Set<string>> {
  const hashes = new Set<string>();
  for await (const w of client.workflow.list({ query: `WorkflowType = 'pipelineWorkflow'` })) {
    const hash = configHashOf(w.typedSearchAttributes);
    if (hash !== undefined) hashes.add(hash);
  }
  return hashes;
}

/** Resolves a checked hash argument on the cluster (a whole hash needs no lookup). */
export async function resolveConfigHash(
  client: Client,
  option: string,
  value: string,
  config?: PipelineConfig,
): Promise<string> {
  if (isSha256Hex(value)) return value;
  const known = await knownConfigHashes(client);
  // The given config's own hash counts too, so its prefix works before its first run.
  if (config) known.add(configHash(config));
  return resolveHashPrefix(option, value, known);
}

function configHashOf(attrs: WorkflowExecutionInfo['typedSearchAttributes']): string | undefined {
  const value = attrs.getAll().find((p) => p.key.name === 'DroConfigHash')?.value;
  return typeof value === 'string' ? value : undefined;
}

/** The id of the newest completed run of `hash` now, if any (the schedule looks again at every trigger). */
export async function newestCompletedRun(client: Client, hash: string): Promise<string | undefined> {
  const runs: CompletedRun[] = [];
  for await (const w of client.workflow.list({ query: completedRunsQuery(hash) }))
    runs.push({ workflowId: w.workflowId, ...(w.closeTime && { closeTime: w.closeTime }) });
  return newestRun(runs)?.workflowId;
}

/** temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW (@temporalio/proto is a dev dependency). */
const TASK_QUEUE_TYPE_WORKFLOW = 1;

/** The most runs `dro runs list` shows. */
const MAX_LISTED = 1000;

export interface RunRow {
  runId: string;
  /** A pipeline run, or an evaluation a schedule started. */
  kind?: 'pipeline' | 'evaluation';
  status: string;
  startTime: string;
  configHash?: string;
  name?: string;
  /** The run's workflow task queue (not printed). */
  taskQueue?: string;
  /** For a running run: whether any worker polled its task queue lately (see markUnattended). */
  workerSeen?: boolean;
}

/**
 * The listing's lines. The kind column appears only when an evaluation is listed, so a listing of
 * pipeline runs reads as it always has.
 */
export function runsTable(rows: readonly RunRow[]): string[] {
  const withKind = rows.some((r) => (r.kind ?? 'pipeline') !== 'pipeline');
  const kind = (k: string) => (withKind ? `  ${k}` : '');
  return [
    `run id                                   status                    started                   config hash${kind(' kind')}`,
    ...rows.map(
      (r) =>
        `${r.runId.padEnd(40)} ${(r.workerSeen === false ? 'running (no worker seen)' : r.status).padEnd(25)} ${r.startTime.padEnd(25)} ${(r.configHash ?? '-').slice(0, 12)}${withKind ? ' '.repeat(12 - Math.min(12, (r.configHash ?? '-').length)) : ''}${kind(r.kind ?? 'pipeline')}`,
    ),
  ];
}

/** Newest started first; runs started at the same time by id. */
export function sortRuns(rows: RunRow[]): RunRow[] {
  return rows.sort((a, b) => b.startTime.localeCompare(a.startTime) || a.runId.localeCompare(b.runId));
}

/**
 * Marks each running run with whether a worker polled its workflow task queue within the
 * server's poller history (a few minutes): a run whose `dro run` died has none, as no `dro worker`
 * serves its queues. One DescribeTaskQueue call per distinct queue; a failed call marks nothing.
 */
export async function markUnattended(client: Client, namespace: string, rows: RunRow[]): Promise<void> {
  const queues = new Map<string, boolean | undefined>();
  for (const r of rows) if (r.status === 'running' && r.taskQueue) queues.set(r.taskQueue, undefined);
  for (const queue of queues.keys()) {
    try {
      const described = await client.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: queue },
        taskQueueType: TASK_QUEUE_TYPE_WORKFLOW,
      });
      queues.set(queue, (described.pollers ?? []).length > 0);
    } catch {
      // Unknown: shown as plain running.
    }
  }
  for (const r of rows) {
    const seen = r.status === 'running' && r.taskQueue ? queues.get(r.taskQueue) : undefined;
    if (seen !== undefined) r.workerSeen = seen;
  }
}

/** `dro status`, `dro cancel`, `dro resume`. */
function registerRunControlCommands(program: Command): void {
  const common = commonOptions;
  common(program.command('status <runId>').description("a run's state and its stages"))
    .option('-f, --follow', 'keep printing stage changes until the run ends')
    .action(async (runId: string, options: CommonOptions & { follow?: boolean }) => {
      checkRunIdRef(runId);
      await withClient(options, async ({ client, store }) => {
        const d = await describeRun(client, runId);
        const progress = await progressOf(client, runId);
        emit(
          options.json,
          { runId, status: d.status.name, startTime: d.startTime, closeTime: d.closeTime, progress },
          () => [
            `Run ${runId}: ${d.status.name.toLowerCase()} (started ${d.startTime.toISOString()}${d.closeTime ? `, closed ${d.closeTime.toISOString()}` : ''})`,
            ...(progress
              ? stageTable(progress.stages)
              : ['(no stage progress: the run has no worker or has closed)']),
          ],
        );
        if (options.follow && (d.status.name === 'RUNNING' || d.status.name === 'COMPLETED')) {
          // To its end, then the ending `dro run` prints (at once for a run that completed).
          const handle = client.workflow.getHandle(runId);
          try {
            if (d.status.name === 'COMPLETED')
              await printRunEnding((await handle.result()) as PipelineResult, store, stdoutLine);
            else await followRunToEnd(handle, { store, out: stdoutLine, everyMs: 15_000 });
          } catch (err) {
            if (!(err instanceof WorkflowFailedError)) throw err;
            console.log(`Run ${runId}: ${(await describeRun(client, runId)).status.name.toLowerCase()}`);
            process.exitCode = 1;
          }
        }
      });
    });

  common(
    program
      .command('cancel <runId>')
      .description('ask a running run to stop (training stops at a checkpoint)'),
  )
    .option('--force', 'terminate at once (for a run whose workers are gone)')
    .action(async (runId: string, options: CommonOptions & { force?: boolean }) => {
      checkRunIdRef(runId);
      await withClient(options, async ({ client }) => {
        const d = await describeRun(client, runId);
        if (d.status.name !== 'RUNNING')
          throw new RunCommandError(
            `run ${runId} is ${d.status.name.toLowerCase()}, not running: nothing to cancel`,
          );
        const handle = client.workflow.getHandle(runId);
        if (options.force) await handle.terminate('dro cancel --force');
        else await handle.cancel();
        emit(options.json, { runId, requested: options.force ? 'terminate' : 'cancel' }, () => [
          options.force
            ? `Run ${runId} terminated; \`dro resume ${runId}\` continues it from its finished stages.`
            : `Cancellation of run ${runId} requested; it stops once its workers see it.`,
        ]);
      });
    });

  common(
    program
      .command('resume <runId>')
      .description('continue a failed, cancelled or interrupted run with its own config'),
  )
    .option(
      '--attach',
      'for a run still open (its `dro run` was interrupted): start workers here and wait for it',
    )
    .action(async (runId: string, options: CommonOptions & { attach?: boolean }) => {
      checkRunIdRef(runId);
      const found = await withClient(options, async ({ client }) => {
        const d = await describeRun(client, runId);
        if (d.status.name === 'RUNNING' && !options.attach)
          throw new RunCommandError(
            `run ${runId} is running; follow it with \`dro status ${runId} --follow\`, or, if its workers stopped (an interrupted \`dro run\`), ` +
              `run \`dro resume ${runId} --attach\` to start workers here and wait for it`,
          );
        if (d.status.name === 'COMPLETED')
          throw new RunCommandError(`run ${runId} completed; nothing to resume (\`dro runs show ${runId}\`)`);
        return { input: await startedInput(client, runId), running: d.status.name === 'RUNNING' };
      });
      const config = found.input.config;
      await checkBeforeRun(config, runId);
      await runInterruptibly(async (signal) => {
        await withCluster(
          {
            config,
            runId,
            signal,
            logger: commandLogger(stdoutLine),
            privateQueues: true,
            // An open run is served on the queues it was started with; its work begins as soon as
            // the workers poll, so the Workflow line comes first.
            ...(found.running && {
              taskQueues: found.input.taskQueues ?? TASK_QUEUES,
              announceFirst: true,
            }),
          },
          async ({ client, store, queues, announce, guard }) => {
            const handle = found.running
              ? (client.workflow.getHandle(runId) as Awaited<ReturnType<typeof startPipeline>>)
              : await startPipeline(client, {
                  runId,
                  config,
                  provenance: provenance(config),
                  ...(queues !== TASK_QUEUES && { taskQueues: queues }),
                });
            announce(handle);
            console.log(`Run:      ${runId} (records under ${store.baseUri}/runs/${runId}/)`);
            return followRunToEnd(handle, { store, out: stdoutLine, wait: guard });
          },
        );
      });
    });
}

/** `dro runs list|show|verify`. */
function registerRunsGroup(program: Command): void {
  const common = commonOptions;
  const runs = program.command('runs').description('list, show and verify runs');
  common(runs.command('list').description('runs on the cluster, newest started first'))
    .option('--status <status>', 'running, completed, failed, cancelled, terminated, timed-out')
    .option('--since <date>', 'started at or after this date')
    .option(
      '--config-hash <sha256>',
      'runs of this result-determining config: the hash or its first digits (as this list prints them)',
    )
    .option('--name <name>', "runs of this config's name")
    .action(
      async (
        options: CommonOptions & { status?: string; since?: string; configHash?: string; name?: string },
      ) => {
        const hashArg =
          options.configHash === undefined ? undefined : checkConfigHash(options.configHash, '--config-hash');
        // Checks --status and --since before any cluster is asked.
        runsQuery({ ...options, configHash: undefined });
        await withClient(options, async ({ client, namespace }) => {
          const configHash =
            hashArg === undefined ? undefined : await resolveConfigHash(client, '--config-hash', hashArg);
          const query = runsQuery({ ...options, configHash });
          const rows: RunRow[] = [];
          for await (const w of client.workflow.list({ query })) {
            rows.push({
              runId: w.workflowId,
              kind: LISTED_TYPES[w.type] ?? 'pipeline',
              status: w.status.name.toLowerCase(),
              startTime: w.startTime.toISOString(),
              configHash: configHashOf(w.typedSearchAttributes),
              name: w.typedSearchAttributes.getAll().find((p) => p.key.name === 'DroConfigName')?.value as
                string | undefined,
              taskQueue: w.taskQueue,
            });
            if (rows.length >= MAX_LISTED) break;
          }
          sortRuns(rows);
          await markUnattended(client, namespace, rows);
          emit(
            options.json,
            rows.map(({ taskQueue: _queue, ...row }) => row),
            () => (rows.length === 0 ? ['no runs match'] : runsTable(rows)),
          );
        });
      },
    );

  common(
    runs
      .command('show <runId>')
      .description("a run's manifest: config hash, stages with timings and cache hits, artifacts"),
  ).action(async (runId: string, options: CommonOptions) => {
    checkRunIdRef(runId);
    await withClient(options, async ({ client, store }) => {
      const d = await describeRun(client, runId);
      const manifest = await newestManifest(store, runId);
      const progress = manifest ? undefined : await progressOf(client, runId);
      emit(
        options.json,
        { runId, status: d.status.name, manifest: manifest ?? null, progress: progress ?? null },
        () => [
          `Run:          ${runId} (${d.status.name.toLowerCase()})`,
          ...(manifest
            ? [
                `Config:       ${manifest.name}, hash ${manifest.provenance?.configHash ?? '-'}`,
                `Code:         dro-pipeline ${manifest.provenance?.packageVersion ?? '?'} at ${manifest.provenance?.gitCommit ?? '?'}, Node ${manifest.provenance?.node ?? '?'}`,
                `Execution:    ${manifest.execution}, ${manifest.status} in ${manifest.wallSeconds.toFixed(1)} s`,
                ...(manifest.error
                  ? [`Error:        ${manifest.error.stage}: ${manifest.error.message}`]
                  : []),
                ...stageTable(manifest.stages),
                'Artifacts:',
                ...manifest.artifacts.map(
                  (a) => `  ${`${a.stage}.${a.role}`.padEnd(24)} ${a.sha256.slice(0, 16)}  ${a.uri}`,
                ),
              ]
            : ['(no manifest yet: the run has not ended)', ...(progress ? stageTable(progress.stages) : [])]),
        ],
      );
    });
  });

  common(
    runs
      .command('verify <runId>')
      .description("re-hash every artifact in the run's manifest; exit 1 on any missing or changed"),
  ).action(async (runId: string, options: CommonOptions) => {
    const config = loadConfig(options.config);
    const manifest = await newestManifest(openStore(config.storage), checkRunIdRef(runId));
    if (!manifest)
      throw new RunCommandError(
        `run ${runId}: no manifest in ${openStore(config.storage).baseUri}/${runRecordsKey(runId)}/executions/`,
      );
    const results = await verifyManifest(manifest);
    const bad = results.filter((r) => r.status !== 'ok');
    emit(
      options.json,
      { runId, execution: manifest.execution, checked: results.length, problems: bad },
      () => [
        ...bad.map(
          (r) => `${r.status.toUpperCase()}  ${r.stage}.${r.role}  ${r.uri}\n         ${r.detail ?? ''}`,
        ),
        `${results.length - bad.length} of ${results.length} artifacts of run ${runId} (execution ${manifest.execution}) verified` +
          (bad.length ? `; ${bad.length} missing or changed` : ''),
      ],
    );
    if (bad.length) process.exitCode = 1;
  });
}

export function registerRunsCommands(program: Command): void {
  registerRunControlCommands(program);
  registerRunsGroup(program);
}

export { RunCommandError } from '../command-kit';
