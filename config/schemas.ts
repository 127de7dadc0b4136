/**
 * The pipeline configuration, schema first: every type is inferred from its zod schema, unknown
 * keys are rejected, and every default is written here once.
 *
 * Hyperparameter defaults are the Diffusion-DRO reference implementation's (docs/algorithm.md section 1).
 */
import { z } from 'zod';
import { UNET_CONFIGS } from '../engine/models/unet-config';
import { StorageConfig } from '../storage/config';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const probability = z.number().min(0).max(1);

/**
 * Upper bounds of every size in a config. They are far above any run this pipeline is meant for
 * (the paper's SD1.5 setting included) and far below what would exhaust memory or overflow a
 * timer before the first check inside a stage could catch it. `cli/preflight.ts` additionally
 * checks the memory a run will need against the machine.
 */
export const LIMITS = {
  /** Training micro-steps of one stage, and checkpoint / activity intervals. */
  steps: 10_000_000,
  /** Micro-batch size and samples per buffer refill. */
  batchSize: 1024,
  /** Micro-steps accumulated per optimizer update. */
  gradientAccumulation: 1024,
  /** Prompts simulated for the built-in world (two images each). */
  prompts: 100_000,
  /** Captioned images in the pretraining corpus. */
  corpusSize: 1_000_000,
  /** Expert demonstrations kept by the ranking. */
  topK: 1_000_000,
  /** Images per ranking shard. */
  shardSize: 100_000,
  /** Trajectories in the DRO replay buffer. */
  bufferSize: 1024,
  /** Sampler (DPM-Solver++, evaluation) steps per image. */
  samplerSteps: 1000,
  /** Classifier-free guidance scale. */
  guidanceScale: 100,
  /** Prompts of an evaluation or of the user study. */
  evalPrompts: 100_000,
  /** Images per evaluation prompt. */
  imagesPerPrompt: 64,
  /** Bootstrap resamples for confidence intervals. */
  bootstrapSamples: 1_000_000,
  /** Concurrent activities of one worker. */
  concurrency: 256,
  /** Seconds between heartbeats (an hour; the activity's heartbeat timeout derives from it). */
  heartbeatSeconds: 3600,
  /** Characters of the run name (the workflow id is `<name>-<runId>`; Temporal allows 1000). */
  nameLength: 200,
  /** Characters of a path or URI. */
  pathLength: 4096,
  /** Entries of `data.paths`. */
  paths: 10_000,
  /** Entries of `data.generators`. */
  generators: 64,
} as const;

/** Smallest image side at which the built-in world's detector (and so its rewards) work. */
export const MIN_WORLD_RESOLUTION = 16;

const count = (max: number) => positiveInt.max(max);
/** No C0/C1 control characters: names and paths are echoed into terminals and logs. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const printable = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !CONTROL_CHARS.test(s), { message: 'must not contain control characters' });
/** `host:port`, `[v6]:port`; port 1-65535. */
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/;
export function isHostPort(address: string): boolean {
  const m = HOST_PORT.exec(address);
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 65535;
}

