/**
 * `dro eval`: the evaluation workflow on any models given by URI, with the same report a run
 * gets. The helpers that read a run's evaluation serve `dro study` (./study.ts) too.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { WORKFLOW_TASK_TIMEOUT } from '../../contracts/task-queues';
import { decodeEvaluationSamples, evaluationReportData } from '../../activities/evaluation';
import type { EvaluationDocument, EvaluationSamples } from '../../activities/evaluation';
import { checkModelBundleHeader } from '../../engine/io/model-bundle';
import { parseSafetensorsHeader } from '../../engine/io/safetensors';
import { renderReport, type ReportData } from '../../engine/report';
import { openStore, storeForUri, type ArtifactRef, type ArtifactStore } from '../../storage';
import { isUri } from '../../storage/uri';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { evaluationWorkflow } from '../../workflows/evaluation';
import type { RunManifest } from '../../contracts/pipeline';
import { commandLogger, runRecordsKey, loadConfig, runInterruptibly, stdoutLine, withCluster } from './run';

export class EvalCommandError extends Error {
  override name = 'EvalCommandError';
}

export async function readJson<T>(store: ArtifactStore, ref: ArtifactRef | string): Promise<T> {
  const bytes = typeof ref === 'string' ? await store.get(ref) : await store.get(ref.uri, ref.sha256);
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

/** Reads a user-given file or URI; a clear error naming it when it cannot be read. */
async function readUserSource(source: string, what: string): Promise<Uint8Array> {
  try {
    if (!isUri(source) || source.startsWith('file://')) {
      const file = source.startsWith('file://') ? new URL(source).pathname : path.resolve(source);
      return new Uint8Array(fs.readFileSync(file));
    }
    return await storeForUri(source).get(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EvalCommandError(
      `${what} ${source}: cannot read it (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`,
    );
  }
}

/**
 * Copies a user file into the store under a content-addressed key, so the workflow's activities
 * read it like any artifact, verified by its digest.
 */
async function importFile(
  store: ArtifactStore,
  bytes: Uint8Array,
  name: string,
  kind: string,
): Promise<ArtifactRef> {
  const sha = createHash('sha256').update(bytes).digest('hex');
  return store.put(`imports/${sha.slice(0, 32)}/${name}`, bytes, { kind, producer: 'dro eval' });
}

/** `NAME=URI` pairs of `--model`, checked for unique names. */
export function parseModelArgs(args: readonly string[]): { name: string; uri: string }[] {
  if (args.length === 0) throw new EvalCommandError('give at least one --model NAME=URI');
  const seen = new Set<string>();
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : '';
    const uri = eq > 0 ? arg.slice(eq + 1) : '';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || uri === '')
      throw new EvalCommandError(
        `--model ${JSON.stringify(arg)}: use NAME=URI, NAME of letters, digits, '.', '_' or '-'`,
      );
    if (name === 'detector')
      throw new EvalCommandError(`--model ${arg}: the name "detector" is reserved for the detector reward`);
    if (seen.has(name)) throw new EvalCommandError(`--model ${name}: given twice`);
    seen.add(name);
    return { name, uri };
  });
}

export function reportFromEvaluation(
  id: string,
  doc: EvaluationDocument,
  samples: EvaluationSamples,
  extra: { config: unknown; artifacts: ReportData['artifacts'] },
): ReportData {
  return {
    runId: id,
    name: id,
    createdAt: new Date().toISOString(),
    config: extra.config,
    configHash: '',
    stages: [],
    artifacts: extra.artifacts,
    lossCurves: [],
    ...evaluationReportData(doc),
    samples: decodeEvaluationSamples(samples),
  };
}

export async function writeFiles(
  store: ArtifactStore,
  prefix: string,
  files: Record<string, Uint8Array>,
): Promise<Record<string, ArtifactRef>> {
  const refs: Record<string, ArtifactRef> = {};
  const names = Object.keys(files).sort(
    (a, b) => Number(a.startsWith('report.')) - Number(b.startsWith('report.')),
  );
  for (const name of names)
    refs[name] = await store.put(`${prefix}/${name}`, files[name]!, { kind: 'report-view', producer: 'dro' });
  return refs;
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
      '-c, --config <file>',
      'config for the cluster, store and eval settings (default: the embedded demo config)',
    )
    .action(async (options: { model: string[]; suite?: string; config?: string }) => {
      const config = loadConfig(options.config);
      const store = openStore(config.storage);
      const models = parseModelArgs(options.model);
      const refs: { name: string; model: ArtifactRef }[] = [];
      for (const m of models) {
        const bytes = await readUserSource(m.uri, `--model ${m.name}`);
        try {
          checkModelBundleHeader(parseSafetensorsHeader(bytes, m.uri), m.uri);
        } catch (err) {
          throw new EvalCommandError(`--model ${m.name}: ${(err as Error).message}`);
        }
        refs.push({
          name: m.name,
          model: await importFile(store, bytes, 'model.safetensors', 'model-bundle'),
        });
      }
      const suite = options.suite
        ? await importFile(
            store,
            await readUserSource(options.suite, '--suite'),
            'evaluation_metadata.jsonl',
            'geneval-suite',
          )
        : undefined;
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
                  rewards: [],
                  ...(suite && { suite }),
                  settings: { seed: config.seed, ...config.eval, baseline: refs[0]!.name },
                  backend: config.workers.backend,
                },
              ],
            });
            announce(handle);
            const result = await guard(() => handle.result());
            const doc = await readJson<EvaluationDocument>(store, result.evaluation);
            const samples = await readJson<EvaluationSamples>(store, result.samples);
            const files = renderReport(
              reportFromEvaluation(id, doc, samples, {
                config: config.eval,
                artifacts: [
                  ...refs.map((r) => ({ role: `model/${r.name}`, uri: r.model.uri, sha256: r.model.sha256 })),
                  { role: 'evaluation', uri: result.evaluation.uri, sha256: result.evaluation.sha256 },
                ],
              }),
            );
            const written = await writeFiles(store, `${out}/report`, files);
            for (const line of result.tables.trimEnd().split('\n')) console.log(line);
            console.log(`Report:   ${written['report.html']!.uri}`);
            console.log(`          ${written['report.md']!.uri}`);
            return result;
          },
        );
      }, 'cancel');
    });
}
