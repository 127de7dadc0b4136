/**
 * Expert ranking (Diffusion-DRO, "expert demonstrations"): every (prompt, image) of the preference
 * set is scored by a reward model and the top-K by score become the expert demonstrations that
 * SFT and DRO learn from. The reference implementation keeps K = 500.
 *
 * Scoring is sharded and resumable. Items are cut, in input order, into shards of `shardSize`;
 * each finished shard's scores are committed through a ShardCommitter. A restarted ranking loads
 * the committed shards and scores only the others, so no committed shard is scored twice. Shards
 * may be scored by different workers (`scoreShards` with disjoint `shards`); the merge sorts all
 * scores by (score descending, uid ascending), so its result does not depend on which worker
 * scored which shard or in what order shards were committed.
 */
import { decodeImage } from '../data/image-codec';
import type { PickapicRow, PickapicWriteRow } from '../data/pickapic';
import { toModelSpace } from '../world/pretraining-corpus';
import type { StoredImageDataset } from '../io/image-dataset';
import {
  UnscorableImageError,
  formatIdentity,
  resizeToFloat,
  rewardModelIdentity,
  sameIdentity,
} from '../rewards/reward-model';
import type { RewardImage, RewardModel, RewardModelIdentity } from '../rewards/reward-model';
import type { ExpertProvenance } from './expert-provenance';
import { MemoryShardCommitter } from './shard-committer';
import type { ShardCommitter, ShardScores } from './shard-committer';

export interface RankingItem {
  /** Unique image id (Pick-a-Pic's image_0_uid / image_1_uid). */
  uid: string;
  /** The prompt the image was generated for. */
  prompt: string;
  /** The image, its encoded PNG/JPEG bytes, or a loader; decoded only when its shard is scored. */
  image: RewardImage | Uint8Array | (() => Promise<RewardImage | Uint8Array>);
}

export interface ExpertDemonstration {
  uid: string;
  prompt: string;
  score: number;
  /** 0-based position in the ranking. */
  rank: number;
}

/** The artifact: what was kept, by which model, out of how many. */
export interface ExpertSet {
  rewardModel: RewardModelIdentity;
  k: number;
  /** The cap on experts per prompt the set was chosen under; absent: none (global top K). */
  maxPerPrompt?: number;
  /** Size of the scored preference set (distinct images). */
  total: number;
  shardSize: number;
  experts: ExpertDemonstration[];
  /** Per generator of a pooled preference set (config `data.generators`); absent otherwise. */
  provenance?: ExpertProvenance;
}

export interface RankingProgress {
  shardsDone: number;
  shardsTotal: number;
  /** Images scored by this call (committed shards loaded from the store are not counted). */
  imagesScored: number;
  imagesPerSecond: number;
  /** Estimated seconds to score the remaining shards; undefined before the first shard. */
  etaSeconds: number | undefined;
}

export interface ScoreShardsOptions {
  items: readonly RankingItem[];
  rewardModel: RewardModel;
  shardSize: number;
  /** Default: a fresh in-memory committer (no resume across calls). */
  committer?: ShardCommitter;
  /** Images per reward-model call. Default min(shardSize, 32). */
  batchSize?: number;
  /** Shards this call is responsible for. Default: all of them. */
  shards?: readonly number[];
  onProgress?: (progress: RankingProgress) => void;
}

export interface RankExpertsOptions extends Omit<ScoreShardsOptions, 'shards'> {
  /** Number of expert demonstrations to keep. */
  k: number;
  /**
   * At most this many experts of one prompt. Raw reward scores are not comparable across prompts:
   * a global top K fills with the prompts every image gets right, so a cap keeps the expert set
   * spread over the prompts. Absent: the global top K.
   */
  maxPerPrompt?: number;
}

/** Bad input or an image that cannot be scored. Permanent: retrying fails the same way. */
export class ExpertRankingError extends Error {
  override readonly name = 'ExpertRankingError';
}

