/**
 * The pipeline configuration, schema first: every type is inferred from its zod schema, unknown
 * keys are rejected, and every default is written here once.
 *
 * Hyperparameter defaults are the Diffusion-DRO reference implementation's (DESIGN.md section 1).
 */
import { z } from 'zod';
import { StorageConfig } from '../storage/config';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const probability = z.number().min(0).max(1);

/** Which Temporal cluster runs the pipeline. */
export const TemporalConfig = z
  .strictObject({
    /** `host:port` of an existing cluster; empty means the embedded dev server. Env TEMPORAL_ADDRESS wins. */
    address: z.string().default(''),
    /** Temporal namespace. Default `default`. */
    namespace: z.string().min(1).default('default'),
    /** gRPC port of the embedded dev server; 0 picks a free one. Default 7233. */
    embeddedPort: z.number().int().min(0).max(65535).default(7233),
    /** Web UI port of the embedded dev server. Default 8233. */
    embeddedUiPort: z.number().int().min(0).max(65535).default(8233),
  })
  .describe('Temporal cluster');
export type TemporalConfig = z.infer<typeof TemporalConfig>;

export const TfBackend = z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
export type TfBackend = z.infer<typeof TfBackend>;

/** Worker processes and what they run. */
export const WorkersConfig = z.strictObject({
  /** TF.js backend for compute activities; `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu. Default `auto`. */
  backend: TfBackend.default('auto'),
  /** Compute activities one worker runs at once. Default 1 (one model on one device). */
  gpuConcurrency: positiveInt.default(1),
  /** I/O activities one worker runs at once. Default 4. */
  cpuConcurrency: positiveInt.default(4),
  /** Seconds between activity heartbeats. Default 10. */
  heartbeatSeconds: z.number().positive().default(10),
});
export type WorkersConfig = z.infer<typeof WorkersConfig>;

