/**
 * The discrete DDPM noise schedule shared by training and every sampler (Ho et al. 2020, with the
 * "scaled_linear" betas of Stable Diffusion).
 *
 * Paper symbols -> code:
 *   beta_t               -> `betas[t]`
 *   alpha-bar_t = ac[t]  -> `alphasCumprod[t]` (product of 1 - beta_s for s <= t)
 *   q(x_t | x_0)         -> `addNoise(x0, eps, t)`: x_t = sqrt(ac[t]) x0 + sqrt(1 - ac[t]) eps
 *   sigma_t (VE form)    -> `sigmas[t]` = sqrt((1 - ac[t]) / ac[t]), the parameterisation DPM-Solver uses
 *
 * The tables reproduce diffusers/PyTorch bit for bit (checked against test/fixtures/parity): torch
 * builds the float32 `linspace` with a fused multiply-add, squares in float32, and accumulates the
 * cumulative product in double before rounding each entry to float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { bf16 } from '../training/bf16';

export const BETA_SCHEDULES = ['scaled_linear', 'linear'] as const;
export type BetaSchedule = (typeof BETA_SCHEDULES)[number];

export const TIMESTEP_SPACINGS = ['linspace', 'leading', 'trailing'] as const;
/**
 * How an N-step inference grid is laid over the training timesteps (DPMSolverMultistepScheduler's
 * definitions; see `inferenceTimesteps` in ./timesteps).
 */
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

export interface NoiseScheduleConfig {
  /** First beta. Default 0.00085 (SD1.5). */
  betaStart: number;
  /** Last beta. Default 0.012 (SD1.5). */
  betaEnd: number;
  /** 'scaled_linear' = linspace(sqrt(start), sqrt(end))^2 (SD1.5, default); 'linear' = linspace(start, end). */
  betaSchedule: BetaSchedule;
  /** Number of training timesteps T; timesteps are the integers [0, T). Default 1000. */
  numTrainTimesteps: number;
  /**
   * Spacing of inference grids. Default 'linspace' (999, 949, ..., 50 for 20 steps). SD1.5's shipped
   * scheduler config is 'leading' with `stepsOffset` 1 (941, 894, ..., 48): always state it.
   */
  timestepSpacing: TimestepSpacing;
  /** Added to every 'leading' grid entry (diffusers' `steps_offset`). Default 0. */
  stepsOffset: number;
}

/** SD1.5's schedule with the spacing docs/algorithm.md (section 3) gives for DPM-Solver++. */
export const SD15_SCHEDULE: Readonly<NoiseScheduleConfig> = Object.freeze({
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  numTrainTimesteps: 1000,
  timestepSpacing: 'linspace',
  stepsOffset: 0,
});

/** Thrown for an invalid schedule config or an out-of-range timestep. */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

/** Draws an integer uniformly from [min, maxExclusive); the engine's `Rng` satisfies it. */
export interface IntSource {
  int(min: number, maxExclusive: number): number;
}

function validateConfig(c: NoiseScheduleConfig): void {
  if (!Number.isInteger(c.numTrainTimesteps) || c.numTrainTimesteps < 2) {
    throw new ScheduleError(`numTrainTimesteps must be an integer >= 2, got ${c.numTrainTimesteps}`);
  }
  if (!(c.betaStart > 0 && c.betaEnd > 0 && c.betaStart < 1 && c.betaEnd < 1)) {
    throw new ScheduleError(`betaStart and betaEnd must lie in (0, 1), got ${c.betaStart}, ${c.betaEnd}`);
  }
  if (!BETA_SCHEDULES.includes(c.betaSchedule)) {
    throw new ScheduleError(
      `betaSchedule must be one of ${BETA_SCHEDULES.join(', ')}, got '${c.betaSchedule}'`,
    );
  }
  if (!TIMESTEP_SPACINGS.includes(c.timestepSpacing)) {
    throw new ScheduleError(
      `timestepSpacing must be one of ${TIMESTEP_SPACINGS.join(', ')}, got '${c.timestepSpacing}'`,
    );
  }
  if (!Number.isInteger(c.stepsOffset) || c.stepsOffset < 0) {
    throw new ScheduleError(`stepsOffset must be a non-negative integer, got ${c.stepsOffset}`);
  }
}

/** torch.linspace in float32: start + step*i (fused, one rounding) for the first half, end - step*(n-1-i) after. */
function linspaceF32(start: number, end: number, n: number): Float32Array {
  const f = Math.fround;
  const s = f(start);
  const e = f(end);
  const step = f(f(e - s) / (n - 1));
  const out = new Float32Array(n);
  const half = n / 2;
  for (let i = 0; i < n; i++) out[i] = i < half ? s + step * i : e - step * (n - 1 - i);
  return out;
}

export class NoiseSchedule {
  readonly config: Readonly<NoiseScheduleConfig>;
  /** beta_t, float32, length T. */
  readonly betas: Float32Array;
  /** ac[t] = prod_{s<=t} (1 - beta_s), float32, length T. */
  readonly alphasCumprod: Float32Array;
  /** sigma_t = sqrt((1 - ac[t]) / ac[t]) in float32 arithmetic, as diffusers' DPM-Solver tables. */
  readonly sigmas: Float32Array;

