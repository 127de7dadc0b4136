import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { toUint8 } from '../../engine/data/image';
import { encodePng } from '../../engine/data/image-codec';
import { renderScene, sceneForMetadata } from '../../engine/world/render';
import { Rng } from '../../engine/rng';
import { generatePrompts } from '../../engine/world/world';
import { simulateFeedback } from '../../engine/world/simulate';
import { worldGenerator } from '../../engine/world/world-generator';
import {
  ExpertRankingError,
  mergeExpertSet,
  rankExperts,
  rankingItemsFromPickapic,
  scoreShards,
} from '../../engine/ranking/expert-ranking';
import type { RankingItem, RankingProgress } from '../../engine/ranking/expert-ranking';
import { LocalDirShardCommitter, MemoryShardCommitter } from '../../engine/ranking/shard-committer';
import { DetectorReward } from '../../engine/rewards/detector-reward';
import { UnscorableImageError } from '../../engine/rewards/reward-model';
import type { ImageBatch, RewardModel } from '../../engine/rewards/reward-model';

const TINY = { width: 2, height: 2, data: new Uint8Array(12) };

/** Items whose "true" score is encoded in a map; images are tiny placeholders. */
function fakeItems(n: number): { items: RankingItem[]; truth: Map<string, number> } {
  const truth = new Map<string, number>();
  const items: RankingItem[] = [];
  for (let i = 0; i < n; i++) {
    const uid = `img-${String((i * 7919) % n).padStart(4, '0')}`;
    // Integer scores with repeats, so ties must be broken by uid.
    truth.set(uid, (i * 37) % 11);
    items.push({ uid, prompt: uid, image: TINY });
  }
  return { items, truth };
}

/** Scores by lookup of the prompt (= uid); counts calls per uid; can crash after N shards' worth of calls. */
class FakeReward implements RewardModel {
  readonly name = 'fake';
  readonly version = '1';
  readonly calls = new Map<string, number>();
  batches = 0;
  constructor(
    private readonly truth: Map<string, number>,
    private readonly crashAtBatch = Infinity,
  ) {}
  score(images: ImageBatch, prompts: readonly string[]): Promise<number[]> {
    if (this.batches >= this.crashAtBatch) return Promise.reject(new Error('worker lost'));
    this.batches++;
    for (const p of prompts) this.calls.set(p, (this.calls.get(p) ?? 0) + 1);
    return Promise.resolve(prompts.map((p) => this.truth.get(p) ?? NaN));
  }
}

function expectedTopK(truth: Map<string, number>, k: number): string[] {
  return [...truth.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, k)
    .map(([uid]) => uid);
}

