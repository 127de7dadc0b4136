/**
 * The expert-ranking activity on a real local store: shard scores committed as artifacts, a
 * ranking that finds committed shards scores only the rest, and K larger than the set fails
 * permanently with a message naming K and the set size.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { readPreferenceRows } from '../../activities/preferences';
import { StoreShardCommitter, createRankingActivities } from '../../activities/ranking';
import { createRewardActivities } from '../../activities/reward';
import { encodeJson, type StageDeps } from '../../activities/stage';
import { initBackend } from '../../engine/backend';
import { writePickapicParquet } from '../../engine/data/pickapic';
import { generatePrompts } from '../../engine/world/world';
import { simulateFeedback } from '../../engine/world/simulate';
import { worldGenerator } from '../../engine/world/world-generator';
import { decodeImageDataset } from '../../engine/io/image-dataset';
import { rankingItemsFromPickapic } from '../../engine/ranking/expert-ranking';
import { DETECTOR_REWARD_VERSION } from '../../engine/rewards';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef, type ArtifactStore } from '../../storage';

const detectorIdentity = { name: 'geneval-detector', version: DETECTOR_REWARD_VERSION };

/** A store that counts the puts under a key prefix. */
function countingStore(inner: ArtifactStore, prefix: string): ArtifactStore & { puts: string[] } {
  const puts: string[] = [];
  return Object.assign(Object.create(inner) as ArtifactStore, {
    puts,
    put: (key: string, data: Uint8Array, options: Parameters<ArtifactStore['put']>[2]) => {
      if (key.startsWith(prefix)) puts.push(key);
      return inner.put(key, data, options);
    },
  });
}

async function expectFailure(promise: Promise<unknown>, type: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
    assert.equal(err.type, type);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('store-backed shard committer', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-shards-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('commits one artifact per shard and loads it back', async () => {
    const store = new LocalArtifactStore({ root: dir });
    const committer = new StoreShardCommitter(store, 'runs/r1/ranking/shards');
    assert.deepEqual(await committer.committed(), new Set());
    const scores = { shard: 2, uids: ['a', 'b'], scores: [0.5, -1], rewardModel: detectorIdentity };
    await committer.commit(2, scores);
    // Unrelated artifacts next to the shards are not shards.
    await store.put('runs/r1/ranking/shards-other.json', encodeJson({}), { kind: 'x', producer: 'test' });
    assert.deepEqual(await committer.committed(), new Set([2]));
    assert.deepEqual(await committer.load(2), scores);
    assert.ok(await store.exists('runs/r1/ranking/shards/shard-000002.json'));
  });

  test('a shard artifact holding another shard or malformed scores is a permanent error', async () => {
    const store = new LocalArtifactStore({ root: dir });
    const committer = new StoreShardCommitter(store, 'runs/r2/ranking/shards');
    await store.put(
      committer.keyOf(0),
      encodeJson({ shard: 1, uids: ['a'], scores: [1], rewardModel: detectorIdentity }),
      { kind: 'ranking-shard', producer: 'test' },
    );
    await store.put(committer.keyOf(3), encodeJson({ shard: 3, uids: ['a'], scores: [] }), {
      kind: 'ranking-shard',
      producer: 'test',
    });
    await expectFailure(committer.load(0), 'ShardStoreError', /holds shard 1, expected 0/);
    await expectFailure(committer.load(3), 'ShardStoreError', /1 uids but 0 scores|rewardModel/);
  });
});

