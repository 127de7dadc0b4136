import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeImage } from '../../engine/data/image-codec';
import { readPickapicShards, writePickapicParquet } from '../../engine/data/pickapic';
import { Rng } from '../../engine/rng';
import { renderScene, sceneForMetadata } from '../../engine/world/render';
import { generatePrompts } from '../../engine/world/world';
import { PERTURB_LEVELS, addNoise, perturb } from '../../engine/world/perturb';
import { imageQuality } from '../../engine/world/image-quality';
import { simulateFeedback } from '../../engine/world/simulate';
import type { FeedbackSimulationOptions, SimulatedFeedback } from '../../engine/world/simulate';
import { worldGenerator } from '../../engine/world/world-generator';

const prompts = generatePrompts('feedback', 36);
/** One aligned (even seed) and one misaligned (odd seed) image per pair, clean renders. */
const clean = worldGenerator({ resolution: 24, wrongSeeds: 'odd', levels: [null] });
const noisy = worldGenerator({ resolution: 24, wrongSeeds: 'odd' });

function alignedWinRate(sim: SimulatedFeedback): number {
  let wins = 0;
  sim.rows.forEach((row, i) => {
    const alignedSide = sim.pairs[i]!.seeds[0] % 2 === 0 ? 0 : 1;
    wins += alignedSide === 0 ? row.label_0! : row.label_1!;
  });
  return wins / sim.rows.length;
}

function leftWinRate(sim: SimulatedFeedback): number {
  return sim.rows.reduce((a, r) => a + r.label_0!, 0) / sim.rows.length;
}

const run = (options: Partial<FeedbackSimulationOptions>, generate = noisy, list = prompts) =>
  simulateFeedback(list, generate, { seed: 7, ...options });