/** The denoising network: a named ready configuration of the UNet. */
export const ModelConfig = z.strictObject({
  /** UNet configuration: `tiny` (tests), `demo` (the built-in world on CPU), `sd15`. Default `demo`. */
  unet: z.enum(['tiny', 'demo', 'sd15']).default('demo'),
  /** Base checkpoint (safetensors URI); empty means pretrain one on the built-in world. Default empty. */
  baseCheckpoint: z.string().default(''),
  /** Image side in pixels for the built-in world. Default 16. */
  resolution: z.number().int().min(8).max(1024).default(16),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

/** Where the preference data comes from. */
export const DataConfig = z.strictObject({
  /** `world`: simulate implicit feedback in the built-in world; `pickapic`: parquet shards; `folder`: caption/image pairs. Default `world`. */
  source: z.enum(['world', 'pickapic', 'folder']).default('world'),
  /** Parquet shards or folder (URIs or paths) for `pickapic` / `folder`. Default none. */
  paths: z.array(z.string().min(1)).default([]),
  /** Number of prompts to simulate for `world`. Default 256. */
  prompts: positiveInt.default(256),
  /** Share of pretraining captions that are wrong or partial, as web data is. Default 0.3. */
  captionNoise: probability.default(0.3),
  /** What to do with a bad row: skip it and count it, or fail the import. Default `fail`. */
  onBadRow: z.enum(['skip', 'fail']).default('fail'),
});
export type DataConfig = z.infer<typeof DataConfig>;

/** Expert ranking: score every (prompt, image) and keep the top K as demonstrations. */
export const RankingConfig = z.strictObject({
  /** Reward model used to rank. Default `preference` (the learned Bradley-Terry model). */
  rewardModel: z.enum(['preference', 'detector', 'onnx']).default('preference'),
  /** ONNX model URI when `rewardModel` is `onnx`. Default empty. */
  onnxModel: z.string().default(''),
  /** How many top-scored images become expert demonstrations (reference: 500). Default 500. */
  topK: positiveInt.default(500),
  /** Images scored and committed per shard; a restart resumes at the last committed shard. Default 64. */
  shardSize: positiveInt.default(64),
});
export type RankingConfig = z.infer<typeof RankingConfig>;

/** Optimizer and bookkeeping shared by SFT, DRO and DPO. */
const TrainingCommon = {
  /** Micro-steps (forward/backward passes) to run. */
  steps: positiveInt,
  /** AdamW learning rate, constant. Default 1e-4. */
  learningRate: z.number().gt(0).max(1).default(1e-4),
  /** AdamW weight decay. Default 1e-2. */
  weightDecay: z.number().min(0).max(1).default(1e-2),
  /** Micro-batch size. Default 4. */
  batchSize: positiveInt.default(4),
  /** Micro-steps accumulated per optimizer update. Default 16. */
  gradientAccumulation: positiveInt.default(16),
  /** Global gradient-norm clip. Default 1.0. */
  maxGradNorm: z.number().positive().default(1.0),
  /** Probability of replacing the prompt with "" (classifier-free guidance training). Default 0.2. */
  promptDropout: probability.default(0.2),
  /** Random horizontal flip of expert images. Default true. */
  randomFlip: z.boolean().default(true),
  /** EMA decay of the trained weights (the exported model). Default 0.9999. */
  emaDecay: z.number().min(0).lt(1).default(0.9999),
  /** Micro-steps between checkpoints; a multiple of gradientAccumulation. Default 1280. */
  checkpointEvery: positiveInt.default(1280),
  /** Micro-steps one activity runs before handing over to the next (history stays small). Default 1280. */
  stepsPerActivity: positiveInt.default(1280),
};

/**
 * Pretraining of the built-in world's base model (when `model.baseCheckpoint` is empty): plain
 * epsilon-prediction SFT from a seeded random UNet on a captioned corpus whose captions are partly
 * wrong (`data.captionNoise`). The defaults give a base model that draws recognizable shapes but
 * follows prompts only roughly: the misaligned starting point that alignment improves.
 */
export const PretrainConfig = z.strictObject({
  /** Micro-steps. Default 2000. */
  steps: positiveInt.default(2000),
  /** AdamW learning rate, constant. Default 1e-3 (a from-scratch run, not a fine-tune). */
  learningRate: z.number().gt(0).max(1).default(1e-3),
  /** Micro-batch size. Default 16. */
  batchSize: positiveInt.default(16),
  /** Micro-steps accumulated per optimizer update. Default 1. */
  gradientAccumulation: positiveInt.default(1),
  /** Micro-steps between checkpoints; a multiple of gradientAccumulation. Default 500. */
  checkpointEvery: positiveInt.default(500),
  /** Micro-steps one activity runs before handing over to the next. Default 500. */
  stepsPerActivity: positiveInt.default(500),
  /** Captioned images rendered for the corpus. Default 4000. */
  corpusSize: positiveInt.default(4000),
  /** EMA decay of the exported base weights. Default 0.999. */
  emaDecay: z.number().min(0).lt(1).default(0.999),
  /** Probability of an empty prompt, so the base model supports classifier-free guidance. Default 0.1. */
  promptDropout: probability.default(0.1),
});
export type PretrainConfig = z.infer<typeof PretrainConfig>;

export const SftConfig = z.strictObject({
  /** Run the SFT warm start before DRO. Default true. */
  enabled: z.boolean().default(true),
  ...TrainingCommon,
  steps: positiveInt.default(2000),
});
export type SftConfig = z.infer<typeof SftConfig>;

/** Diffusion-DRO fine-tuning (hinge ranking loss against online policy samples). */
export const DroConfig = z.strictObject({
  ...TrainingCommon,
  /** Reference: 25,600 micro-steps. */
  steps: positiveInt.default(25600),
  /** Hinge margin; the paper's ablation finds 1e-3 best. Default 1e-3. */
  margin: z.number().min(0).max(1).default(1e-3),
  /** Trajectories kept in the replay buffer. Default 4. */
  bufferSize: positiveInt.default(4),
  /** Trajectories sampled per buffer refill (one DPM-Solver++ batch). Default 4. */
  bufferBatchSize: positiveInt.default(4),
  /** Training steps between new batches of trajectories. Default 1. */
  bufferSampleSteps: positiveInt.default(1),
  /** Training steps between refreshes of the sampling policy from phi. Default 16. */
  bufferUpdateSteps: positiveInt.default(16),
  /** DPM-Solver++ steps per trajectory. Default 20. */
  samplerSteps: positiveInt.default(20),
  /** Guidance scale when sampling the buffer. Default 1.0. */
  bufferGuidanceScale: z.number().min(0).default(1.0),
});
export type DroConfig = z.infer<typeof DroConfig>;

/** Diffusion-DPO baseline on the preference pairs. */
export const DpoConfig = z.strictObject({
  /** Train the DPO baseline for comparison. Default false. */
  enabled: z.boolean().default(false),
  ...TrainingCommon,
  steps: positiveInt.default(2000),
  /** KL strength beta (diffusers example: 2500; SD1.5 paper runs up to 5000). Default 2500. */
  beta: z.number().positive().default(2500),
});
export type DpoConfig = z.infer<typeof DpoConfig>;

export const EvalConfig = z.strictObject({
  /** GenEval-style prompts evaluated. Default 96. */
  genevalPrompts: positiveInt.default(96),
  /** Images per GenEval prompt. Default 4. */
  imagesPerPrompt: positiveInt.default(4),
  /** Win-rate prompts. Default 64. */
  winratePrompts: positiveInt.default(64),
  /** Images per win-rate prompt; the median-reward one is kept. Default 5. */
  winrateSamples: positiveInt.default(5),
  /** Sampler steps for evaluation images. Default 20. */
  samplerSteps: positiveInt.default(20),
  /** Classifier-free guidance scale at evaluation. Default 7.5. */
  guidanceScale: z.number().min(0).default(7.5),
  /** Bootstrap resamples for confidence intervals. Default 10000. */
  bootstrapSamples: positiveInt.default(10000),
  /** Methods compared against the DRO model. Default base and SFT. */
  baselines: z.array(z.enum(['base', 'sft', 'dpo'])).default(['base', 'sft']),
});
export type EvalConfig = z.infer<typeof EvalConfig>;

export const UserStudyConfig = z.strictObject({
  /** Prompts in the exported study. Default 32. */
  prompts: positiveInt.default(32),
  /** Share of attention-check pairs with a known answer. Default 0.1. */
  attentionCheckRate: probability.default(0.1),
});
export type UserStudyConfig = z.infer<typeof UserStudyConfig>;

/** The whole pipeline: one file describes a reproducible run. */
export const PipelineConfig = z
  .strictObject({
    /** JSON Schema reference for editors; ignored by the pipeline. */
    $schema: z.string().optional(),
    /** Human-readable run name. Default `dro-run`. */
    name: z.string().min(1).default('dro-run'),
    /** Root seed; every RNG in the run derives from it. Default 0. */
    seed: nonNegativeInt.default(0),
    temporal: TemporalConfig.default(TemporalConfig.parse({})),
    storage: StorageConfig.default(StorageConfig.parse({ kind: 'local' })),
    workers: WorkersConfig.default(WorkersConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    data: DataConfig.default(DataConfig.parse({})),
    ranking: RankingConfig.default(RankingConfig.parse({})),
    pretrain: PretrainConfig.default(PretrainConfig.parse({})),
    sft: SftConfig.default(SftConfig.parse({})),
    dro: DroConfig.default(DroConfig.parse({})),
    dpo: DpoConfig.default(DpoConfig.parse({})),
    eval: EvalConfig.default(EvalConfig.parse({})),
    userStudy: UserStudyConfig.default(UserStudyConfig.parse({})),
  })
  .superRefine((config, ctx) => {
    if (config.data.source !== 'world' && config.data.paths.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'paths'],
        message: `data.source '${config.data.source}' needs at least one path`,
      });
    }
    if (config.ranking.rewardModel === 'onnx' && !config.ranking.onnxModel) {
      ctx.addIssue({
        code: 'custom',
        path: ['ranking', 'onnxModel'],
        message: "ranking.rewardModel 'onnx' needs ranking.onnxModel",
      });
    }
    for (const stage of ['pretrain', 'sft', 'dro', 'dpo'] as const) {
      const s = config[stage];
      // Checkpoints fall on optimizer-update boundaries so no half-accumulated gradient needs saving.
      for (const field of ['checkpointEvery', 'stepsPerActivity'] as const) {
        if (s[field] % s.gradientAccumulation !== 0) {
          ctx.addIssue({
            code: 'custom',
            path: [stage, field],
            message: `${stage}.${field} (${s[field]}) must be a multiple of ${stage}.gradientAccumulation (${s.gradientAccumulation})`,
          });
        }
      }
    }
  });
export type PipelineConfig = z.infer<typeof PipelineConfig>;
/** What a user writes: every field optional. */
export type PipelineConfigInput = z.input<typeof PipelineConfig>;
