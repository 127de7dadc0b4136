/**
 * Ancestral DDPM sampler: Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models" (2020), in
 * the form of diffusers' DDPMScheduler (epsilon prediction, variance 'fixed_small', no clipping),
 * generalised to skip from t = t_i to s = t_{i+1} of a per-sample grid.
 *
 * Paper symbols -> code (eqs. 6-7 of Ho et al. with alpha_t replaced by at / as for a skip):
 *   alpha-bar_t, alpha-bar_s -> `at`, `as` (as = 1 after the last step)
 *   beta-tilde               -> `variance` = (1 - as) / (1 - at) * (1 - at / as)
 *   x0 (predicted)           -> (x - sqrt(1 - at) eps) / sqrt(at)
 *   mu-tilde                 -> sqrt(as) (1 - at/as) / (1 - at) x0 + sqrt(at/as) (1 - as) / (1 - at) x
 *   x_s                      -> mu-tilde + sqrt(variance) z, z ~ N(0, I) from the noise source,
 *                               drawn for every step but the last (whose variance is 0).
 */
import * as tf from '@tensorflow/tfjs-core';
import { NoiseSchedule, ScheduleError } from './ddpm-schedule';
import type { GridSolver, NoiseSource, SampleOptions, SampleResult, SolverRun } from './sampling';
import { runSampler } from './sampling';
import { validateGrids } from './timesteps';

export class DdpmAncestralSampler implements GridSolver {
  constructor(readonly schedule: NoiseSchedule = new NoiseSchedule()) {}

  start(grids: number[][], noise?: NoiseSource): SolverRun {
    const numSteps = validateGrids(grids, grids.length, this.schedule.numTrainTimesteps);
    if (!noise) throw new ScheduleError('the DDPM ancestral sampler needs a noise source');
    const ac = this.schedule.alphasCumprod;
    const B = grids.length;
    const col = (v: number[]) => tf.tensor4d(v, [B, 1, 1, 1]);
    return {
      numSteps,
      step: (i, x, eps) => {
        if (i < 0 || i >= numSteps) throw new ScheduleError(`DDPM step ${i} outside [0, ${numSteps})`);
        const last = i === numSteps - 1;
        const cx: number[] = [];
        const ce: number[] = [];
        const cz: number[] = [];
        for (const g of grids) {
          const at = ac[g[i]!]!;
          const as = last ? 1 : ac[g[i + 1]!]!;
          const beta = 1 - at / as;
          const cX0 = (Math.sqrt(as) * beta) / (1 - at);
          const cXt = (Math.sqrt(at / as) * (1 - as)) / (1 - at);
          // mu = cX0 * (x - sqrt(1 - at) eps) / sqrt(at) + cXt * x
          cx.push(cX0 / Math.sqrt(at) + cXt);
          ce.push((-cX0 * Math.sqrt(1 - at)) / Math.sqrt(at));
          cz.push(last ? 0 : Math.sqrt(Math.max(((1 - as) / (1 - at)) * beta, 1e-20)));
        }
        return tf.tidy(() => {
          const mean = tf.add<tf.Tensor4D>(tf.mul(col(cx), x), tf.mul(col(ce), eps));
          if (last) return mean;
          return tf.add<tf.Tensor4D>(mean, tf.mul(col(cz), noise.normalTensor(x.shape)));
        });
      },
      dispose: () => undefined,
    };
  }

  /** Samples from x_T on per-sample grids; needs `opts.noise`. */
  sample<C>(opts: SampleOptions<C>): Promise<SampleResult> {
    return runSampler(this, opts);
  }
}
