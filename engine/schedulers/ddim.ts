/**
 * DDIM sampler: Song, Meng, Ermon, "Denoising Diffusion Implicit Models" (ICLR 2021), in the form of
 * diffusers' DDIMScheduler (epsilon prediction, no clipping), on per-sample grids.
 *
 * Paper symbols -> code, for a step from t = t_i to s = t_{i+1} (or to the clean sample after the last
 * step, where alpha-bar_s = `finalAlphaCumprod`):
 *   alpha-bar_t, alpha-bar_s -> `at`, `as`
 *   f_theta (predicted x0)   -> `x0` = (x - sqrt(1 - at) eps) / sqrt(at)          (eq. 12, first term)
 *   sigma_t(eta)             -> eta * sqrt((1 - as) / (1 - at)) * sqrt(1 - at / as)  (eq. 16)
 *   x_s                      -> sqrt(as) x0 + sqrt(1 - as - sigma^2) eps + sigma z  (eq. 12)
 * eta = 0 (default) is deterministic and needs no noise source.
 *
 * diffusers steps from t to t - T/N whatever the grid; here a step always ends at the next grid
 * entry, which is the same for 'leading' grids (950, 900, ..., 0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { NoiseSchedule, ScheduleError } from './ddpm-schedule';
import type { GridSolver, NoiseSource, SampleOptions, SampleResult, SolverRun } from './sampling';
import { runSampler } from './sampling';
import { validateGrids } from './timesteps';

export interface DdimConfig {
  /** Noise weight eta of eq. 16; 0 = deterministic DDIM (default), 1 = DDPM-like variance. */
  eta: number;
  /** alpha-bar after the last step: 'one' (the clean sample, diffusers' set_alpha_to_one=True, default) or 'first' (ac[0], SD1.5's shipped config). */
  finalAlphaCumprod: 'one' | 'first';
}

export const DEFAULT_DDIM_CONFIG: Readonly<DdimConfig> = Object.freeze({ eta: 0, finalAlphaCumprod: 'one' });

export class DdimSampler implements GridSolver {
  readonly config: Readonly<DdimConfig>;

  constructor(
    readonly schedule: NoiseSchedule = new NoiseSchedule(),
    config: Partial<DdimConfig> = {},
  ) {
    const c = { ...DEFAULT_DDIM_CONFIG, ...config };
    if (!(c.eta >= 0 && Number.isFinite(c.eta)))
      throw new ScheduleError(`eta must be a finite number >= 0, got ${c.eta}`);
    if (c.finalAlphaCumprod !== 'one' && c.finalAlphaCumprod !== 'first') {
      throw new ScheduleError(
        `finalAlphaCumprod must be 'one' or 'first', got '${String(c.finalAlphaCumprod)}'`,
      );
    }
    this.config = Object.freeze(c);
  }

  start(grids: number[][], noise?: NoiseSource): SolverRun {
    const numSteps = validateGrids(grids, grids.length, this.schedule.numTrainTimesteps);
    if (this.config.eta > 0 && !noise) throw new ScheduleError('DDIM with eta > 0 needs a noise source');
    const ac = this.schedule.alphasCumprod;
    const final = this.config.finalAlphaCumprod === 'one' ? 1 : ac[0]!;
    const B = grids.length;
    const col = (v: number[]) => tf.tensor4d(v, [B, 1, 1, 1]);
    return {
      numSteps,
      step: (i, x, eps) => {
        if (i < 0 || i >= numSteps) throw new ScheduleError(`DDIM step ${i} outside [0, ${numSteps})`);
        const cx: number[] = [];
        const ce: number[] = [];
        const cz: number[] = [];
        for (const g of grids) {
          const at = ac[g[i]!]!;
          const as = i + 1 < numSteps ? ac[g[i + 1]!]! : final;
          const sigma = this.config.eta * Math.sqrt((1 - as) / (1 - at)) * Math.sqrt(1 - at / as);
          // Fold x0 = (x - sqrt(1 - at) eps) / sqrt(at) into x_s = sqrt(as) x0 + dir * eps + sigma z.
          const dir = Math.sqrt(Math.max(0, 1 - as - sigma * sigma));
          const k = Math.sqrt(as / at);
          cx.push(k);
          ce.push(dir - k * Math.sqrt(1 - at));
          cz.push(sigma);
        }
        const stochastic = cz.some((v) => v > 0);
        return tf.tidy(() => {
          const mean = tf.add<tf.Tensor4D>(tf.mul(col(cx), x), tf.mul(col(ce), eps));
          if (!stochastic || !noise) return mean;
          return tf.add<tf.Tensor4D>(mean, tf.mul(col(cz), noise.normalTensor(x.shape)));
        });
      },
      dispose: () => undefined,
    };
  }

  /** Samples from x_T on per-sample grids; see `runSampler` for the trajectory it records. */
  sample<C>(opts: SampleOptions<C>): Promise<SampleResult> {
    return runSampler(this, opts);
  }
}
