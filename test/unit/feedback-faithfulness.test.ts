import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../../engine/rng';
import { renderScene, sceneForMetadata } from '../../engine/world/render';
import { generatePrompts, type PromptMetadata } from '../../engine/world/world';
import { judgeImage } from '../../engine/world/geneval';
import { PERTURB_LEVELS, perturb } from '../../engine/world/perturb';
import { imageQuality } from '../../engine/world/image-quality';
import { simulateFeedback, type FeedbackSimulationOptions } from '../../engine/world/simulate';

// Counting prompts of three or four: the "nearly right" image shows one object too few, which
// GenEval fails but gives high partial credit (every other check passes).
const prompts = generatePrompts('faithfulness', 120).filter(
  (p) => p.tag === 'counting' && p.include[0]!.count >= 3,
);

/**
 * Even seeds: the prompt rendered exactly, then degraded (grain, blur): right but ugly.
 * Odd seeds: one object too few, clean render: wrong but good-looking and nearly right.
 * A stream per prompt and seed, so the nearly-right images do not all share one colour: a colour
 * as bright as the background leaves no luminance edge to look sharp by.
 */
function generate(meta: PromptMetadata, seed: number) {
  const rng = new Rng(`faithfulness:${meta.prompt}:${seed}`);
  if (seed % 2 === 0) {
    return perturb(
      renderScene(sceneForMetadata(meta, rng), { resolution: 24 }),
      PERTURB_LEVELS.moderate,
      rng,
    );
  }
  const clause = meta.include[0]!;
  const fewer: PromptMetadata = { ...meta, include: [{ ...clause, count: clause.count - 1 }], exclude: [] };
  return renderScene(sceneForMetadata(fewer, rng), { resolution: 24 });
}

function rightImageWinRate(options: Partial<FeedbackSimulationOptions>) {
  // Users who weigh looks as much as content (qualityWeight 1), deciding without click noise.
  const settings = { seed: 3, temperature: 0, qualityWeight: 1, pairsPerPrompt: 2, ...options };
  return simulateFeedback(prompts, generate, settings).then((sim) => {
    let wins = 0;
    sim.rows.forEach((row, i) => {
      const rightSide = sim.pairs[i]!.seeds[0] % 2 === 0 ? 0 : 1;
      wins += rightSide === 0 ? row.label_0! : row.label_1!;
    });
    return { rate: wins / sim.rows.length, sim };
  });
}

describe('simulated users judge prompt faithfulness as GenEval does', () => {
  test('the test images are what they claim: right-but-ugly against nearly-right-and-clean', () => {
    for (const meta of prompts) {
      const right = generate(meta, 0);
      const near = generate(meta, 1);
      assert.equal(judgeImage(right, meta).correct, true, meta.prompt);
      const j = judgeImage(near, meta);
      assert.equal(j.correct, false);
      assert.ok(j.score >= 0.8, `partial credit ${j.score}`);
      assert.ok(imageQuality(near).quality - imageQuality(right).quality > 0.2);
    }
  });

  test('the image that shows the prompt wins over a nearly-right, better-looking one', async () => {
    const { rate, sim } = await rightImageWinRate({});
    assert.equal(rate, 1);
    for (const p of sim.pairs) {
      const rightSide = p.seeds[0] % 2 === 0 ? 0 : 1;
      assert.equal(p.correct[rightSide], true);
      assert.equal(p.correct[1 - rightSide], false);
    }
  });

  test('with partial credit alone (correctnessWeight 0) looks decide instead', async () => {
    const { rate } = await rightImageWinRate({ correctnessWeight: 0 });
    assert.ok(rate < 0.5, `right image won ${rate}`);
  });

  test('a negative correctnessWeight is rejected by name', async () => {
    await assert.rejects(rightImageWinRate({ correctnessWeight: -1 }), /invalid correctnessWeight -1/);
  });
});
