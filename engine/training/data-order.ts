/**
 * Epoch-wise shuffled order over a dataset, like a shuffling DataLoader, whose position is part of
 * the checkpoint: each epoch's permutation derives from (seed, epoch), so (epoch, position) is the
 * whole state.
 */
import { Rng } from '../rng';

export interface DataOrderState {
  seed: number;
  epoch: number;
  position: number;
}

export class DataOrder {
  private permutation: number[];

  constructor(
    readonly size: number,
    private state_: DataOrderState,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`cannot order an empty dataset (size ${size})`);
    this.permutation = DataOrder.permute(size, state_.seed, state_.epoch);
  }

  static start(size: number, seed: number): DataOrder {
    return new DataOrder(size, { seed, epoch: 0, position: 0 });
  }

  /** Fisher-Yates over 0..n-1 with a generator seeded by (seed, epoch). */
  static permute(n: number, seed: number, epoch: number): number[] {
    const rng = new Rng(seed * 7919 + epoch * 104729 + 1);
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(0, i + 1);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }

  next(): number {
    if (this.state_.position >= this.size) {
      this.state_ = { ...this.state_, epoch: this.state_.epoch + 1, position: 0 };
      this.permutation = DataOrder.permute(this.size, this.state_.seed, this.state_.epoch);
    }
    const i = this.permutation[this.state_.position]!;
    this.state_ = { ...this.state_, position: this.state_.position + 1 };
    return i;
  }

  take(n: number): number[] {
    return Array.from({ length: n }, () => this.next());
  }

  state(): DataOrderState {
    return { ...this.state_ };
  }
}
