/**
 * `eval.baselines` decides the run's GenEval baseline: the first listed method the run evaluates,
 * else the base model; the pipeline's eval settings are the ones `dro eval --like` reuses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../config/load';
import { evaluationBaseline, runEvaluationSettings } from '../../contracts/evaluation';

test('the first of eval.baselines the run evaluates is the baseline', () => {
  assert.equal(evaluationBaseline(['sft', 'base'], ['base', 'sft', 'dro']), 'sft');
  assert.equal(evaluationBaseline(['dpo', 'sft'], ['base', 'sft', 'dro']), 'sft');
  assert.equal(evaluationBaseline(['dpo'], ['base', 'dro']), 'base');
  assert.equal(evaluationBaseline(parseConfig({}).eval.baselines, ['base', 'sft', 'dro']), 'base');
});

test("a run's evaluation settings follow its config, held-out prompts with the hash split", () => {
  const config = parseConfig({ seed: 9, data: { promptSplit: 'hash' }, eval: { genevalPrompts: 7 } });
  const settings = runEvaluationSettings(config);
  assert.equal(settings.seed, 9);
  assert.equal(settings.genevalPrompts, 7);
  assert.equal(settings.heldOutOnly, true);
  assert.equal(runEvaluationSettings(parseConfig({})).heldOutOnly, undefined);
});
