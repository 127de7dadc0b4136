/**
 * Where expert ranking keeps the scores of finished shards, so an interrupted ranking resumes
 * without rescoring them. The pipeline implements this on the artifact store; the in-memory and
 * local-directory versions here serve tests and single-machine runs.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { RewardModelIdentity } from '../rewards/reward-model';

/** Scores of one shard: `uids[i]` got `scores[i]` from `rewardModel`. */
export interface ShardScores {
  shard: number;
  uids: string[];
  scores: number[];
  rewardModel: RewardModelIdentity;
}

export interface ShardCommitter {
  /** Indices of the shards whose scores are stored. */
  committed(): Promise<Set<number>>;
  load(shard: number): Promise<ShardScores>;
  /** Stores a shard's scores all at once: a reader sees the whole shard or nothing. */
  commit(shard: number, scores: ShardScores): Promise<void>;
}

/** A stored shard is unreadable or malformed. Permanent. */
export class ShardStoreError extends Error {
  override readonly name = 'ShardStoreError';
}

/** Throws ShardStoreError naming `where` when `value` is not a well-formed ShardScores. */
export function validateShardScores(value: unknown, where: string): ShardScores {
  const v = value as Partial<ShardScores> | null;
  const bad = (detail: string): never => {
    throw new ShardStoreError(`${where}: ${detail}`);
  };
  if (typeof v !== 'object' || v === null) return bad('not an object');
  if (!Number.isInteger(v.shard) || (v.shard as number) < 0) bad('field shard is not a non-negative integer');
  if (!Array.isArray(v.uids) || v.uids.some((u) => typeof u !== 'string'))
    bad('field uids is not a list of strings');
  if (!Array.isArray(v.scores) || v.scores.some((s) => typeof s !== 'number' || !Number.isFinite(s)))
    bad('field scores is not a list of finite numbers');
  if ((v.uids as string[]).length !== (v.scores as number[]).length)
    bad(`${(v.uids as string[]).length} uids but ${(v.scores as number[]).length} scores`);
  const id = v.rewardModel;
  if (typeof id !== 'object' || id === null || typeof id.name !== 'string' || typeof id.version !== 'string')
    bad('field rewardModel needs string name and version');
  return v as ShardScores;
}

export class MemoryShardCommitter implements ShardCommitter {
  private readonly shards = new Map<number, string>();

  committed(): Promise<Set<number>> {
    return Promise.resolve(new Set(this.shards.keys()));
  }

  load(shard: number): Promise<ShardScores> {
    const text = this.shards.get(shard);
    if (text === undefined) return Promise.reject(new ShardStoreError(`shard ${shard} is not committed`));
    return Promise.resolve(validateShardScores(JSON.parse(text), `shard ${shard}`));
  }

  commit(shard: number, scores: ShardScores): Promise<void> {
    // Stored serialized, as a real store would, so later mutation of `scores` cannot leak in.
    this.shards.set(shard, JSON.stringify(scores));
    return Promise.resolve();
  }
}

const SHARD_FILE = /^shard-(\d+)\.json$/;

/** One JSON file per shard in `dir`, written to a temporary name, synced, then renamed. */
export class LocalDirShardCommitter implements ShardCommitter {
  constructor(readonly dir: string) {}

  fileOf(shard: number): string {
    return path.join(this.dir, `shard-${String(shard).padStart(6, '0')}.json`);
  }

  async committed(): Promise<Set<number>> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw err;
    }
    const out = new Set<number>();
    for (const name of names) {
      const m = SHARD_FILE.exec(name);
      if (m) out.add(Number(m[1]));
    }
    return out;
  }

  async load(shard: number): Promise<ShardScores> {
    const file = this.fileOf(shard);
    let json: unknown;
    try {
      json = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      throw new ShardStoreError(`${file}: cannot read shard scores (${(err as Error).message})`);
    }
    const scores = validateShardScores(json, file);
    if (scores.shard !== shard)
      throw new ShardStoreError(`${file}: holds shard ${scores.shard}, expected ${shard}`);
    return scores;
  }

  async commit(shard: number, scores: ShardScores): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const file = this.fileOf(shard);
    const tmp = path.join(this.dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await fs.open(tmp, 'w');
      try {
        await handle.writeFile(`${JSON.stringify(scores)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }
}
