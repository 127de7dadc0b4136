/**
 * `dro eval`: the evaluation workflow on any models given by URI, with the same report a run
 * gets. The helpers that read a run's evaluation serve `dro study` (./study.ts) too.
 */
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { WORKFLOW_TASK_TIMEOUT } from '../../contracts/task-queues';
import { DETECTOR_REWARD_NAME } from '../../activities/evaluation';
import { writeEvaluationReport } from '../../activities/evaluation-report';
import { EvalSuiteError, parseSuite } from '../../engine/eval/suite';
import { openStore, storeForUri, type ArtifactRef, type ArtifactStore } from '../../storage';
import { isUri } from '../../storage/uri';
import { BoundedReadError, readFileBounded } from '../../storage/bounded-read';
import type { PipelineConfig } from '../../config/schemas';
import {
  runEvaluationSettings,
  type EvalModelInput,
  type EvalRewardInput,
  type EvaluationSettings,
} from '../../contracts/evaluation';
import { importModelArg, parseModelArgs } from '../model-args';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { evaluationWorkflow } from '../../workflows/evaluation';
import type { RunManifest } from '../../contracts/pipeline';
import { loadConfig } from './run';
import { checkRunIdRef, runRecordsKey } from '../run-ids';
import { commandLogger, stdoutLine } from '../progress';
import { runInterruptibly } from '../interrupt';
import { withCluster } from '../cluster';

export class EvalCommandError extends Error {
  override name = 'EvalCommandError';
}

