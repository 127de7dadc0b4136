/**
 * The expert-ranking stage: every distinct image of the preference set is scored by the run's
 * reward model in shards of `ranking.shardSize`; each finished shard is one artifact under
 * `runs/<runId>/ranking/shards/`, so a retried or restarted ranking continues after the last
 * committed shard without rescoring. The top `ranking.topK` images become the expert set: an image
 * dataset artifact (images at the model's resolution, prompts, ids, scores) plus the ranking JSON
 * (reward identity, K, every kept score).
 */
import type { BackendPreference } from '../engine/backend';
import { encodeImageDataset } from '../engine/io/image-dataset';
import {
  checkExpertCap,
  expertImageDataset,
  rankExperts as rankExpertsEngine,
  rankingItemsFromPickapic,
  scoreShards,
  shardCount,
  type ExpertSet,
  type RankingProgress,
} from '../engine/ranking/expert-ranking';
import { expertProvenance, type ExpertProvenance } from '../engine/ranking/expert-provenance';
import {
  validateShardScores,
  type ShardCommitter,
  type ShardScores,
} from '../engine/ranking/shard-committer';
import { formatIdentity, type RewardModelIdentity } from '../engine/rewards/reward-model';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import type { Logger } from '../infra/logger';
import { activityLogger, storeCall } from './common';
import { readPreferenceRows } from './preferences';
import { loadRewardModel } from './reward';
import {
  badInput,
  checkPositiveInt,
  checkRef,
  checkRunId,
  encodeJson,
  finished,
  heartbeat,
  permanentFailure,
  putArtifact,
  readJsonArtifact,
  outputKey,
  stageCall,
  useBackend,
  type StageDeps,
  type StageOutput,
} from './stage';

const SHARD_KEY = /\/shard-(\d+)\.json$/;

/** Shard scores as artifacts: `<prefix>/shard-000000.json`, one atomic put per shard. */
export class StoreShardCommitter implements ShardCommitter {
  constructor(
    readonly store: ArtifactStore,
    /** Key prefix without trailing '/', e.g. `runs/<runId>/ranking/shards`. */
    readonly prefix: string,
  ) {}

  keyOf(shard: number): string {
    return `${this.prefix}/shard-${String(shard).padStart(6, '0')}.json`;
  }

  async committed(): Promise<Set<number>> {
    const keys = await storeCall(() => this.store.list(`${this.prefix}/`));
    const out = new Set<number>();
    for (const key of keys) {
      const m = SHARD_KEY.exec(key);
      if (m) out.add(Number(m[1]));
    }
    return out;
  }

  async load(shard: number): Promise<ShardScores> {
    const key = this.keyOf(shard);
    const bytes = await storeCall(() => this.store.get(key));
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw permanentFailure(
        `${key}: shard scores are not JSON (${(err as Error).message})`,
        'ShardStoreError',
      );
    }
    const scores = await stageCall(key, () => Promise.resolve(validateShardScores(json, key)));
    if (scores.shard !== shard)
      throw permanentFailure(`${key}: holds shard ${scores.shard}, expected ${shard}`, 'ShardStoreError');
    return scores;
  }

  async commit(shard: number, scores: ShardScores): Promise<void> {
    await storeCall(() =>
      this.store.put(this.keyOf(shard), encodeJson(scores), {
        kind: 'ranking-shard',
        producer: 'rankExperts',
        extra: { shard, images: scores.uids.length, rewardModel: scores.rewardModel },
      }),
    );
  }
}

export interface RankExpertsInput extends StageOutput {
  /** The preference set (Pick-a-Pic parquet artifact). */
  preferences: ArtifactRef;
  /** The reward-model descriptor written by trainRewardModel. */
  reward: ArtifactRef;
  /** Expert demonstrations kept (config `ranking.topK`). */
  topK: number;
  /** At most this many experts of one prompt (config `ranking.maxPerPrompt`); absent: no cap. */
  maxPerPrompt?: number;
  /** Images per committed shard (config `ranking.shardSize`). */
  shardSize: number;
  /** Side of the expert images in the dataset (the model's resolution). */
  resolution: number;
  /**
   * Names of the generator pool (config `data.generators`): when given, the ranking JSON counts
   * the experts and their GenEval verdicts per generator (`provenance`). Absent: no count.
   */
  generators?: string[];
  backend?: BackendPreference;
}

