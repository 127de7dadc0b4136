/**
 * DPM-Solver++ multistep sampler: Lu, Zhou, Bao, Chen, Li, Zhu, "DPM-Solver++: Fast Solver for
 * Guided Sampling of Diffusion Probabilistic Models" (2022), Algorithm 2, in the form of diffusers'
 * DPMSolverMultistepScheduler (algorithm_type "dpmsolver++").
 *
 * Paper symbols -> code, for a sample at timestep t (docs/algorithm.md section 3):
 *   sigma (VE)          -> `schedule.sigmas[t]` = sqrt((1 - ac[t]) / ac[t])
 *   alpha_t, sigma_t    -> `alpha` = 1 / sqrt(sigma^2 + 1), `sigmaT` = sigma * alpha
 *   lambda_t            -> `lambda` = log alpha_t - log sigma_t (half log-SNR)
 *   x_theta (data pred) -> `m0` (this step), `m1` (previous step): x0 = (x - sigma_t eps) / alpha_t
 *   h_i                 -> `h` = lambda_t - lambda_s
 *
 * Per-sample grids: every coefficient above is a vector over the batch (one value per sample's own
 * t_i), broadcast as [B, 1, 1, 1] over the latents, so samples on different grids (Diffusion-DRO's
 * perturbed timesteps) step together and each gets exactly what running it alone would give.
 *
 * The last step: its target is the clean sample, sigma_next = 0 (`finalSigmasType` 'zero'), so
 * alpha_next = 1, sigma_next = 0, lambda_next = +inf and the first-order update reduces to x0 = m0.
 * It is always first order and returns m0 itself (no log 0 is taken). On a perturbed grid this
 * step starts at t = offset_b (0..T/N-1) and still ends at sigma 0: the clean prediction made at
 * t = offset_b. With `finalSigmasType` 'sigma_min' the target is instead sigma(t = 0) and the usual
 * first-order formula applies.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NoiseSchedule, ScheduleError } from './ddpm-schedule';
import type { GridSolver, SampleOptions, SampleResult, SolverRun } from './sampling';
import { runSampler } from './sampling';
import { validateGrids } from './timesteps';

export interface DpmSolverConfig {
  /** 1 = DPM-Solver++(1) (equivalent to DDIM), 2 = DPM-Solver++(2M). Default 2. */
  solverOrder: 1 | 2;
  /** Second-order update: 'midpoint' (Algorithm 2 of the paper, diffusers' default) or 'heun'. Default 'midpoint'. */
  solverType: 'midpoint' | 'heun';
  /**
   * Use the first-order update on the last step when the grid has fewer than 15 steps (diffusers'
   * stabilisation for few-step sampling). Default true. With `finalSigmasType` 'zero' the last step
   * is first order regardless, since the second-order term has no meaning at lambda = +inf.
   */
  lowerOrderFinal: boolean;
  /** Target of the last step: 'zero' (the clean sample, default) or 'sigma_min' (sigma at t = 0). */
  finalSigmasType: 'zero' | 'sigma_min';
}

export const DEFAULT_DPM_SOLVER_CONFIG: Readonly<DpmSolverConfig> = Object.freeze({
  solverOrder: 2,
  solverType: 'midpoint',
  lowerOrderFinal: true,
  finalSigmasType: 'zero',
});

/** Per-sample coefficients of one step: x_next = cx * x + c0 * m0 + c1 * m1 (c1 = 0 for order 1). */
interface StepCoefficients {
  /** Data prediction: m0 = inX * x + inEps * eps. */
  inX: number[];
  inEps: number[];
  cx: number[];
  c0: number[];
  c1: number[];
  order: 1 | 2;
  /** Target is sigma 0: x_next = m0 exactly. */
  toClean: boolean;
}

interface SigmaPoint {
  alpha: number;
  sigmaT: number;
  lambda: number;
}

function point(sigma: number): SigmaPoint {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const sigmaT = sigma * alpha;
  return { alpha, sigmaT, lambda: Math.log(alpha) - Math.log(sigmaT) };
}

export class DpmSolverPlusPlus implements GridSolver {
  readonly config: Readonly<DpmSolverConfig>;

  constructor(
    readonly schedule: NoiseSchedule = new NoiseSchedule(),
    config: Partial<DpmSolverConfig> = {},
  ) {
    const c = { ...DEFAULT_DPM_SOLVER_CONFIG, ...config };
    if (c.solverOrder !== 1 && c.solverOrder !== 2)
      throw new ScheduleError(`solverOrder must be 1 or 2, got ${String(c.solverOrder)}`);
    if (c.solverType !== 'midpoint' && c.solverType !== 'heun') {
      throw new ScheduleError(`solverType must be 'midpoint' or 'heun', got '${String(c.solverType)}'`);
    }
    if (c.finalSigmasType !== 'zero' && c.finalSigmasType !== 'sigma_min') {
      throw new ScheduleError(
        `finalSigmasType must be 'zero' or 'sigma_min', got '${String(c.finalSigmasType)}'`,
      );
    }
    this.config = Object.freeze(c);
  }

