/**
 * The built-in world as Pick-a-Pic (docs/world.md): a pool of generators drawn by share behind the
 * simulated comparisons (`data.generators`, the parquet's model columns name them), the expert
 * set's provenance per generator with GenEval verdicts, the training / held-out prompt split
 * (`data.promptSplit`), and every bad input refused by name before anything trains.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createPreferenceActivities, readPreferenceRows } from '../../activities/preferences';
import { createRankingActivities } from '../../activities/ranking';
import { createRewardActivities } from '../../activities/reward';
import { stageSeed, type StageDeps } from '../../activities/stage';
import { preflight } from '../../cli/preflight';
import { ConfigError, parseConfig } from '../../config/load';
import type { PipelineConfigInput } from '../../config/schemas';
import { initBackend } from '../../engine/backend';
import { toUint8 } from '../../engine/data/image';
import { buildWorldSuite } from '../../engine/eval/suite';
import { expertProvenance } from '../../engine/ranking/expert-provenance';
import { renderReport } from '../../engine/report';
import { Rng } from '../../engine/rng';
import { judgeImage } from '../../engine/world/geneval';
import {
  drawGenerators,
  STAND_IN_EXAMPLES,
  standInGenerator,
  type PoolGenerator,
} from '../../engine/world/generator-pool';
import {
  generateTrainingPrompts,
  heldOutPrompts,
  isHeldOutPrompt,
  worldPromptSpace,
} from '../../engine/world/prompt-split';
import { TAGS, generatePrompt, generatePrompts, generateSuite } from '../../engine/world/world';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';
import { STAGES } from '../../workflows/stage-graph';

const BASE_BUNDLE = path.join(__dirname, '..', '..', 'models', 'world-base', 'base.safetensors');
const config = (input: PipelineConfigInput = {}) => parseConfig(input, 'test config');

function problems(input: PipelineConfigInput): { path: string; message: string }[] {
  try {
    parseConfig(input, 'test config');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('config was accepted');
}

const POOL = [
  { name: 'base', share: 1, kind: 'base' },
  { name: 'stronger', share: 1, kind: 'stand-in', ...STAND_IN_EXAMPLES.stronger, levels: ['clean', 'mild'] },
  { name: 'weaker', share: 1, kind: 'stand-in', ...STAND_IN_EXAMPLES.weaker, levels: ['strong'] },
  { name: 'other-base', share: 1, kind: 'bundle', path: BASE_BUNDLE },
] as const;

describe('data.generators and data.promptSplit in the config', () => {
  test('absent, the config and the preferences and ranking keys are as before', () => {
    const c = config();
    assert.equal('generators' in c.data, false);
    assert.equal('promptSplit' in c.data, false);
    assert.deepEqual(Object.keys(STAGES.preferences.slice(c) as object).sort(), [
      'guidanceScale',
      'prompts',
      'seed',
      'source',
      'steps',
    ]);
    assert.deepEqual(STAGES.preferences.external(c), []);
    assert.deepEqual(Object.keys(STAGES.ranking.slice(c) as object).sort(), ['resolution', 'topK']);
    // 'none' is today's behaviour: the stage keys do not change.
    const none = config({ data: { promptSplit: 'none' } });
    assert.deepEqual(STAGES.preferences.slice(none), STAGES.preferences.slice(c));
  });

  test('a pool fills the stand-in defaults and joins the preferences and ranking keys', () => {
    const c = config({
      data: {
        generators: [
          { name: 'base', share: 2, kind: 'base' },
          { name: 'sd', share: 1, kind: 'stand-in' },
          { name: 'm', share: 1, kind: 'bundle', path: '/models/m.safetensors' },
        ],
        promptSplit: 'hash',
      },
    });
    assert.deepEqual(c.data.generators![1], {
      name: 'sd',
      share: 1,
      kind: 'stand-in',
      pWrong: 0.5,
      levels: ['clean', 'mild', 'moderate', 'strong'],
      distractorProb: 0,
    });
    const slice = STAGES.preferences.slice(c) as Record<string, unknown>;
    assert.deepEqual(slice.generators, c.data.generators);
    assert.equal(slice.promptSplit, 'hash');
    assert.deepEqual(STAGES.preferences.external(c), ['/models/m.safetensors']);
    assert.deepEqual((STAGES.ranking.slice(c) as Record<string, unknown>).generators, ['base', 'sd', 'm']);
  });

  test('duplicate names, shares summing to 0, a pool outside the world are refused by field', () => {
    assert.deepEqual(
      problems({
        data: {
          generators: [
            { name: 'a', share: 1, kind: 'base' },
            { name: 'a', share: 1, kind: 'stand-in' },
          ],
        },
      }).map((p) => p.path),
      ['$.data.generators[1].name'],
    );
    const dup = problems({
      data: {
        generators: [
          { name: 'a', share: 1, kind: 'base' },
          { name: 'a', share: 1, kind: 'stand-in' },
        ],
      },
    })[0]!;
    assert.match(dup.message, /'a' repeats data\.generators\[0\]\.name/);
    const zero = problems({
      data: {
        generators: [
          { name: 'a', share: 0, kind: 'base' },
          { name: 'b', share: 0, kind: 'stand-in' },
        ],
      },
    });
    assert.deepEqual(zero, [
      {
        path: '$.data.generators',
        message: 'data.generators: the shares sum to 0; give at least one generator a positive share',
      },
    ]);
    assert.ok(
      problems({ data: { generators: [{ name: 'a', share: -1, kind: 'base' }] } }).some(
        (p) => p.path === '$.data.generators[0].share',
      ),
    );
    assert.ok(problems({ data: { generators: [] } }).some((p) => p.path === '$.data.generators'));
    const outside = problems({
      model: { baseCheckpoint: '/m.safetensors' },
      data: {
        source: 'pickapic',
        paths: ['/d.parquet'],
        generators: [{ name: 'a', share: 1, kind: 'base' }],
        promptSplit: 'hash',
      },
    });
    assert.deepEqual(
      outside.map((p) => p.path),
      ['$.data.generators', '$.data.promptSplit'],
    );
  });
});

describe('the generator pool', () => {
  test('each image is drawn by share, from the seed alone; a zero share is never drawn', () => {
    const shares = [2, 1, 0, 1];
    const drawn = drawGenerators(shares, 20_000, new Rng('pool'));
    assert.deepEqual(drawn, drawGenerators(shares, 20_000, new Rng('pool')));
    const counts = shares.map((_, g) => drawn.filter((d) => d === g).length);
    assert.equal(counts[2], 0);
    for (const [g, share] of shares.entries())
      assert.ok(Math.abs(counts[g]! / 20_000 - share / 4) < 0.015, `generator ${g}: ${counts[g]}`);
    assert.throws(() => drawGenerators([0, 0], 1, new Rng(1)), /sum to a positive number/);
  });

  test('the example stand-ins lie far either side of the base (0.48) on the GenEval judge', () => {
    const suite = generateSuite({ seed: 'stand-ins', perTag: 6 });
    const accuracy = (settings: (typeof STAND_IN_EXAMPLES)[keyof typeof STAND_IN_EXAMPLES]) => {
      const draw = standInGenerator(settings, 16);
      let correct = 0;
      suite.forEach((meta, i) => (correct += judgeImage(toUint8(draw(meta, i)), meta).correct ? 1 : 0));
      return correct / suite.length;
    };
    const stronger = accuracy(STAND_IN_EXAMPLES.stronger);
    const weaker = accuracy(STAND_IN_EXAMPLES.weaker);
    assert.ok(stronger > 0.75, `stronger ${stronger}`);
    assert.ok(weaker < 0.3, `weaker ${weaker}`);
  });
});

describe('the prompt split', () => {
  test('every tag has held-out and training prompts; the templates write nothing outside the space', () => {
    const sizes = Object.fromEntries(TAGS.map((t) => [t, worldPromptSpace(t).length]));
    assert.deepEqual(sizes, {
      single_object: 5,
      two_object: 20,
      counting: 15,
      colors: 30,
      position: 80,
      color_attr: 600,
    });
    for (const tag of TAGS) {
      const held = heldOutPrompts(tag);
      assert.equal(held.length, Math.ceil(sizes[tag]! * 0.2));
      assert.ok(held.every((m) => m.tag === tag && isHeldOutPrompt(m.prompt)));
    }
    const space = new Set(TAGS.flatMap((t) => worldPromptSpace(t).map((m) => JSON.stringify(m))));
    const rng = new Rng('space');
    for (let i = 0; i < 3000; i++)
      assert.ok(space.has(JSON.stringify(generatePrompt(rng, TAGS[i % 6]!))), `draw ${i} outside the space`);
  });

  test('with many comparisons every tag keeps held-out prompts; without the split tags are lost', () => {
    const n = 20_000;
    const training = generateTrainingPrompts('many', n);
    assert.equal(training.length, n);
    assert.ok(training.every((m) => !isHeldOutPrompt(m.prompt)));
    for (const t of TAGS) assert.ok(training.filter((m) => m.tag === t).length >= Math.floor(n / 6));
    const split = buildWorldSuite({
      seed: 'geneval-suite:0',
      trainingPrompts: training.map((m) => m.prompt),
    });
    assert.deepEqual(split.missingTags, []);
    // What is left to evaluate of each tag includes its held-out prompts that the suite drew.
    for (const tag of TAGS) {
      const left = split.prompts.filter((p) => p.tag === tag);
      assert.ok(
        left.some((p) => isHeldOutPrompt(p.prompt)),
        tag,
      );
    }
    const whole = buildWorldSuite({
      seed: 'geneval-suite:0',
      trainingPrompts: generatePrompts('many', n).map((m) => m.prompt),
    });
    assert.ok(whole.missingTags.length >= 4, `without the split: ${whole.missingTags.join(', ')}`);
  });
});

describe('expert provenance', () => {
  test('counts images, experts and GenEval verdicts per generator, configured ones first', () => {
    const png = new Uint8Array([1]);
    const rows = [
      {
        caption: 'a',
        image_0_uid: 'x0',
        image_1_uid: 'x1',
        jpg_0: png,
        jpg_1: png,
        model_0: 'b',
        model_1: 'a',
      },
      {
        caption: 'a',
        image_0_uid: 'y0',
        image_1_uid: 'y1',
        jpg_0: png,
        jpg_1: png,
        model_0: 'a',
        model_1: 'a',
      },
      {
        caption: 'a',
        image_0_uid: 'y0',
        image_1_uid: 'z1',
        jpg_0: png,
        jpg_1: png,
        model_0: 'a',
        model_1: 'c',
      },
    ].map((r) => ({ ...r, label_0: 1, label_1: 0, user_id: 0, ranking_id: 0 }) as const);
    const correct = new Set(['x1', 'y0', 'z1']);
    const set = {
      experts: ['x1', 'y0', 'x0'].map((uid, rank) => ({ uid, prompt: 'a', score: -rank, rank })),
    };
    const p = expertProvenance(set, rows, ['a', 'b', 'unused'], (_b, _p, uid) => correct.has(uid));
    assert.deepEqual(p, {
      experts: 3,
      expertsCorrect: 2,
      generators: [
        { name: 'a', images: 3, imagesCorrect: 2, experts: 2, expertsCorrect: 2, expertShareCorrect: 1 },
        { name: 'b', images: 1, imagesCorrect: 0, experts: 1, expertsCorrect: 0, expertShareCorrect: 0 },
        {
          name: 'unused',
          images: 0,
          imagesCorrect: 0,
          experts: 0,
          expertsCorrect: 0,
          expertShareCorrect: null,
        },
        { name: 'c', images: 1, imagesCorrect: 1, experts: 0, expertsCorrect: 0, expertShareCorrect: null },
      ],
    });
  });

  test('the report shows it as its own table', () => {
    const files = renderReport({
      runId: 'r',
      name: 'r',
      config: {},
      configHash: '',
      stages: [],
      artifacts: [],
      geneval: [],
      winRates: [],
      lossCurves: [],
      expertProvenance: [
        { name: 'stronger', images: 40, imagesCorrect: 36, experts: 30, expertsCorrect: 29 },
        { name: 'base', images: 40, imagesCorrect: 18, experts: 10, expertsCorrect: 8 },
      ],
    });
    const md = new TextDecoder().decode(files['report.md']);
    assert.match(md, /### Expert provenance/);
    assert.match(md, /\| stronger \| 40 \| 90\.0% \| 30 \| 75\.0% \| 96\.7% \|/);
    assert.match(md, /40 experts, 92\.5% GenEval\\-correct \(judged on the stored preference images\)/);
    assert.match(new TextDecoder().decode(files['report.html']), /Expert provenance/);
  });
});

async function expectFailure(promise: Promise<unknown>, type: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
    assert.equal(err.type, type);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('a pooled preference set and its experts', { timeout: 300_000 }, () => {
  const env = new MockActivityEnvironment();
  const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;
  let dir: string;
  let deps: StageDeps;
  let baseModel: ArtifactRef;
  const input = (overrides: Record<string, unknown> = {}) => ({
    runId: 'pool',
    seed: 3,
    baseModel,
    prompts: 60,
    steps: 8,
    guidanceScale: 7.5,
    ...overrides,
  });

  before(async () => {
    await initBackend('auto');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-pool-'));
    deps = { store: new LocalArtifactStore({ root: dir }), logger: createLogger({ level: 'warn' }) };
    baseModel = await deps.store.put('models/base.safetensors', fs.readFileSync(BASE_BUNDLE), {
      kind: 'model-bundle',
      producer: 'test',
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('model_0 / model_1 name the generator of each image, drawn by share; experts say where they came from', async () => {
    const prefs = createPreferenceActivities(deps);
    const generators = structuredClone(POOL) as unknown as PoolGenerator[];
    const result = await run(prefs.simulatePreferences, input({ generators, promptSplit: 'hash' }));
    const rows = await readPreferenceRows(deps, result.preferences);
    assert.equal(rows.length, 60);
    const columns = rows.flatMap((r) => [r.model_0, r.model_1]);
    const counts = Object.fromEntries(POOL.map((g) => [g.name, columns.filter((m) => m === g.name).length]));
    assert.deepEqual(result.generators, counts);
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      120,
    );
    // Exactly the draws of the run seed's generator stream, image by image (left, then right).
    const drawn = drawGenerators(
      POOL.map((g) => g.share),
      120,
      new Rng(`preferences-generators:${stageSeed(3, 'generators')}`),
    );
    const expected = Object.fromEntries(POOL.map((g, i) => [g.name, drawn.filter((d) => d === i).length]));
    assert.deepEqual(counts, expected);
    for (const g of POOL) assert.ok(counts[g.name]! >= 15, `${g.name} drew ${counts[g.name]} of 120`);
    // The split keeps every held-out prompt out of the comparisons.
    assert.ok(rows.every((r) => !isHeldOutPrompt(r.caption)));

    // Unequal shares: 3 : 1.
    const skewed = await run(
      prefs.simulatePreferences,
      input({
        runId: 'skew',
        generators: [
          { name: 'hi', share: 3, kind: 'stand-in', ...STAND_IN_EXAMPLES.stronger, levels: ['clean'] },
          { name: 'lo', share: 1, kind: 'stand-in', ...STAND_IN_EXAMPLES.weaker, levels: ['strong'] },
        ],
      }),
    );
    assert.ok(skewed.generators!.hi! > 2 * skewed.generators!.lo!, JSON.stringify(skewed.generators));

    const reward = (
      await run(createRewardActivities(deps).trainRewardModel, {
        runId: 'pool',
        seed: 0,
        kind: 'detector' as const,
        preferences: result.preferences,
      })
    ).reward;
    const ranking = createRankingActivities(deps);
    const rankInput = {
      runId: 'pool',
      preferences: result.preferences,
      reward,
      topK: 40,
      shardSize: 64,
      resolution: 16,
    };
    const ranked = await run(ranking.rankExperts, { ...rankInput, generators: POOL.map((g) => g.name) });
    const p = ranked.provenance!;
    assert.deepEqual(
      p.generators.map((g) => g.name),
      POOL.map((g) => g.name),
    );
    assert.equal(p.experts, 40);
    assert.equal(
      p.generators.reduce((a, g) => a + g.experts, 0),
      40,
    );
    assert.deepEqual(Object.fromEntries(p.generators.map((g) => [g.name, g.images])), counts);
    // The stand-ins lie either side of the base on the judge, and the ranking prefers the stronger.
    const share = (name: string) => {
      const g = p.generators.find((x) => x.name === name)!;
      return g.imagesCorrect! / g.images;
    };
    assert.ok(share('stronger') > share('base') && share('base') > share('weaker'), JSON.stringify(p));
    const stronger = p.generators.find((g) => g.name === 'stronger')!;
    const weaker = p.generators.find((g) => g.name === 'weaker')!;
    assert.ok(stronger.experts > weaker.experts, JSON.stringify(p));
    const json = JSON.parse(
      new TextDecoder().decode(await deps.store.get(ranked.ranking.uri, ranked.ranking.sha256)),
    ) as { provenance?: unknown };
    assert.deepEqual(json.provenance, p);
    // Without generator names the ranking JSON has no provenance (as before the pool existed).
    const plain = await run(ranking.rankExperts, { ...rankInput, runId: 'plain' });
    assert.equal(plain.provenance, undefined);
    const plainJson = JSON.parse(
      new TextDecoder().decode(await deps.store.get(plain.ranking.uri, plain.ranking.sha256)),
    ) as Record<string, unknown>;
    assert.equal('provenance' in plainJson, false);
  });

  test('without a pool both images come from the base, labelled as before', async () => {
    const prefs = createPreferenceActivities(deps);
    const result = await run(prefs.simulatePreferences, input({ runId: 'plain', prompts: 4 }));
    const rows = await readPreferenceRows(deps, result.preferences);
    assert.deepEqual(
      rows.flatMap((r) => [r.model_0, r.model_1]),
      Array(8).fill('simulated'),
    );
    assert.equal(result.generators, undefined);
  });

  test('a bundle generator naming a missing file or a non-model file fails by field', async () => {
    const prefs = createPreferenceActivities(deps);
    const bundle = (p: string) => [
      { name: 'base', share: 1, kind: 'base' },
      { name: 'm', share: 100, kind: 'bundle', path: p },
    ];
    await expectFailure(
      run(
        prefs.simulatePreferences,
        input({ runId: 'b1', prompts: 2, generators: bundle(path.join(dir, 'nope')) }),
      ),
      'PipelineSourceNotFound',
      /data\.generators\[1\]\.path: cannot read .*nope \(no such file\)/,
    );
    const junk = path.join(dir, 'junk.safetensors');
    fs.writeFileSync(junk, 'not a model');
    await assert.rejects(
      run(prefs.simulatePreferences, input({ runId: 'b2', prompts: 2, generators: bundle(junk) })),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.nonRetryable &&
        /^data\.generators\[1\]\.path: /.test(err.message),
    );
    await expectFailure(
      run(
        prefs.simulatePreferences,
        input({
          runId: 'b3',
          prompts: 2,
          generators: [
            { name: 'a', share: 0, kind: 'base' },
            { name: 'a', share: 0, kind: 'base' },
          ],
        }),
      ),
      'PipelineBadInput',
      /data\.generators\[1\]\.name 'a' repeats data\.generators\[0\]\.name/,
    );
  });
});

describe('pre-flight of the world settings', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-pool-preflight-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const check = (data: PipelineConfigInput['data']) =>
    preflight(config({ data, ranking: { topK: 8 }, storage: { kind: 'local', root: path.join(dir, 'a') } }));

  test('a bundle generator naming a missing file or a non-model file is named by field', async () => {
    const junk = path.join(dir, 'junk.safetensors');
    fs.writeFileSync(junk, 'not a model');
    const found = await check({
      prompts: 12,
      generators: [
        { name: 'base', share: 1, kind: 'base' },
        { name: 'missing', share: 1, kind: 'bundle', path: path.join(dir, 'missing.safetensors') },
        { name: 'junk', share: 1, kind: 'bundle', path: junk },
        { name: 'dir', share: 1, kind: 'bundle', path: dir },
        { name: 'ok', share: 1, kind: 'bundle', path: BASE_BUNDLE },
      ],
    });
    assert.deepEqual(
      found.map((p) => p.path),
      ['$.data.generators[1].path', '$.data.generators[2].path', '$.data.generators[3].path'],
    );
    assert.match(found[0]!.message, /generator 'missing': cannot read .*missing\.safetensors \(no such file/);
    assert.match(found[1]!.message, /generator 'junk': /);
    assert.match(found[2]!.message, /generator 'dir': .* is not a file/);
  });

  test('training prompts that leave a tag without a held-out prompt are refused; the split keeps them', async () => {
    const generators = [{ name: 'base', share: 1, kind: 'base' as const }];
    const found = await check({ prompts: 2000, generators });
    assert.equal(found.length, 1);
    assert.equal(found[0]!.path, '$.data.prompts');
    assert.match(
      found[0]!.message,
      /data\.prompts 2000 \(seed 0\): the training prompts cover every single_object.* prompt of the evaluation suite.*set data\.promptSplit to 'hash'/,
    );
    assert.deepEqual(await check({ prompts: 100_000, generators, promptSplit: 'hash' }), []);
    // A config without the new settings is checked as before.
    assert.deepEqual(await check({ prompts: 2000 }), []);
  });
});