export interface RankExpertsResult {
  /** Image dataset of the top-K images (model space), with prompts, ids and scores. */
  experts: ArtifactRef;
  /** JSON: reward identity, K, total, every kept (uid, prompt, score, rank). */
  ranking: ArtifactRef;
  k: number;
  total: number;
  shards: number;
  /** Shards scored by this call; the others were found committed. */
  shardsScored: number[];
  shardsSkipped: number[];
  rewardModel: RewardModelIdentity;
  /** Best and K-th score. */
  topScore: number;
  kthScore: number;
  /** Where the experts came from, when `generators` was given. */
  provenance?: ExpertProvenance;
}

export interface ScoreRankingShardsInput extends RankExpertsInput {
  /** This call scores the shards s with s % parts === part (the others run beside it). */
  part: number;
  parts: number;
}

/** Heartbeats and logs the scoring progress of one ranking activity (`part` of the shards, if split). */
function reportProgress(log: Logger, part?: number): (p: RankingProgress) => void {
  return (p) => {
    const progress = {
      phase: 'scoring',
      ...(part !== undefined && { part }),
      shardsDone: p.shardsDone,
      shardsTotal: p.shardsTotal,
      imagesScored: p.imagesScored,
      imagesPerSecond: Number(p.imagesPerSecond.toFixed(1)),
      etaSeconds: p.etaSeconds === undefined ? undefined : Math.round(p.etaSeconds),
    };
    heartbeat(progress);
    log.info(progress, 'ranking progress');
  };
}

