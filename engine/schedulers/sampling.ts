/**
 * The sampling loop shared by every solver: classifier-free guidance, per-sample timestep grids and
 * the trajectory record the replay buffer stores (docs/algorithm.md section 1).
 *
 * For step i of sample b the record holds t_i = grids[b][i], the latent before the step x_{t_i} and
 * the (guided) prediction eps_i = eps(x_{t_i}, c, t_i) that the solver used to leave t_i.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ScheduleError } from './ddpm-schedule';

/**
 * A noise-prediction network. `t` has one integer timestep per sample; the result has x's shape.
 * The sampler disposes the returned tensor; the model must not dispose `x`.
 */
export type EpsModel<C> = (x: tf.Tensor4D, t: number[], cond: C) => tf.Tensor4D | Promise<tf.Tensor4D>;

/** Standard normal noise of a given shape; the engine's `Rng` satisfies it. */
export interface NoiseSource {
  normalTensor(shape: number[]): tf.Tensor;
}

/** One solver working through one batch of grids; holds its multistep history until disposed. */
export interface SolverRun {
  /** Number of steps N of every grid. */
  readonly numSteps: number;
  /**
   * Moves every sample b from grids[b][i] to grids[b][i + 1], or to the clean sample after the last
   * step, given the model's prediction at (x, grids[·][i]). Steps must be taken in order 0..N-1.
   * Neither x nor eps is disposed; the result is a new tensor owned by the caller.
   */
  step(i: number, x: tf.Tensor4D, eps: tf.Tensor4D): tf.Tensor4D;
  /** Frees the history kept for multistep formulas. */
  dispose(): void;
}

export interface GridSolver {
  /** Starts a run on per-sample grids (grids[b] for sample b, all of one length). */
  start(grids: number[][], noise?: NoiseSource): SolverRun;
}

export interface TrajectoryStep {
  /** Step index i in [0, N). */
  index: number;
  /** t_i of every sample: t[b] = grids[b][i]. */
  t: number[];
  /** x_{t_i}: the latents before step i, [B, H, W, C]. */
  x: tf.Tensor4D;
  /** The (guided) noise prediction at (x_{t_i}, t_i) that step i used, [B, H, W, C]. */
  eps: tf.Tensor4D;
}

export interface SampleOptions<C> {
  model: EpsModel<C>;
  /** Starting latents x_T ~ N(0, I), [B, H, W, C]; not disposed. */
  xT: tf.Tensor4D;
  /** Per-sample timestep grids (see ./timesteps). */
  grids: number[][];
  cond: C;
  /**
   * Unconditional input for guidance: with guidanceScale != 1 and no `guidanceCond`, each step makes
   * two model calls on the B latents (cond, then uncond).
   */
  uncond?: C;
  /**
   * The unconditional and conditional inputs as one batch of 2B, unconditional half first (for
   * tensors, `tf.concat([uncond, cond])`). With guidanceScale != 1 each step then makes one model
   * call on [x; x] instead of two on x: one larger call costs less than two, and since the network
   * treats samples independently the predictions are the same. The caller builds it once per run
   * and owns it, so a model may cache per-input work across steps (the ONNX session converts each
   * text-state tensor once).
   */
  guidanceCond?: C;
  /**
   * Classifier-free guidance scale w: eps = eps_u + w (eps_c - eps_u). Default 1: the conditional
   * prediction alone, one model call per step. Otherwise `guidanceCond` or `uncond` is required.
   */
  guidanceScale?: number;
  /** Noise for stochastic solvers (DDPM ancestral, DDIM with eta > 0). */
  noise?: NoiseSource;
  /** Keep every step's x and eps in the result (default true). */
  record?: boolean;
  /**
   * Called after each step's prediction, before the solver moves on. Its tensors are owned by the
   * result when `record` is true and are disposed right after the call otherwise.
   */
  onStep?: (step: TrajectoryStep) => void | Promise<void>;
}

export interface SampleResult {
  /** The clean sample after the last step, [B, H, W, C]. */
  x0: tf.Tensor4D;
  /** One entry per step when `record` is true, else empty. */
  trajectory: TrajectoryStep[];
  /** The grids the samples ran on. */
  grids: number[][];
}

/** eps_u + w (eps_c - eps_u); w = 1 returns eps_c itself. */
export function guide(epsUncond: tf.Tensor4D, epsCond: tf.Tensor4D, scale: number): tf.Tensor4D {
  return tf.tidy(() => tf.add(epsUncond, tf.mul(tf.sub(epsCond, epsUncond), scale)));
}

/**
 * The `guidanceCond` of tensor conditions such as text states: the `uncond` rows, then the `cond`
 * rows, along the batch axis. Disposes neither input.
 */
export function guidanceBatch<T extends tf.Tensor>(uncond: T, cond: T): T {
  return tf.concat([uncond, cond]);
}

function checkPrediction(eps: tf.Tensor4D, x: tf.Tensor4D, step: number): void {
  if (eps.shape.join() !== x.shape.join()) {
    eps.dispose();
    throw new ScheduleError(
      `model prediction at step ${step} has shape [${eps.shape.join()}], latents [${x.shape.join()}]`,
    );
  }
}

