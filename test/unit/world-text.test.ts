import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildPretrainingCorpus, fromModelSpace, toModelSpace } from '../../engine/world/pretraining-corpus';
import { Rng } from '../../engine/rng';
import { sampleCaptionedScene } from '../../engine/world/render';
import { generatePrompts } from '../../engine/world/world';
import { worldTokenizer } from '../../engine/world/world-text';

describe('world text', () => {
  test('every generated prompt and caption tokenizes without unknown words', () => {
    const tok = worldTokenizer();
    for (const p of generatePrompts(11, 600)) assert.equal(tok.encode(p.prompt).length, 16);
    const rng = new Rng(4);
    for (let i = 0; i < 600; i++)
      tok.encode(sampleCaptionedScene(rng, { pWrong: 0.3, pPartial: 0.3 }).caption);
  });

  test('the pretraining corpus has the configured share of noisy captions', () => {
    const corpus = buildPretrainingCorpus({ seed: 1, size: 400, resolution: 16, captionNoise: 0.5 });
    const noisy = corpus.kinds.filter((k) => k !== 'exact').length / corpus.kinds.length;
    assert.ok(Math.abs(noisy - 0.5) < 0.08, `noisy share ${noisy}`);
    assert.equal(corpus.examples[0]!.image.length, 16 * 16 * 3);
    const clean = buildPretrainingCorpus({ seed: 1, size: 100, resolution: 16, captionNoise: 0 });
    assert.ok(clean.kinds.every((k) => k === 'exact'));
  });

  test('model space round trip', () => {
    const x = Float32Array.from([0, 0.25, 1]);
    assert.deepEqual(Array.from(toModelSpace(x)), [-1, -0.5, 1]);
    assert.deepEqual(Array.from(fromModelSpace(Float32Array.from([-2, 0, 1.5]))), [0, 0.5, 1]);
  });
});
