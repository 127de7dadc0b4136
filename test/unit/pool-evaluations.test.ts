import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareGeneval, type GenevalResultRow } from '../../engine/eval/geneval-summary';
import { summarizeUtility } from '../../engine/eval/utility-summary';
import { poolRuns, poolUtility } from '../../tools/pool-evaluations';

function row(
  prompt: string,
  seed: number,
  correct: boolean,
  utility?: number,
  promptIndex = 0,
): GenevalResultRow {
  return {
    filename: `${seed}.png`,
    tag: 'colors',
    prompt,
    correct,
    reason: correct ? '' : 'wrong colour',
    metadata: JSON.stringify({ tag: 'colors', prompt }),
    score: correct ? 1 : 0.5,
    promptIndex,
    imageIndex: seed,
    seed,
    ...(utility === undefined ? {} : { utility }),
  };
}

describe('pooling the evaluations of several runs', () => {
  // Two runs drew the same prompt and seeds: without keeping runs apart their rows would collide.
  const run1 = {
    a: [row('a photo of a red circle', 0, true)],
    b: [row('a photo of a red circle', 0, false)],
  };
  const run2 = {
    a: [row('a photo of a red circle', 0, false)],
    b: [row('a photo of a red circle', 0, false)],
  };

  test('pairs an image only with the same slot of the same run', () => {
    const pooled = poolRuns([run1, run2]);
    assert.equal(pooled.get('a')!.length, 2);
    const c = compareGeneval(pooled.get('a')!, pooled.get('b')!, { seed: 1, resamples: 100 });
    assert.equal(c.pairs, 2);
    assert.deepEqual([c.mcnemar.b, c.mcnemar.c], [1, 0]);
  });

  test('refuses a method missing from one run', () => {
    assert.throws(() => poolRuns([run1, { a: run2.a }]), /method b was not evaluated in every run/);
  });

  test("pools the users' utility: mean over all images, prompts of different runs kept apart", () => {
    // Run 1: prompts 0 and 1, two images each; run 2: prompt 0 only (the same index as run 1's).
    const r1 = {
      a: [
        row('p0', 0, true, 0.9),
        row('p0', 1, true, 0.7),
        row('p1', 2, true, 0.6, 1),
        row('p1', 3, true, 0.6, 1),
      ],
      b: [
        row('p0', 0, true, 0.5),
        row('p0', 1, true, 0.5),
        row('p1', 2, true, 0.6, 1),
        row('p1', 3, true, 0.6, 1),
      ],
    };
    const r2 = {
      a: [row('p0', 0, true, 0.2), row('p0', 1, true, 0.4)],
      b: [row('p0', 0, true, 0.5), row('p0', 1, true, 0.3)],
    };
    const got = poolUtility(poolRuns([r1, r2]), { methods: ['a', 'b'], seed: 4, resamples: 500 });
    assert.ok(typeof got !== 'string', String(got));
    assert.deepEqual(
      got.models.map((m) => [m.method, m.images, m.prompts]),
      [
        ['a', 6, 3],
        ['b', 6, 3],
      ],
    );
    assert.ok(Math.abs(got.models[0]!.mean - 3.4 / 6) < 1e-12);
    assert.ok(Math.abs(got.models[1]!.mean - 3.0 / 6) < 1e-12);
    // Per prompt (run 1 p0, run 1 p1, run 2 p0): a 0.8, 0.6, 0.3; b 0.5, 0.6, 0.4.
    const c = got.comparisons[0]!;
    assert.deepEqual([c.a, c.b, c.wins, c.ties, c.losses, c.prompts], ['a', 'b', 1, 1, 1, 3]);
    assert.equal(c.winRate, 0.5);
    const same = summarizeUtility(
      new Map([
        ['a', [0.8, 0.6, 0.3].map((utility, u) => ({ unit: String(u), utility }))],
        ['b', [0.5, 0.6, 0.4].map((utility, u) => ({ unit: String(u), utility }))],
      ]),
      { methods: ['a', 'b'], seed: 4, resamples: 500 },
    ).comparisons[0]!;
    const near = (x: number, y: number): boolean => Math.abs(x - y) < 1e-12;
    assert.ok(near(c.meanA, same.meanA) && near(c.meanB, same.meanB) && near(c.pValue!, same.pValue!));
    assert.ok(near(c.ci95[0], same.ci95[0]) && near(c.ci95[1], same.ci95[1]), `${c.ci95} vs ${same.ci95}`);
  });

  test('says which run has no utility instead of pooling part of them', () => {
    const withUtility = { a: [row('p', 0, true, 0.5)], b: [row('p', 0, true, 0.4)] };
    assert.equal(
      poolUtility(poolRuns([withUtility, run1]), { methods: ['a', 'b'] }),
      'no utility in the results of run 2 (evaluated before utilities were recorded, or GenEval was skipped)',
    );
  });
});