  constructor(config: Partial<NoiseScheduleConfig> = {}) {
    const c = { ...SD15_SCHEDULE, ...config };
    validateConfig(c);
    this.config = Object.freeze(c);
    const T = c.numTrainTimesteps;
    const f = Math.fround;
    if (c.betaSchedule === 'scaled_linear') {
      const roots = linspaceF32(Math.sqrt(c.betaStart), Math.sqrt(c.betaEnd), T);
      this.betas = roots.map((r) => f(r * r));
    } else {
      this.betas = linspaceF32(c.betaStart, c.betaEnd, T);
    }
    this.alphasCumprod = new Float32Array(T);
    this.sigmas = new Float32Array(T);
    let acc = 1;
    for (let t = 0; t < T; t++) {
      acc *= f(1 - this.betas[t]!);
      const ac = f(acc);
      this.alphasCumprod[t] = ac;
      // Each float32 op of torch is correctly rounded, so one fround per op reproduces it.
      this.sigmas[t] = f(Math.sqrt(f(f(1 - ac) / ac)));
    }
  }

  get numTrainTimesteps(): number {
    return this.config.numTrainTimesteps;
  }

  /** Throws unless every t is an integer in [0, T). `what` names the caller's argument in the error. */
  checkTimesteps(t: readonly number[], what = 'timestep'): void {
    const T = this.config.numTrainTimesteps;
    t.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v >= T) {
        throw new ScheduleError(`${what}[${i}] must be an integer in [0, ${T}), got ${v}`);
      }
    });
  }

  alphaCumprod(t: number): number {
    this.checkTimesteps([t]);
    return this.alphasCumprod[t]!;
  }

  /**
   * Forward process q(x_t | x_0), one timestep per sample:
   * x_t = sqrt(ac[t_b]) x0_b + sqrt(1 - ac[t_b]) eps_b. Coefficients are rounded to float32 as
   * diffusers' `add_noise` computes them.
   */
  addNoise(x0: tf.Tensor4D, eps: tf.Tensor4D, t: readonly number[]): tf.Tensor4D {
    const B = this.checkNoiseInputs(x0, eps, t);
    const f = Math.fround;
    const a = t.map((v) => f(Math.sqrt(this.alphasCumprod[v]!)));
    const s = t.map((v) => f(Math.sqrt(f(1 - this.alphasCumprod[v]!))));
    return tf.tidy(() => {
      const ca = tf.tensor4d(a, [B, 1, 1, 1]);
      const cs = tf.tensor4d(s, [B, 1, 1, 1]);
      return tf.add(tf.mul(ca, x0), tf.mul(cs, eps));
    });
  }

  /**
   * `addNoise` as diffusers computes it on bfloat16 tensors: x0 and eps are bf16, ac[t] is cast to
   * bf16 before its square roots, and every product and the sum are rounded to bf16. Near t = 0,
   * ac[t] rounds to 1, so the first timesteps get no noise at all.
   */
  addNoiseBf16(x0: tf.Tensor4D, eps: tf.Tensor4D, t: readonly number[]): tf.Tensor4D {
    const B = this.checkNoiseInputs(x0, eps, t);
    const xv = x0.dataSync() as Float32Array;
    const ev = eps.dataSync() as Float32Array;
    const out = new Float32Array(xv.length);
    const per = xv.length / B;
    for (let b = 0; b < B; b++) {
      const ac = bf16(this.alphasCumprod[t[b]!]!);
      const ca = bf16(Math.sqrt(ac));
      const cs = bf16(Math.sqrt(bf16(1 - ac)));
      for (let i = b * per; i < (b + 1) * per; i++) {
        out[i] = bf16(bf16(ca * bf16(xv[i]!)) + bf16(cs * bf16(ev[i]!)));
      }
    }
    return tf.tensor4d(out, x0.shape, 'float32');
  }

  /** Checks addNoise's inputs agree; returns the batch size. */
  private checkNoiseInputs(x0: tf.Tensor4D, eps: tf.Tensor4D, t: readonly number[]): number {
    const B = x0.shape[0];
    if (t.length !== B) throw new ScheduleError(`addNoise: ${t.length} timesteps for a batch of ${B}`);
    if (eps.shape.join() !== x0.shape.join()) {
      throw new ScheduleError(`addNoise: eps shape [${eps.shape.join()}] != x0 shape [${x0.shape.join()}]`);
    }
    this.checkTimesteps(t, 'addNoise t');
    return B;
  }

  /** Training timesteps, uniform over [0, T) (docs/algorithm.md sections 1-2: SFT and the DRO expert branch). */
  sampleTimesteps(batch: number, rng: IntSource): number[] {
    if (!Number.isInteger(batch) || batch < 0)
      throw new ScheduleError(`batch must be a non-negative integer, got ${batch}`);
    return Array.from({ length: batch }, () => rng.int(0, this.config.numTrainTimesteps));
  }
}
