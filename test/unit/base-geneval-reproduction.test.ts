/**
 * The evaluation stage reproduces the GenEval of the shipped base (models/world-base/README.md) as
 * tools/eval-base.ts measures it: on a slice of the README's held-out suite (the first prompts of
 * every tag, each with the README's image seeds), the stage's activities draw and judge the same
 * images as the tool's `evaluateBase`, image by image, and so give the same per-tag accuracies and
 * overall score. Both run in this process with the default inference runtime.
 *
 * The stage plans its own seeds (`planShards`: root + prompt * imagesPerPrompt + j over its
 * tag-interleaved prompt order) while the tool draws image j of suite prompt i with seed i + j * P.
 * The shard activity takes every slot's seed from its input, so the tool's seeds are handed to it
 * here; the summary statistics are the ones `summarizeEvaluation` computes from shard verdicts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createEvaluationActivities,
  type EvaluationPlan,
  type EvaluationShardDocument,
} from '../../activities/evaluation';
import type { StageDeps } from '../../activities/stage';
import { generateSuite, TAGS, toMetadataJsonl, type PromptMetadata } from '../../engine/world/world';
import { genevalRowsOf, metadataJson, summarizeGeneval } from '../../engine/eval/geneval-summary';
import { initBackend } from '../../engine/backend';
import { decodeModelBundle } from '../../engine/io/model-bundle';
import { disposeModel } from '../../engine/training/diffusion-model';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore } from '../../storage';
import { planShards, type EvalJob } from '../../contracts/evaluation';
import { evaluateBase, type BaseEvalResult } from '../../tools/base-geneval';
import { loadRecipe } from '../../tools/pretrain-recipe';

const ROOT = path.resolve(__dirname, '../..');
const BASE = path.join(ROOT, 'models/world-base/base.safetensors');
/** The settings tools/eval-base.ts measures the README's table with. */
const RECIPE = loadRecipe(path.join(ROOT, 'config/pretrain-base.json'));
const PROMPTS_PER_TAG = 2;
const IMAGES_PER_PROMPT = 2;

const env = new MockActivityEnvironment();
const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;

/** One image's verdict, keyed by what identifies it in both paths. */
interface Verdict {
  prompt: string;
  seed: number;
  correct: boolean;
  score: number;
}
const key = (v: { prompt: string; seed: number }): string => `${v.seed}\t${v.prompt}`;

