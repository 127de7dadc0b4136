/**
 * zod schemas of the JSON files in a diffusers Stable Diffusion pipeline folder, each mapped to the
 * engine's config type.
 *
 * Every field a file may hold falls in one of three groups:
 * - used: read into the engine's config (e.g. `block_out_channels`);
 * - fixed: the engine implements one value (diffusers' default, what SD1.5 ships); any other value
 *   is an error naming the field, e.g. `act_fn` must be "silu";
 * - ignored: does not change the computation here (bookkeeping such as `_diffusers_version`, or an
 *   inference-only sampler option, since the pipeline samples with its own solver).
 * A field in none of the groups is an error, so a config that asks for something the engine would
 * silently get wrong is refused before any weight is read.
 */
import { z } from 'zod';
import type { NoiseScheduleConfig } from '../schedulers/ddpm-schedule';
import type { TextEncoderConfig } from '../models/text-encoder';
import type { UNetConfig } from '../models/unet-config';
import type { VaeConfig } from '../models/vae-config';

/** A config file of the folder is missing, malformed or asks for something unsupported. */
export class DiffusersFolderError extends Error {
  override name = 'DiffusersFolderError';
  readonly type = 'DiffusersFolderError';
}

const int = z.number().int();
const posInt = int.positive();
const anything = z.unknown().optional();

/** A field the engine implements at one value only; absent means diffusers' default, the same one. */
function fixed<T extends string | number | boolean | null>(value: T) {
  return z
    .unknown()
    .refine((v) => v === undefined || v === value, {
      message: `unsupported value (the engine implements ${JSON.stringify(value)})`,
    })
    .optional();
}

/** Like `fixed`, for a field that may also be a per-block list of that value. */
function fixedOrList<T extends number | boolean>(value: T) {
  return z
    .unknown()
    .refine((v) => v === undefined || v === value || (Array.isArray(v) && v.every((x) => x === value)), {
      message: `unsupported value (the engine implements ${JSON.stringify(value)})`,
    })
    .optional();
}

/** Keys starting with `_` (`_class_name`, `_diffusers_version`, `_name_or_path`) are bookkeeping. */
function withoutPrivate(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith('_')));
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * Validates a parsed JSON value against `schema`; every problem goes into one error that names
 * `file` and each field (unknown fields by name, others with the value found).
 */
export function parseConfigFile<S extends z.ZodType>(schema: S, json: unknown, file: string): z.output<S> {
  const input = withoutPrivate(json);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    }
    const at = pathOf(issue.path);
    const found = valueAt(input, issue.path);
    const shown = found === undefined ? 'missing' : JSON.stringify(found);
    return `field '${at}' (${shown}): ${issue.message}`;
  });
  throw new DiffusersFolderError(`${file}: ${problems.join('; ')}`);
}

