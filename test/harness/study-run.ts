/**
 * A finished run as `dro study export|import` sees it, without running the pipeline: a manifest
 * in the run's records naming an evaluation (no GenEval rows, no win rates) and its samples (one
 * small PNG per method and built-in-world prompt), written to a local artifact store.
 *
 * ```ts
 * await writeStudyRun(root, 'run-a');                 // 3 methods x 8 prompts = 24 comparison pairs
 * fs.writeFileSync(configFile, JSON.stringify(studyConfig(root)));
 * spawnSync(node, [DRO, 'study', 'export', 'run-a', '--config', configFile]);
 * // or, without the CLI, a study where `dro study export` puts it, and a participant's answers:
 * const study = await exportStoredStudy(store, 'run-a', { pairs: 6 });
 * fs.writeFileSync('p1.json', JSON.stringify(answers(study, 'p1')));
 * ```
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeEvaluationSamples, EVAL_SAMPLES_FORMAT, EVALUATION_FORMAT } from '../../activities/evaluation';
import type { EvaluationSamples } from '../../activities/evaluation';
import type { RunManifest } from '../../contracts/pipeline';
import { encodePng } from '../../engine/data/image-codec';
import { Rng } from '../../engine/rng';
import type { StudyKey, StudyManifest } from '../../engine/study';
import { attentionChecks, exportStudy, KEY_FILE_NAME, selectComparisons } from '../../engine/study';
import { generatePrompt, TAGS } from '../../engine/world/world';
import { LocalArtifactStore } from '../../storage';

export const STUDY_RUN_METHODS = ['base', 'sft', 'dro'];

/** A config file's content: the local store at `root`, everything else the defaults. */
export function studyConfig(root: string): Record<string, unknown> {
  return { storage: { kind: 'local', root } };
}

export async function writeStudyRun(
  root: string,
  runId: string,
  options: { prompts?: number; methods?: string[] } = {},
): Promise<{ store: LocalArtifactStore; prompts: string[] }> {
  const store = new LocalArtifactStore({ root });
  const methods = options.methods ?? STUDY_RUN_METHODS;
  const rng = new Rng(`study-run:${runId}`);
  const tags = TAGS.filter((t) => t !== 'single_object');
  const prompts = Array.from(
    { length: options.prompts ?? 8 },
    (_, i) => generatePrompt(rng.fork(`prompt-${i}`), tags[i % tags.length]!).prompt,
  );
  const png = (m: number, i: number): string =>
    Buffer.from(
      encodePng({
        width: 8,
        height: 8,
        data: new Uint8Array(8 * 8 * 3).map((_, k) => (k % 3 === 0 ? 40 * m : k % 3 === 1 ? 20 * i : 200)),
      }),
    ).toString('base64');
  const samples: EvaluationSamples = {
    format: EVAL_SAMPLES_FORMAT,
    prompts,
    seeds: prompts.map((_, i) => 100 + i),
    methods: methods.map((method, m) => ({ method, images: prompts.map((_, i) => png(m, i)) })),
  };
  const evaluation = {
    format: EVALUATION_FORMAT,
    runId,
    models: [],
    baseline: methods[0],
    rewards: [],
    settings: {},
    seeds: { root: 0, geneval: 0, winrate: 0, schedule: { geneval: '', winrate: '' } },
    suite: {},
    geneval: { summaries: {}, comparisons: [], table: [] },
    winRates: [],
    preferenceReward: 'detector',
    winRateImages: {},
    perRewardMedianWinRates: [],
  };
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const opts = { kind: 'test', producer: 'test/harness/study-run' };
  const evalRef = await store.put(`stages/eval/${runId}/evaluation.json`, json(evaluation), opts);
  const samplesRef = await store.put(`stages/eval/${runId}/samples.json`, json(samples), opts);
  const manifest: Partial<RunManifest> = {
    format: 'dro-pipeline/run-manifest@1',
    runId,
    name: runId,
    status: 'completed',
    workflowId: runId,
    execution: '20260101T000000-00000000',
    artifacts: [
      { ...evalRef, stage: 'eval', role: 'evaluation' },
      { ...samplesRef, stage: 'eval', role: 'samples' },
    ],
  };
  await store.put(`runs/${runId}/executions/20260101T000000-00000000/manifest.json`, json(manifest), opts);
  return { store, prompts };
}

export interface StoredStudy {
  studyId: string;
  /** The study folder and the key in the local store (the layout of `dro study export`). */
  dir: string;
  keyFile: string;
  manifest: StudyManifest;
  key: StudyKey;
}

/** A study of a run written by writeStudyRun, exported into the run's records as the CLI does. */
export async function exportStoredStudy(
  store: LocalArtifactStore,
  runId: string,
  options: { pairs?: number } = {},
): Promise<StoredStudy> {
  const keys = await store.list(`runs/${runId}/executions/`);
  const manifest = JSON.parse(
    new TextDecoder().decode(await store.get(keys.find((k) => k.endsWith('/manifest.json'))!)),
  ) as RunManifest;
  const samplesRef = manifest.artifacts.find((a) => a.role === 'samples')!;
  const grid = decodeEvaluationSamples(
    JSON.parse(new TextDecoder().decode(await store.get(samplesRef.uri))) as EvaluationSamples,
  );
  const study = exportStudy({
    runId,
    comparisons: selectComparisons(grid, { pairs: options.pairs ?? 6, seed: runId }),
    attentionChecks: attentionChecks(
      grid.prompts.slice(0, 2).map((prompt, i) => ({ prompt, image: grid.methods[0]!.images[i]! })),
      { seed: runId },
    ),
    seed: runId,
  });
  const prefix = `runs/${runId}/studies/${study.studyId}`;
  const opts = { kind: 'test', producer: 'test/harness/study-run' };
  for (const [rel, bytes] of Object.entries(study.files))
    await store.put(`${prefix}/study/${rel}`, bytes, opts);
  await store.put(`${prefix}/${KEY_FILE_NAME}`, study.key, opts);
  const dir = store.pathOf(`${prefix}/study`);
  return {
    studyId: study.studyId,
    dir,
    keyFile: store.pathOf(`${prefix}/${KEY_FILE_NAME}`),
    manifest: JSON.parse(fs.readFileSync(path.join(dir, 'study.json'), 'utf8')) as StudyManifest,
    key: JSON.parse(new TextDecoder().decode(study.key)) as StudyKey,
  };
}

/**
 * What a participant's page downloads: every pair answered, attention checks right, otherwise the
 * image of `favourite` (default the first image), `ms` per answer (default 2000).
 */
export function answers(
  study: Pick<StoredStudy, 'manifest' | 'key'>,
  participantId: string,
  options: { ms?: number; favourite?: string } = {},
): Record<string, unknown> {
  return {
    format: 'dro-study-results',
    version: 1,
    studyId: study.manifest.studyId,
    participantId,
    answers: study.manifest.pairs.map((p, i) => {
      const k = study.key.pairs[p.id]!;
      const slot =
        k.kind === 'attention' ? k.correct : Math.max(0, k.methods.indexOf(options.favourite ?? ''));
      return { pairId: p.id, choice: p.images[slot], position: i + 1, ms: options.ms ?? 2000 };
    }),
  };
}