export async function readJson<T>(store: ArtifactStore, ref: ArtifactRef | string): Promise<T> {
  const bytes = typeof ref === 'string' ? await store.get(ref) : await store.get(ref.uri, ref.sha256);
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

/** Largest suite file read: GenEval's own suite is about 100 KB. */
export const MAX_SUITE_BYTES = 16 * 1024 * 1024;

/**
 * A user's suite file, read with a bound and parsed here, so every problem names the path the user
 * gave and nothing reaches the store before the suite is known to be good.
 */
async function readSuiteArg(
  store: ArtifactStore,
  config: PipelineConfig,
  source: string,
): Promise<Uint8Array> {
  let bytes: Uint8Array;
  if (!isUri(source) || source.startsWith('file://')) {
    const file = source.startsWith('file://') ? fileURLToPath(source) : path.resolve(source);
    try {
      bytes = readFileBounded(file, MAX_SUITE_BYTES, { what: 'suite' });
    } catch (err) {
      if (err instanceof BoundedReadError) throw new EvalCommandError(`--suite ${source}: ${err.detail}`);
      throw err;
    }
  } else {
    const from = source.startsWith(`${store.baseUri}/`) ? store : storeForUri(source, config.storage);
    const head = await from.head(source);
    if (!head) throw new EvalCommandError(`--suite ${source}: does not exist`);
    if (head.ref.size > MAX_SUITE_BYTES)
      throw new EvalCommandError(
        `--suite ${source}: ${head.ref.size} bytes, more than the ${MAX_SUITE_BYTES} a suite may have; not read`,
      );
    bytes = await from.get(source, head.ref.sha256);
  }
  try {
    parseSuite(bytes, `--suite ${source}`);
  } catch (err) {
    if (err instanceof EvalSuiteError) throw new EvalCommandError(err.message);
    throw err;
  }
  return bytes;
}

/** Copies a checked suite into the store under a content-addressed key. */
async function importSuite(store: ArtifactStore, bytes: Uint8Array): Promise<ArtifactRef> {
  const sha = createHash('sha256').update(bytes).digest('hex');
  return store.put(`imports/${sha.slice(0, 32)}/evaluation_metadata.jsonl`, bytes, {
    kind: 'geneval-suite',
    producer: 'dro eval',
  });
}

/** What `--like <runId>` takes from a run: its evaluation's suite rules, settings and rewards. */
export interface LikeRun {
  runId: string;
  settings: EvaluationSettings;
  rewards: EvalRewardInput[];
  trainingPrompts?: ArtifactRef;
}

/** The run's newest manifest, read from the store; a clear error naming `--like` when there is none. */
export async function likeRun(store: ArtifactStore, runId: string): Promise<LikeRun> {
  checkRunIdRef(runId);
  const keys = (await store.list(`${runRecordsKey(runId)}/executions/`))
    .filter((k) => k.endsWith('/manifest.json'))
    .sort();
  if (keys.length === 0)
    throw new EvalCommandError(
      `--like ${runId}: no such run in ${store.baseUri} (no manifest under ${runRecordsKey(runId)}/executions/)`,
    );
  const manifest = await readJson<RunManifest>(store, keys.at(-1)!);
  const find = (stage: string) => manifest.artifacts.find((a) => a.stage === stage && a.role === stage);
  const { config } = manifest;
  const preferences = find('preferences');
  const reward = find('reward');
  return {
    runId,
    settings: runEvaluationSettings(config),
    rewards:
      config.ranking.rewardModel !== DETECTOR_REWARD_NAME && reward
        ? [{ name: config.ranking.rewardModel, reward: refOf(reward) }]
        : [],
    ...(preferences && { trainingPrompts: refOf(preferences) }),
  };
}

function refOf(a: ArtifactRef): ArtifactRef {
  return { uri: a.uri, sha256: a.sha256, size: a.size };
}

/** The newest manifest of a run, with its evaluation's artifacts. */
export async function runEvaluation(store: ArtifactStore, runId: string) {
  const keys = (await store.list(`${runRecordsKey(runId)}/executions/`))
    .filter((k) => k.endsWith('/manifest.json'))
    .sort();
  if (keys.length === 0)
    throw new EvalCommandError(
      `run ${runId}: no manifest in ${store.baseUri}/${runRecordsKey(runId)}/executions/`,
    );
  const manifest = await readJson<RunManifest>(store, keys.at(-1)!);
  const find = (role: string) => manifest.artifacts.find((a) => a.stage === 'eval' && a.role === role);
  const evaluation = find('evaluation');
  const samples = find('samples');
  if (!evaluation || !samples)
    throw new EvalCommandError(
      `run ${runId} has no evaluation (eval.enabled was false, or the run did not reach it)`,
    );
  const report = manifest.artifacts.find((a) => a.stage === 'report' && a.role === 'report');
  return { manifest, evaluation, samples, report };
}

export function registerEvalCommands(program: Command): void {
  program
    .command('eval')
    .description('evaluate models given by URI (GenEval accuracy, win rates) and write the report')
    .requiredOption(
      '--model <name=uri...>',
      'a model bundle to evaluate, e.g. dro=.dro/artifacts/.../model.safetensors (repeat)',
    )
    .option('--suite <file>', 'a GenEval evaluation_metadata.jsonl (default: the built-in world suite)')
    .option(
      '--like <runId>',
      "judge as this run's evaluation does: its suite rules (training prompts excluded, held-out prompts), settings and reward models",
    )
    .option(
      '-c, --config <file>',
      'config for the cluster, store and eval settings (default: the embedded demo config)',
    )
    .action(async (options: { model: string[]; suite?: string; like?: string; config?: string }) => {
      const config = loadConfig(options.config);
      const store = openStore(config.storage);
      const models = parseModelArgs(options.model);
      // Everything is checked before anything is written to the store or a cluster is asked.
      const like = options.like === undefined ? undefined : await likeRun(store, options.like);
      const suiteBytes = options.suite ? await readSuiteArg(store, config, options.suite) : undefined;
      const refs: EvalModelInput[] = [];
      for (const m of models) refs.push(await importModelArg(store, config, m, 'dro eval'));
      const suite = suiteBytes ? await importSuite(store, suiteBytes) : undefined;
      const baseline = refs.some((r) => r.name === 'base') && like ? 'base' : refs[0]!.name;
      const settings: EvaluationSettings = like
        ? { ...like.settings, baseline }
        : { seed: config.seed, ...config.eval, baseline };
      const id = `eval-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
      const out = `evaluations/${id}`;
      await runInterruptibly(async (signal) => {
        await withCluster(
          { config, runId: id, signal, store, logger: commandLogger(stdoutLine) },
          async ({ client, announce, guard }) => {
            const handle = await client.workflow.start(evaluationWorkflow, {
              taskQueue: WORKFLOW_TASK_QUEUE,
              workflowId: id,
              workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
              args: [
                {
                  runId: id,
                  out,
                  models: refs,
                  rewards: like?.rewards ?? [],
                  ...(suite && { suite }),
                  ...(like?.trainingPrompts && { trainingPrompts: like.trainingPrompts }),
                  settings,
                  backend: config.workers.backend,
                },
              ],
            });
            announce(handle);
            const result = await guard(() => handle.result());
            const report = await writeEvaluationReport(store, {
              id,
              out,
              evaluation: result.evaluation,
              samples: result.samples,
              models: refs,
              config: { eval: settings },
              ...(like && { like: like.runId }),
            });
            console.log(`Suite:    ${report.suite}`);
            for (const line of result.tables.trimEnd().split('\n')) console.log(line);
            console.log(`Report:   ${report.html.uri}`);
            console.log(`          ${report.markdown.uri}`);
            return result;
          },
        );
      }, 'cancel');
    });
}
