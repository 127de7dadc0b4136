/**
 * Inference timestep grids: the fixed grids of diffusers' DPMSolverMultistepScheduler and the
 * per-sample perturbed grids Diffusion-DRO samples its replay buffer on (docs/algorithm.md section 1).
 *
 * A grid is a strictly decreasing list of integer training timesteps t_0 > t_1 > ... > t_{N-1};
 * every sampler steps from t_i to t_{i+1}, and from t_{N-1} to the clean sample (no timestep).
 * A batch runs on `grids[b]` per sample: all grids have the same length N, the values may differ.
 */
import { type IntSource, type NoiseScheduleConfig, ScheduleError } from './ddpm-schedule';

/** numpy's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkSteps(numSteps: number, T: number): void {
  if (!Number.isInteger(numSteps) || numSteps < 1 || numSteps > T) {
    throw new ScheduleError(`numInferenceSteps must be an integer in [1, ${T}], got ${numSteps}`);
  }
}

/**
 * The N-step grid of DPMSolverMultistepScheduler.set_timesteps for the config's spacing:
 * - 'linspace': round(linspace(0, T-1, N+1)) reversed, last dropped (T=1000, N=20: 999, 949, ..., 50);
 * - 'leading':  arange(N+1) * (T // (N+1)) reversed, last dropped, + stepsOffset
 *               (SD1.5's PNDM-derived config, offset 1: 941, 894, ..., 48);
 * - 'trailing': round(arange(T, 0, -T/N)) - 1 (999, 949, ..., 49).
 * DDIMScheduler defines 'linspace' and 'leading' differently; the engine uses these for every sampler.
 */
export function inferenceTimesteps(
  numSteps: number,
  config: Pick<NoiseScheduleConfig, 'numTrainTimesteps' | 'timestepSpacing' | 'stepsOffset'>,
): number[] {
  const T = config.numTrainTimesteps;
  checkSteps(numSteps, T);
  let grid: number[];
  switch (config.timestepSpacing) {
    case 'linspace': {
      // numpy.linspace(0, T-1, N+1): i * step, the last value set to T-1 exactly; the 0 is dropped.
      const step = (T - 1) / numSteps;
      grid = Array.from({ length: numSteps }, (_, k) => {
        const i = numSteps - k;
        return i === numSteps ? T - 1 : roundHalfEven(i * step);
      });
      break;
    }
    case 'leading': {
      const ratio = Math.floor(T / (numSteps + 1));
      grid = Array.from({ length: numSteps }, (_, i) => (i + 1) * ratio + config.stepsOffset).reverse();
      break;
    }
    case 'trailing': {
      const ratio = T / numSteps;
      grid = Array.from({ length: numSteps }, (_, i) => roundHalfEven(T - i * ratio) - 1);
      break;
    }
    default:
      throw new ScheduleError(`unknown timestepSpacing '${String(config.timestepSpacing)}'`);
  }
  return grid;
}

export interface PerturbedGrids {
  /** grids[b] = base grid + offsets[b], one per sample. */
  grids: number[][];
  /** The integer offset of each sample, uniform in [0, T // N). */
  offsets: number[];
  /** round(arange(N) * (T // N)) reversed: 950, 900, ..., 0 for T = 1000, N = 20. */
  base: number[];
}

/**
 * Diffusion-DRO's per-sample perturbed grids: the base grid `arange(N) * (T // N)` reversed, shifted
 * by an integer offset drawn uniformly from [0, T // N) for each sample. The last step of sample b
 * starts at t = offsets[b] and ends at the clean sample (final sigma 0).
 */
export function perturbedTimesteps(
  numSteps: number,
  batch: number,
  rng: IntSource,
  numTrainTimesteps = 1000,
): PerturbedGrids {
  checkSteps(numSteps, numTrainTimesteps);
  if (!Number.isInteger(batch) || batch < 1)
    throw new ScheduleError(`batch must be a positive integer, got ${batch}`);
  const stride = Math.floor(numTrainTimesteps / numSteps);
  const base = Array.from({ length: numSteps }, (_, i) => i * stride).reverse();
  const offsets = Array.from({ length: batch }, () => rng.int(0, stride));
  return { grids: offsets.map((o) => base.map((t) => t + o)), offsets, base };
}

/** The same fixed grid for every sample of a batch. */
export function sharedGrid(grid: readonly number[], batch: number): number[][] {
  return Array.from({ length: batch }, () => [...grid]);
}

/** Throws unless `grids` holds `batch` strictly decreasing integer grids of one length within [0, T). */
export function validateGrids(
  grids: readonly (readonly number[])[],
  batch: number,
  numTrainTimesteps: number,
): number {
  if (grids.length !== batch)
    throw new ScheduleError(`${grids.length} timestep grids for a batch of ${batch}`);
  const n = grids[0]?.length ?? 0;
  if (n < 1) throw new ScheduleError('timestep grid is empty');
  grids.forEach((g, b) => {
    if (g.length !== n)
      throw new ScheduleError(`grid of sample ${b} has ${g.length} steps, sample 0 has ${n}`);
    g.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= numTrainTimesteps) {
        throw new ScheduleError(
          `grid of sample ${b}, step ${i}: timestep ${t} is not an integer in [0, ${numTrainTimesteps})`,
        );
      }
      if (i > 0 && t >= g[i - 1]!) {
        throw new ScheduleError(
          `grid of sample ${b} is not strictly decreasing at step ${i} (${g[i - 1]} -> ${t})`,
        );
      }
    });
  });
  return n;
}
