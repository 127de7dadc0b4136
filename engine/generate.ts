/**
 * Text-to-image generation with a DiffusionModel: DPM-Solver++ on the fixed linspace grid with
 * classifier-free guidance, one UNet call per step on the empty and the given prompts together.
 * Every image has its own seed (x_T drawn from Rng(seed)), so an image
 * depends only on (model, prompt, seed, steps, guidance), never on how images were batched.
 * The UNet runs on TF.js or onnxruntime (./onnx); the two agree to float32 rounding, not bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from './rng';
import { NoiseSchedule } from './schedulers/ddpm-schedule';
import { DpmSolverPlusPlus } from './schedulers/dpm-solver';
import { disposeSampleResult, guidanceBatch, runSampler } from './schedulers/sampling';
import { inferenceTimesteps, sharedGrid } from './schedulers/timesteps';
import { encodePrompts, type DiffusionModel } from './training/diffusion-model';
import { createUNetInference } from './onnx/unet-inference';
import type { InferenceRuntimePreference, RuntimeChoice } from './onnx/runtime';

export interface GenerateOptions {
  /** One seed per prompt. */
  seeds: readonly number[];
  /** Solver steps. Default 20. */
  steps?: number;
  /** Classifier-free guidance scale. Default 7.5. */
  guidanceScale?: number;
  /** Images per model call. Default 16. */
  batchSize?: number;
  /** Called after each batch with the number of images done. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Runtime of the UNet (see onnx/runtime.ts): default 'auto', i.e. onnxruntime when it loads;
   * `DRO_INFERENCE_RUNTIME` overrides it. The text encoder always runs on TF.js.
   */
  runtime?: InferenceRuntimePreference;
  /** Intra-op threads of the ONNX session. Default `DRO_INFERENCE_THREADS`, else every core. */
  threads?: number;
  /** Told which runtime runs the UNet, and why, before the first batch. */
  onRuntime?: (choice: RuntimeChoice) => void;
}

/** Images in model space (HWC, about [-1, 1]), one per prompt. */
export async function generateImages(
  model: DiffusionModel,
  prompts: readonly string[],
  options: GenerateOptions,
): Promise<Float32Array[]> {
  if (options.seeds.length !== prompts.length) {
    throw new Error(`generateImages: ${options.seeds.length} seeds for ${prompts.length} prompts`);
  }
  const steps = options.steps ?? 20;
  const guidanceScale = options.guidanceScale ?? 7.5;
  const batchSize = options.batchSize ?? 16;
  const c = model.unet.config;
  const size = c.sample_size;
  const schedule = new NoiseSchedule();
  const solver = new DpmSolverPlusPlus(schedule);
  const grid = inferenceTimesteps(steps, schedule.config);
  const out: Float32Array[] = [];
  // One export per call: the weights are read once, and the session serves every batch.
  const unet = await createUNetInference(model.unet, {
    ...(options.runtime !== undefined && { runtime: options.runtime }),
    ...(options.threads !== undefined && { threads: options.threads }),
  });
  options.onRuntime?.(unet.choice);
  try {
    for (let start = 0; start < prompts.length; start += batchSize) {
      const batchPrompts = prompts.slice(start, start + batchSize);
      const seeds = options.seeds.slice(start, start + batchSize);
      const xT = tf.tidy(() =>
        tf.concat(seeds.map((s) => new Rng(s).normalTensor([1, size, size, c.in_channels]))),
      ) as tf.Tensor4D;
      const cond = encodePrompts(model, batchPrompts);
      // Guided steps make one UNet call on [empty prompts; prompts] rather than two of B.
      const empty = batchPrompts.map(() => '');
      const guidanceCond =
        guidanceScale === 1 ? undefined : tf.tidy(() => guidanceBatch(encodePrompts(model, empty), cond));
      const result = await runSampler(solver, {
        model: unet.predict,
        xT,
        grids: sharedGrid(grid, batchPrompts.length),
        cond,
        guidanceCond,
        guidanceScale,
        record: false,
      });
      const data = (await result.x0.data()) as Float32Array;
      const n = data.length / batchPrompts.length;
      for (let b = 0; b < batchPrompts.length; b++) out.push(data.slice(b * n, (b + 1) * n));
      disposeSampleResult(result);
      tf.dispose([xT, cond, ...(guidanceCond ? [guidanceCond] : [])]);
      options.onProgress?.(out.length, prompts.length);
    }
  } finally {
    await unet.dispose();
  }
  return out;
}
