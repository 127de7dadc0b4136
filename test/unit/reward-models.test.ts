import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { toUint8 } from '../../engine/data/image';
import { Rng } from '../../engine/rng';
import { renderScene, sceneForMetadata } from '../../engine/world/render';
import { generateSuite } from '../../engine/world/world';
import { DETECTOR_REWARD_VERSION, DetectorReward } from '../../engine/rewards/detector-reward';
import {
  UnscorableImageError,
  formatIdentity,
  resizeToFloat,
  rewardModelIdentity,
  sameIdentity,
} from '../../engine/rewards/reward-model';
import { UnknownPromptError, parseWorldPrompt } from '../../engine/world/world-prompts';

describe('world prompt parser', () => {
  test('inverts the prompt generator on a whole GenEval-style suite', () => {
    const suite = generateSuite({ seed: 'parser', perTag: 30 });
    assert.ok(suite.length > 100);
    for (const meta of suite) assert.deepEqual(parseWorldPrompt(meta.prompt), meta, meta.prompt);
  });

  test('text outside the templates is an error naming the prompt', () => {
    for (const bad of [
      'a photo of a shape',
      'a photo of circles',
      'a drawing of a circle',
      'a photo of a circle and',
    ])
      assert.throws(
        () => parseWorldPrompt(bad),
        (err: Error) => err instanceof UnknownPromptError && err.message.includes(`"${bad}"`),
      );
  });
});

describe('detector reward', () => {
  const suite = generateSuite({ seed: 'detector-reward', perTag: 3 });

  test('aligned renders score 1, renders of another prompt score less', async () => {
    const reward = new DetectorReward();
    const rng = new Rng(3);
    const aligned = suite.map((m) => toUint8(renderScene(sceneForMetadata(m, rng), { resolution: 24 })));
    const scores = await reward.score(
      aligned,
      suite.map((m) => m.prompt),
    );
    assert.deepEqual(
      scores,
      suite.map(() => 1),
    );
    // Each image judged against the next prompt of the same tag, which it does not depict.
    const shifted = suite.map((m, i) => {
      const j = suite.findIndex((o, k) => k > i && o.tag === m.tag && o.prompt !== m.prompt);
      return j < 0 ? undefined : { image: aligned[i]!, prompt: suite[j]!.prompt };
    });
    const cases = shifted.filter((c) => c !== undefined);
    const wrong = await reward.score(
      cases.map((c) => c.image),
      cases.map((c) => c.prompt),
    );
    assert.ok(wrong.every((s) => s < 1));
    assert.ok(wrong.every((s) => s >= 0));
  });

  test('metadata can be given explicitly; unknown prompts point at the image', async () => {
    const meta = suite[0]!;
    const image = renderScene(sceneForMetadata(meta, new Rng(1)), { resolution: 24 });
    const byMap = new DetectorReward({ metadata: new Map([['custom caption', meta]]) });
    assert.deepEqual(await byMap.score([image], ['custom caption']), [1]);
    await assert.rejects(
      byMap.score([image, image], ['custom caption', 'a photo of a shape']),
      (err: Error) =>
        err instanceof UnscorableImageError && err.index === 1 && /"a photo of a shape"/.test(err.message),
    );
    await assert.rejects(byMap.score([image], []), /1 images but 0 prompts/);
  });

  test('identity record', () => {
    const id = rewardModelIdentity(new DetectorReward());
    assert.deepEqual(id, { name: 'geneval-detector', version: DETECTOR_REWARD_VERSION });
    assert.equal(
      formatIdentity({ ...id, digest: 'sha256:ab' }),
      `geneval-detector@${DETECTOR_REWARD_VERSION} (sha256:ab)`,
    );
    assert.ok(sameIdentity(id, { ...id }));
    assert.ok(!sameIdentity(id, { ...id, digest: 'sha256:ab' }));
  });
});

describe('image resizing for reward inputs', () => {
  test('identity size converts to [0, 1]; 2x box downscale averages; bilinear keeps constants', () => {
    const img = {
      width: 2,
      height: 2,
      data: Uint8Array.from([0, 0, 0, 255, 255, 255, 51, 51, 51, 102, 102, 102]),
    };
    assert.deepEqual(
      [...resizeToFloat(img, 2, 2)].map((v) => Math.round(v * 255)),
      [...img.data],
    );
    const big = {
      width: 4,
      height: 4,
      data: new Float32Array(48).map((_, i) => (Math.floor(i / 12) % 2) * 0.5),
    };
    const small = resizeToFloat(big, 2, 2);
    assert.ok([...small].every((v) => Math.abs(v - 0.25) < 1e-7));
    const flat = { width: 5, height: 3, data: new Float32Array(45).fill(0.3) };
    assert.ok([...resizeToFloat(flat, 7, 4)].every((v) => Math.abs(v - 0.3) < 1e-6));
  });
});
