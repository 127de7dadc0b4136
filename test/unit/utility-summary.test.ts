/**
 * The simulated users' utility of an evaluation (engine/eval/utility-summary.ts): the mean per
 * model with a bootstrap interval over prompts, and the head-to-head over prompts (wins, ties, the
 * paired t-test, the bootstrap interval of the mean difference), on known utilities and on known
 * rendered images scored with `imageUtility`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toUint8 } from '../../engine/data/image';
import { summarizeUtility, type UtilityImage } from '../../engine/eval/utility-summary';
import { bootstrapMeanCI, pairedBootstrapMeanDiffCI } from '../../engine/stats/bootstrap';
import { renderScene } from '../../engine/world/render';
import { imageUtility } from '../../engine/world/utility';
import type { PromptMetadata } from '../../engine/world/world';

function close(actual: number | null, expected: number, tol: number, what: string): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what}: ${actual} != ${expected}`);
}

const images = (perPrompt: number[][]): UtilityImage[] =>
  perPrompt.flatMap((us, p) => us.map((utility) => ({ unit: String(p), utility })));

describe('summarizeUtility on known utilities', () => {
  // Per prompt means: A 0.7, 0.5, 0.8; B 0.5, 0.5, 0.5.
  const A = [
    [0.8, 0.6],
    [0.5, 0.5],
    [0.9, 0.7],
  ];
  const B = [
    [0.5, 0.5],
    [0.5, 0.5],
    [0.6, 0.4],
  ];
  const data = new Map([
    ['A', images(A)],
    ['B', images(B)],
  ]);
  const got = summarizeUtility(data, { methods: ['A', 'B'], seed: 5, resamples: 2000 });

  test('mean per model over its images, interval by resampling prompts', () => {
    assert.deepEqual(
      got.models.map((m) => [m.method, m.images, m.prompts]),
      [
        ['A', 6, 3],
        ['B', 6, 3],
      ],
    );
    close(got.models[0]!.mean, 4 / 6, 1e-15, 'mean A');
    close(got.models[1]!.mean, 0.5, 1e-15, 'mean B');
    // Equal images per prompt: the interval is the bootstrap of the prompt means, not of the images.
    const byPrompt = bootstrapMeanCI([0.7, 0.5, 0.8], { seed: '5:utility:A', resamples: 2000 });
    close(got.models[0]!.ci95[0], byPrompt[0], 1e-12, 'ci low');
    close(got.models[0]!.ci95[1], byPrompt[1], 1e-12, 'ci high');
    const m = got.models[0]!;
    assert.ok(m.ci95[0] <= m.mean && m.mean <= m.ci95[1]);
  });

  test('head to head: wins, ties, paired t-test and bootstrap interval over prompts', () => {
    assert.equal(got.comparisons.length, 1);
    const c = got.comparisons[0]!;
    assert.deepEqual([c.a, c.b, c.wins, c.ties, c.losses, c.prompts], ['A', 'B', 2, 1, 0, 3]);
    close(c.winRate, 2.5 / 3, 1e-15, 'win rate');
    close(c.meanA, 2 / 3, 1e-15, 'meanA');
    close(c.meanB, 0.5, 1e-15, 'meanB');
    // Differences 0.2, 0, 0.3; df = 2, where Student's two-sided p = 1 - |t| / sqrt(2 + t^2).
    const d = [0.2, 0, 0.3];
    const md = d.reduce((s, v) => s + v, 0) / 3;
    const sd = Math.sqrt(d.reduce((s, v) => s + (v - md) ** 2, 0) / 2);
    const t = md / (sd / Math.sqrt(3));
    close(c.pValue, 1 - t / Math.sqrt(2 + t * t), 1e-9, 'p');
    assert.deepEqual(
      c.ci95,
      pairedBootstrapMeanDiffCI([0.7, 0.5, 0.8], [0.5, 0.5, 0.5], { seed: '5:utility:A:B', resamples: 2000 }),
    );
  });

  test('one prompt has no p value; models on other prompts are refused', () => {
    const one = summarizeUtility(
      new Map([
        ['A', images([[0.4]])],
        ['B', images([[0.4]])],
      ]),
      { methods: ['A', 'B'], seed: 1, resamples: 50 },
    );
    assert.equal(one.comparisons[0]!.pValue, null);
    assert.equal(one.comparisons[0]!.winRate, 0.5);
    assert.deepEqual(one.models[0]!.ci95, [0.4, 0.4]);
    assert.throws(
      () =>
        summarizeUtility(
          new Map([
            ['A', images([[0.4], [0.5]])],
            ['B', images([[0.4]])],
          ]),
          { methods: ['A', 'B'], seed: 1 },
        ),
      /models "A" and "B" were not scored on the same prompts/,
    );
    assert.throws(
      () => summarizeUtility(new Map([['A', images([[NaN]])]]), { methods: ['A'], seed: 1 }),
      /model "A", image 0: utility NaN is not finite/,
    );
  });
});

describe('summarizeUtility on known images', () => {
  const circle: PromptMetadata = {
    tag: 'colors',
    include: [{ class: 'circle', count: 1, color: 'red' }],
    prompt: 'a photo of a red circle',
  };
  const render = (color: 'red' | 'blue') =>
    toUint8(renderScene({ objects: [{ class: 'circle', color, cx: 0.5, cy: 0.5, size: 0.5 }] }));
  const right = imageUtility(render('red'), circle);
  const wrong = imageUtility(render('blue'), circle);

  test("a model drawing the prompt beats one drawing the wrong colour under the users' utility", () => {
    assert.equal(right.correct, true);
    assert.equal(wrong.correct, false);
    const summary = summarizeUtility(
      new Map([
        ['right', images([[right.utility, right.utility], [right.utility]])],
        ['wrong', images([[wrong.utility, right.utility], [wrong.utility]])],
      ]),
      { methods: ['right', 'wrong'], seed: 2, resamples: 200 },
    );
    close(summary.models[0]!.mean, right.utility, 1e-12, 'mean right');
    close(summary.models[1]!.mean, (2 * wrong.utility + right.utility) / 3, 1e-12, 'mean wrong');
    const c = summary.comparisons[0]!;
    assert.deepEqual([c.wins, c.ties, c.losses, c.winRate], [2, 0, 0, 1]);
    // Two prompts whose differences differ (one image of two is right for "wrong" on prompt 0).
    close(c.meanA - c.meanB, (right.utility - wrong.utility) * 0.75, 1e-12, 'mean difference');
  });
});