describe('expert ranking', () => {
  test('keeps the top K by score, ties broken by uid, and records model and K', async () => {
    const { items, truth } = fakeItems(53);
    const model = new FakeReward(truth);
    const set = await rankExperts({ items, rewardModel: model, k: 12, shardSize: 8 });
    assert.deepEqual(
      set.experts.map((e) => e.uid),
      expectedTopK(truth, 12),
    );
    assert.deepEqual(
      set.experts.map((e) => e.rank),
      [...Array(12).keys()],
    );
    for (const e of set.experts) assert.equal(e.score, truth.get(e.uid));
    assert.deepEqual(set.rewardModel, { name: 'fake', version: '1' });
    assert.equal(set.k, 12);
    assert.equal(set.total, 53);
    assert.ok([...model.calls.values()].every((c) => c === 1));
  });

  test('interrupted ranking resumes without rescoring committed shards and gives the same experts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ranking-'));
    try {
      const { items, truth } = fakeItems(50);
      const reference = await rankExperts({ items, rewardModel: new FakeReward(truth), k: 10, shardSize: 6 });

      const committer = new LocalDirShardCommitter(dir);
      // Batch size 3 -> two reward calls per shard; the crash comes during shard 3 (after 7 calls).
      const first = new FakeReward(truth, 7);
      await assert.rejects(
        rankExperts({ items, rewardModel: first, k: 10, shardSize: 6, batchSize: 3, committer }),
        /worker lost/,
      );
      assert.deepEqual([...(await committer.committed())].sort(), [0, 1, 2]);
      // Only whole shards are visible: no temporary files left behind, no partial shard under its name.
      assert.deepEqual((await readdir(dir)).sort(), [
        'shard-000000.json',
        'shard-000001.json',
        'shard-000002.json',
      ]);

      const second = new FakeReward(truth);
      const progress: RankingProgress[] = [];
      const resumed = await rankExperts({
        items,
        rewardModel: second,
        k: 10,
        shardSize: 6,
        batchSize: 3,
        committer: new LocalDirShardCommitter(dir),
        onProgress: (p) => progress.push(p),
      });
      assert.deepEqual(resumed, reference);
      const committedFirst = new Set(items.slice(0, 18).map((i) => i.uid));
      for (const item of items) {
        const total = (first.calls.get(item.uid) ?? 0) + (second.calls.get(item.uid) ?? 0);
        const interrupted = (first.calls.get(item.uid) ?? 0) > 0 && !committedFirst.has(item.uid);
        // Images of committed shards were scored exactly once; only the shard cut mid-way is redone.
        assert.equal(total, interrupted ? 2 : 1, `uid ${item.uid} scored ${total} times`);
        if (committedFirst.has(item.uid)) assert.equal(second.calls.get(item.uid), undefined);
      }
      assert.equal(progress[0]?.shardsDone, 3);
      assert.equal(progress.at(-1)?.shardsDone, 9);
      assert.equal(progress.at(-1)?.shardsTotal, 9);
      assert.equal(progress.at(-1)?.imagesScored, 50 - 18);
      assert.equal(progress.at(-1)?.etaSeconds, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('shards scored by different workers in any order merge to the same set', async () => {
    const { items, truth } = fakeItems(40);
    const reference = await rankExperts({ items, rewardModel: new FakeReward(truth), k: 9, shardSize: 5 });
    const committer = new MemoryShardCommitter();
    // Worker B commits the late shards first, worker A the early ones afterwards, in reverse.
    await scoreShards({
      items,
      rewardModel: new FakeReward(truth),
      shardSize: 5,
      committer,
      shards: [5, 6, 7],
    });
    for (const s of [4, 3, 2, 1, 0])
      await scoreShards({ items, rewardModel: new FakeReward(truth), shardSize: 5, committer, shards: [s] });
    const merged = await mergeExpertSet({
      items,
      rewardModel: new FakeReward(truth),
      shardSize: 5,
      k: 9,
      committer,
    });
    assert.deepEqual(merged, reference);
  });

  test('merge refuses missing shards and scores of another reward model', async () => {
    const { items, truth } = fakeItems(20);
    const committer = new MemoryShardCommitter();
    await scoreShards({ items, rewardModel: new FakeReward(truth), shardSize: 5, committer, shards: [0, 1] });
    await assert.rejects(
      mergeExpertSet({ items, rewardModel: new FakeReward(truth), shardSize: 5, k: 3, committer }),
      /2 of 4 shards are not scored yet/,
    );
    const other: RewardModel = { name: 'other', version: '2', score: (i) => Promise.resolve(i.map(() => 0)) };
    await assert.rejects(
      rankExperts({ items, rewardModel: other, shardSize: 5, k: 3, committer }),
      /shard 0 was scored by fake@1, not other@2/,
    );
  });

  test('maxPerPrompt keeps at most that many experts of one prompt, else the global order', async () => {
    // Prompt "easy" has the four best images; "hard-*" prompts one image each, scored lower.
    const scores: [string, number][] = [
      ['easy', 9],
      ['easy', 8],
      ['easy', 7],
      ['easy', 6],
      ['hard-a', 5],
      ['hard-b', 4],
      ['hard-c', 3],
      ['hard-a', 2],
    ];
    const items: RankingItem[] = scores.map(([prompt, score], i) => ({
      uid: `img-${i}`,
      prompt,
      image: { width: 1, height: 1, data: new Uint8Array([score, 0, 0]) },
    }));
    const byPixel: RewardModel = {
      name: 'pixel',
      version: '1',
      score: (images) => Promise.resolve(images.map((im) => im.data[0]!)),
    };
    const global = await rankExperts({ items, rewardModel: byPixel, k: 4, shardSize: 3 });
    assert.deepEqual(
      global.experts.map((e) => e.prompt),
      ['easy', 'easy', 'easy', 'easy'],
    );
    assert.equal(global.maxPerPrompt, undefined);
    const capped = await rankExperts({ items, rewardModel: byPixel, k: 4, shardSize: 3, maxPerPrompt: 1 });
    assert.deepEqual(
      capped.experts.map((e) => [e.prompt, e.score, e.rank]),
      [
        ['easy', 9, 0],
        ['hard-a', 5, 1],
        ['hard-b', 4, 2],
        ['hard-c', 3, 3],
      ],
    );
    assert.equal(capped.maxPerPrompt, 1);
    const two = await rankExperts({ items, rewardModel: byPixel, k: 6, shardSize: 3, maxPerPrompt: 2 });
    assert.deepEqual(
      two.experts.map((e) => e.uid),
      ['img-0', 'img-1', 'img-4', 'img-5', 'img-6', 'img-7'],
    );
    // Four prompts allow 4 experts at one per prompt: asking for 5 fails before any scoring.
    let batches = 0;
    const counting: RewardModel = { ...byPixel, score: (images) => (batches++, byPixel.score(images, [])) };
    await assert.rejects(
      rankExperts({ items, rewardModel: counting, k: 5, shardSize: 3, maxPerPrompt: 1 }),
      (err: Error) =>
        err instanceof ExpertRankingError &&
        /ranking\.topK=5/.test(err.message) &&
        /ranking\.maxPerPrompt=1/.test(err.message) &&
        /4 prompts/.test(err.message),
    );
    assert.equal(batches, 0);
  });

  test('K larger than the set is an error naming K and the set size, before any scoring', async () => {
    const { items, truth } = fakeItems(7);
    const model = new FakeReward(truth);
    await assert.rejects(
      rankExperts({ items, rewardModel: model, k: 8, shardSize: 4 }),
      (err: Error) =>
        err instanceof ExpertRankingError && /K=8/.test(err.message) && /holds 7 images/.test(err.message),
    );
    assert.equal(model.batches, 0);
  });

  test('an image that cannot be scored is named by its uid', async () => {
    const { items, truth } = fakeItems(6);
    truth.set(items[4]!.uid, NaN);
    await assert.rejects(
      rankExperts({ items, rewardModel: new FakeReward(truth), k: 2, shardSize: 3 }),
      new RegExp(`image uid '${items[4]!.uid}' cannot be scored`),
    );
    const broken = items.map((it, i) => (i === 2 ? { ...it, image: new Uint8Array([1, 2, 3]) } : it));
    await assert.rejects(
      rankExperts({ items: broken, rewardModel: new FakeReward(truth), k: 2, shardSize: 3 }),
      new RegExp(`image uid '${items[2]!.uid}' cannot be loaded`),
    );
    const picky: RewardModel = {
      name: 'picky',
      version: '1',
      score: (images) =>
        images.length > 1 ? Promise.reject(new UnscorableImageError(1, 'too dark')) : Promise.resolve([0]),
    };
    await assert.rejects(
      rankExperts({ items, rewardModel: picky, k: 2, shardSize: 3 }),
      new RegExp(`image uid '${items[1]!.uid}' cannot be scored: .*too dark`),
    );
  });

  test('ranks a simulated preference set with the detector reward: aligned images come first', async () => {
    const prompts = generatePrompts('ranking', 12);
    const sim = await simulateFeedback(
      prompts,
      worldGenerator({ resolution: 24, wrongSeeds: 'odd', levels: [null] }),
      {
        seed: 4,
      },
    );
    const items = rankingItemsFromPickapic(sim.rows);
    assert.equal(items.length, 24);
    const set = await rankExperts({ items, rewardModel: new DetectorReward(), k: 8, shardSize: 5 });
    const aligned = new Set(
      sim.pairs.flatMap((p, i) =>
        p.seeds.flatMap((s, side) =>
          s % 2 === 0 ? [side === 0 ? sim.rows[i]!.image_0_uid : sim.rows[i]!.image_1_uid] : [],
        ),
      ),
    );
    for (const e of set.experts) {
      assert.ok(aligned.has(e.uid), `${e.uid} (score ${e.score}) is not an aligned image`);
      assert.equal(e.score, 1);
    }
    assert.deepEqual(set.rewardModel.name, 'geneval-detector');
  });

  test('items from Pick-a-Pic rows are de-duplicated by uid, one caption per uid', () => {
    const png = encodePng(
      toUint8(renderScene(sceneForMetadata(generatePrompts(1, 1)[0]!, new Rng(1)), { resolution: 16 })),
    );
    const row = (a: string, b: string, caption = 'a photo of a circle') => ({
      caption,
      image_0_uid: a,
      image_1_uid: b,
      jpg_0: png,
      jpg_1: png,
      label_0: 1,
      label_1: 0,
      user_id: 0,
      ranking_id: 0,
    });
    assert.deepEqual(
      rankingItemsFromPickapic([row('x', 'y'), row('y', 'z')]).map((i) => i.uid),
      ['x', 'y', 'z'],
    );
    assert.throws(
      () => rankingItemsFromPickapic([row('x', 'y'), row('y', 'z', 'a photo of a ring')]),
      /uid 'y' appears with two captions/,
    );
  });
});