export function shardCount(items: number, shardSize: number): number {
  return Math.ceil(items / shardSize);
}

function checkInput(items: readonly RankingItem[], shardSize: number): void {
  if (!Number.isInteger(shardSize) || shardSize < 1)
    throw new ExpertRankingError(`shardSize must be a positive integer, got ${shardSize}`);
  if (items.length === 0) throw new ExpertRankingError('the preference set is empty');
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.uid))
      throw new ExpertRankingError(`image uid '${item.uid}' appears twice in the preference set`);
    seen.add(item.uid);
  }
}

function checkK(k: number, total: number): void {
  if (!Number.isInteger(k) || k < 1) throw new ExpertRankingError(`K must be a positive integer, got ${k}`);
  if (k > total)
    throw new ExpertRankingError(`K=${k} is larger than the preference set, which holds ${total} images`);
}

async function loadImage(item: RankingItem): Promise<RewardImage> {
  try {
    const source = typeof item.image === 'function' ? await item.image() : item.image;
    return source instanceof Uint8Array ? decodeImage(source, { source: `image ${item.uid}` }) : source;
  } catch (err) {
    throw new ExpertRankingError(`image uid '${item.uid}' cannot be loaded: ${(err as Error).message}`);
  }
}

async function scoreShard(
  items: readonly RankingItem[],
  shard: number,
  model: RewardModel,
  batchSize: number,
): Promise<number[]> {
  const scores: number[] = [];
  for (let b = 0; b < items.length; b += batchSize) {
    const batch = items.slice(b, b + batchSize);
    const images = await Promise.all(batch.map(loadImage));
    let out: number[];
    try {
      out = await model.score(
        images,
        batch.map((i) => i.prompt),
      );
    } catch (err) {
      if (err instanceof UnscorableImageError && batch[err.index])
        throw new ExpertRankingError(`image uid '${batch[err.index]!.uid}' cannot be scored: ${err.message}`);
      throw err;
    }
    if (out.length !== batch.length)
      throw new ExpertRankingError(
        `${formatIdentity(rewardModelIdentity(model))} returned ${out.length} scores for ${batch.length} images in shard ${shard}`,
      );
    out.forEach((s, i) => {
      if (!Number.isFinite(s))
        throw new ExpertRankingError(
          `image uid '${batch[i]!.uid}' cannot be scored: the reward model returned ${s}`,
        );
    });
    scores.push(...out);
  }
  return scores;
}

function shardItems(items: readonly RankingItem[], shard: number, shardSize: number): readonly RankingItem[] {
  return items.slice(shard * shardSize, (shard + 1) * shardSize);
}

/** Checks that stored scores belong to this input and this model. */
function checkStored(
  stored: ShardScores,
  items: readonly RankingItem[],
  identity: RewardModelIdentity,
): void {
  if (!sameIdentity(stored.rewardModel, identity))
    throw new ExpertRankingError(
      `shard ${stored.shard} was scored by ${formatIdentity(stored.rewardModel)}, not ${formatIdentity(identity)}: use a fresh shard store`,
    );
  const differs = items.findIndex((item, i) => stored.uids[i] !== item.uid);
  if (stored.uids.length !== items.length || differs >= 0)
    throw new ExpertRankingError(
      `shard ${stored.shard} was committed for other images (stored ${stored.uids.length} uids, input ${items.length}` +
        `${differs >= 0 ? `, first difference at '${items[differs]!.uid}'` : ''}): the preference set changed; use a fresh shard store`,
    );
}

/**
 * Scores the shards that are not committed yet (of `shards`, default all) and commits each as it
 * finishes. Returns which shards this call scored and which it found committed.
 */