/** Guidance as one model call on 2B rows: [x; x] at [t; t] with [uncond; cond]. */
async function predictGuidedBatch<C>(
  opts: SampleOptions<C>,
  pair: C,
  scale: number,
  x: tf.Tensor4D,
  t: number[],
  step: number,
): Promise<tf.Tensor4D> {
  const x2 = tf.concat([x, x]);
  let eps2: tf.Tensor4D;
  try {
    eps2 = await opts.model(x2, [...t, ...t], pair);
  } finally {
    x2.dispose();
  }
  checkPrediction(eps2, x2, step);
  try {
    return tf.tidy(() => {
      const [epsUncond, epsCond] = tf.split(eps2, 2) as [tf.Tensor4D, tf.Tensor4D];
      return guide(epsUncond, epsCond, scale);
    });
  } finally {
    eps2.dispose();
  }
}

async function predict<C>(
  opts: SampleOptions<C>,
  x: tf.Tensor4D,
  t: number[],
  step: number,
): Promise<tf.Tensor4D> {
  const scale = opts.guidanceScale ?? 1;
  if (scale !== 1 && opts.guidanceCond !== undefined) {
    return predictGuidedBatch(opts, opts.guidanceCond, scale, x, t, step);
  }
  const epsCond = await opts.model(x, t, opts.cond);
  checkPrediction(epsCond, x, step);
  if (scale === 1) return epsCond;
  let epsUncond: tf.Tensor4D | undefined;
  try {
    epsUncond = await opts.model(x, t, opts.uncond as C);
    checkPrediction(epsUncond, x, step);
    return guide(epsUncond, epsCond, scale);
  } finally {
    epsCond.dispose();
    epsUncond?.dispose();
  }
}

/** Runs `solver` from x_T along each sample's grid and returns the clean sample (and trajectory). */
export async function runSampler<C>(solver: GridSolver, opts: SampleOptions<C>): Promise<SampleResult> {
  const scale = opts.guidanceScale ?? 1;
  if (!Number.isFinite(scale)) throw new ScheduleError(`guidanceScale must be finite, got ${scale}`);
  if (scale !== 1 && opts.uncond === undefined && opts.guidanceCond === undefined)
    throw new ScheduleError('guidanceScale != 1 needs an uncond input or a guidanceCond');
  if (opts.xT.shape[0] !== opts.grids.length) {
    throw new ScheduleError(`${opts.grids.length} timestep grids for a batch of ${opts.xT.shape[0]}`);
  }
  const record = opts.record ?? true;
  const run = solver.start(opts.grids, opts.noise);
  const trajectory: TrajectoryStep[] = [];
  // A clone shares x_T's storage but lets the loop own (and dispose) every latent it holds.
  let x = opts.xT.clone();
  try {
    for (let i = 0; i < run.numSteps; i++) {
      const t = opts.grids.map((g) => g[i]!);
      const eps = await predict(opts, x, t, i);
      const entry: TrajectoryStep = { index: i, t, x, eps };
      let next: tf.Tensor4D;
      try {
        if (opts.onStep) await opts.onStep(entry);
        next = run.step(i, x, eps);
      } catch (err) {
        eps.dispose();
        throw err;
      }
      if (record) {
        trajectory.push(entry);
      } else {
        eps.dispose();
        x.dispose();
      }
      x = next;
    }
  } catch (err) {
    x.dispose();
    disposeTrajectory(trajectory);
    throw err;
  } finally {
    run.dispose();
  }
  return { x0: x, trajectory, grids: opts.grids };
}

export function disposeTrajectory(trajectory: readonly TrajectoryStep[]): void {
  for (const s of trajectory) {
    s.x.dispose();
    s.eps.dispose();
  }
}

export function disposeSampleResult(result: SampleResult): void {
  result.x0.dispose();
  disposeTrajectory(result.trajectory);
}

/** One sample's trajectory as plain arrays (what the replay buffer checkpoints). */
export interface SampleTrajectory {
  /** [H, W, C] of every latent. */
  shape: [number, number, number];
  /** t_i for i in [0, N). */
  timesteps: number[];
  /** x_{t_i}, the latent before step i. */
  latents: Float32Array[];
  /** eps_i at (x_{t_i}, t_i). */
  eps: Float32Array[];
  /** The final clean sample. */
  x0: Float32Array;
}

/** Splits a recorded batch result into per-sample arrays. Does not dispose the result. */
export async function trajectoryToArrays(result: SampleResult): Promise<SampleTrajectory[]> {
  const [B, H, W, C] = result.x0.shape;
  const size = H * W * C;
  const slice = (data: Float32Array, b: number) => data.slice(b * size, (b + 1) * size);
  const x0 = (await result.x0.data()) as Float32Array;
  const out: SampleTrajectory[] = Array.from({ length: B }, (_, b) => ({
    shape: [H, W, C],
    timesteps: [],
    latents: [],
    eps: [],
    x0: slice(x0, b),
  }));
  for (const s of result.trajectory) {
    const xs = (await s.x.data()) as Float32Array;
    const es = (await s.eps.data()) as Float32Array;
    out.forEach((o, b) => {
      o.timesteps.push(s.t[b]!);
      o.latents.push(slice(xs, b));
      o.eps.push(slice(es, b));
    });
  }
  return out;
}