describe('implicit feedback simulation', () => {
  test('with no noise and no position bias the aligned image always wins', async () => {
    const sim = await run({ temperature: 0, positionBias: 0, qualityWeight: 0 }, clean);
    assert.equal(alignedWinRate(sim), 1);
    for (const [i, p] of sim.pairs.entries()) {
      const a = p.seeds[0] % 2 === 0 ? 0 : 1;
      assert.equal(p.alignment[a], 1, `pair ${i}: aligned image scored ${p.alignment[a]}`);
      assert.ok(p.alignment[1 - a]! < 1);
    }
  });

  test('the click noise (logit temperature) moves choices toward coin flips', async () => {
    const sharp = alignedWinRate(await run({ temperature: 0.02 }));
    const soft = alignedWinRate(await run({ temperature: 1 }));
    const flat = alignedWinRate(await run({ temperature: 100 }));
    console.log(
      `aligned-image win rate: T=0.02 ${sharp.toFixed(3)}, T=1 ${soft.toFixed(3)}, T=100 ${flat.toFixed(3)}`,
    );
    assert.ok(sharp > 0.9, `T=0.02: ${sharp}`);
    assert.ok(sharp - soft > 0.15, `T=1: ${soft}`);
    assert.ok(Math.abs(flat - 0.5) < 0.2, `T=100: ${flat}`);
  });

  test('position bias makes the left image win', async () => {
    const always = await run({ positionBias: 1 });
    assert.ok(always.rows.every((r) => r.label_0 === 1 && r.label_1 === 0));
    assert.ok(always.pairs.every((p) => p.decision === 'position'));
    const none = leftWinRate(await run({ positionBias: 0 }));
    const some = leftWinRate(await run({ positionBias: 0.6 }));
    assert.ok(none > 0.25 && none < 0.75, `no bias: left wins ${none}`);
    assert.ok(some > none + 0.25, `bias 0.6: left wins ${some} vs ${none}`);
  });

  test('indistinguishable images are ties labelled 0.5 / 0.5', async () => {
    const same = (meta: (typeof prompts)[number]) =>
      renderScene(sceneForMetadata(meta, new Rng(meta.prompt)), { resolution: 24 });
    const sim = await run({}, same);
    assert.ok(sim.rows.every((r) => r.label_0 === 0.5 && r.label_1 === 0.5));
  });

  test('rater disagreement: the same comparison gets different answers from different users', async () => {
    // The aligned image is degraded, the misaligned one is crisp: users weigh that trade-off differently.
    const meta = prompts[2]!;
    const good = perturb(
      renderScene(sceneForMetadata(meta, new Rng(1)), { resolution: 24 }),
      PERTURB_LEVELS.strong,
      new Rng(2),
    );
    const other = generatePrompts('other', 6).find((m) => m.tag === meta.tag && m.prompt !== meta.prompt)!;
    const bad = renderScene(sceneForMetadata(other, new Rng(3)), { resolution: 24 });
    const generate = (_m: typeof meta, seed: number) => (seed % 2 === 0 ? good : bad);
    const list = Array.from({ length: 40 }, () => meta);
    const agree = await run({ temperature: 0, raterDisagreement: 0, qualityWeight: 1 }, generate, list);
    const disagree = await run({ temperature: 0, raterDisagreement: 1.5, qualityWeight: 1 }, generate, list);
    const rates = [alignedWinRate(agree), alignedWinRate(disagree)];
    console.log(
      `aligned-image win rate on one fixed comparison: disagreement 0 -> ${rates[0]}, 1.5 -> ${rates[1]}`,
    );
    assert.ok(rates[0] === 0 || rates[0] === 1);
    assert.ok(rates[1]! > 0.05 && rates[1]! < 0.95);
  });

  test('rows follow the Pick-a-Pic v2 schema and survive a parquet round trip', async () => {
    const sim = await run({ positionBias: 0.2 }, noisy, prompts.slice(0, 10));
    const dir = await mkdtemp(path.join(tmpdir(), 'feedback-'));
    try {
      const file = path.join(dir, 'train-0000.parquet');
      await writePickapicParquet(file, sim.rows);
      const read = await readPickapicShards([file], { images: 'decode' });
      assert.equal(read.rows.length, 10);
      assert.equal(read.skipped, 0);
      read.rows.forEach((r, i) => {
        const w = sim.rows[i]!;
        assert.equal(r.caption, prompts[i]!.prompt);
        assert.deepEqual(
          [r.image_0_uid, r.image_1_uid, r.label_0, r.label_1, r.user_id, r.ranking_id],
          [w.image_0_uid, w.image_1_uid, w.label_0, w.label_1, w.user_id, w.ranking_id],
        );
        assert.equal(r.label_0 + r.label_1, 1);
        assert.equal(r.image_0!.width, 24);
      });
      assert.equal(new Set(sim.rows.flatMap((r) => [r.image_0_uid, r.image_1_uid])).size, 20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('deterministic from the seed', async () => {
    const a = await run({ raterDisagreement: 0.5, positionBias: 0.1 }, noisy, prompts.slice(0, 8));
    const b = await run({ raterDisagreement: 0.5, positionBias: 0.1 }, noisy, prompts.slice(0, 8));
    const c = await simulateFeedback(prompts.slice(0, 8), noisy, {
      seed: 8,
      raterDisagreement: 0.5,
      positionBias: 0.1,
    });
    assert.deepEqual(a, b);
    assert.notDeepEqual(
      a.rows.map((r) => r.jpg_0),
      c.rows.map((r) => r.jpg_0),
    );
    // The stored bytes are the images the raters judged.
    assert.equal(decodeImage(a.rows[0]!.jpg_0!).width, 24);
  });

  test('image quality: degradations lower it, the noise estimate tracks the added noise', () => {
    const metas = generatePrompts('quality', 12);
    const mean = (f: (i: number) => number) => metas.reduce((a, _m, i) => a + f(i), 0) / metas.length;
    const base = metas.map((m, i) => renderScene(sceneForMetadata(m, new Rng(i)), { resolution: 24 }));
    const q = (level: keyof typeof PERTURB_LEVELS | null) =>
      mean(
        (i) => imageQuality(level ? perturb(base[i]!, PERTURB_LEVELS[level], new Rng(i)) : base[i]!).quality,
      );
    const levels = [q(null), q('mild'), q('moderate'), q('strong')];
    for (let i = 1; i < levels.length; i++)
      assert.ok(levels[i]! < levels[i - 1]!, `quality by level ${levels.join(', ')}`);
    const flat = { width: 32, height: 32, data: new Float32Array(32 * 32 * 3).fill(0.5) };
    const est = imageQuality(addNoise(flat, 0.05, new Rng(1))).noise;
    assert.ok(Math.abs(est - 0.05) < 0.01, `noise estimate ${est}`);
  });

  test('invalid settings are rejected by name', async () => {
    await assert.rejects(run({ positionBias: 1.5 }), /invalid positionBias 1.5/);
    await assert.rejects(run({ temperature: -1 }), /invalid temperature -1/);
  });
});