export async function scoreShards(
  options: ScoreShardsOptions,
): Promise<{ scored: number[]; skipped: number[] }> {
  const { items, rewardModel, shardSize } = options;
  checkInput(items, shardSize);
  const committer = options.committer ?? new MemoryShardCommitter();
  const batchSize = options.batchSize ?? Math.min(shardSize, 32);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ExpertRankingError(`batchSize must be a positive integer, got ${batchSize}`);
  const total = shardCount(items.length, shardSize);
  const wanted = options.shards
    ? [...new Set(options.shards)].sort((a, b) => a - b)
    : [...Array(total).keys()];
  for (const s of wanted)
    if (!Number.isInteger(s) || s < 0 || s >= total)
      throw new ExpertRankingError(`shard ${s} does not exist (the set has ${total} shards of ${shardSize})`);
  const identity = rewardModelIdentity(rewardModel);
  const committed = await committer.committed();
  const skipped = wanted.filter((s) => committed.has(s));
  const todo = wanted.filter((s) => !committed.has(s));
  const scored: number[] = [];
  const remainingImages = (): number =>
    todo.slice(scored.length).reduce((a, s) => a + shardItems(items, s, shardSize).length, 0);
  const start = Date.now();
  let images = 0;
  const report = (): void => {
    const seconds = (Date.now() - start) / 1000;
    const rate = seconds > 0 ? images / seconds : 0;
    options.onProgress?.({
      shardsDone: skipped.length + scored.length,
      shardsTotal: wanted.length,
      imagesScored: images,
      imagesPerSecond: rate,
      etaSeconds: scored.length === 0 ? undefined : rate > 0 ? remainingImages() / rate : 0,
    });
  };
  report();
  for (const shard of todo) {
    const part = shardItems(items, shard, shardSize);
    const scores = await scoreShard(part, shard, rewardModel, batchSize);
    await committer.commit(shard, { shard, uids: part.map((i) => i.uid), scores, rewardModel: identity });
    scored.push(shard);
    images += part.length;
    report();
  }
  return { scored, skipped };
}