/** Which Temporal cluster runs the pipeline. */
export const TemporalConfig = z
  .strictObject({
    /** `host:port` of an existing cluster; empty means the embedded dev server. Env TEMPORAL_ADDRESS wins. */
    address: z
      .string()
      .refine((a) => a === '' || isHostPort(a), {
        message: "must be '' (embedded server) or host:port, e.g. temporal.example.internal:7233",
      })
      .default(''),
    /** Temporal namespace. Default `default`. */
    namespace: printable(255).min(1).default('default'),
    /** gRPC port of the embedded dev server; 0 picks a free one. Default 7233. */
    embeddedPort: z.number().int().min(0).max(65535).default(7233),
    /** Web UI port of the embedded dev server. Default 8233. */
    embeddedUiPort: z.number().int().min(0).max(65535).default(8233),
    // The connection settings below have no defaults: a config without them keeps its parsed form.
    /**
     * Connect with TLS. Env TEMPORAL_TLS wins. Default: on when a certificate, CA, server name or
     * API key is set, off otherwise.
     */
    tls: z.boolean().optional(),
    /** Name the server's certificate is checked against (SNI). Env TEMPORAL_TLS_SERVER_NAME wins. Default: the address's host. */
    serverName: printable(253).min(1).optional(),
    /** PEM file of the CA that issued the server's certificate. Env TEMPORAL_TLS_SERVER_CA_CERT_PATH wins. Default: system CAs. */
    serverCaCertPath: printable(LIMITS.pathLength).min(1).optional(),
    /** PEM client certificate for mutual TLS. Env TEMPORAL_TLS_CLIENT_CERT_PATH wins. */
    clientCertPath: printable(LIMITS.pathLength).min(1).optional(),
    /** PEM private key of `clientCertPath`. Env TEMPORAL_TLS_CLIENT_KEY_PATH wins. */
    clientKeyPath: printable(LIMITS.pathLength).min(1).optional(),
    /**
     * Name of the environment variable holding the API key, never the key itself (a config travels
     * into the run's history and manifest). Env TEMPORAL_API_KEY wins.
     */
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, {
        message:
          'must be the name of an environment variable holding the API key (e.g. TEMPORAL_CLOUD_API_KEY), never the key itself',
      })
      .optional(),
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
  gpuConcurrency: count(LIMITS.concurrency).default(1),
  /** I/O activities one worker runs at once. Default 4. */
  cpuConcurrency: count(LIMITS.concurrency).default(4),
  /** Seconds between activity heartbeats, at most 3600. Default 10. */
  heartbeatSeconds: z.number().positive().max(LIMITS.heartbeatSeconds).default(10),
  /**
   * Runtime of UNet sampling (generation, DRO buffer refills): `onnx` (onnxruntime-node on the CPU),
   * `onnx-cuda` (onnxruntime-node on an NVIDIA GPU, built by tools/gpu-backend/build.sh; docs/gpu.md),
   * `tfjs` (the `backend` above), or `auto` (onnx when onnxruntime-node loads; never `onnx-cuda`).
   * `DRO_INFERENCE_RUNTIME` overrides it. Default `auto`.
   */
  inferenceRuntime: z.enum(['auto', 'tfjs', 'onnx', 'onnx-cuda']).default('auto'),
  /**
   * Intra-op threads of the ONNX Runtime sessions (all their operators on the CPU, those the GPU
   * does not run with `onnx-cuda`) and of the native TensorFlow backend (TF_NUM_INTRAOP_THREADS, when
   * not already set). `DRO_INFERENCE_THREADS` overrides it for ONNX. Lower it when several workers
   * share a machine. Default: the cores available to the process (`os.availableParallelism()`).
   */
  threads: count(1024).optional(),
  /**
   * `host:port` on which `dro worker` and `dro run` serve Prometheus metrics at `/metrics`
   * (docs/metrics.md); `--metrics` wins. No default: metrics are off unless set.
   */
  metricsAddress: z
    .string()
    .max(300)
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, {
      message: 'must be host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464',
    })
    .optional(),
});
export type WorkersConfig = z.infer<typeof WorkersConfig>;

/** The denoising network: a named ready configuration of the UNet. */
export const ModelConfig = z.strictObject({
  /** UNet configuration: `tiny` (tests), `demo` (the built-in world on CPU), `sd15`. Default `demo`. */
  unet: z.enum(['tiny', 'demo', 'sd15']).default('demo'),
  /** Base checkpoint (safetensors URI); empty means pretrain one on the built-in world. Default empty. */
  baseCheckpoint: printable(LIMITS.pathLength).default(''),
  /**
   * SHA-256 (64 hex digits) the `baseCheckpoint` bundle file must have; checked before anything
   * trains, so a replaced or corrupted base is refused instead of silently aligned. Optional.
   */
  baseCheckpointSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a SHA-256)')
    .optional(),
  /** Image side in pixels for the built-in world. Default 16. */
  resolution: z.number().int().min(8).max(1024).default(16),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

/** Degradations of the built-in world's stand-in generator (engine/world/perturb.ts); `clean`: none. */
export const STAND_IN_LEVELS = ['clean', 'mild', 'moderate', 'strong'] as const;

const generatorCommon = {
  /** What the preference set's `model_0` / `model_1` columns say for this generator's images. */
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
      'letters, digits, ".", "_" and "-", starting with a letter or digit',
    ),
  /** Relative weight of the generator in the pool: each image of a comparison is drawn by share. */
  share: z.number().min(0).max(1e6),
};