/** JSON text of a config file -> value; errors name the file. */
export function parseJsonFile(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DiffusersFolderError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

// ---- model_index.json ------------------------------------------------------------------------

/** `[library, class]`, or `[null, null]` for an optional component left out. */
const componentEntry = z.tuple([z.string().nullable(), z.string().nullable()]);

export const SUPPORTED_PIPELINES = ['StableDiffusionPipeline'] as const;

/** Component -> the library classes the engine loads for it. */
export const SUPPORTED_COMPONENTS = {
  unet: [['diffusers', 'UNet2DConditionModel']],
  vae: [['diffusers', 'AutoencoderKL']],
  text_encoder: [['transformers', 'CLIPTextModel']],
  tokenizer: [
    ['transformers', 'CLIPTokenizer'],
    ['transformers', 'CLIPTokenizerFast'],
  ],
  scheduler: [['diffusers', '*']],
} as const;

export type ComponentName = keyof typeof SUPPORTED_COMPONENTS;
export const COMPONENT_NAMES = Object.keys(SUPPORTED_COMPONENTS) as ComponentName[];

export const ModelIndexSchema = z.strictObject({
  unet: componentEntry,
  vae: componentEntry,
  text_encoder: componentEntry,
  tokenizer: componentEntry,
  scheduler: componentEntry,
  // Components the engine does not use: the safety checker and its image processor.
  safety_checker: componentEntry.optional(),
  feature_extractor: componentEntry.optional(),
  image_encoder: componentEntry.optional(),
  requires_safety_checker: z.boolean().optional(),
});
export type ModelIndex = z.output<typeof ModelIndexSchema> & { _class_name: string };

/** Parses model_index.json: a supported pipeline class and, per component, a supported class. */
export function parseModelIndex(json: unknown, file: string): ModelIndex {
  const cls = (json as { _class_name?: unknown } | null)?._class_name;
  if (typeof cls !== 'string' || !(SUPPORTED_PIPELINES as readonly string[]).includes(cls)) {
    throw new DiffusersFolderError(
      `${file}: field '_class_name' (${JSON.stringify(cls)}): unsupported pipeline (supported: ${SUPPORTED_PIPELINES.join(', ')})`,
    );
  }
  const missing = COMPONENT_NAMES.filter((c) => (json as Record<string, unknown>)[c] === undefined);
  if (missing.length) {
    throw new DiffusersFolderError(
      `${file}: missing component(s) ${missing.map((m) => `'${m}'`).join(', ')}`,
    );
  }
  const index = parseConfigFile(ModelIndexSchema, json, file);
  for (const name of COMPONENT_NAMES) {
    const [lib, klass] = index[name];
    const ok = SUPPORTED_COMPONENTS[name].some(([l, k]) => l === lib && (k === '*' || k === klass));
    if (!ok) {
      const want = SUPPORTED_COMPONENTS[name].map(([l, k]) => `${l}.${k}`).join(' or ');
      throw new DiffusersFolderError(
        `${file}: field '${name}' (${JSON.stringify(index[name])}): unsupported class (supported: ${want})`,
      );
    }
  }
  return { ...index, _class_name: cls };
}

// ---- unet/config.json ------------------------------------------------------------------------

const sampleSize = z.union([posInt, z.tuple([posInt, posInt])]);

export const UNetConfigSchema = z.strictObject({
  in_channels: posInt,
  out_channels: posInt,
  block_out_channels: z.array(posInt).min(1),
  layers_per_block: posInt,
  down_block_types: z.array(z.enum(['CrossAttnDownBlock2D', 'DownBlock2D'])),
  up_block_types: z.array(z.enum(['CrossAttnUpBlock2D', 'UpBlock2D'])),
  cross_attention_dim: posInt,
  attention_head_dim: z.union([posInt, z.array(posInt)]),
  /** When set, diffusers takes the head count from here instead of attention_head_dim. */
  num_attention_heads: z
    .union([posInt, z.array(posInt)])
    .nullable()
    .optional(),
  norm_num_groups: posInt,
  sample_size: sampleSize,
  // fixed
  act_fn: fixed('silu'),
  center_input_sample: fixed(false),
  flip_sin_to_cos: fixed(true),
  freq_shift: fixed(0),
  downsample_padding: fixed(1),
  mid_block_scale_factor: fixed(1),
  mid_block_type: fixed('UNetMidBlock2DCrossAttn'),
  norm_eps: fixed(1e-5),
  only_cross_attention: fixedOrList(false),
  dual_cross_attention: fixed(false),
  use_linear_projection: fixed(false),
  class_embed_type: fixed(null),
  addition_embed_type: fixed(null),
  num_class_embeds: fixed(null),
  resnet_time_scale_shift: fixed('default'),
  resnet_skip_time_act: fixed(false),
  resnet_out_scale_factor: fixed(1),
  time_embedding_type: fixed('positional'),
  time_embedding_dim: fixed(null),
  time_embedding_act_fn: fixed(null),
  timestep_post_act: fixed(null),
  time_cond_proj_dim: fixed(null),
  conv_in_kernel: fixed(3),
  conv_out_kernel: fixed(3),
  projection_class_embeddings_input_dim: fixed(null),
  attention_type: fixed('default'),
  class_embeddings_concat: fixed(false),
  mid_block_only_cross_attention: fixed(null),
  cross_attention_norm: fixed(null),
  encoder_hid_dim: fixed(null),
  encoder_hid_dim_type: fixed(null),
  addition_time_embed_dim: fixed(null),
  transformer_layers_per_block: fixedOrList(1),
  reverse_transformer_layers_per_block: fixed(null),
  dropout: fixed(0),
  // ignored: attention in float32 is already "upcast"; the head count of addition embeddings only
  // matters with addition_embed_type; the rest is what diffusers' EMA helper adds when saving.
  upcast_attention: z.boolean().optional(),
  addition_embed_type_num_heads: anything,
  decay: anything,
  inv_gamma: anything,
  min_decay: anything,
  optimization_step: anything,
  power: anything,
  update_after_step: anything,
  use_ema_warmup: anything,
});

/** unet/config.json -> the engine's UNet config (head counts resolved as diffusers does). */
export function unetConfigFrom(json: unknown, file: string): UNetConfig {
  const c = parseConfigFile(UNetConfigSchema, json, file);
  const size = c.sample_size;
  if (Array.isArray(size) && size[0] !== size[1]) {
    throw new DiffusersFolderError(
      `${file}: field 'sample_size' (${JSON.stringify(size)}): only square samples`,
    );
  }
  return {
    in_channels: c.in_channels,
    out_channels: c.out_channels,
    block_out_channels: c.block_out_channels,
    layers_per_block: c.layers_per_block,
    down_block_types: c.down_block_types,
    up_block_types: c.up_block_types,
    cross_attention_dim: c.cross_attention_dim,
    attention_head_dim: c.num_attention_heads ?? c.attention_head_dim,
    norm_num_groups: c.norm_num_groups,
    sample_size: Array.isArray(size) ? size[0] : size,
  };
}

// ---- vae/config.json -------------------------------------------------------------------------

export const VaeConfigSchema = z.strictObject({
  in_channels: posInt.default(3),
  out_channels: posInt.default(3),
  down_block_types: z.array(z.literal('DownEncoderBlock2D')),
  up_block_types: z.array(z.literal('UpDecoderBlock2D')),
  block_out_channels: z.array(posInt).min(1),
  layers_per_block: posInt.default(1),
  latent_channels: posInt.default(4),
  norm_num_groups: posInt.default(32),
  sample_size: sampleSize.default(32),
  scaling_factor: z.number().positive().default(0.18215),
  shift_factor: z.number().nullable().default(null),
  use_quant_conv: z.boolean().default(true),
  use_post_quant_conv: z.boolean().default(true),
  mid_block_add_attention: z.boolean().default(true),
  // fixed
  act_fn: fixed('silu'),
  // ignored: statistics some VAEs publish for their latents, and a precision hint for fp16 runs.
  latents_mean: anything,
  latents_std: anything,
  force_upcast: z.boolean().optional(),
});

/** vae/config.json -> the engine's VAE config, `scaling_factor` included. */
export function vaeConfigFrom(json: unknown, file: string): VaeConfig {
  const c = parseConfigFile(VaeConfigSchema, json, file);
  const size = c.sample_size;
  if (Array.isArray(size) && size[0] !== size[1]) {
    throw new DiffusersFolderError(
      `${file}: field 'sample_size' (${JSON.stringify(size)}): only square samples`,
    );
  }
  return {
    in_channels: c.in_channels,
    out_channels: c.out_channels,
    down_block_types: c.down_block_types,
    up_block_types: c.up_block_types,
    block_out_channels: c.block_out_channels,
    layers_per_block: c.layers_per_block,
    latent_channels: c.latent_channels,
    norm_num_groups: c.norm_num_groups,
    sample_size: Array.isArray(size) ? size[0] : size,
    scaling_factor: c.scaling_factor,
    shift_factor: c.shift_factor,
    use_quant_conv: c.use_quant_conv,
    use_post_quant_conv: c.use_post_quant_conv,
    mid_block_add_attention: c.mid_block_add_attention,
  };
}

// ---- text_encoder/config.json (transformers) -------------------------------------------------

export const TextEncoderConfigSchema = z.strictObject({
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  max_position_embeddings: posInt,
  layer_norm_eps: z.number().positive().default(1e-5),
  hidden_act: z.enum(['quick_gelu', 'gelu']).default('quick_gelu'),
  // fixed
  model_type: fixed('clip_text_model'),
  architectures: z
    .unknown()
    .refine(
      (v) =>
        v === undefined || v === null || (Array.isArray(v) && v.length === 1 && v[0] === 'CLIPTextModel'),
      {
        message: 'unsupported value (the engine loads ["CLIPTextModel"])',
      },
    )
    .optional(),
  // ignored: dropout only acts in training and the text encoder is frozen; token ids of the
  // specials come from the tokenizer; projection_dim sizes a head CLIPTextModel does not have.
  attention_dropout: anything,
  dropout: anything,
  bos_token_id: anything,
  eos_token_id: anything,
  pad_token_id: anything,
  initializer_factor: anything,
  initializer_range: anything,
  projection_dim: anything,
  torch_dtype: anything,
  dtype: anything,
  transformers_version: anything,
  output_attentions: anything,
  output_hidden_states: anything,
  return_dict: anything,
  use_cache: anything,
  tie_word_embeddings: anything,
});

/** text_encoder/config.json -> the engine's text encoder config. */
export function textEncoderConfigFrom(json: unknown, file: string): TextEncoderConfig {
  const c = parseConfigFile(TextEncoderConfigSchema, json, file);
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new DiffusersFolderError(
      `${file}: field 'hidden_size' (${c.hidden_size}) is not divisible by num_attention_heads ${c.num_attention_heads}`,
    );
  }
  return {
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    max_position_embeddings: c.max_position_embeddings,
    layer_norm_eps: c.layer_norm_eps,
    hidden_act: c.hidden_act,
  };
}