/** Merges the committed scores of every shard into the top-K expert set. */
export async function mergeExpertSet(
  options: Omit<RankExpertsOptions, 'committer' | 'onProgress' | 'batchSize'> & { committer: ShardCommitter },
): Promise<ExpertSet> {
  const { items, rewardModel, shardSize, k, committer, maxPerPrompt } = options;
  checkInput(items, shardSize);
  checkK(k, items.length);
  checkExpertCap(k, maxPerPrompt, items);
  const identity = rewardModelIdentity(rewardModel);
  const total = shardCount(items.length, shardSize);
  const committed = await committer.committed();
  const missing = [...Array(total).keys()].filter((s) => !committed.has(s));
  if (missing.length)
    throw new ExpertRankingError(
      `cannot merge: ${missing.length} of ${total} shards are not scored yet (first: ${missing.slice(0, 5).join(', ')})`,
    );
  const all: { uid: string; prompt: string; score: number }[] = [];
  for (let s = 0; s < total; s++) {
    const part = shardItems(items, s, shardSize);
    const stored = await committer.load(s);
    checkStored(stored, part, identity);
    part.forEach((item, i) =>
      all.push({ uid: item.uid, prompt: item.prompt, score: stored.scores[i] as number }),
    );
  }
  all.sort((a, b) => b.score - a.score || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
  return {
    rewardModel: identity,
    k,
    ...(maxPerPrompt === undefined ? {} : { maxPerPrompt }),
    total: items.length,
    shardSize,
    experts: keepTop(all, k, maxPerPrompt).map((e, rank) => ({ ...e, rank })),
  };
}

/** The first `k` of `sorted`, skipping any beyond `maxPerPrompt` of one prompt. */
function keepTop<T extends { prompt: string }>(sorted: readonly T[], k: number, maxPerPrompt?: number): T[] {
  if (maxPerPrompt === undefined) return sorted.slice(0, k);
  const taken = new Map<string, number>();
  const kept: T[] = [];
  for (const e of sorted) {
    if (kept.length === k) break;
    const n = taken.get(e.prompt) ?? 0;
    if (n >= maxPerPrompt) continue;
    taken.set(e.prompt, n + 1);
    kept.push(e);
  }
  return kept;
}

/** With a cap per prompt, the set must still be able to hold K images. Checked before scoring. */
export function checkExpertCap(
  k: number,
  maxPerPrompt: number | undefined,
  items: readonly RankingItem[],
): void {
  if (maxPerPrompt === undefined) return;
  if (!Number.isInteger(maxPerPrompt) || maxPerPrompt < 1)
    throw new ExpertRankingError(`maxPerPrompt must be a positive integer, got ${maxPerPrompt}`);
  const perPrompt = new Map<string, number>();
  for (const item of items) perPrompt.set(item.prompt, (perPrompt.get(item.prompt) ?? 0) + 1);
  let available = 0;
  for (const n of perPrompt.values()) available += Math.min(n, maxPerPrompt);
  if (k > available)
    throw new ExpertRankingError(
      `ranking.topK=${k} cannot be met with ranking.maxPerPrompt=${maxPerPrompt}: the ${perPrompt.size} prompts ` +
        `of the preference set allow ${available} experts; lower ranking.topK or raise ranking.maxPerPrompt`,
    );
}

/** Scores every shard not yet committed, then keeps the top K. K is checked before any scoring. */
export async function rankExperts(options: RankExpertsOptions): Promise<ExpertSet> {
  checkInput(options.items, options.shardSize);
  checkK(options.k, options.items.length);
  checkExpertCap(options.k, options.maxPerPrompt, options.items);
  const committer = options.committer ?? new MemoryShardCommitter();
  await scoreShards({ ...options, committer });
  return mergeExpertSet({ ...options, committer });
}

/**
 * The distinct images of a Pick-a-Pic set as ranking items, in row order (image 0 before image 1).
 * An image uid that reappears must carry the same caption.
 */
export function rankingItemsFromPickapic(rows: readonly (PickapicRow | PickapicWriteRow)[]): RankingItem[] {
  const items: RankingItem[] = [];
  const byUid = new Map<string, RankingItem>();
  rows.forEach((row, r) => {
    for (const side of [0, 1] as const) {
      const uid = side === 0 ? row.image_0_uid : row.image_1_uid;
      const bytes = side === 0 ? row.jpg_0 : row.jpg_1;
      if (row.caption === null || bytes === null)
        throw new ExpertRankingError(`row ${r}: image uid '${uid}' has no caption or image bytes`);
      const known = byUid.get(uid);
      if (known) {
        if (known.prompt !== row.caption)
          throw new ExpertRankingError(
            `image uid '${uid}' appears with two captions ("${known.prompt}", row ${r}: "${row.caption}")`,
          );
        continue;
      }
      const item: RankingItem = { uid, prompt: row.caption, image: bytes };
      byUid.set(uid, item);
      items.push(item);
    }
  });
  return items;
}

/**
 * The expert set as training data: each kept image decoded from the ranking items' bytes, resized
 * to `resolution` and put in model space, with its prompt, uid and score, in ranking order.
 */
export function expertImageDataset(
  set: ExpertSet,
  items: readonly RankingItem[],
  resolution: number,
): StoredImageDataset {
  const byUid = new Map(items.map((item) => [item.uid, item]));
  const examples = set.experts.map((e) => {
    const bytes = byUid.get(e.uid)!.image as Uint8Array;
    const image = decodeImage(bytes, { source: `image ${e.uid}` });
    return { prompt: e.prompt, image: toModelSpace(resizeToFloat(image, resolution, resolution)) };
  });
  return {
    height: resolution,
    width: resolution,
    channels: 3,
    examples,
    ids: set.experts.map((e) => e.uid),
    scores: set.experts.map((e) => e.score),
  };
}