/**
 * One generator of the built-in world's pool (`data.generators`), as Pick-a-Pic mixes several
 * models: `base`, the run's base model; `stand-in`, the world's scene renderer with its failure
 * rate and degradations (engine/world/world-generator.ts); `bundle`, a model bundle file sampled
 * like the base. docs/world.md has a stronger and a weaker stand-in.
 */
export const GeneratorConfig = z.discriminatedUnion('kind', [
  z.strictObject({ ...generatorCommon, kind: z.literal('base') }),
  z.strictObject({
    ...generatorCommon,
    kind: z.literal('stand-in'),
    /** Probability of drawing a scene for another prompt (a misaligned image). Default 0.5. */
    pWrong: probability.default(0.5),
    /** Degradations drawn uniformly per image. Default all four. */
    levels: z
      .array(z.enum(STAND_IN_LEVELS))
      .min(1)
      .max(16)
      .default([...STAND_IN_LEVELS]),
    /** Probability of an extra object the prompt did not ask for. Default 0. */
    distractorProb: probability.default(0),
  }),
  z.strictObject({
    ...generatorCommon,
    kind: z.literal('bundle'),
    /** A pixel-space model bundle (`.safetensors`, path or URI) at the base model's image size. */
    path: printable(LIMITS.pathLength).min(1),
  }),
]);
export type GeneratorConfig = z.infer<typeof GeneratorConfig>;

/** Where the preference data comes from. */
export const DataConfig = z.strictObject({
  /** `world`: simulate implicit feedback in the built-in world; `pickapic`: parquet shards; `folder`: caption/image pairs. Default `world`. */
  source: z.enum(['world', 'pickapic', 'folder']).default('world'),
  /** Parquet shards or folder (URIs or paths) for `pickapic` / `folder`. Default none. */
  paths: z.array(printable(LIMITS.pathLength).min(1)).max(LIMITS.paths).default([]),
  /** Number of prompts to simulate for `world` (two images each), at most 100,000. Default 256. */
  prompts: count(LIMITS.prompts).default(256),
  /** Share of pretraining captions that are wrong or partial, as web data is. Default 0.3. */
  captionNoise: probability.default(0.3),
  /** What to do with a bad row: skip it and count it, or fail the import. Default `fail`. */
  onBadRow: z.enum(['skip', 'fail']).default('fail'),
  /** DPM-Solver++ steps of the simulated preference images (`world`), at most 1000. Default 20. */
  samplerSteps: count(LIMITS.samplerSteps).default(20),
  /** Guidance scale of the simulated preference images (`world`), at most 100. Default 7.5. */
  guidanceScale: z.number().min(0).max(LIMITS.guidanceScale).default(7.5),
  /**
   * The pool the compared images of `world` come from, each image drawn by share (docs/world.md).
   * Absent (the default): both images of every comparison from the base model.
   */
  generators: z.array(GeneratorConfig).min(1).max(LIMITS.generators).optional(),
  /**
   * `hash`: the world's prompts are split once into training and held-out prompts (per tag, by a
   * hash of the text, docs/world.md); the simulated comparisons use training prompts only, so every
   * tag keeps held-out prompts for the evaluation however many comparisons are asked for. Absent or
   * `none` (the default): prompts drawn from the whole world, as before.
   */
  promptSplit: z.enum(['none', 'hash']).optional(),
});
export type DataConfig = z.infer<typeof DataConfig>;

