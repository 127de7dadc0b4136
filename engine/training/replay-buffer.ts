/**
 * Replay buffer of policy trajectories (Diffusion-DRO, docs/algorithm.md section 1).
 *
 * Paper symbol -> code name:
 *   x_t (policy sample at step t)      -> TrajectoryStep.xt   (the latent BEFORE the solver step)
 *   eps_theta(x_t, c, t)               -> TrajectoryStep.eps  (the sampling policy's prediction there)
 *   c, x_0 (expert image of the prompt) -> Trajectory.cond, Trajectory.x0
 *
 * It keeps the newest `capacity` trajectories. A training example is one random trajectory and one
 * random step of it, both drawn from the caller's seeded Rng so that a restored buffer plus a restored
 * Rng continue exactly as an uninterrupted run. The buffer is part of the checkpointed state.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../rng';

export interface TrajectoryStep {
  /** Integer timestep of the step (per-sample perturbed grid). */
  t: number;
  /** Latent before the step, HWC flattened. */
  xt: Float32Array;
  /** Policy noise prediction at (xt, cond, t), HWC flattened. */
  eps: Float32Array;
}

export interface Trajectory {
  /** Index of the expert example (prompt + image) the trajectory was sampled for. */
  exampleIndex: number;
  /** Text condition [L, D] flattened. */
  cond: Float32Array;
  /** Expert image (latent) for the same prompt, HWC flattened. */
  x0: Float32Array;
  steps: TrajectoryStep[];
}

/** How a batch draws its trajectories from the buffer (see `ReplayBuffer.sample`). */
export type BufferDraw = 'with-replacement' | 'without-replacement';

export interface ReplayBufferShapes {
  /** Latent shape [H, W, C]. */
  latent: [number, number, number];
  /** Condition shape [L, D]. */
  cond: [number, number];
}

/** A batch of training examples drawn from the buffer, as tensors ready for the DRO loss. */
export interface ReplayBatch {
  t: number[];
  cond: tf.Tensor3D;
  x0: tf.Tensor4D;
  xt: tf.Tensor4D;
  eps: tf.Tensor4D;
  /** (trajectory position, step index) of each example, for logging and tests. */
  picks: Array<[number, number]>;
  exampleIndex: number[];
}

export class ReplayBuffer {
  private readonly items: Trajectory[] = [];

  constructor(
    readonly capacity: number,
    readonly shapes: ReplayBufferShapes,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`replay buffer capacity must be >= 1, got ${capacity}`);
  }

  get size(): number {
    return this.items.length;
  }

  /** Trajectories oldest first (a read-only view for checkpoints and tests). */
  get trajectories(): readonly Trajectory[] {
    return this.items;
  }

  /** Adds trajectories, dropping the oldest beyond capacity. */
  push(trajectories: Trajectory[]): void {
    const latentSize = this.shapes.latent.reduce((a, b) => a * b, 1);
    const condSize = this.shapes.cond.reduce((a, b) => a * b, 1);
    for (const tr of trajectories) {
      if (tr.steps.length === 0) throw new Error(`trajectory for example ${tr.exampleIndex} has no steps`);
      if (tr.x0.length !== latentSize || tr.cond.length !== condSize) {
        throw new Error(`trajectory for example ${tr.exampleIndex} does not match the buffer's shapes`);
      }
      for (const s of tr.steps) {
        if (s.xt.length !== latentSize || s.eps.length !== latentSize) {
          throw new Error(`trajectory for example ${tr.exampleIndex}, t=${s.t}: latent size mismatch`);
        }
      }
      this.items.push(tr);
    }
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }

  /**
   * Draws `batchSize` examples, each a trajectory and a uniform step of it. `with-replacement`
   * (default): each example's trajectory is uniform and independent. `without-replacement`: the
   * trajectories are a random permutation of the buffer, as the reference draws them, so a batch
   * that fits holds each trajectory at most once; a larger batch takes whole permutations in turn.
   */
  sample(batchSize: number, rng: Rng, draw: BufferDraw = 'with-replacement'): ReplayBatch {
    if (this.items.length === 0) throw new Error('cannot sample from an empty replay buffer');
    const picks: Array<[number, number]> = [];
    const all = this.items.map((_, i) => i);
    const order: number[] = [];
    if (draw === 'without-replacement') {
      while (order.length < batchSize) {
        order.push(...rng.sample(all, Math.min(all.length, batchSize - order.length)));
      }
    }
    for (let b = 0; b < batchSize; b++) {
      const i = draw === 'without-replacement' ? order[b]! : rng.int(0, this.items.length);
      const s = rng.int(0, this.items[i]!.steps.length);
      picks.push([i, s]);
    }
    const [h, w, c] = this.shapes.latent;
    const [l, d] = this.shapes.cond;
    const gather = (pick: (tr: Trajectory, step: TrajectoryStep) => Float32Array, size: number) => {
      const out = new Float32Array(batchSize * size);
      picks.forEach(([i, s], b) => {
        const tr = this.items[i]!;
        out.set(pick(tr, tr.steps[s]!), b * size);
      });
      return out;
    };
    const latentSize = h * w * c;
    return {
      t: picks.map(([i, s]) => this.items[i]!.steps[s]!.t),
      cond: tf.tensor3d(
        gather((tr) => tr.cond, l * d),
        [batchSize, l, d],
      ),
      x0: tf.tensor4d(
        gather((tr) => tr.x0, latentSize),
        [batchSize, h, w, c],
      ),
      xt: tf.tensor4d(
        gather((_, st) => st.xt, latentSize),
        [batchSize, h, w, c],
      ),
      eps: tf.tensor4d(
        gather((_, st) => st.eps, latentSize),
        [batchSize, h, w, c],
      ),
      picks,
      exampleIndex: picks.map(([i]) => this.items[i]!.exampleIndex),
    };
  }

  clear(): void {
    this.items.length = 0;
  }
}
