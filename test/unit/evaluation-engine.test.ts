import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { toUint8 } from '../../engine/data/image';
import { decodeImage } from '../../engine/data/image-codec';
import { toModelSpace } from '../../engine/world/pretraining-corpus';
import { renderScene } from '../../engine/world/render';
import type { PromptMetadata } from '../../engine/world/world';
import { judgeImage } from '../../engine/world/geneval';
import { imageUtility } from '../../engine/world/utility';
import { compareGeneval, genevalResultRow, type GenevalResultRow } from '../../engine/eval/geneval-summary';
import { compareModels } from '../../engine/eval/model-comparison';
import { judgeShardImages, toJudgedImages } from '../../engine/eval/shard-judging';
import { EvalSuiteError, selectSuitePrompts } from '../../engine/eval/suite';
import { protocolWinRateTable, winRateTable } from '../../engine/eval/win-rate';

const meta = (tag: PromptMetadata['tag'], prompt: string): PromptMetadata => ({
  tag,
  include: [{ class: 'circle', count: 1 }],
  prompt,
});

describe('selectSuitePrompts', () => {
  const suite = [
    meta('single_object', 'a circle'),
    meta('single_object', 'a square'),
    meta('counting', 'two circles'),
    meta('colors', 'a red circle'),
    meta('counting', 'three circles'),
  ];

  test('drops training prompts and lets tags take turns up to the limit', () => {
    const got = selectSuitePrompts(suite, new Set(['two circles']), 3, 'suite.jsonl');
    assert.deepEqual(
      got.prompts.map((p) => p.prompt),
      ['a circle', 'three circles', 'a red circle'],
    );
    assert.equal(got.drawn, 5);
    assert.equal(got.excluded, 1);
    assert.deepEqual(got.excludedPrompts, ['two circles']);
    assert.equal(got.excludedPerTag.counting, 1);
    assert.equal(got.excludedPerTag.single_object, 0);
    assert.deepEqual(got.missingTags, ['two_object', 'position', 'color_attr']);
    assert.deepEqual(
      selectSuitePrompts(suite, new Set(), 10, 's').prompts.map((p) => p.prompt),
      ['a circle', 'two circles', 'a red circle', 'a square', 'three circles'],
    );
  });

  test('nothing left is an EvalSuiteError naming the file', () => {
    const all = new Set(suite.map((p) => p.prompt));
    assert.throws(
      () => selectSuitePrompts(suite, all, 3, 'suite.jsonl'),
      (err: unknown) =>
        err instanceof EvalSuiteError &&
        err.message.startsWith('suite.jsonl') &&
        err.message.includes('all 5 prompts occur in the training data; nothing is left to evaluate'),
    );
  });
});

function results(model: number): GenevalResultRow[] {
  const prompts = [meta('single_object', 'a circle'), meta('counting', 'two circles')];
  return prompts.flatMap((m, p) =>
    [0, 1, 2].map((j) => {
      const correct = (p + j + model) % 3 !== 0;
      return genevalResultRow({
        meta: m,
        judgement: { correct, reason: correct ? '' : 'wrong', score: correct ? 1 : 0.25 * j },
        filename: `${p}/${j}.png`,
        promptIndex: p,
        imageIndex: j,
        seed: 100 + p * 3 + j,
      });
    }),
  );
}

