/**
 * The evaluation activities in a mock activity context on a real local store: shard planning, the
 * plan's input checks (suite lines, model bundles, names), training-prompt exclusion, and a whole
 * small evaluation of two random 16 px world models whose stored verdicts, scores and samples are
 * checked against images generated and judged independently here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createEvaluationActivities,
  decodeEvaluationSamples,
  DETECTOR_REWARD_NAME,
  EVALUATION_QUEUES,
  shardKey,
  type EvaluationDocument,
  type EvaluationPlan,
  type EvaluationSamples,
  type EvaluationShardDocument,
} from '../../activities/evaluation';
import { REWARD_DESCRIPTOR_FORMAT } from '../../activities/reward';
import type { StageDeps } from '../../activities/stage';
import { createWorldActivities } from '../../activities/world';
import { initBackend } from '../../engine/backend';
import { toUint8 } from '../../engine/data/image';
import { decodeImage, encodePng } from '../../engine/data/image-codec';
import { writePickapicParquet } from '../../engine/data/pickapic';
import { fromModelSpace } from '../../engine/world/pretraining-corpus';
import { toMetadataJsonl } from '../../engine/world/world';
import { worldTokenizer } from '../../engine/world/world-text';
import { judgeImage } from '../../engine/world/geneval';
import { imageUtility } from '../../engine/world/utility';
import { genevalSeed, winrateSeed } from '../../engine/eval/seeds';
import { buildWorldSuite } from '../../engine/eval/suite';
import { isHeldOutPrompt } from '../../engine/world/prompt-split';
import { TAGS } from '../../engine/world/world';
import { generateImages } from '../../engine/generate';
import { decodeModelBundle, encodeModelBundle } from '../../engine/io/model-bundle';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';
import {
  planShards,
  type EvaluationSettings,
  type PlanEvaluationInput,
  type PlanEvaluationResult,
} from '../../contracts/evaluation';

const env = new MockActivityEnvironment();
const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;

async function expectFailure(promise: Promise<unknown>, type: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
    assert.equal(err.type, type);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return true;
  });
}

const SETTINGS: EvaluationSettings = {
  seed: 11,
  genevalPrompts: 3,
  imagesPerPrompt: 2,
  winratePrompts: 2,
  winrateSamples: 3,
  samplerSteps: 2,
  guidanceScale: 2,
  bootstrapSamples: 100,
  shardSize: 5,
  gridPrompts: 2,
};

describe('planShards', () => {
  const plan = {
    models: ['base', 'dro'],
    genevalPrompts: 3,
    imagesPerPrompt: 4,
    winratePrompts: 5,
    winrateSamples: 5,
    genevalRoot: 100,
    winrateRoot: 112,
    shardSize: 7,
    gridPrompts: 2,
  };

  test('covers every (model, slot) once, with the documented seeds, one model per shard', () => {
    const shards = planShards(plan);
    const perModel = 3 * 4 + 5 * 5;
    assert.equal(shards.length, 2 * Math.ceil(perModel / 7));
    shards.forEach((s, n) => {
      assert.equal(s.shard, n);
      assert.ok(s.jobs.length >= 1 && s.jobs.length <= 7);
    });
    for (const model of plan.models) {
      const jobs = shards.filter((s) => s.model === model).flatMap((s) => s.jobs);
      assert.equal(jobs.length, perModel);
      const slots = new Set(jobs.map((j) => `${j.kind}:${j.prompt}:${j.index}`));
      assert.equal(slots.size, perModel);
      for (const j of jobs) {
        const want =
          j.kind === 'geneval'
            ? genevalSeed(plan.genevalRoot, j.prompt, j.index, plan.imagesPerPrompt)
            : winrateSeed(plan.winrateRoot, j.prompt, j.index, plan.winratePrompts);
        assert.equal(j.seed, want, `${j.kind} prompt ${j.prompt} image ${j.index}`);
      }
      assert.equal(new Set(jobs.map((j) => j.seed)).size, perModel, 'no two slots share a seed');
      const grid = jobs.filter((j) => j.grid).map((j) => `${j.kind}:${j.prompt}:${j.index}`);
      assert.deepEqual(grid, ['geneval:0:0', 'geneval:1:0']);
    }
  });

  test('one model: GenEval only, no win-rate images', () => {
    const shards = planShards({ ...plan, models: ['dro'] });
    const jobs = shards.flatMap((s) => s.jobs);
    assert.equal(jobs.length, 12);
    assert.ok(jobs.every((j) => j.kind === 'geneval'));
  });
});

describe('evaluation activities', { timeout: 240_000 }, () => {
  let dir: string;
  let deps: StageDeps;
  let acts: ReturnType<typeof createEvaluationActivities>;
  const models: { name: string; model: ArtifactRef }[] = [];
  let alignment: ArtifactRef;

  const put = (key: string, bytes: Uint8Array | string, kind = 'test'): Promise<ArtifactRef> =>
    deps.store.put(key, typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes, {
      kind,
      producer: 'test',
    });

  const planInput = (out: string, extra: Partial<PlanEvaluationInput> = {}): PlanEvaluationInput => ({
    runId: 'eval-test',
    out,
    models,
    rewards: [{ name: 'alignment', reward: alignment }],
    settings: SETTINGS,
    ...extra,
  });

  before(async () => {
    await initBackend('wasm');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-eval-'));
    deps = {
      store: new LocalArtifactStore({ root: path.join(dir, 'store') }),
      logger: createLogger({ level: 'warn', destination: process.stderr }),
    };
    acts = createEvaluationActivities(deps);
    const world = createWorldActivities(deps);
    for (const [name, seed] of [
      ['base', 1],
      ['dro', 2],
    ] as const) {
      const w = await run(world.prepareWorld, {
        runId: 'eval-test',
        out: `models/${name}`,
        seed,
        unet: 'demo',
        resolution: 16,
        captionNoise: 0,
        corpusSize: 1,
      });
      models.push({ name, model: w.model });
    }
    // A reward descriptor of the detector kind: scored through loadRewardModel, it must agree with
    // the built-in detector reward that every evaluation adds.
    alignment = await put(
      'rewards/alignment.json',
      JSON.stringify({
        format: REWARD_DESCRIPTOR_FORMAT,
        kind: 'detector',
        identity: { name: 'geneval-detector', version: 'x' },
        accuracyPairs: 0,
        trainPairs: 0,
      }),
      'reward-model',
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('queues: planning on the I/O queue, shards and summary on the compute queue', () => {
    assert.deepEqual(EVALUATION_QUEUES, {
      planEvaluation: 'cpu',
      evaluateShard: 'gpu',
      summarizeEvaluation: 'gpu',
    });
    assert.deepEqual(Object.keys(acts).sort(), Object.keys(EVALUATION_QUEUES).sort());
  });

  test('a bad suite fails permanently, naming the file and the line', async () => {
    const good = toMetadataJsonl([
      { tag: 'single_object', include: [{ class: 'circle', count: 1 }], prompt: 'a photo of a circle' },
    ]).trim();
    const cases: [string, string, RegExp][] = [
      ['malformed', `${good}\n{"tag": "single_object",\n`, /malformed\.jsonl line 2: malformed JSON/],
      [
        'unknown-tag',
        `${good}\n\n${good.replace('single_object', 'texture')}\n`,
        /unknown-tag\.jsonl line 3: unknown tag "texture"/,
      ],
      [
        'unknown-class',
        good.replace('"circle"', '"giraffe"'),
        /unknown-class\.jsonl line 1: include\.0\.class: unknown class "giraffe"/,
      ],
      ['empty', '\n\n', /empty\.jsonl: the suite is empty/],
    ];
    for (const [name, text, pattern] of cases) {
      const suite = await put(`suites/${name}.jsonl`, text);
      await expectFailure(
        run(acts.planEvaluation, planInput(`bad/${name}`, { suite })),
        'EvalSuiteError',
        pattern,
      );
      assert.equal(await deps.store.exists(`bad/${name}/plan.json`), false, 'no plan written');
    }
  });

  test('a model that is not a pixel-space model bundle fails permanently, naming it', async () => {
    const notModel = await put('not-a-model.json', '{"hello": 1}');
    await expectFailure(
      run(
        acts.planEvaluation,
        planInput('bad/not-model', { models: [models[0]!, { name: 'x', model: notModel }] }),
      ),
      'SafetensorsError',
      /not-a-model\.json/,
    );
    const tokenizer = worldTokenizer();
    const latent = {
      tokenizer,
      unet: UNet2DConditionModel.create(TINY_UNET, new Rng(1), false),
      text: CLIPTextModel.create(
        demoTextEncoderConfig(tokenizer.vocabSize, tokenizer.config.maxLength, TINY_UNET.cross_attention_dim),
        new Rng(2),
        false,
      ),
    };
    const latentRef = await put('latent.safetensors', encodeModelBundle(latent), 'model-bundle');
    latent.unet.dispose();
    latent.text.dispose();
    await expectFailure(
      run(acts.planEvaluation, planInput('bad/latent', { models: [{ name: 'sd', model: latentRef }] })),
      'PipelineBadInput',
      /models\.0 \(sd\): .*latent\.safetensors takes 4-channel latents/,
    );
  });

  test('names: duplicates, the reserved detector name and an unknown baseline are refused', async () => {
    await expectFailure(
      run(
        acts.planEvaluation,
        planInput('bad/dup', { models: [models[0]!, { ...models[1]!, name: 'base' }] }),
      ),
      'PipelineBadInput',
      /models\.1\.name": "base" repeats/,
    );
    await expectFailure(
      run(
        acts.planEvaluation,
        planInput('bad/reserved', { rewards: [{ name: DETECTOR_REWARD_NAME, reward: alignment }] }),
      ),
      'PipelineBadInput',
      /rewards\.0\.name": "detector" is reserved/,
    );
    await expectFailure(
      run(acts.planEvaluation, planInput('bad/baseline', { settings: { ...SETTINGS, baseline: 'sft' } })),
      'PipelineBadInput',
      /settings\.baseline": "sft" is not one of the models/,
    );
  });

  test('training captions are removed from the built-in suite and counted', async () => {
    const wanted = Math.max(SETTINGS.genevalPrompts, SETTINGS.winratePrompts);
    const clean = buildWorldSuite({
      seed: `geneval-suite:${SETTINGS.seed}`,
      prompts: wanted,
      trainingPrompts: [],
    });
    const caption = clean.prompts[1]!.prompt;
    const png = encodePng({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(90) });
    const file = path.join(dir, 'prefs.parquet');
    await writePickapicParquet(file, [
      {
        caption: `  ${caption.toUpperCase()} `,
        image_0_uid: 'a',
        image_1_uid: 'b',
        jpg_0: png,
        jpg_1: png,
        label_0: 1,
        label_1: 0,
        user_id: 1,
        ranking_id: 1,
      },
    ]);
    const prefs = await put('prefs.parquet', new Uint8Array(fs.readFileSync(file)), 'pickapic-parquet');
    const r = await run(acts.planEvaluation, planInput('excl', { trainingPrompts: prefs }));
    const plan = JSON.parse(new TextDecoder().decode(await deps.store.get(r.plan.uri))) as EvaluationPlan;
    assert.equal(plan.suite.excluded, 1);
    assert.deepEqual(plan.suite.excludedPrompts, [caption]);
    assert.equal(plan.suite.excludedPerTag[clean.prompts[1]!.tag], 1);
    assert.equal(plan.suite.trainingPrompts, 1);
    assert.ok(!plan.prompts.some((p) => p.prompt === caption));
    assert.equal(plan.prompts.length, wanted);
  });

  test('with the prompt split the suite holds only held-out prompts, every tag represented', async () => {
    const settings = { ...SETTINGS, genevalPrompts: 30, winratePrompts: 4, heldOutOnly: true };
    const r = await run(acts.planEvaluation, planInput('held-out', { settings }));
    const plan = JSON.parse(new TextDecoder().decode(await deps.store.get(r.plan.uri))) as EvaluationPlan;
    assert.equal(plan.prompts.length, 30);
    assert.ok(plan.prompts.every((p) => isHeldOutPrompt(p.prompt)));
    assert.deepEqual(new Set(plan.prompts.map((p) => p.tag)), new Set(TAGS));
    const drawn = await run(
      acts.planEvaluation,
      planInput('drawn', { settings: { ...settings, heldOutOnly: false } }),
    );
    const whole = JSON.parse(
      new TextDecoder().decode(await deps.store.get(drawn.plan.uri)),
    ) as EvaluationPlan;
    assert.ok(whole.prompts.some((p) => !isHeldOutPrompt(p.prompt)));
  });

  test('a whole evaluation: verdicts, scores and samples match independent generation', async () => {
    const out = 'evals/one';
    const planned: PlanEvaluationResult = await run(acts.planEvaluation, planInput(out));
    assert.deepEqual(planned.rewards, ['alignment', DETECTOR_REWARD_NAME]);
    assert.equal(planned.genevalRoot, SETTINGS.seed);
    assert.equal(planned.winrateRoot, SETTINGS.seed + 3 * 2);
    // Planning again returns the same plan; other settings under the same prefix are refused.
    assert.deepEqual((await run(acts.planEvaluation, planInput(out))).plan, planned.plan);
    await expectFailure(
      run(acts.planEvaluation, planInput(out, { settings: { ...SETTINGS, samplerSteps: 3 } })),
      'PipelineBadInput',
      /plans an evaluation of other models/,
    );

    const shards = planShards({
      models: models.map((m) => m.name),
      genevalPrompts: planned.genevalPrompts,
      imagesPerPrompt: SETTINGS.imagesPerPrompt,
      winratePrompts: planned.winratePrompts,
      winrateSamples: SETTINGS.winrateSamples,
      genevalRoot: planned.genevalRoot,
      winrateRoot: planned.winrateRoot,
      shardSize: SETTINGS.shardSize!,
      gridPrompts: planned.gridPrompts,
    });
    assert.equal(shards.length, 2 * Math.ceil((3 * 2 + 2 * 3) / 5));
    const refs: ArtifactRef[] = [];
    const heartbeats: unknown[] = [];
    const beat = (d: unknown): number => heartbeats.push(d);
    env.on('heartbeat', beat);
    for (const s of shards) {
      const r = await run(acts.evaluateShard, {
        runId: 'eval-test',
        out,
        plan: planned.plan,
        shard: s.shard,
        model: s.model,
        jobs: s.jobs,
      });
      assert.equal(r.computed, true);
      assert.equal(r.shard.uri, deps.store.baseUri + '/' + shardKey({ runId: 'eval-test', out }, s.shard));
      refs.push(r.shard);
    }
    env.off('heartbeat', beat);
    assert.ok(heartbeats.some((h) => (h as { phase?: string }).phase === 'generating'));

    // A committed shard is returned as it is; the same slot under another plan is refused.
    const again = await run(acts.evaluateShard, {
      runId: 'eval-test',
      out,
      plan: planned.plan,
      shard: 0,
      model: shards[0]!.model,
      jobs: shards[0]!.jobs,
    });
    assert.deepEqual(again, { shard: refs[0], computed: false, images: shards[0]!.jobs.length });
    await expectFailure(
      run(acts.evaluateShard, {
        runId: 'eval-test',
        out,
        plan: planned.plan,
        shard: 0,
        model: shards[0]!.model,
        jobs: shards[1]!.jobs,
      }),
      'PipelineBadInput',
      /holds shard 0 of another evaluation plan/,
    );

    const result = await run(acts.summarizeEvaluation, {
      runId: 'eval-test',
      out,
      plan: planned.plan,
      shards: refs,
    });
    const read = async <T>(ref: ArtifactRef): Promise<T> =>
      JSON.parse(new TextDecoder().decode(await deps.store.get(ref.uri, ref.sha256))) as T;
    const doc = await read<EvaluationDocument>(result.evaluation);
    const plan = await read<EvaluationPlan>(planned.plan);

    // Independently: generate the images of model "dro"'s GenEval slots with the documented seeds and judge them.
    const dro = decodeModelBundle(await deps.store.get(models[1]!.model.uri), 'dro');
    const slots = [...Array(3).keys()].flatMap((p) =>
      [0, 1].map((j) => ({ p, j, seed: genevalSeed(SETTINGS.seed, p, j, 2) })),
    );
    const generated = await generateImages(
      dro,
      slots.map((s) => plan.prompts[s.p]!.prompt),
      {
        seeds: slots.map((s) => s.seed),
        steps: SETTINGS.samplerSteps,
        guidanceScale: SETTINGS.guidanceScale,
      },
    );
    const images = generated.map((x) => toUint8({ width: 16, height: 16, data: fromModelSpace(x) }));
    const lines = new TextDecoder()
      .decode(await deps.store.get(result.results.dro!.uri, result.results.dro!.sha256))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 6);
    slots.forEach((s, i) => {
      const judged = judgeImage(images[i]!, plan.prompts[s.p]!);
      const line = lines[i]!;
      assert.equal(
        line.filename,
        `${String(s.p).padStart(5, '0')}/samples/${String(s.j).padStart(5, '0')}.png`,
      );
      assert.equal(line.prompt, plan.prompts[s.p]!.prompt);
      assert.equal(line.tag, plan.prompts[s.p]!.tag);
      assert.equal(JSON.parse(line.metadata as string).prompt, plan.prompts[s.p]!.prompt);
      assert.equal(line.correct, judged.correct);
      assert.equal(line.reason, judged.reason);
      assert.equal(line.score, judged.score);
      assert.equal(line.seed, s.seed);
      // The simulated users' noise-free utility of the same image (default weights).
      assert.equal(line.utility, imageUtility(images[i]!, plan.prompts[s.p]!).utility);
    });
    // The users' utility: dro's mean over its GenEval images, and dro vs base over prompts.
    const utilities = slots.map((s, i) => imageUtility(images[i]!, plan.prompts[s.p]!).utility);
    assert.equal(doc.utility.skipped, undefined);
    assert.deepEqual(doc.utility.weights, { alignmentWeight: 1, qualityWeight: 0.3, correctnessWeight: 1 });
    assert.deepEqual(
      doc.utility.models!.map((m) => [m.method, m.images, m.prompts]),
      [
        ['base', 6, 3],
        ['dro', 6, 3],
      ],
    );
    const droUtility = doc.utility.models![1]!;
    assert.ok(Math.abs(droUtility.mean - utilities.reduce((a, b) => a + b, 0) / 6) < 1e-12);
    assert.ok(droUtility.ci95[0] <= droUtility.mean && droUtility.mean <= droUtility.ci95[1]);
    const [versus] = doc.utility.comparisons!;
    assert.deepEqual([versus!.a, versus!.b, versus!.prompts], ['dro', 'base', 3]);
    assert.equal(versus!.wins + versus!.ties + versus!.losses, 3);
    const perPrompt = [0, 1, 2].map((p) => (utilities[2 * p]! + utilities[2 * p + 1]!) / 2);
    assert.ok(Math.abs(versus!.meanA - perPrompt.reduce((a, b) => a + b, 0) / 3) < 1e-12);
    assert.match(result.tables, /Users' utility/);
    assert.match(result.tables, /Win rate under the users' utility/);
    const accuracy = images.filter((im, i) => judgeImage(im, plan.prompts[slots[i]!.p]!).correct).length / 6;
    assert.equal(doc.geneval.summaries.dro!.imageAccuracy, accuracy);

    // The grid: image 0 of the first two GenEval prompts, the same seeds for both models, equal to the generated PNGs.
    const samples = decodeEvaluationSamples(await read<EvaluationSamples>(result.samples));
    assert.deepEqual(samples.prompts, [plan.prompts[0]!.prompt, plan.prompts[1]!.prompt]);
    assert.deepEqual(samples.seeds, [
      genevalSeed(SETTINGS.seed, 0, 0, 2),
      genevalSeed(SETTINGS.seed, 1, 0, 2),
    ]);
    assert.deepEqual(
      samples.methods.map((m) => m.method),
      ['base', 'dro'],
    );
    const droGrid = samples.methods[1]!.images;
    assert.deepEqual(decodeImage(droGrid[0]!).data, images[0]!.data);
    assert.deepEqual(decodeImage(droGrid[1]!).data, images[2]!.data);

    // Win rates: one pair, the later model first; the detector-kind descriptor agrees with the built-in detector.
    assert.deepEqual(
      doc.winRates.map((w) => [w.a, w.b, w.reward]),
      [
        ['dro', 'base', 'alignment'],
        ['dro', 'base', 'detector'],
      ],
    );
    // The paper's protocol: the images are chosen by the first reward (the run's reward model) for
    // every reward; the per-reward medians are the extra table.
    assert.equal(doc.preferenceReward, 'alignment');
    assert.deepEqual(
      doc.winRates.map((w) => w.medianBy),
      ['alignment', 'alignment'],
    );
    assert.deepEqual(
      doc.perRewardMedianWinRates.map((w) => [w.a, w.b, w.reward, w.medianBy]),
      [
        ['dro', 'base', 'alignment', 'alignment'],
        ['dro', 'base', 'detector', 'detector'],
      ],
    );
    const [viaDescriptor, builtIn] = doc.winRates;
    // Only the bootstrap streams differ (each row's seed names its reward).
    const same = (w: typeof builtIn) => ({ ...w, reward: '', ci95: null });
    assert.deepEqual(same(viaDescriptor), same(builtIn));
    assert.equal(builtIn!.prompts, 2);
    // The kept score of each prompt is one of its samples' detector scores on the generated images.
    const winSlots = [0, 1].flatMap((p) =>
      [0, 1, 2].map((i) => ({ p, i, seed: winrateSeed(SETTINGS.seed + 6, p, i, 2) })),
    );
    const winGen = await generateImages(
      dro,
      winSlots.map((s) => plan.prompts[s.p]!.prompt),
      {
        seeds: winSlots.map((s) => s.seed),
        steps: SETTINGS.samplerSteps,
        guidanceScale: SETTINGS.guidanceScale,
      },
    );
    const detectorScores = winGen.map(
      (x, k) =>
        judgeImage(toUint8({ width: 16, height: 16, data: fromModelSpace(x) }), plan.prompts[winSlots[k]!.p]!)
          .score,
    );
    const medians = [0, 1].map((p) => [...detectorScores.slice(p * 3, p * 3 + 3)].sort((a, b) => a - b)[1]!);
    assert.ok(Math.abs(builtIn!.meanA - (medians[0]! + medians[1]!) / 2) < 1e-12);
    // The kept image of each prompt, with its seed: the one whose score is that median.
    assert.deepEqual(
      doc.winRateImages.dro!.map((k) => [k.prompt, k.seed]),
      [0, 1].map((p) => [p, winrateSeed(SETTINGS.seed + 6, p, doc.winRateImages.dro![p]!.index, 2)]),
    );
    doc.winRateImages.dro!.forEach((k) =>
      assert.equal(detectorScores[k.prompt * 3 + k.index], medians[k.prompt]),
    );
    dro.unet.dispose();
    dro.text.dispose();

    assert.equal(doc.baseline, 'base');
    assert.deepEqual(
      doc.geneval.table.map((r) => r.method),
      ['base', 'dro'],
    );
    assert.equal(doc.geneval.table[0]!.pValueVsBaseline, undefined);
    assert.equal(doc.geneval.table[1]!.pValueVsBaseline, doc.geneval.comparisons[0]!.mcnemar.pValue);
    assert.match(result.tables, /GenEval/);
    assert.match(result.tables, /dro vs base/);
    assert.equal(doc.suite.genevalPrompts, 3);
    assert.equal(doc.suite.winratePrompts, 2);

    // Summarizing again returns the written evaluation; shards must all belong to the plan.
    assert.deepEqual(
      await run(acts.summarizeEvaluation, { runId: 'eval-test', out, plan: planned.plan, shards: refs }),
      result,
    );
    await expectFailure(
      run(acts.summarizeEvaluation, {
        runId: 'eval-test',
        out: 'evals/other',
        plan: planned.plan,
        shards: [...refs].reverse(),
      }),
      'PipelineBadInput',
      /shards\.0: .* is not shard 0/,
    );
    const shard0 = await read<EvaluationShardDocument>(refs[0]!);
    assert.ok(shard0.grid.length > 0 && shard0.geneval.length > 0);
  });
});
