import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PromptMetadata } from '../../engine/world/world';
import { PromptMetadata as PromptMetadataSchema } from '../../engine/world/world';
import { judgeDetections } from '../../engine/world/geneval';
import {
  compareGeneval,
  genevalResultRow,
  summarizeGeneval,
  toResultsJsonl,
  type GenevalResultRow,
} from '../../engine/eval/geneval-summary';
import { genevalImagePath, genevalSeed } from '../../engine/eval/seeds';

const circle: PromptMetadata = {
  tag: 'single_object',
  include: [{ class: 'circle', count: 1 }],
  prompt: 'a photo of a circle',
};
const twoSquares: PromptMetadata = {
  tag: 'counting',
  include: [{ class: 'square', count: 2 }],
  exclude: [{ class: 'square', count: 3 }],
  prompt: 'a photo of two squares',
};

/** Rows for prompts x 4 images; `outcome(p, j)` gives correct and score. */
function rows(
  prompts: PromptMetadata[],
  outcome: (p: number, j: number) => [boolean, number],
): GenevalResultRow[] {
  return prompts.flatMap((meta, p) =>
    [0, 1, 2, 3].map((j) => {
      const [correct, score] = outcome(p, j);
      return genevalResultRow({
        meta,
        judgement: { correct, reason: correct ? '' : 'wrong', score },
        filename: genevalImagePath(p, j),
        promptIndex: p,
        imageIndex: j,
        seed: genevalSeed(100, p, j),
      });
    }),
  );
}

describe('GenEval result rows', () => {
  test("have GenEval's results.jsonl fields, metadata as JSON text", () => {
    const judgement = judgeDetections([], circle);
    const row = genevalResultRow({
      meta: circle,
      judgement,
      filename: genevalImagePath(7, 2),
      promptIndex: 7,
      imageIndex: 2,
      seed: 130,
    });
    assert.equal(row.filename, '00007/samples/00002.png');
    assert.equal(row.tag, 'single_object');
    assert.equal(row.prompt, 'a photo of a circle');
    assert.equal(row.correct, false);
    assert.match(row.reason, /expected circle>=1, found 0/);
    assert.deepEqual(PromptMetadataSchema.parse(JSON.parse(row.metadata)), circle);
    const line = JSON.parse(toResultsJsonl([row]).trimEnd()) as Record<string, unknown>;
    for (const key of ['filename', 'tag', 'prompt', 'correct', 'reason', 'metadata'])
      assert.ok(key in line, key);
  });

  test('GenEval seeds are prompt-major and distinct', () => {
    assert.equal(genevalSeed(100, 0, 0), 100);
    assert.equal(genevalSeed(100, 0, 3), 103);
    assert.equal(genevalSeed(100, 1, 0), 104);
    assert.equal(genevalSeed(0, 2, 1, 5), 11);
    assert.throws(() => genevalSeed(0, 0, 4), /j must be an integer in \[0, imagesPerPrompt\)/);
  });
});

describe('summarizeGeneval', () => {
  test('per-tag accuracy, overall as the unweighted tag mean, mean partial score', () => {
    // single_object: 3 of 4 correct; counting: 1 of 4. Scores: correct 1, wrong 0.5 / 0.25.
    const rs = rows([circle, twoSquares], (p, j) =>
      p === 0 ? (j < 3 ? [true, 1] : [false, 0.5]) : j === 0 ? [true, 1] : [false, 0.25],
    );
    const s = summarizeGeneval(rs);
    assert.equal(s.perTag.single_object?.accuracy, 0.75);
    assert.equal(s.perTag.counting?.accuracy, 0.25);
    assert.equal(s.perTag.counting?.total, 4);
    assert.equal(s.overall, 0.5);
    assert.equal(s.imageAccuracy, 0.5);
    assert.equal(s.meanScore, (3 + 0.5 + 1 + 3 * 0.25) / 8);
    assert.equal(s.images, 8);
    assert.equal(s.prompts, 2);
    assert.equal(s.promptAccuracy, 1);
    assert.deepEqual(s.missingTags, ['two_object', 'colors', 'position', 'color_attr']);
    // stats.binomtest(3, 4).proportion_ci(method='wilson') -> (0.30064184258240184, 0.9544127391902995)
    const [lo, hi] = s.perTag.single_object!.ci95;
    assert.ok(Math.abs(lo - 0.30064184258240184) < 1e-12 && Math.abs(hi - 0.9544127391902995) < 1e-12);
  });

  test('overall weights tags equally, not images', () => {
    // 8 single-object images all right, 4 counting images all wrong: image accuracy 2/3, overall 1/2.
    const rs = rows([circle, circle, twoSquares], (p) => (p < 2 ? [true, 1] : [false, 0]));
    const s = summarizeGeneval(rs);
    assert.equal(s.overall, 0.5);
    assert.ok(Math.abs(s.imageAccuracy - 2 / 3) < 1e-15);
    assert.throws(() => summarizeGeneval([]), /no images/);
  });
});

describe('compareGeneval', () => {
  const prompts = [circle, twoSquares, { ...circle, prompt: 'a photo of a circle ' }];
  // 12 matched images: A right only on 5, B right only on 1, both right on 4, both wrong on 2.
  const pattern: [boolean, boolean][] = [
    [true, false],
    [true, false],
    [true, false],
    [true, false],
    [true, false],
    [false, true],
    [true, true],
    [true, true],
    [true, true],
    [true, true],
    [false, false],
    [false, false],
  ];
  const a = rows(prompts, (p, j) => [pattern[p * 4 + j]![0], pattern[p * 4 + j]![0] ? 1 : 0.4]);
  const b = rows(prompts, (p, j) => [pattern[p * 4 + j]![1], pattern[p * 4 + j]![1] ? 1 : 0.2]);

  test('McNemar on the discordant images and a seeded bootstrap interval of the overall difference', () => {
    const c = compareGeneval(a, b, { seed: 5, resamples: 2000 });
    assert.equal(c.pairs, 12);
    assert.deepEqual([c.mcnemar.b, c.mcnemar.c], [5, 1]);
    // stats.binomtest(1, 6, 0.5).pvalue -> 0.21875
    assert.ok(Math.abs(c.mcnemar.pValue - 0.21875) < 1e-12);
    assert.equal(c.overallDiff, c.overallA - c.overallB);
    assert.ok(c.overallDiffCi95[0] <= c.overallDiff && c.overallDiff <= c.overallDiffCi95[1]);
    assert.deepEqual(compareGeneval(a, b, { seed: 5, resamples: 2000 }).overallDiffCi95, c.overallDiffCi95);
    assert.ok(c.meanScoreA > c.meanScoreB);
    assert.ok(c.meanScorePValue !== null && c.meanScorePValue < 0.05);
  });

  test('pairs are matched on prompt and seed, whatever the row order', () => {
    const shuffled = [...b].reverse();
    assert.deepEqual(
      compareGeneval(a, shuffled, { seed: 5, resamples: 200 }).mcnemar,
      compareGeneval(a, b, { seed: 5, resamples: 200 }).mcnemar,
    );
    const shifted = b.map((r) => ({ ...r, seed: r.seed + 1000 }));
    assert.throws(
      () => compareGeneval(a, shifted, { seed: 1 }),
      /method B has no image of prompt "a photo of a circle" with seed 100/,
    );
    assert.throws(() => compareGeneval(a, b.slice(1), { seed: 1 }), /12 and 11 images/);
  });
});
