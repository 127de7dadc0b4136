/**
 * A whole text-to-image model as one artifact: one safetensors file holding the UNet under `unet/`
 * (diffusers' names and layout) and the text encoder under `text_encoder/` (transformers' names),
 * with the UNet, text-encoder and tokenizer configs in `__metadata__`. Loading validates every name,
 * shape and value before any weight is assigned.
 *
 * `exportDiffusersUnet` writes the UNet alone with plain diffusers keys, the file a diffusers
 * `UNet2DConditionModel` loads.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CLIPTextModel, textEncoderParamSpecs, type TextEncoderConfig } from '../models/text-encoder';
import { validateWordTokenizerConfig, WordTokenizer, type WordTokenizerConfig } from '../models/tokenizer';
import { UNet2DConditionModel } from '../models/unet';
import { validateUNetConfig, type UNetConfig } from '../models/unet-config';
import { unetParamSpecs } from '../models/unet-params';
import { toDiffusersLayout, type ParameterSet } from '../nn/params';
import { Rng } from '../rng';
import type { DiffusionModel } from '../training/diffusion-model';
import {
  assertFinite,
  parseSafetensors,
  parseSafetensorsHeader,
  safetensorsChunks,
  serializeSafetensors,
  type SafetensorsHeader,
  type TensorToWrite,
} from './safetensors';

export const MODEL_FORMAT = 'dro-pipeline/model@1';

/** The model a bundle describes could not be loaded; names the source and what is wrong. */
export class ModelBundleError extends Error {
  override name = 'ModelBundleError';
  readonly type = 'ModelBundleError';
}

/**
 * A network's weights in diffusers' layout and names, each named `prefix + rename(name)`;
 * `override` (TF.js layout, e.g. EMA weights) replaces the weights it names.
 */
export function diffusersTensors(
  params: ParameterSet,
  prefix: string,
  override?: ReadonlyMap<string, tf.Tensor>,
  rename: (name: string) => string = (n) => n,
): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  const weights = params.getWeights('diffusers');
  try {
    for (const [name, t] of weights) {
      let data = t.dataSync() as Float32Array;
      const replacement = override?.get(name);
      if (replacement) {
        const converted = toDiffusersLayout(params.spec(name), replacement);
        data = converted.dataSync() as Float32Array;
        converted.dispose();
      }
      out.set(`${prefix}${rename(name)}`, { shape: t.shape, data });
    }
  } finally {
    tf.dispose([...weights.values()]);
  }
  return out;
}

/**
 * Serializes a model. `unetWeights` (TF.js layout, e.g. EMA weights) replaces the UNet's own
 * weights in the file when given.
 */