describe('GenEval of the shipped base: evaluation stage vs tools/eval-base.ts', { timeout: 300_000 }, () => {
  let dir: string;
  let suite: PromptMetadata[];
  let only: number[];
  let tool: BaseEvalResult;
  let plan: EvaluationPlan;
  let shard: EvaluationShardDocument;

  before(async () => {
    await initBackend('auto');
    suite = generateSuite({ seed: RECIPE.final.suiteSeed, perTag: RECIPE.final.perTag });
    // The first prompts of every tag in suite order: the README measurement's own prompts and seeds.
    only = TAGS.flatMap((tag) =>
      suite
        .map((m, i) => [m, i] as const)
        .filter(([m]) => m.tag === tag)
        .slice(0, PROMPTS_PER_TAG)
        .map(([, i]) => i),
    );

    const bytes = new Uint8Array(fs.readFileSync(BASE));
    const model = decodeModelBundle(bytes, BASE);
    try {
      tool = await evaluateBase(model, suite, {
        only,
        seedsPerPrompt: IMAGES_PER_PROMPT,
        samplerSteps: RECIPE.eval.samplerSteps,
        guidanceScale: RECIPE.eval.guidanceScale,
      });
    } finally {
      disposeModel(model);
    }

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-base-geneval-'));
    const deps: StageDeps = {
      store: new LocalArtifactStore({ root: path.join(dir, 'store') }),
      logger: createLogger({ level: 'warn', destination: process.stderr }),
    };
    const acts = createEvaluationActivities(deps);
    const put = (k: string, data: Uint8Array | string, kind: string) =>
      deps.store.put(k, typeof data === 'string' ? new TextEncoder().encode(data) : data, {
        kind,
        producer: 'test',
      });
    const modelRef = await put('models/base.safetensors', bytes, 'model-bundle');
    const suiteRef = await put(
      'suites/base-heldout.jsonl',
      toMetadataJsonl(only.map((i) => suite[i]!)),
      'geneval-suite',
    );
    const settings = {
      seed: 0,
      genevalPrompts: only.length,
      imagesPerPrompt: IMAGES_PER_PROMPT,
      winratePrompts: 1,
      winrateSamples: 1,
      samplerSteps: RECIPE.eval.samplerSteps,
      guidanceScale: RECIPE.eval.guidanceScale,
      bootstrapSamples: 10,
      shardSize: only.length * IMAGES_PER_PROMPT,
      gridPrompts: 0,
    };
    const planned = await run(acts.planEvaluation, {
      runId: 'base-geneval',
      out: 'eval',
      models: [{ name: 'base', model: modelRef }],
      rewards: [],
      suite: suiteRef,
      settings,
    });
    plan = JSON.parse(new TextDecoder().decode(await deps.store.get(planned.plan.uri))) as EvaluationPlan;

    // The stage's own slots, each given the seed the tool draws its image with.
    const suiteIndex = new Map(suite.map((m, i) => [metadataJson(m), i]));
    const [own] = planShards({
      models: ['base'],
      genevalPrompts: planned.genevalPrompts,
      imagesPerPrompt: IMAGES_PER_PROMPT,
      winratePrompts: planned.winratePrompts,
      winrateSamples: settings.winrateSamples,
      genevalRoot: planned.genevalRoot,
      winrateRoot: planned.winrateRoot,
      shardSize: settings.shardSize,
      gridPrompts: planned.gridPrompts,
    });
    const jobs: EvalJob[] = own!.jobs.map((job) => ({
      ...job,
      seed: suiteIndex.get(metadataJson(plan.prompts[job.prompt]!))! + job.index * suite.length,
    }));
    const done = await run(acts.evaluateShard, {
      runId: 'base-geneval',
      out: 'eval',
      plan: planned.plan,
      shard: 0,
      model: 'base',
      jobs,
    });
    shard = JSON.parse(
      new TextDecoder().decode(await deps.store.get(done.shard.uri)),
    ) as EvaluationShardDocument;
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the slice is the README measurement: its suite, settings and image seeds', () => {
    assert.equal(RECIPE.final.suiteSeed, 'base-heldout');
    assert.equal(RECIPE.final.perTag, 16);
    assert.equal(RECIPE.eval.samplerSteps, 20);
    assert.equal(RECIPE.eval.guidanceScale, 3);
    assert.equal(only.length, TAGS.length * PROMPTS_PER_TAG);
    const P = suite.length;
    assert.deepEqual(
      tool.images.map((im) => im.seed),
      [0, 1].flatMap((j) => only.map((i) => i + j * P)),
      'image j of suite prompt i has seed i + j x P',
    );
    assert.deepEqual(
      tool.images.map((im) => im.prompt),
      [0, 1].flatMap(() => only.map((i) => suite[i]!.prompt)),
    );
    // The stage judged every prompt of the slice, and only them, with the same settings.
    assert.deepEqual(plan.prompts.map((m) => m.prompt).sort(), only.map((i) => suite[i]!.prompt).sort());
    assert.equal(plan.suite.excluded, 0);
    assert.equal(plan.settings.samplerSteps, RECIPE.eval.samplerSteps);
    assert.equal(plan.settings.guidanceScale, RECIPE.eval.guidanceScale);
  });

  test('every image gets the same verdict and partial score in both paths', () => {
    const fromTool = new Map<string, Verdict>(tool.images.map((im) => [key(im), im]));
    const fromStage = new Map<string, Verdict>(
      shard.geneval.map((g) => {
        const v = {
          prompt: plan.prompts[g.prompt]!.prompt,
          seed: g.seed,
          correct: g.correct,
          score: g.score,
        };
        return [key(v), v];
      }),
    );
    assert.equal(fromStage.size, tool.images.length);
    assert.deepEqual(
      [...fromStage.keys()].sort(),
      [...fromTool.keys()].sort(),
      'the same (prompt, seed) images',
    );
    for (const [k, t] of fromTool) {
      const s = fromStage.get(k)!;
      assert.equal(s.correct, t.correct, `verdict of ${JSON.stringify(t.prompt)}, seed ${t.seed}`);
      assert.equal(s.score, t.score, `partial score of ${JSON.stringify(t.prompt)}, seed ${t.seed}`);
    }
  });

  test('per-tag accuracy and overall score agree, as the stage summarizes them', () => {
    // summarizeEvaluation's rows and summary (compareModels -> summarizeGeneval) of the shard's verdicts.
    const rows = genevalRowsOf(shard.geneval, plan.prompts);
    const stage = summarizeGeneval(rows);
    const want = tool.summary;
    assert.deepEqual(stage.missingTags, []);
    assert.deepEqual(Object.keys(stage.perTag).sort(), Object.keys(want.perTag).sort());
    for (const tag of TAGS) {
      const s = stage.perTag[tag]!;
      const t = want.perTag[tag]!;
      assert.deepEqual(
        { correct: s.correct, total: s.total, accuracy: s.accuracy },
        { correct: t.correct, total: t.total, accuracy: t.accuracy },
        tag,
      );
      assert.equal(s.total, PROMPTS_PER_TAG * IMAGES_PER_PROMPT);
    }
    assert.equal(stage.overall, want.overall);
    assert.equal(stage.imageAccuracy, want.imageAccuracy);
    assert.equal(stage.images, want.images);
    assert.ok(Math.abs(stage.meanScore - tool.meanScore) < 1e-12);
    // The base follows prompts: some tag is above zero (the README's single_object is 100%).
    assert.ok(TAGS.some((tag) => stage.perTag[tag]!.accuracy > 0));
  });
});
