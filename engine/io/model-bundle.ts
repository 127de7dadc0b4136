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
import { CLIPTextModel, type TextEncoderConfig } from '../models/text-encoder';
import { WordTokenizer, type WordTokenizerConfig } from '../models/tokenizer';
import { UNet2DConditionModel } from '../models/unet';
import { validateUNetConfig, type UNetConfig } from '../models/unet-config';
import { toDiffusersLayout, type ParameterSet } from '../nn/params';
import { Rng } from '../rng';
import type { DiffusionModel } from '../training/diffusion-model';
import { assertFinite, parseSafetensors, serializeSafetensors, type TensorToWrite } from './safetensors';

export const MODEL_FORMAT = 'dro-pipeline/model@1';

/** The model a bundle describes could not be loaded; names the source and what is wrong. */
export class ModelBundleError extends Error {
  override name = 'ModelBundleError';
  readonly type = 'ModelBundleError';
}

function diffusersTensors(
  params: ParameterSet,
  prefix: string,
  override?: ReadonlyMap<string, tf.Tensor>,
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
      out.set(`${prefix}${name}`, { shape: t.shape, data });
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
  const tensors = new Map([
    ...diffusersTensors(model.unet.params, 'unet/', unetWeights),
    ...diffusersTensors(model.text.params, 'text_encoder/'),
  ]);
  return serializeSafetensors(tensors, {
    metadata: {
      format: MODEL_FORMAT,
      unet_config: JSON.stringify(model.unet.config),
      text_encoder_config: JSON.stringify(model.text.config),
      tokenizer: JSON.stringify(model.tokenizer.config),
    },
  });
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

/** Builds the model a bundle describes; the caller owns (and disposes) both networks. */
export function decodeModelBundle(bytes: Uint8Array, source = 'model'): DiffusionModel {
  const file = parseSafetensors(bytes, source);
  if (file.metadata.format !== MODEL_FORMAT) {
    throw new ModelBundleError(
      `${source} is not a model bundle (format '${file.metadata.format ?? 'none'}')`,
    );
  }
  assertFinite(file.tensors, source);
  const unetConfig = parseMeta<UNetConfig>(file.metadata, 'unet_config', source);
  try {
    validateUNetConfig(unetConfig);
  } catch (err) {
    throw new ModelBundleError(`${source}: unet_config: ${(err as Error).message}`);
  }
  const textConfig = parseMeta<TextEncoderConfig>(file.metadata, 'text_encoder_config', source);
  const tokenizer = new WordTokenizer(parseMeta<WordTokenizerConfig>(file.metadata, 'tokenizer', source));
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
  return serializeSafetensors(diffusersTensors(model.unet.params, '', unetWeights), {
    metadata: { format: 'pt', unet_config: JSON.stringify(model.unet.config) },
  });
}