export function encodeModelBundle(
  model: DiffusionModel,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Uint8Array {
  const { tensors, options } = modelBundleContent(model, unetWeights);
  return serializeSafetensors(tensors, options);
}

/**
 * The bytes of `encodeModelBundle` as chunks, for writing a large model to a store or file without
 * a second in-memory copy of its weights.
 */
export function streamModelBundle(
  model: DiffusionModel,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Iterable<Uint8Array> {
  const { tensors, options } = modelBundleContent(model, unetWeights);
  return safetensorsChunks(tensors, options).chunks;
}

function modelBundleContent(model: DiffusionModel, unetWeights?: ReadonlyMap<string, tf.Tensor>) {
  const tensors = new Map([
    ...diffusersTensors(model.unet.params, 'unet/', unetWeights),
    ...diffusersTensors(model.text.params, 'text_encoder/'),
  ]);
  const options = {
    metadata: {
      format: MODEL_FORMAT,
      unet_config: JSON.stringify(model.unet.config),
      text_encoder_config: JSON.stringify(model.text.config),
      tokenizer: JSON.stringify(model.tokenizer.config),
    },
  };
  return { tensors, options };
}

function loadInto(
  params: ParameterSet,
  tensors: Map<string, TensorToWrite>,
  prefix: string,
  source: string,
): void {
  const picked = new Map<string, tf.Tensor>();
  try {
    for (const [key, t] of tensors) {
      if (key.startsWith(prefix)) picked.set(key.slice(prefix.length), tf.tensor(t.data, t.shape, 'float32'));
    }
    params.setWeights(picked, 'diffusers');
  } catch (err) {
    throw new ModelBundleError(`${source}: ${prefix.replace(/\/$/, '')}: ${(err as Error).message}`);
  } finally {
    tf.dispose([...picked.values()]);
  }
}

function parseMeta<T>(meta: Record<string, string>, key: string, source: string): T {
  const text = meta[key];
  if (text === undefined) throw new ModelBundleError(`${source}: __metadata__ lacks '${key}'`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ModelBundleError(`${source}: __metadata__ '${key}' is not JSON`);
  }
}

/** Bounds of a text-encoder config read from a file (CLIP ViT-L/14's text tower fits well inside). */
export const TEXT_ENCODER_LIMITS = {
  vocabSize: 1_000_000,
  hiddenSize: 8192,
  intermediateSize: 32768,
  layers: 64,
  heads: 256,
  positions: 4096,
} as const;

function validateTextEncoderConfig(value: unknown): TextEncoderConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`must be an object, got ${JSON.stringify(value)}`);
  const c = value as Record<string, unknown>;
  const L = TEXT_ENCODER_LIMITS;
  const bounds: [keyof TextEncoderConfig, number][] = [
    ['vocab_size', L.vocabSize],
    ['hidden_size', L.hiddenSize],
    ['intermediate_size', L.intermediateSize],
    ['num_hidden_layers', L.layers],
    ['num_attention_heads', L.heads],
    ['max_position_embeddings', L.positions],
  ];
  for (const [key, max] of bounds) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
      throw new Error(`${key} must be an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  if (typeof c.layer_norm_eps !== 'number' || !(c.layer_norm_eps > 0 && c.layer_norm_eps < 1))
    throw new Error(`layer_norm_eps must be a number in (0, 1), got ${JSON.stringify(c.layer_norm_eps)}`);
  if ((c.hidden_size as number) % (c.num_attention_heads as number) !== 0)
    throw new Error(`hidden_size ${c.hidden_size} is not divisible by ${c.num_attention_heads} heads`);
  return value as unknown as TextEncoderConfig;
}

/** The configs a bundle's metadata declares, validated and consistent with each other. */
export interface ModelBundleConfigs {
  unet: UNetConfig;
  textEncoder: TextEncoderConfig;
  tokenizer: WordTokenizerConfig;
}

/** How many mismatching tensors an error lists by name. */
const LISTED = 3;

function listNames(names: string[]): string {
  const shown = names.slice(0, LISTED).map((n) => `'${n}'`);
  return names.length > LISTED ? `${shown.join(', ')} and ${names.length - LISTED} more` : shown.join(', ');
}

/**
 * Checks a bundle from its safetensors header alone, before any weight is decoded or any network
 * is built: the format tag, every metadata config (types, bounds, consistency) and every tensor
 * name and shape against what those configs need. Throws ModelBundleError naming `source`.
 */
export function checkModelBundleHeader(header: SafetensorsHeader, source = 'model'): ModelBundleConfigs {
  const meta = header.metadata;
  if (meta.format !== MODEL_FORMAT) {
    throw new ModelBundleError(
      `${source} is not a model bundle (format '${meta.format ?? 'none'}', expected '${MODEL_FORMAT}')`,
    );
  }
  const unet = parseMeta<UNetConfig>(meta, 'unet_config', source);
  try {
    validateUNetConfig(unet);
  } catch (err) {
    throw new ModelBundleError(`${source}: unet_config: ${(err as Error).message}`);
  }
  let textEncoder: TextEncoderConfig;
  try {
    textEncoder = validateTextEncoderConfig(parseMeta<unknown>(meta, 'text_encoder_config', source));
  } catch (err) {
    if (err instanceof ModelBundleError) throw err;
    throw new ModelBundleError(`${source}: text_encoder_config: ${(err as Error).message}`);
  }
  let tokenizer: WordTokenizerConfig;
  let vocabSize: number;
  try {
    tokenizer = validateWordTokenizerConfig(parseMeta<unknown>(meta, 'tokenizer', source));
    vocabSize = new WordTokenizer(tokenizer).vocabSize;
  } catch (err) {
    if (err instanceof ModelBundleError) throw err;
    throw new ModelBundleError(`${source}: tokenizer: ${(err as Error).message}`);
  }
  if (textEncoder.vocab_size !== vocabSize)
    throw new ModelBundleError(
      `${source}: text_encoder_config.vocab_size ${textEncoder.vocab_size} differs from the tokenizer's ${vocabSize} entries`,
    );
  if (textEncoder.max_position_embeddings < tokenizer.maxLength)
    throw new ModelBundleError(
      `${source}: text_encoder_config.max_position_embeddings ${textEncoder.max_position_embeddings} is less than the tokenizer's maxLength ${tokenizer.maxLength}`,
    );
  if (textEncoder.hidden_size !== unet.cross_attention_dim)
    throw new ModelBundleError(
      `${source}: text_encoder_config.hidden_size ${textEncoder.hidden_size} differs from unet_config.cross_attention_dim ${unet.cross_attention_dim}`,
    );

  const parts = [
    { prefix: 'unet/', specs: unetParamSpecs(unet) },
    { prefix: 'text_encoder/', specs: textEncoderParamSpecs(textEncoder) },
  ];
  for (const { prefix, specs } of parts) {
    const part = `${source}: ${prefix.slice(0, -1)}`;
    const missing = specs.filter((spec) => !header.tensors.has(prefix + spec.name)).map((spec) => spec.name);
    if (missing.length)
      throw new ModelBundleError(
        `${part}: ${missing.length} of the ${specs.length} tensors its config needs are missing: ${listNames(missing)}`,
      );
    for (const spec of specs) {
      const got = header.tensors.get(prefix + spec.name)!.shape;
      if (got.length !== spec.shape.length || got.some((d, i) => d !== spec.shape[i]))
        throw new ModelBundleError(
          `${part}: tensor '${spec.name}' has shape [${got.join(', ')}], its config needs [${spec.shape.join(', ')}]`,
        );
    }
  }
  const known = new Set(parts.flatMap(({ prefix, specs }) => specs.map((spec) => prefix + spec.name)));
  const extra = [...header.tensors.keys()].filter((name) => !known.has(name));
  if (extra.length)
    throw new ModelBundleError(`${source}: ${extra.length} unexpected tensor(s): ${listNames(extra)}`);
  return { unet, textEncoder, tokenizer };
}