describe('compareModels', () => {
  const geneval = new Map([
    ['base', results(0)],
    ['sft', results(1)],
    ['dro', results(2)],
  ]);
  const scores = (shift: number) => [
    [0.1 + shift, 0.2],
    [0.3, 0.4 + shift],
  ];
  const rewards = [{ reward: 'r', scores: { base: scores(0), sft: scores(0.1), dro: scores(0.3) } }];
  const input = {
    models: ['base', 'sft', 'dro'],
    baseline: 'base',
    geneval,
    genevalSkipped: false,
    rewards,
    seed: 7,
    bootstrapSamples: 200,
  };

  test('every pair compared later model first, p values against the baseline', () => {
    const got = compareModels(input);
    assert.deepEqual(Object.keys(got.summaries), ['base', 'sft', 'dro']);
    assert.deepEqual(
      got.comparisons.map((c) => [c.a, c.b]),
      [
        ['dro', 'sft'],
        ['dro', 'base'],
        ['sft', 'base'],
      ],
    );
    assert.deepEqual(got.comparisons[1], {
      a: 'dro',
      b: 'base',
      ...compareGeneval(geneval.get('dro')!, geneval.get('base')!, {
        seed: 'geneval:7:dro:base',
        resamples: 200,
      }),
    });
    assert.deepEqual(
      got.table.map((r) => [r.method, r.pValueVsBaseline]),
      [
        ['base', undefined],
        ['sft', got.comparisons[2]!.mcnemar.pValue],
        ['dro', got.comparisons[1]!.mcnemar.pValue],
      ],
    );
    assert.equal('pValueVsBaseline' in got.table[0]!, false);
    assert.equal(got.table[2]!.overall, got.summaries.dro!.overall);
    const options = { methods: ['dro', 'sft', 'base'], seed: 'winrate:7', resamples: 200 };
    assert.deepEqual(got.winRates, protocolWinRateTable(rewards, { ...options, medianBy: 'r' }).rows);
    assert.deepEqual(got.perRewardMedianWinRates, winRateTable(rewards, options));
    assert.equal(got.preferenceReward, 'r');
    assert.deepEqual(Object.keys(got.keptImages), ['dro', 'sft', 'base']);
    assert.ok(got.winRates.length > 0);
  });

  test('skipped GenEval gives no GenEval statistics; one model gives no win rates', () => {
    const skipped = compareModels({ ...input, genevalSkipped: true, geneval: new Map() });
    assert.deepEqual([skipped.summaries, skipped.comparisons, skipped.table], [{}, [], []]);
    assert.ok(skipped.winRates.length > 0);
    const single = compareModels({ ...input, models: ['base'] });
    assert.deepEqual(single.winRates, []);
    assert.deepEqual(single.perRewardMedianWinRates, []);
    assert.deepEqual(single.comparisons, []);
    assert.equal(single.table.length, 1);
  });
});

describe('shard judging', () => {
  const circle = meta('single_object', 'a photo of a circle');
  const rendered = renderScene({ objects: [{ class: 'circle', color: 'red', cx: 0.5, cy: 0.5, size: 0.5 }] });
  const side = rendered.width;

  test('toJudgedImages maps model space to 8-bit images', () => {
    const [image] = toJudgedImages([toModelSpace(rendered.data)], side);
    assert.deepEqual(image, toUint8(rendered));
  });

  test('GenEval slots are judged, win-rate slots listed, grid slots encoded', () => {
    const image = toUint8(rendered);
    const blank = { width: side, height: side, data: new Uint8Array(side * side * 3).fill(255) };
    const slots = [
      { kind: 'geneval' as const, prompt: 0, index: 0, seed: 11, grid: true as const },
      { kind: 'winrate' as const, prompt: 1, index: 2, seed: 12 },
      { kind: 'geneval' as const, prompt: 0, index: 1, seed: 13 },
      { kind: 'winrate' as const, prompt: 0, index: 0, seed: 14, grid: true as const },
    ];
    const images = [image, blank, blank, image];
    const got = judgeShardImages(slots, images, [circle, circle], true);
    const j0 = judgeImage(image, circle);
    const j2 = judgeImage(blank, circle);
    assert.equal(j0.correct, true);
    assert.equal(j2.correct, false);
    // Each GenEval image also carries the simulated users' noise-free utility (default weights).
    const u0 = imageUtility(image, circle).utility;
    const u2 = imageUtility(blank, circle).utility;
    assert.ok(u0 > u2, `a correct clean render is worth more than a blank image: ${u0} vs ${u2}`);
    assert.deepEqual(got.geneval, [
      { prompt: 0, index: 0, seed: 11, correct: true, reason: j0.reason, score: j0.score, utility: u0 },
      { prompt: 0, index: 1, seed: 13, correct: false, reason: j2.reason, score: j2.score, utility: u2 },
    ]);
    assert.deepEqual(got.winrateSlots, [1, 3]);
    assert.deepEqual(got.winrate, [
      { prompt: 1, index: 2, seed: 12, scores: {} },
      { prompt: 0, index: 0, seed: 14, scores: {} },
    ]);
    assert.deepEqual(
      got.grid.map((g) => [g.prompt, g.index, g.seed]),
      [
        [0, 0, 11],
        [0, 0, 14],
      ],
    );
    assert.deepEqual(decodeImage(new Uint8Array(Buffer.from(got.grid[0]!.png, 'base64'))), image);

    const unjudged = judgeShardImages(slots, images, [circle, circle], false);
    assert.deepEqual(unjudged.geneval, []);
    assert.deepEqual(unjudged.winrateSlots, [1, 3]);
    assert.equal(unjudged.grid.length, 2);
  });
});