/** Expert ranking: score every (prompt, image) and keep the top K as demonstrations. */
export const RankingConfig = z.strictObject({
  /** Reward model used to rank. Default `preference` (the learned Bradley-Terry model). */
  rewardModel: z.enum(['preference', 'detector', 'onnx']).default('preference'),
  /**
   * The reward model when `rewardModel` is `onnx`: one `.onnx` file (path or URI; image-only
   * contract), or a local CLIP-style folder (`model.onnx` taking pixel_values and input_ids, with
   * `preprocessor_config.json`, `vocab.json`, `merges.txt`). Default empty.
   */
  onnxModel: printable(LIMITS.pathLength).default(''),
  /**
   * Starting weights of the `preference` model (path or URI of a safetensors file, as
   * `tools/pretrain-preference.ts` writes it): the pairs fine-tune a model pretrained on captioned
   * scenes instead of training one from scratch. Empty trains from scratch. Default empty.
   */
  preferenceInit: printable(LIMITS.pathLength).default(''),
  /** SHA-256 (64 hex digits) `preferenceInit` must have; checked before anything trains. Optional. */
  preferenceInitSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a SHA-256)')
    .optional(),
  /** How many top-scored images become expert demonstrations (reference: 500), at most 1,000,000. Default 500. */
  topK: count(LIMITS.topK).default(500),
  /**
   * At most this many experts of one prompt. Reward scores are not comparable across prompts, so
   * a global top K can fill with the prompts that are easy to get right; a cap spreads the experts
   * over the prompts. Absent (the default): the global top K, as the reference ranks.
   */
  maxPerPrompt: count(LIMITS.topK).optional(),
  /** Images scored and committed per shard; a restart resumes at the last committed shard. At most 100,000. Default 64. */
  shardSize: count(LIMITS.shardSize).default(64),
});
export type RankingConfig = z.infer<typeof RankingConfig>;

/** Optimizer and bookkeeping shared by SFT, DRO and DPO. */
const TrainingCommon = {
  /** Micro-steps (forward/backward passes) to run, at most 10,000,000. */
  steps: count(LIMITS.steps),
  /** AdamW learning rate, constant. Default 1e-4. */
  learningRate: z.number().gt(0).max(1).default(1e-4),
  /** AdamW weight decay. Default 1e-2. */
  weightDecay: z.number().min(0).max(1).default(1e-2),
  /** Micro-batch size, at most 1024. Default 4. */
  batchSize: count(LIMITS.batchSize).default(4),
  /** Micro-steps accumulated per optimizer update, at most 1024. Default 16. */
  gradientAccumulation: count(LIMITS.gradientAccumulation).default(16),
  /**
   * Global gradient-norm clip, at most 1e6; 0 turns clipping off (the norm is still logged as
   * `gradNorm`). The reference implementation never clips in effect: its `clip_grad_norm_` receives
   * a parameter iterator the optimizer's constructor has already consumed. Default 1.0.
   */
  maxGradNorm: z.number().min(0).max(1e6).default(1.0),
  /**
   * Number format of the trained state. `bf16` emulates the reference's pure-bf16 training (every
   * network loaded in bf16, no float32 master copy): after every micro-step the accumulated
   * gradient, and after every update the weights, AdamW moments and EMA shadows, are bfloat16 values
   * (round to nearest even, each AdamW/EMA operation rounded as torch rounds it); the frozen
   * networks' predictions and DRO's Le0/Lp0 are rounded to bf16, and noise is added in bf16. An
   * update smaller than half a bf16 ulp of a weight is rounded away, an implicit trust region.
   * phi's own forward and backward stay float32. Absent: `fp32`.
   */
  precision: z.enum(['fp32', 'bf16']).optional(),
  /** Probability of replacing the prompt with "" (classifier-free guidance training). Default 0.2. */
  promptDropout: probability.default(0.2),
  /** Random horizontal flip of expert images. Default true. */
  randomFlip: z.boolean().default(true),
  /** EMA decay of the trained weights (the exported model). Default 0.9999. */
  emaDecay: z.number().min(0).lt(1).default(0.9999),
  /** Micro-steps between checkpoints; a multiple of gradientAccumulation. Default 1280. */
  checkpointEvery: count(LIMITS.steps).default(1280),
  /** Micro-steps one activity runs before handing over to the next (history stays small). Default 1280. */
  stepsPerActivity: count(LIMITS.steps).default(1280),
};