describe('rankExperts activity', { timeout: 120_000 }, () => {
  let dir: string;
  let store: LocalArtifactStore;
  let deps: StageDeps;
  let preferences: ArtifactRef;
  let reward: ArtifactRef;
  const env = new MockActivityEnvironment();
  const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;
  const logger = createLogger({ level: 'warn', destination: process.stderr });

  before(async () => {
    await initBackend('auto');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-rank-'));
    store = new LocalArtifactStore({ root: dir });
    deps = { store, logger };
    // 6 prompts -> 12 distinct images -> 3 shards of 4.
    const feedback = await simulateFeedback(
      generatePrompts('rank-test', 6),
      worldGenerator({ resolution: 16 }),
      {
        seed: 5,
      },
    );
    const file = path.join(dir, 'prefs.parquet');
    await writePickapicParquet(file, feedback.rows);
    preferences = await store.put('runs/r/preferences/pickapic.parquet', fs.readFileSync(file), {
      kind: 'pickapic-parquet',
      producer: 'test',
    });
    const rewards = createRewardActivities(deps);
    const trained = await run(rewards.trainRewardModel, {
      runId: 'r',
      seed: 0,
      kind: 'detector' as const,
      preferences,
    });
    reward = trained.reward;
    assert.deepEqual(trained.identity, detectorIdentity);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('with shard 0 committed, a ranking scores only shards 1 and 2 and uses the stored scores', async () => {
    const committer = new StoreShardCommitter(store, 'runs/r/ranking/shards-4');
    const items = rankingItemsFromPickapic(await readPreferenceRows(deps, preferences));
    // Scores no detector can give (it scores in [0, 1]): if shard 0 were rescored they would vanish.
    await committer.commit(0, {
      shard: 0,
      uids: items.slice(0, 4).map((i) => i.uid),
      scores: [10, 11, 12, 13],
      rewardModel: detectorIdentity,
    });
    const counting = countingStore(store, 'runs/r/ranking/shards-4/');
    const ranking = createRankingActivities({ store: counting, logger });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const result = await run(ranking.rankExperts, {
      runId: 'r',
      preferences,
      reward,
      topK: 5,
      shardSize: 4,
      resolution: 16,
    });
    assert.deepEqual(result.shardsSkipped, [0]);
    assert.deepEqual(result.shardsScored, [1, 2]);
    assert.deepEqual(counting.puts.sort(), [committer.keyOf(1), committer.keyOf(2)]);
    assert.ok(heartbeats.length >= 2, 'no progress heartbeats');
    const experts = decodeImageDataset(await store.get(result.experts.uri, result.experts.sha256));
    assert.equal(experts.examples.length, 5);
    assert.deepEqual(experts.scores!.slice(0, 4), [13, 12, 11, 10]);
    assert.ok(experts.scores![4]! <= 1);

    // A retry finds the finished expert set and returns it without touching the shards.
    const again = await run(ranking.rankExperts, {
      runId: 'r',
      preferences,
      reward,
      topK: 5,
      shardSize: 4,
      resolution: 16,
    });
    assert.deepEqual(again.experts, result.experts);
    assert.equal(counting.puts.length, 2);
  });

  test('K larger than the preference set fails permanently, naming K and the set size', async () => {
    const ranking = createRankingActivities(deps);
    await expectFailure(
      run(ranking.rankExperts, {
        runId: 'r-k',
        preferences,
        reward,
        topK: 50,
        shardSize: 4,
        resolution: 16,
      }),
      'ExpertRankingError',
      /ranking\.topK=50 is larger than the preference set, which holds 12 distinct images/,
    );
  });

  test('a cap per prompt the set cannot meet fails permanently before any shard is scored', async () => {
    const counting = countingStore(store, 'runs/r-cap/');
    const ranking = createRankingActivities({ store: counting, logger });
    await expectFailure(
      run(ranking.scoreRankingShards, {
        runId: 'r-cap',
        preferences,
        reward,
        topK: 7,
        maxPerPrompt: 1,
        shardSize: 4,
        resolution: 16,
        part: 0,
        parts: 1,
      }),
      'ExpertRankingError',
      /ranking\.topK=7 cannot be met with ranking\.maxPerPrompt=1: the \d+ prompts of the preference set allow \d+ experts/,
    );
    assert.deepEqual(counting.puts, []);
  });
});