// ---- tokenizer/tokenizer_config.json, special_tokens_map.json --------------------------------

/** A special token as a string or transformers' serialized AddedToken. */
const specialToken = z.union([
  z.string(),
  z.looseObject({ content: z.string() }).transform((t) => t.content),
]);

export const TokenizerConfigSchema = z.strictObject({
  model_max_length: z.number().positive(),
  /** Special tokens; when absent here, special_tokens_map.json's, then CLIP's defaults. */
  bos_token: specialToken.optional(),
  eos_token: specialToken.optional(),
  pad_token: specialToken.optional(),
  unk_token: specialToken.optional(),
  // fixed
  do_lower_case: fixed(true),
  add_prefix_space: fixed(false),
  errors: fixed('replace'),
  padding_side: fixed('right'),
  truncation_side: fixed('right'),
  // ignored: bookkeeping and options that only change decoding or the Python objects returned.
  tokenizer_class: anything,
  name_or_path: anything,
  special_tokens_map_file: anything,
  added_tokens_decoder: anything,
  clean_up_tokenization_spaces: anything,
  model_input_names: anything,
  extra_special_tokens: anything,
  additional_special_tokens: anything,
  backend: anything,
  processor_class: anything,
  is_local: anything,
  local_files_only: anything,
});

export const SpecialTokensMapSchema = z.strictObject({
  bos_token: specialToken.optional(),
  eos_token: specialToken.optional(),
  pad_token: specialToken.optional(),
  unk_token: specialToken.optional(),
  additional_special_tokens: anything,
});