/**
 * Pretraining of the built-in world's base model (when `model.baseCheckpoint` is empty): plain
 * epsilon-prediction SFT from a seeded random UNet on a captioned corpus whose captions are partly
 * wrong (`data.captionNoise`). The defaults give a base model that draws recognizable shapes but
 * follows prompts only roughly: the misaligned starting point that alignment improves.
 */
export const PretrainConfig = z.strictObject({
  /** Micro-steps, at most 10,000,000. Default 2000. */
  steps: count(LIMITS.steps).default(2000),
  /** AdamW learning rate, constant. Default 1e-3 (a from-scratch run, not a fine-tune). */
  learningRate: z.number().gt(0).max(1).default(1e-3),
  /** Micro-batch size, at most 1024. Default 16. */
  batchSize: count(LIMITS.batchSize).default(16),
  /** Micro-steps accumulated per optimizer update, at most 1024. Default 1. */
  gradientAccumulation: count(LIMITS.gradientAccumulation).default(1),
  /** Micro-steps between checkpoints; a multiple of gradientAccumulation. Default 500. */
  checkpointEvery: count(LIMITS.steps).default(500),
  /** Micro-steps one activity runs before handing over to the next. Default 500. */
  stepsPerActivity: count(LIMITS.steps).default(500),
  /** Captioned images rendered for the corpus, at most 1,000,000. Default 4000. */
  corpusSize: count(LIMITS.corpusSize).default(4000),
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
  steps: count(LIMITS.steps).default(2000),
});
export type SftConfig = z.infer<typeof SftConfig>;

/** Diffusion-DRO fine-tuning (hinge ranking loss against online policy samples). */
export const DroConfig = z.strictObject({
  ...TrainingCommon,
  /**
   * The model DRO fine-tunes, which is also its frozen reference and its first policy: the base
   * ('base'), as the reference implementation loads all three networks from the base model, or the
   * SFT model when SFT runs ('sft', a warm start). Default 'base'.
   */
  warmStart: z.enum(['sft', 'base']).default('base'),
  /** Reference: 25,600 micro-steps. */
  steps: count(LIMITS.steps).default(25600),
  /** Hinge margin; the paper's ablation finds 1e-3 best. Default 1e-3. */
  margin: z.number().min(0).max(1).default(1e-3),
  /** Trajectories kept in the replay buffer, at most 1024. Default 4. */
  bufferSize: count(LIMITS.bufferSize).default(4),
  /** Trajectories sampled per buffer refill (one DPM-Solver++ batch), at most 1024. Default 4. */
  bufferBatchSize: count(LIMITS.batchSize).default(4),
  /**
   * Training steps between new batches of trajectories. The reference's 1 with a buffer of 4 and
   * batches of 4 replaces the whole buffer every micro-step: every policy sample is fresh. Default 1.
   */
  bufferSampleSteps: count(LIMITS.steps).default(1),
  /**
   * How a micro-step draws its batch from the buffer: `without-replacement` takes a random
   * permutation of the trajectories (the reference's `randperm`), so a batch that fits in the
   * buffer sees each trajectory once, each at its own uniform step; `with-replacement` draws every
   * example's trajectory independently. Absent: `with-replacement`.
   */
  bufferDraw: z.enum(['with-replacement', 'without-replacement']).optional(),
  /**
   * Micro-steps between refreshes of the sampling policy from phi. Default 16, which with the
   * default accumulation of 16 refreshes it after every optimizer update; keep the two equal
   * (docs/algorithm.md section 1).
   */
  bufferUpdateSteps: count(LIMITS.steps).default(16),
  /** Solver steps per trajectory, at most 1000. Default 20. */
  samplerSteps: count(LIMITS.samplerSteps).default(20),
  /**
   * Sampler of the buffer's policy trajectories: 'dpm-solver++' (order 2, few steps) or 'ddpm'
   * (ancestral, typically 50 steps), for comparing quality per hour of training. Default 'dpm-solver++'.
   */
  bufferSampler: z.enum(['dpm-solver++', 'ddpm']).default('dpm-solver++'),
  /** Guidance scale when sampling the buffer, at most 100. Default 1.0. */
  bufferGuidanceScale: z.number().min(0).max(LIMITS.guidanceScale).default(1.0),
});
export type DroConfig = z.infer<typeof DroConfig>;

