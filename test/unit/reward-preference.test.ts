import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../engine/backend';
import { generatePrompts } from '../../engine/world/world';
import { simulateFeedback } from '../../engine/world/simulate';
import { worldGenerator } from '../../engine/world/world-generator';
import {
  defaultPreferenceConfig,
  loadPreferenceModel,
  pairwiseAccuracy,
  preferencePairsFromRows,
  savePreferenceModel,
  trainPreferenceModel,
} from '../../engine/rewards/preference-model';
import type { PreferencePair } from '../../engine/rewards/preference-model';
import { rewardModelIdentity } from '../../engine/rewards/reward-model';

const PAIRS = 2000;
const HELD_OUT = 500;
const EPOCHS = 10;

describe('learned preference model (Bradley-Terry)', () => {
  let train: PreferencePair[];
  let heldOut: PreferencePair[];
  let alignedPreferred: number;

  before(async () => {
    await initBackend('wasm');
    // Every comparison shows one image of the prompt and one of another prompt (seeds 2k / 2k+1),
    // degraded at random; users mostly prefer the aligned one, sometimes the better-looking one.
    const sim = await simulateFeedback(
      generatePrompts('preference-train', PAIRS),
      worldGenerator({ resolution: 16, wrongSeeds: 'odd' }),
      { seed: 5, keepImages: true, qualityWeight: 0.2, temperature: 0.05 },
    );
    const pairs = sim.pairs.map((p, i) => ({
      prompt: p.metadata.prompt,
      images: p.images!,
      label0: sim.rows[i]!.label_0!,
    }));
    train = pairs.slice(0, PAIRS - HELD_OUT);
    heldOut = pairs.slice(PAIRS - HELD_OUT);
    const decided = sim.rows
      .slice(PAIRS - HELD_OUT)
      .map((r, i) => ({ r, p: sim.pairs[PAIRS - HELD_OUT + i]! }));
    alignedPreferred =
      decided.filter(({ r, p }) => r.label_0 === (p.seeds[0] % 2 === 0 ? 1 : 0)).length / decided.length;
  });

  test('beats the prompt-blind baseline on held-out pairs', async () => {
    const learned = await trainPreferenceModel(train, defaultPreferenceConfig(), { seed: 1, epochs: EPOCHS });
    const blind = await trainPreferenceModel(train, defaultPreferenceConfig({ promptInput: false }), {
      seed: 1,
      epochs: EPOCHS,
    });
    const accLearned = await pairwiseAccuracy(learned.model, heldOut);
    const accBlind = await pairwiseAccuracy(blind.model, heldOut);
    const trainLearned = await pairwiseAccuracy(learned.model, train);
    console.log(
      `preference pairs: ${train.length} train, ${heldOut.length} held out; held-out labels prefer the aligned image ${(alignedPreferred * 100).toFixed(1)}%`,
    );
    console.log(
      `held-out pairwise accuracy: learned ${accLearned.accuracy.toFixed(3)} vs prompt-blind ${accBlind.accuracy.toFixed(3)} ` +
        `(${accLearned.pairs} decided pairs; learned train accuracy ${trainLearned.accuracy.toFixed(3)}); ` +
        `training ${learned.seconds.toFixed(1)} s and ${blind.seconds.toFixed(1)} s, ${EPOCHS} epochs`,
    );
    assert.ok(alignedPreferred > 0.8);
    assert.ok(learned.losses.at(-1)! < learned.losses[0]!);
    assert.ok(accLearned.accuracy > 0.62, `learned ${accLearned.accuracy}`);
    assert.ok(
      accLearned.accuracy > accBlind.accuracy + 0.1,
      `learned ${accLearned.accuracy} vs blind ${accBlind.accuracy}`,
    );
    assert.equal(rewardModelIdentity(blind.model).name, 'world-preference-prompt-blind');

    // Saved and loaded weights give the same scores and the same identity.
    const dir = await mkdtemp(path.join(tmpdir(), 'pref-'));
    try {
      await savePreferenceModel(learned.model, dir);
      const loaded = await loadPreferenceModel(dir);
      const sample = heldOut.slice(0, 20);
      const args = [sample.map((p) => p.images[0]), sample.map((p) => p.prompt)] as const;
      assert.deepEqual(await loaded.score(...args), await learned.model.score(...args));
      assert.deepEqual(rewardModelIdentity(loaded), rewardModelIdentity(learned.model));
      assert.match(loaded.digest, /^sha256:[0-9a-f]{64}$/);
      loaded.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    learned.model.dispose();
    blind.model.dispose();
  });

  test('training is deterministic from the seed; ties are 0.5 targets or skipped', async () => {
    const small = train.slice(0, 48).map((p, i) => (i % 8 === 0 ? { ...p, label0: 0.5 } : p));
    const config = defaultPreferenceConfig({ channels: [4, 4, 4], featureDim: 8, hidden: 8 });
    const a = await trainPreferenceModel(small, config, { seed: 9, epochs: 1 });
    const b = await trainPreferenceModel(small, config, { seed: 9, epochs: 1 });
    const c = await trainPreferenceModel(small, config, { seed: 10, epochs: 1 });
    assert.equal(a.model.digest, b.model.digest);
    assert.notEqual(a.model.digest, c.model.digest);
    assert.equal(a.pairsUsed, 48);
    const skipped = await trainPreferenceModel(small, config, { seed: 9, epochs: 1, ties: 'skip' });
    assert.equal(skipped.pairsUsed, 42);
    await assert.rejects(
      trainPreferenceModel([{ ...small[0]!, label0: 0.3 }], config, { seed: 1 }),
      /pair 0: label0 must be 0, 0.5 or 1/,
    );
    for (const r of [a, b, c, skipped]) r.model.dispose();
  });

  test('pairs from Pick-a-Pic rows decode the stored images', async () => {
    const sim = await simulateFeedback(generatePrompts('rows', 3), worldGenerator({ resolution: 16 }), {
      seed: 1,
    });
    const pairs = preferencePairsFromRows(sim.rows);
    assert.equal(pairs.length, 3);
    assert.equal(pairs[0]!.images[0].width, 16);
    assert.equal(pairs[0]!.label0, sim.rows[0]!.label_0);
  });
});
