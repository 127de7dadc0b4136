import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareGeneval, type GenevalResultRow } from '../../engine/eval/geneval-summary';
import { poolRuns } from '../../tools/pool-evaluations';

function row(prompt: string, seed: number, correct: boolean): GenevalResultRow {
  return {
    filename: `${seed}.png`,
    tag: 'colors',
    prompt,
    correct,
    reason: correct ? '' : 'wrong colour',
    metadata: JSON.stringify({ tag: 'colors', prompt }),
    score: correct ? 1 : 0.5,
    promptIndex: 0,
    imageIndex: seed,
    seed,
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
});
