/**
 * What the speed benchmark measures, in one place, so that `bench/run.ts` (TF.js) and
 * `bench/torch_reference.py` (PyTorch + diffusers) time the same work and divide by the same FLOP
 * counts. `npm run bench -- --dump-spec FILE` writes it as JSON for the Python side.
 */
import { unetForwardFlops } from '../engine/models/flops';
import { UNET_CONFIGS, type UNetConfig } from '../engine/models/unet-config';

export type BenchConfigName = 'tiny' | 'demo';
export const BENCH_CONFIGS: readonly BenchConfigName[] = ['tiny', 'demo'];

/** demo: batch 4 as the reference's DRO micro-batch, so the DRO step runs phi and ref on 8 inputs. */
export const BATCH: Record<BenchConfigName, number> = { tiny: 2, demo: 4 };
export const CONTEXT_LENGTH = 8;
export const LEARNING_RATE = 1e-4;
/** Hinge margin of the DRO step: mean(relu((le - lp) + margin)). */
export const DRO_MARGIN = 1e-3;
export const SAMPLE_STEPS = 20;

/** One warm-up call, then repetitions until `maxReps` or `budgetMs`, whichever first; the median counts. */
export const TIMING = {
  budgetMs: 3000,
  maxReps: 10,
  quickBudgetMs: 800,
  quickMaxReps: 3,
  sampleMaxReps: 3,
} as const;

/** The timed operations, named as the report rows name their milliseconds. */
export const BENCH_OPS = ['forward', 'sftStep', 'droStep', 'sample20'] as const;
export type BenchOp = (typeof BENCH_OPS)[number];

/**
 * Work of each operation in forward passes at the benchmark batch: a training step is about 3x a
 * forward; the DRO step runs phi forward + backward on 2B inputs (6x) and ref forward on 2B (2x);
 * the sample runs one forward per step (no guidance, so one model call per step).
 */
export const FORWARDS_PER_OP: Record<BenchOp, number> = {
  forward: 1,
  sftStep: 3,
  droStep: 8,
  sample20: SAMPLE_STEPS,
};

export type OpFlops = Record<BenchOp, number>;

export function opFlops(config: UNetConfig, batch: number): OpFlops {
  const f = unetForwardFlops(config, {
    batch,
    height: config.sample_size,
    width: config.sample_size,
    contextLength: CONTEXT_LENGTH,
  });
  return {
    forward: f * FORWARDS_PER_OP.forward,
    sftStep: f * FORWARDS_PER_OP.sftStep,
    droStep: f * FORWARDS_PER_OP.droStep,
    sample20: f * FORWARDS_PER_OP.sample20,
  };
}

export interface BenchSpecConfig {
  /** diffusers UNet2DConditionModel keys, passed to its constructor as they are. */
  unet: UNetConfig;
  batch: number;
  size: number;
  /** Parameter count of the engine's model: the peer checks its own model against it. */
  params: number;
  flops: OpFlops;
}

export interface BenchSpec {
  contextLength: number;
  learningRate: number;
  droMargin: number;
  timing: typeof TIMING;
  sampler: {
    kind: 'DPMSolverMultistepScheduler';
    steps: number;
    algorithm_type: 'dpmsolver++';
    solver_order: 2;
    solver_type: 'midpoint';
    lower_order_final: true;
    final_sigmas_type: 'zero';
    timestep_spacing: 'linspace';
    num_train_timesteps: 1000;
    beta_start: number;
    beta_end: number;
    beta_schedule: 'scaled_linear';
    guidance_scale: 1;
  };
  configs: Record<string, BenchSpecConfig>;
}

export function benchSpec(paramsOf: (name: BenchConfigName) => number): BenchSpec {
  const configs: Record<string, BenchSpecConfig> = {};
  for (const name of BENCH_CONFIGS) {
    const unet = UNET_CONFIGS[name];
    configs[name] = {
      unet,
      batch: BATCH[name],
      size: unet.sample_size,
      params: paramsOf(name),
      flops: opFlops(unet, BATCH[name]),
    };
  }
  return {
    contextLength: CONTEXT_LENGTH,
    learningRate: LEARNING_RATE,
    droMargin: DRO_MARGIN,
    timing: TIMING,
    sampler: {
      kind: 'DPMSolverMultistepScheduler',
      steps: SAMPLE_STEPS,
      algorithm_type: 'dpmsolver++',
      solver_order: 2,
      solver_type: 'midpoint',
      lower_order_final: true,
      final_sigmas_type: 'zero',
      timestep_spacing: 'linspace',
      num_train_timesteps: 1000,
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      guidance_scale: 1,
    },
    configs,
  };
}