/** Diffusion-DPO baseline on the preference pairs. */
export const DpoConfig = z.strictObject({
  /** Train the DPO baseline for comparison. Default false. */
  enabled: z.boolean().default(false),
  ...TrainingCommon,
  steps: count(LIMITS.steps).default(2000),
  /**
   * The model DPO fine-tunes, which is also its frozen reference: the base, or the SFT model when
   * SFT runs ('sft', the paper's "DPO w/ SFT" baseline; DPO then waits for SFT). Absent: the base.
   */
  warmStart: z.enum(['sft', 'base']).optional(),
  /** KL strength beta (diffusers example: 2500; SD1.5 paper runs up to 5000). Default 2500. */
  beta: z.number().positive().max(1e6).default(2500),
});
export type DpoConfig = z.infer<typeof DpoConfig>;

export const EvalConfig = z.strictObject({
  /** Evaluate the trained models (GenEval accuracy, win rates) after training. Default true. */
  enabled: z.boolean().default(true),
  /** GenEval-style prompts evaluated, at most 100,000. Default 96. */
  genevalPrompts: count(LIMITS.evalPrompts).default(96),
  /** Images per GenEval prompt, at most 64. Default 4. */
  imagesPerPrompt: count(LIMITS.imagesPerPrompt).default(4),
  /** Win-rate prompts, at most 100,000. Default 64. */
  winratePrompts: count(LIMITS.evalPrompts).default(64),
  /** Images per win-rate prompt; the median-reward one is kept. At most 64. Default 5. */
  winrateSamples: count(LIMITS.imagesPerPrompt).default(5),
  /** Sampler steps for evaluation images, at most 1000. Default 20. */
  samplerSteps: count(LIMITS.samplerSteps).default(20),
  /** Classifier-free guidance scale at evaluation, at most 100. Default 7.5. */
  guidanceScale: z.number().min(0).max(LIMITS.guidanceScale).default(7.5),
  /** Bootstrap resamples for confidence intervals, at most 1,000,000. Default 10000. */
  bootstrapSamples: count(LIMITS.bootstrapSamples).default(10000),
  /**
   * Methods the DRO model is compared against; the first one the run evaluates is the baseline of
   * the GenEval significance marks in the report. Default base and SFT.
   */
  baselines: z.array(z.enum(['base', 'sft', 'dpo'])).default(['base', 'sft']),
  /** Images per evaluation shard activity (shards spread over the compute workers), at most 4096. Default 32. */
  shardSize: count(4096).default(32),
});
export type EvalConfig = z.infer<typeof EvalConfig>;

export const UserStudyConfig = z.strictObject({
  /** Prompts in the exported study, at most 100,000. Default 32. */
  prompts: count(LIMITS.evalPrompts).default(32),
  /** Share of attention-check pairs with a known answer. Default 0.1. */
  attentionCheckRate: probability.default(0.1),
  /**
   * `dro study import` flags a participant whose median time per answer is below this many
   * milliseconds as implausibly fast (`--min-median-ms` wins). Default 800 when absent.
   */
  minMedianAnswerMs: z.number().int().min(0).max(600_000).optional(),
});
export type UserStudyConfig = z.infer<typeof UserStudyConfig>;

