/**
 * What identifies a run's results: the config less everything that only says where or how fast
 * the work runs (cluster, store, workers, chunking of activities, checkpoint spacing, shard size,
 * the run's display name). Two configs with the same hash produce the same artifacts; the hash is
 * the run's `DroConfigHash` search attribute and is recorded in its manifest.
 *
 * Pure (no Node APIs): the workflow uses `canonicalJson` too; hashing happens outside workflows.
 */
import type { PipelineConfig } from './schemas';

/** Fields of the training sections that change how work is split, never what it computes. */
const SCHEDULING_FIELDS = new Set(['stepsPerActivity', 'checkpointEvery']);

export { canonicalJson } from '../engine/canonical-json';

function withoutScheduling<T extends object>(section: T): Partial<T> {
  return Object.fromEntries(Object.entries(section).filter(([k]) => !SCHEDULING_FIELDS.has(k))) as Partial<T>;
}

/** The part of a config that determines results. */
export function resultConfig(config: PipelineConfig): Record<string, unknown> {
  const { shardSize: _shardSize, ...ranking } = config.ranking;
  return {
    seed: config.seed,
    model: config.model,
    data: config.data,
    ranking,
    pretrain: withoutScheduling(config.pretrain),
    sft: withoutScheduling(config.sft),
    dro: withoutScheduling(config.dro),
    dpo: withoutScheduling(config.dpo),
    eval: config.eval,
    userStudy: config.userStudy,
  };
}