/** Builds the model a bundle describes; the caller owns (and disposes) both networks. */
export function decodeModelBundle(bytes: Uint8Array, source = 'model'): DiffusionModel {
  // Everything the header can tell is checked before a weight is decoded or a network built.
  const configs = checkModelBundleHeader(parseSafetensorsHeader(bytes, source), source);
  const file = parseSafetensors(bytes, source);
  assertFinite(file.tensors, source);
  const unetConfig = configs.unet;
  const textConfig = configs.textEncoder;
  const tokenizer = new WordTokenizer(configs.tokenizer);
  // Initial values are overwritten at once; the seed only makes construction deterministic.
  const unet = UNet2DConditionModel.create(unetConfig, new Rng(0), false);
  const text = CLIPTextModel.create(textConfig, new Rng(0), false);
  try {
    loadInto(unet.params, file.tensors, 'unet/', source);
    loadInto(text.params, file.tensors, 'text_encoder/', source);
  } catch (err) {
    unet.dispose();
    text.dispose();
    throw err;
  }
  return { unet, text, tokenizer };
}

/** The UNet alone with plain diffusers keys (weights from `unetWeights` when given). */
export function exportDiffusersUnet(
  model: Pick<DiffusionModel, 'unet'>,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Uint8Array {
  return serializeSafetensors(diffusersTensors(model.unet.params, '', unetWeights), unetFileOptions(model));
}

/** The bytes of `exportDiffusersUnet` as chunks (see `streamModelBundle`). */
export function streamDiffusersUnet(
  model: Pick<DiffusionModel, 'unet'>,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Iterable<Uint8Array> {
  return safetensorsChunks(diffusersTensors(model.unet.params, '', unetWeights), unetFileOptions(model))
    .chunks;
}

function unetFileOptions(model: Pick<DiffusionModel, 'unet'>) {
  return { metadata: { format: 'pt', unet_config: JSON.stringify(model.unet.config) } };
}