/** The whole pipeline: one file describes a reproducible run. */
export const PipelineConfig = z
  .strictObject({
    /** JSON Schema reference for editors; ignored by the pipeline. */
    $schema: z.string().optional(),
    /** Human-readable run name (it starts the workflow id), at most 200 characters. Default `dro-run`. */
    name: printable(LIMITS.nameLength).min(1).default('dro-run'),
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
    if (config.model.baseCheckpointSha256 && !config.model.baseCheckpoint) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'baseCheckpointSha256'],
        message:
          'model.baseCheckpointSha256 is set but model.baseCheckpoint is empty: name the bundle it checks',
      });
    }
    if (config.data.source !== 'world' && !config.model.baseCheckpoint) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'baseCheckpoint'],
        message: `data.source '${config.data.source}' needs model.baseCheckpoint: only the built-in world (data.source 'world') can pretrain its own base model`,
      });
    }
    if (config.data.source === 'world' && !config.model.baseCheckpoint) {
      // The built-in world pretrains in RGB pixel space at model.resolution.
      const unet = UNET_CONFIGS[config.model.unet];
      if (unet.in_channels !== 3) {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'unet'],
          message: `model.unet '${config.model.unet}' takes ${unet.in_channels}-channel latents; the built-in world trains in RGB pixel space: use 'demo' (or give model.baseCheckpoint)`,
        });
      }
      const factor = 2 ** (unet.block_out_channels.length - 1);
      if (config.model.resolution < MIN_WORLD_RESOLUTION || config.model.resolution % factor !== 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'resolution'],
          message: `model.resolution ${config.model.resolution}: the built-in world needs at least ${MIN_WORLD_RESOLUTION} px, divisible by ${factor} for model.unet '${config.model.unet}'`,
        });
      }
      const images = 2 * config.data.prompts;
      if (config.ranking.topK > images) {
        ctx.addIssue({
          code: 'custom',
          path: ['ranking', 'topK'],
          message: `ranking.topK (${config.ranking.topK}) is more than the ${images} images the run will have (2 per prompt, data.prompts ${config.data.prompts})`,
        });
      }
    }
    if (config.data.source !== 'world') {
      for (const field of ['generators', 'promptSplit'] as const) {
        if (config.data[field] !== undefined && config.data[field] !== 'none')
          ctx.addIssue({
            code: 'custom',
            path: ['data', field],
            message: `data.${field} shapes the built-in world's simulated comparisons; data.source '${config.data.source}' has none: remove it`,
          });
      }
    }
    if (config.data.generators) {
      const generators = config.data.generators;
      const seen = new Map<string, number>();
      generators.forEach((g, i) => {
        const first = seen.get(g.name);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['data', 'generators', i, 'name'],
            message: `data.generators[${i}].name '${g.name}' repeats data.generators[${first}].name: generator names label the images and must differ`,
          });
        else seen.set(g.name, i);
      });
      const total = generators.reduce((a, g) => a + g.share, 0);
      if (!(total > 0))
        ctx.addIssue({
          code: 'custom',
          path: ['data', 'generators'],
          message: `data.generators: the shares sum to ${total}; give at least one generator a positive share`,
        });
    }
    if (config.data.source === 'folder') {
      if (config.data.paths.length > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['data', 'paths'],
          message: `data.source 'folder' takes exactly one folder, got ${config.data.paths.length}`,
        });
      }
      if (config.ranking.rewardModel === 'preference') {
        ctx.addIssue({
          code: 'custom',
          path: ['ranking', 'rewardModel'],
          message:
            "ranking.rewardModel 'preference' learns from preference pairs, which a caption folder (data.source 'folder') does not have: use 'detector' or 'onnx'",
        });
      }
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
