/**
 * Guided sampling in its two forms, timed in one process: two UNet calls of B rows per step (cond,
 * then uncond) against one call of 2B rows on [uncond; cond] (`SampleOptions.guidanceCond`), which
 * is what the engine's samplers run. The forms alternate round by round, so that load from other
 * jobs and the process's own warm-up fall on both alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../engine/rng';
import { DpmSolverPlusPlus } from '../engine/schedulers/dpm-solver';
import { disposeSampleResult, guidanceBatch, runSampler, type EpsModel } from '../engine/schedulers/sampling';
import { inferenceTimesteps, sharedGrid } from '../engine/schedulers/timesteps';

/** The demo's evaluation guidance. */
export const GUIDED_SCALE = 3;

export interface GuidedSampleTiming {
  steps: number;
  guidanceScale: number;
  batch: number;
  rounds: number;
  /** Median wall milliseconds of one guided sample. */
  twoCallMs: number;
  oneCallMs: number;
  /** Median process CPU milliseconds (user + system) of one guided sample. */
  twoCallCpuMs: number;
  oneCallCpuMs: number;
  /** oneCallCpuMs / twoCallCpuMs: below 1 the one-call form is cheaper. */
  cpuRatio: number;
  /** Process CPU milliseconds of every round, in order. */
  cpuRounds: { twoCall: number[]; oneCall: number[] };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Times `steps` DPM-Solver++ steps from `x` with guidance: one warm-up of each form, then `rounds`
 * alternating rounds. `cond` is [B, L, D]; the unconditional states are drawn to the same shape.
 */
export async function timeGuidedSampling(
  model: EpsModel<tf.Tensor3D>,
  x: tf.Tensor4D,
  cond: tf.Tensor3D,
  options: { steps: number; rounds: number; guidanceScale?: number },
): Promise<GuidedSampleTiming> {
  const batch = x.shape[0];
  const scale = options.guidanceScale ?? GUIDED_SCALE;
  const solver = new DpmSolverPlusPlus();
  const grid = inferenceTimesteps(options.steps, {
    numTrainTimesteps: 1000,
    timestepSpacing: 'linspace',
    stepsOffset: 0,
  });
  const uncond = new Rng(2025).normalTensor(cond.shape) as tf.Tensor3D;
  const pair = guidanceBatch(uncond, cond);
  const sample = async (oneCall: boolean): Promise<void> => {
    const result = await runSampler(solver, {
      model,
      xT: x,
      grids: sharedGrid(grid, batch),
      cond,
      ...(oneCall ? { guidanceCond: pair } : { uncond }),
      guidanceScale: scale,
      record: false,
    });
    await result.x0.data();
    disposeSampleResult(result);
  };
  const wall: Record<'one' | 'two', number[]> = { one: [], two: [] };
  const cpu: Record<'one' | 'two', number[]> = { one: [], two: [] };
  try {
    await sample(false);
    await sample(true);
    for (let r = 0; r < options.rounds; r++) {
      // Which form goes first alternates too: neither always follows the other's garbage.
      for (const form of r % 2 === 0 ? (['two', 'one'] as const) : (['one', 'two'] as const)) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await sample(form === 'one');
        wall[form].push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu[form].push((c.user + c.system) / 1000);
      }
    }
  } finally {
    tf.dispose([uncond, pair]);
  }
  const twoCallCpuMs = median(cpu.two);
  const oneCallCpuMs = median(cpu.one);
  return {
    steps: options.steps,
    guidanceScale: scale,
    batch,
    rounds: options.rounds,
    twoCallMs: median(wall.two),
    oneCallMs: median(wall.one),
    twoCallCpuMs,
    oneCallCpuMs,
    cpuRatio: oneCallCpuMs / twoCallCpuMs,
    cpuRounds: { twoCall: cpu.two, oneCall: cpu.one },
  };
}