// ---- scheduler/scheduler_config.json ---------------------------------------------------------

/**
 * Scheduler classes whose config describes the DDPM noise schedule the model was trained with.
 * The pipeline takes that schedule and samples with its own DPM-Solver++.
 */
export const SUPPORTED_SCHEDULERS = [
  'PNDMScheduler',
  'DDIMScheduler',
  'DDPMScheduler',
  'DPMSolverMultistepScheduler',
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'LMSDiscreteScheduler',
  'UniPCMultistepScheduler',
] as const;

export const SchedulerConfigSchema = z.strictObject({
  num_train_timesteps: posInt.default(1000),
  beta_start: z.number().positive().default(0.0001),
  beta_end: z.number().positive().default(0.02),
  beta_schedule: z.enum(['scaled_linear', 'linear']).default('linear'),
  timestep_spacing: z.enum(['linspace', 'leading', 'trailing']).default('leading'),
  steps_offset: int.nonnegative().default(0),
  // fixed
  prediction_type: fixed('epsilon'),
  trained_betas: fixed(null),
  rescale_betas_zero_snr: fixed(false),
  // ignored: options of the class's own sampling loop, which the pipeline does not run.
  skip_prk_steps: anything,
  set_alpha_to_one: anything,
  clip_sample: anything,
  clip_sample_range: anything,
  thresholding: anything,
  dynamic_thresholding_ratio: anything,
  sample_max_value: anything,
  variance_type: anything,
  solver_order: anything,
  algorithm_type: anything,
  solver_type: anything,
  lower_order_final: anything,
  euler_at_final: anything,
  use_karras_sigmas: anything,
  use_exponential_sigmas: anything,
  use_beta_sigmas: anything,
  use_lu_lambdas: anything,
  use_flow_sigmas: anything,
  flow_shift: anything,
  final_sigmas_type: anything,
  lambda_min_clipped: anything,
  interpolation_type: anything,
  sigma_min: anything,
  sigma_max: anything,
  timestep_type: anything,
  predict_x0: anything,
  disable_corrector: anything,
  solver_p: anything,
  final_sigmas_type_: anything,
});

export interface SchedulerInfo {
  /** `_class_name` of the file (informational). */
  className: string;
  schedule: NoiseScheduleConfig;
}

/** scheduler/scheduler_config.json -> the noise schedule the model was trained with. */
export function schedulerFrom(json: unknown, file: string): SchedulerInfo {
  const cls = (json as { _class_name?: unknown } | null)?._class_name;
  if (typeof cls !== 'string' || !(SUPPORTED_SCHEDULERS as readonly string[]).includes(cls)) {
    throw new DiffusersFolderError(
      `${file}: field '_class_name' (${JSON.stringify(cls)}): unsupported scheduler (supported: ${SUPPORTED_SCHEDULERS.join(', ')})`,
    );
  }
  const c = parseConfigFile(SchedulerConfigSchema, json, file);
  return {
    className: cls,
    schedule: {
      betaStart: c.beta_start,
      betaEnd: c.beta_end,
      betaSchedule: c.beta_schedule,
      numTrainTimesteps: c.num_train_timesteps,
      timestepSpacing: c.timestep_spacing,
      stepsOffset: c.steps_offset,
    },
  };
}
