/**
 * The pretraining recipe of the built-in world's base model (`config/pretrain-base.json`): corpus,
 * initial weights, optimizer schedule and the GenEval measurements taken along the way. Every field
 * has a default; unknown keys are errors, and `--set path=value` overrides are checked the same way.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { applyOverride } from '../config/overrides';

const positiveInt = z.number().int().positive();

export const PretrainRecipe = z.strictObject({
  /** Seed of the trainer's data order, timesteps and noise. Default 0. */
  seed: z.number().int().min(0).default(0),
  /** Seed of the UNet's initial weights. Default 2. */
  unetInitSeed: z.number().int().min(0).default(2),
  /** Seed of the text encoder's initial weights. Default 1. */
  textInitSeed: z.number().int().min(0).default(1),
  /** Image side in pixels; the `demo` UNet is trained at 16. Default 16. */
  resolution: z.number().int().min(8).max(64).default(16),
  corpus: z
    .strictObject({
      /** Seed of the scenes and captions. Default 0. */
      seed: z.number().int().min(0).default(0),
      /** Captioned images. Default 8000. */
      size: positiveInt.default(8000),
      /** Share of captions that are wrong or partial. Default 0.3. */
      captionNoise: z.number().min(0).max(1).default(0.3),
    })
    .prefault({}),
  training: z
    .strictObject({
      /** Optimizer updates (batch `batchSize`, no accumulation). Default 600. */
      steps: positiveInt.default(600),
      batchSize: positiveInt.default(16),
      learningRate: z.number().positive().default(1e-3),
      weightDecay: z.number().min(0).default(0.01),
      maxGradNorm: z.number().positive().default(1),
      /** Empty-prompt probability, so the base supports classifier-free guidance. Default 0.1. */
      promptDropout: z.number().min(0).max(1).default(0.1),
      emaDecay: z.number().min(0).lt(1).default(0.999),
      warmupUpdates: z.number().int().min(0).default(0),
      lrDecay: z.enum(['constant', 'cosine']).default('constant'),
      /** Train the text encoder with the UNet. Default false. */
      trainTextEncoder: z.boolean().default(false),
    })
    .prefault({}),
  /** GenEval along the way (the learning curve). */
  eval: z
    .strictObject({
      /** Suite seed; disjoint from the corpus' scenes and from `final.suiteSeed`. */
      suiteSeed: z.string().min(1).default('pretrain-eval'),
      perTag: positiveInt.default(8),
      /** Updates between measurements. Default 100. */
      every: positiveInt.default(100),
      /** Also measure the untrained model (step 0), the floor of the curve. Default false. */
      atStart: z.boolean().default(false),
      seedsPerPrompt: positiveInt.default(1),
      samplerSteps: positiveInt.default(20),
      guidanceScale: z.number().min(0).default(3),
    })
    .prefault({}),
  /** The measurement recorded for the shipped model, on a larger held-out suite. */
  final: z
    .strictObject({
      suiteSeed: z.string().min(1).default('base-heldout'),
      perTag: positiveInt.default(16),
      seedsPerPrompt: positiveInt.default(4),
    })
    .prefault({}),
});
export type PretrainRecipe = z.infer<typeof PretrainRecipe>;

/** Reads, overrides and validates a recipe; errors name the file and the field. */
export function loadRecipe(file: string | undefined, overrides: readonly string[] = []): PretrainRecipe {
  const raw: Record<string, unknown> = file
    ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>)
    : {};
  delete raw.$schema;
  for (const o of overrides) applyOverride(raw, o);
  const parsed = PretrainRecipe.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file ?? 'recipe'}: field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