export function createRankingActivities(deps: StageDeps) {
  return {
    /**
     * Scores one part of the preference set's shards and commits each. The pipeline runs the
     * parts as separate activities, so several compute workers share the scoring; `rankExperts`
     * then finds every shard committed and only merges.
     */
    async scoreRankingShards(
      input: ScoreRankingShardsInput,
    ): Promise<{ scored: number[]; skipped: number[] }> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      checkRef(input.preferences, 'preferences');
      checkRef(input.reward, 'reward');
      const shardSize = checkPositiveInt(input.shardSize, 'shardSize');
      const parts = checkPositiveInt(input.parts, 'parts');
      if (!Number.isInteger(input.part) || input.part < 0 || input.part >= parts)
        throw badInput(`field "part" must be an integer in [0, ${parts}), got ${JSON.stringify(input.part)}`);
      const rows = await readPreferenceRows(deps, input.preferences);
      const items = await stageCall('preference set', () => Promise.resolve(rankingItemsFromPickapic(rows)));
      // A cap the set cannot meet fails here, before any image is scored.
      await stageCall('ranking', () =>
        Promise.resolve(checkExpertCap(input.topK, input.maxPerPrompt, items)),
      );
      const mine = [...Array(shardCount(items.length, shardSize)).keys()].filter(
        (s) => s % parts === input.part,
      );
      const committer = new StoreShardCommitter(
        deps.store,
        outputKey(input, 'ranking', `shards-${input.shardSize}`),
      );
      const committed = await committer.committed();
      if (mine.every((s) => committed.has(s))) return { scored: [], skipped: mine };
      await useBackend(input.backend);
      const reward = await loadRewardModel(deps, input.reward);
      try {
        return await stageCall('ranking', () =>
          scoreShards({
            items,
            rewardModel: reward.model,
            shardSize,
            committer,
            shards: mine,
            onProgress: reportProgress(log, input.part),
          }),
        );
      } finally {
        await reward.dispose();
      }
    },

    /** Scores the preference set shard by shard (resumable) and writes the top-K expert set. */
    async rankExperts(input: RankExpertsInput): Promise<RankExpertsResult> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      checkRef(input.preferences, 'preferences');
      checkRef(input.reward, 'reward');
      const k = checkPositiveInt(input.topK, 'topK');
      const shardSize = checkPositiveInt(input.shardSize, 'shardSize');
      const resolution = checkPositiveInt(input.resolution, 'resolution');
      const expertsKey = outputKey(input, 'ranking', 'experts.safetensors');
      const rankingKey = outputKey(input, 'ranking', 'ranking.json');

      const rows = await readPreferenceRows(deps, input.preferences);
      const items = await stageCall('preference set', () => Promise.resolve(rankingItemsFromPickapic(rows)));
      if (k > items.length)
        throw permanentFailure(
          `ranking.topK=${k} is larger than the preference set, which holds ${items.length} distinct images: ` +
            `lower ranking.topK or add data`,
          'ExpertRankingError',
        );
      const shards = shardCount(items.length, shardSize);
      const expertsDone = await finished(deps.store, expertsKey);
      const rankingDone = await finished(deps.store, rankingKey);
      if (expertsDone && rankingDone) {
        const set = await readJsonArtifact<ExpertSet>(deps.store, rankingDone.ref);
        log.info({ experts: expertsDone.ref.uri }, 'expert set already written');
        return {
          experts: expertsDone.ref,
          ranking: rankingDone.ref,
          k: set.k,
          total: set.total,
          shards,
          shardsScored: [],
          shardsSkipped: [...Array(shards).keys()],
          rewardModel: set.rewardModel,
          topScore: set.experts[0]?.score ?? NaN,
          kthScore: set.experts[set.experts.length - 1]?.score ?? NaN,
          ...(set.provenance && { provenance: set.provenance }),
        };
      }

      await useBackend(input.backend);
      const reward = await loadRewardModel(deps, input.reward);
      // Shards of another size cover other images: keep them apart (the size is not in the cache key).
      const committer = new StoreShardCommitter(
        deps.store,
        outputKey(input, 'ranking', `shards-${input.shardSize}`),
      );
      const before = await committer.committed();
      let set: ExpertSet;
      try {
        log.info(
          {
            images: items.length,
            shards,
            committed: before.size,
            reward: formatIdentity(reward.descriptor.identity),
          },
          'ranking the preference set',
        );
        set = await stageCall('ranking', () =>
          rankExpertsEngine({
            items,
            rewardModel: reward.model,
            shardSize,
            k,
            ...(input.maxPerPrompt === undefined ? {} : { maxPerPrompt: input.maxPerPrompt }),
            committer,
            onProgress: reportProgress(log),
          }),
        );
      } finally {
        await reward.dispose();
      }
      if (input.generators !== undefined) {
        if (!Array.isArray(input.generators) || input.generators.some((n) => typeof n !== 'string'))
          throw badInput('field "generators" must list generator names');
        heartbeat({ phase: 'judging expert provenance' });
        const names = input.generators;
        set.provenance = await stageCall('expert provenance', () =>
          Promise.resolve(expertProvenance(set, rows, names)),
        );
        log.info({ provenance: set.provenance.generators }, 'expert provenance');
      }
      const dataset = expertImageDataset(set, items, resolution);
      const rankingRef = await putArtifact(deps.store, rankingKey, encodeJson(set), {
        kind: 'expert-ranking',
        producer: 'rankExperts',
        inputs: [input.preferences.sha256, input.reward.sha256],
        extra: { k: set.k, total: set.total, rewardModel: set.rewardModel },
      });
      const expertsRef = await putArtifact(
        deps.store,
        expertsKey,
        encodeImageDataset(dataset, { reward_model: JSON.stringify(set.rewardModel) }),
        {
          kind: 'expert-set',
          producer: 'rankExperts',
          inputs: [input.preferences.sha256, input.reward.sha256],
          extra: { k: set.k, total: set.total, rewardModel: set.rewardModel },
        },
      );
      const scored = [...Array(shards).keys()].filter((s) => !before.has(s));
      log.info(
        { experts: expertsRef.uri, k: set.k, total: set.total, scored: scored.length, skipped: before.size },
        'expert set written',
      );
      return {
        experts: expertsRef,
        ranking: rankingRef,
        k: set.k,
        total: set.total,
        shards,
        shardsScored: scored,
        shardsSkipped: [...before].sort((a, b) => a - b),
        rewardModel: set.rewardModel,
        topScore: set.experts[0]!.score,
        kthScore: set.experts[set.experts.length - 1]!.score,
        ...(set.provenance && { provenance: set.provenance }),
      };
    },
  };
}
