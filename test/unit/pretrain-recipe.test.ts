import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadRecipe } from '../../tools/pretrain-recipe';

describe('pretraining recipe', () => {
  test('the checked-in recipe loads; overrides set nested fields with JSON values', () => {
    const r = loadRecipe('config/pretrain-base.json', [
      'training.steps=7',
      'training.trainTextEncoder=true',
      'eval.suiteSeed=other',
    ]);
    assert.equal(r.training.steps, 7);
    assert.equal(r.training.trainTextEncoder, true);
    assert.equal(r.eval.suiteSeed, 'other');
    assert.equal(r.eval.samplerSteps, 20, 'untouched fields keep the file value');
  });

  test('omitted sections take their defaults', () => {
    const r = loadRecipe(undefined, ['corpus.size=10']);
    assert.equal(r.corpus.size, 10);
    assert.equal(r.corpus.captionNoise, 0.3);
    assert.equal(r.training.lrDecay, 'constant');
  });

  test('unknown keys and bad values are named with the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recipe-'));
    const file = path.join(dir, 'r.json');
    fs.writeFileSync(file, JSON.stringify({ training: { stepz: 3 } }));
    assert.throws(() => loadRecipe(file), new RegExp(`${file.replace(/[.]/g, '\\.')}: field training`));
    assert.throws(() => loadRecipe(undefined, ['training.lrDecay=linear']), /field training\.lrDecay/);
    assert.throws(() => loadRecipe(undefined, ['training']), /expected path=value/);
    fs.rmSync(dir, { recursive: true });
  });
});
