/**
 * Learning rate per optimizer update: optional linear warmup from zero, then constant or a cosine
 * decay. Short pretraining runs of a small model from scratch are unstable at full rate in the
 * first updates and gain from annealing at the end; fine-tuning keeps the reference's constant rate
 * (the defaults).
 */
import { TrainingInputError } from './errors';

export type LrDecay = 'constant' | 'cosine';

export interface LrScheduleSettings {
  learningRate: number;
  /** Optimizer updates of linear warmup: update u (1-based) of the first W runs at lr * u / W. Default 0. */
  warmupUpdates?: number;
  /**
   * After warmup: `constant`, or `cosine` from the full rate at the first update after warmup down
   * to (not reaching) zero at the last. Default `constant`.
   */
  lrDecay?: LrDecay;
}

/** Rate of update `update` (1-based) of `totalUpdates`. */
export function learningRateAt(s: LrScheduleSettings, update: number, totalUpdates: number): number {
  const warmup = s.warmupUpdates ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new TrainingInputError(`warmupUpdates must be a non-negative integer, got ${warmup}`);
  }
  if (warmup > 0 && update <= warmup) return (s.learningRate * update) / warmup;
  if ((s.lrDecay ?? 'constant') === 'constant') return s.learningRate;
  const span = Math.max(1, totalUpdates - warmup);
  const progress = Math.min(1, Math.max(0, (update - warmup - 1) / span));
  return s.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
}