  /** sigma (VE) of every grid point plus the final target, per sample: [B][N + 1]. */
  sigmaTable(grids: readonly (readonly number[])[]): number[][] {
    const last = this.config.finalSigmasType === 'zero' ? 0 : this.schedule.sigmas[0]!;
    return grids.map((g) => [...g.map((t) => this.schedule.sigmas[t]!), last]);
  }

  /** Order of step i of an N-step run (diffusers' lower_order_nums / lower_order_final rules). */
  stepOrder(i: number, numSteps: number): 1 | 2 {
    if (this.config.solverOrder === 1 || i === 0) return 1;
    const last = i === numSteps - 1;
    if (last && (this.config.finalSigmasType === 'zero' || (this.config.lowerOrderFinal && numSteps < 15)))
      return 1;
    return 2;
  }

  private coefficients(sigmas: number[][], i: number, numSteps: number): StepCoefficients {
    const order = this.stepOrder(i, numSteps);
    const toClean = i === numSteps - 1 && this.config.finalSigmasType === 'zero';
    const c: StepCoefficients = { inX: [], inEps: [], cx: [], c0: [], c1: [], order, toClean };
    for (const row of sigmas) {
      const s0 = point(row[i]!);
      // Stage 1, data prediction x_theta (Lu et al. 2022, the "++" reparameterisation of the noise
      // model): x_theta = (x - sigma_s eps) / alpha_s.
      c.inX.push(1 / s0.alpha);
      c.inEps.push(-s0.sigmaT / s0.alpha);
      if (toClean) {
        c.cx.push(0);
        c.c0.push(1);
        c.c1.push(0);
        continue;
      }
      const tp = point(row[i + 1]!);
      const h = tp.lambda - s0.lambda;
      // -alpha_t (e^{-h} - 1), written with expm1 for small h.
      const b = -tp.alpha * Math.expm1(-h);
      // Stage 2, first-order update (DPM-Solver++(1); the first step of Algorithm 2, Lu et al. 2022):
      // x_t = (sigma_t / sigma_s) x - alpha_t (e^{-h} - 1) x_theta.
      c.cx.push(tp.sigmaT / s0.sigmaT);
      if (order === 1) {
        c.c0.push(b);
        c.c1.push(0);
        continue;
      }
      // Stage 3, second-order multistep (DPM-Solver++(2M), the loop of Algorithm 2, Lu et al. 2022):
      // r0 = h_0 / h with h_0 = lambda_s0 - lambda_s1, D1 = (m0 - m1) / r0, then
      //   midpoint: x_t = ... - alpha_t (e^{-h} - 1) m0 - 0.5 alpha_t (e^{-h} - 1) D1
      //   heun:     x_t = ... - alpha_t (e^{-h} - 1) m0 + alpha_t ((e^{-h} - 1) / h + 1) D1
      const s1 = point(row[i - 1]!);
      const r0 = (s0.lambda - s1.lambda) / h;
      const k = this.config.solverType === 'midpoint' ? 0.5 * b : tp.alpha * (Math.expm1(-h) / h + 1);
      c.c0.push(b + k / r0);
      c.c1.push(-k / r0);
    }
    return c;
  }

  start(grids: number[][]): SolverRun {
    const numSteps = validateGrids(grids, grids.length, this.schedule.numTrainTimesteps);
    const sigmas = this.sigmaTable(grids);
    const B = grids.length;
    const col = (v: number[]) => tf.tensor4d(v, [B, 1, 1, 1]);
    let prevX0: tf.Tensor4D | undefined;
    let nextIndex = 0;
    return {
      numSteps,
      step: (i, x, eps) => {
        if (i !== nextIndex)
          throw new ScheduleError(`DPM-Solver++ step ${i} taken out of order (expected ${nextIndex})`);
        if (x.shape[0] !== B || eps.shape[0] !== B) {
          throw new ScheduleError(
            `DPM-Solver++ step ${i}: batch ${x.shape[0]}/${eps.shape[0]} but ${B} grids`,
          );
        }
        const c = this.coefficients(sigmas, i, numSteps);
        const m0 = tf.tidy(() => tf.add<tf.Tensor4D>(tf.mul(col(c.inX), x), tf.mul(col(c.inEps), eps)));
        let next: tf.Tensor4D;
        if (c.toClean) {
          next = m0.clone();
        } else if (c.order === 1 || prevX0 === undefined) {
          next = tf.tidy(() => tf.add<tf.Tensor4D>(tf.mul(col(c.cx), x), tf.mul(col(c.c0), m0)));
        } else {
          const m1 = prevX0;
          next = tf.tidy(() =>
            tf.addN<tf.Tensor4D>([
              tf.mul<tf.Tensor4D>(col(c.cx), x),
              tf.mul<tf.Tensor4D>(col(c.c0), m0),
              tf.mul<tf.Tensor4D>(col(c.c1), m1),
            ]),
          );
        }
        prevX0?.dispose();
        prevX0 = m0;
        nextIndex = i + 1;
        return next;
      },
      dispose: () => {
        prevX0?.dispose();
        prevX0 = undefined;
      },
    };
  }

  /** Samples from x_T on per-sample grids; see `runSampler` for the trajectory it records. */
  sample<C>(opts: SampleOptions<C>): Promise<SampleResult> {
    return runSampler(this, opts);
  }
}
