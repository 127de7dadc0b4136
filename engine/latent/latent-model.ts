/**
 * A latent text-to-image model (Stable Diffusion from a diffusers folder) as one pipeline artifact,
 * and back to a diffusers folder.
 *
 * The artifact is a safetensors file with the UNet under `unet/`, the VAE under `vae/` (diffusers'
 * names) and the text encoder under `text_encoder/` (transformers' names, `text_model.` prefixed),
 * and in `__metadata__` the folder's config and tokenizer files verbatim. Reading it runs the same
 * checks as reading the folder (`readDiffusersPipeline` over those files, then every tensor's name,
 * shape and value), so a model artifact is exactly as trustworthy as the folder it came from.
 *
 * The pixel-space model bundle of the built-in world (../io/model-bundle) stays as it is;
 * `decodeAnyModel` / `encodeAnyModel` / `describeModel` take either.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import {
  checkComponentTensors,
  componentLoads,
  DiffusersFolderError,
  loadDiffusersPipeline,
  localPipelineSource,
  readDiffusersPipeline,
  WEIGHT_BASENAMES,
  type DiffusersPipelineSpec,
  type PipelineFileSource,
  type WeightComponent,
} from '../io/diffusers-pipeline';
import {
  checkModelBundleHeader,
  decodeModelBundle,
  diffusersTensors,
  encodeModelBundle,
  ModelBundleError,
} from '../io/model-bundle';
import {
  assertFinite,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  serializeSafetensors,
  type NamedTensor,
} from '../io/safetensors';
import { CLIPTextModel, type TextEncoderConfig } from '../models/text-encoder';
import { UNet2DConditionModel } from '../models/unet';
import type { UNetConfig } from '../models/unet-config';
import { AutoencoderKL } from '../models/vae';
import type { ParameterSet } from '../nn/params';
import { Rng } from '../rng';
import { SD15_SCHEDULE } from '../schedulers/ddpm-schedule';
import type { DiffusionModel, LatentSpace } from '../training/diffusion-model';

export const LATENT_MODEL_FORMAT = 'dro-pipeline/latent-model@1';

/** The folder's text files an artifact keeps (the tokenizer's tokenizer.json only without vocab + merges). */
const TEXT_FILES = [
  'model_index.json',
  'unet/config.json',
  'vae/config.json',
  'text_encoder/config.json',
  'scheduler/scheduler_config.json',
  'tokenizer/tokenizer_config.json',
  'tokenizer/special_tokens_map.json',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
] as const;

const COMPONENTS: readonly WeightComponent[] = ['unet', 'vae', 'text_encoder'];

const weightFile = (c: WeightComponent) => `${c}/${WEIGHT_BASENAMES[c]}.safetensors`;

/** A pipeline folder held in memory: its text files; weight files only claim to exist. */
function memorySource(files: Record<string, string>, name: string): PipelineFileSource {
  const weights = new Set(COMPONENTS.map(weightFile));
  return {
    name,
    read: (rel) => Promise.resolve(rel in files ? new TextEncoder().encode(files[rel]) : undefined),
    exists: (rel) => Promise.resolve(rel in files || weights.has(rel)),
  };
}

/**
 * Refuses a folder whose training schedule is not SD1.5's: the pipeline trains and samples on that
 * schedule (its own DPM-Solver++ grid), so another one would be trained against the wrong noise levels.
 */
export function checkSchedule(spec: DiffusersPipelineSpec): void {
  const s = spec.scheduler.schedule;
  const want = SD15_SCHEDULE;
  for (const [field, got, expected] of [
    ['beta_start', s.betaStart, want.betaStart],
    ['beta_end', s.betaEnd, want.betaEnd],
    ['beta_schedule', s.betaSchedule, want.betaSchedule],
    ['num_train_timesteps', s.numTrainTimesteps, want.numTrainTimesteps],
  ] as const) {
    if (got !== expected)
      throw new DiffusersFolderError(
        `${spec.source}/scheduler/scheduler_config.json: field '${field}' is ${JSON.stringify(got)}; the pipeline trains on ` +
          `Stable Diffusion 1.x's schedule (${field} ${JSON.stringify(expected)})`,
      );
  }
}

/** SHA-256 of a parameter set's float32 values in its parameter order, names included. */
function weightsSha256(params: ParameterSet): string {
  const hash = createHash('sha256');
  const weights = params.getWeights('diffusers');
  try {
    for (const [name, t] of weights) {
      const data = t.dataSync() as Float32Array;
      hash.update(`${name}:${t.shape.join('x')}\n`);
      hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    tf.dispose([...weights.values()]);
  }
  return hash.digest('hex');
}

function requireLatent(model: DiffusionModel): LatentSpace {
  if (!model.latent) throw new ModelBundleError('not a latent model (it has no VAE)');
  return model.latent;
}

/** Serializes a latent model; `unetWeights` (TF.js layout, e.g. EMA weights) replace the UNet's. */
export function encodeLatentModel(
  model: DiffusionModel,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Uint8Array {
  const latent = requireLatent(model);
  const tensors = new Map([
    ...diffusersTensors(model.unet.params, 'unet/', unetWeights),
    ...diffusersTensors(latent.vae.params, 'vae/'),
    ...diffusersTensors(model.text.params, 'text_encoder/'),
  ]);
  return serializeSafetensors(tensors, {
    metadata: {
      format: LATENT_MODEL_FORMAT,
      files: JSON.stringify(latent.files),
      vae_sha256: latent.vaeSha256,
      text_keys_prefixed: String(latent.textKeysPrefixed),
    },
  });
}

async function readTextFiles(src: PipelineFileSource): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const rel of TEXT_FILES) {
    const bytes = await src.read(rel);
    if (bytes) files[rel] = new TextDecoder('utf-8').decode(bytes);
  }
  if (!('tokenizer/vocab.json' in files && 'tokenizer/merges.txt' in files)) {
    const fast = await src.read('tokenizer/tokenizer.json');
    if (fast) files['tokenizer/tokenizer.json'] = new TextDecoder('utf-8').decode(fast);
  }
  return files;
}

/**
 * Loads a local diffusers folder (a path or file:// URI) with every check of the folder reader and
 * the pipeline's own (its schedule), and returns the model and its artifact bytes. The caller owns
 * (and disposes) the model.
 */
export async function importDiffusersFolder(
  location: string,
): Promise<{ model: DiffusionModel; bytes: Uint8Array; spec: DiffusersPipelineSpec }> {
  const src = localPipelineSource(location);
  const spec = await readDiffusersPipeline(src);
  checkSchedule(spec);
  const root = location.startsWith('file://') ? fileURLToPath(location) : location;
  const textHeader = await readSafetensorsHeader(`${root}/${spec.weights.text_encoder[0]}`);
  const textKeysPrefixed = [...textHeader.tensors.keys()].some((k) => k.startsWith('text_model.'));
  const files = await readTextFiles(src);
  const pipe = await loadDiffusersPipeline(src, { trainableUnet: false });
  const model: DiffusionModel = {
    unet: pipe.unet,
    text: pipe.text,
    tokenizer: pipe.tokenizer,
    latent: {
      vae: pipe.vae,
      vaeSha256: weightsSha256(pipe.vae.params),
      imageSize: spec.imageSize,
      files,
      textKeysPrefixed,
    },
  };
  try {
    return { model, bytes: encodeLatentModel(model), spec };
  } catch (err) {
    pipe.dispose();
    throw err;
  }
}

interface LatentHeader {
  files: Record<string, string>;
  vaeSha256: string;
  textKeysPrefixed: boolean;
  spec: DiffusersPipelineSpec;
}

async function readLatentHeader(meta: Record<string, string>, source: string): Promise<LatentHeader> {
  let files: unknown;
  try {
    files = JSON.parse(meta.files ?? 'null');
  } catch {
    throw new ModelBundleError(`${source}: __metadata__ 'files' is not JSON`);
  }
  if (
    typeof files !== 'object' ||
    files === null ||
    Array.isArray(files) ||
    Object.values(files).some((v) => typeof v !== 'string')
  )
    throw new ModelBundleError(`${source}: __metadata__ 'files' must map file names to their text`);
  const vaeSha256 = meta.vae_sha256 ?? '';
  if (!/^[0-9a-f]{64}$/.test(vaeSha256))
    throw new ModelBundleError(`${source}: __metadata__ 'vae_sha256' must be a SHA-256 hex digest`);
  const spec = await readDiffusersPipeline(memorySource(files as Record<string, string>, source));
  checkSchedule(spec);
  return {
    files: files as Record<string, string>,
    vaeSha256,
    textKeysPrefixed: meta.text_keys_prefixed === 'true',
    spec,
  };
}

/** Builds the model a latent-model artifact holds; the caller owns (and disposes) it. */
export async function decodeLatentModel(bytes: Uint8Array, source = 'latent model'): Promise<DiffusionModel> {
  const header = parseSafetensorsHeader(bytes, source);
  if (header.metadata.format !== LATENT_MODEL_FORMAT)
    throw new ModelBundleError(
      `${source} is not a latent model (format '${header.metadata.format ?? 'none'}')`,
    );
  const h = await readLatentHeader(header.metadata, source);
  const loads = componentLoads(h.spec);
  const byComponent = new Map<WeightComponent, Map<string, NamedTensor>>(
    COMPONENTS.map((c) => [c, new Map()]),
  );
  // Names and shapes first, from the header, before any value is decoded.
  for (const c of COMPONENTS) {
    const shapes = new Map(
      [...header.tensors]
        .filter(([k]) => k.startsWith(`${c}/`))
        .map(([k, t]) => [k.slice(c.length + 1), t] as const),
    );
    checkComponentTensors(shapes, loads[c], `${source} (${c}/)`);
  }
  const known = new Set(COMPONENTS.map((c) => `${c}/`));
  const stray = [...header.tensors.keys()].filter((k) => !known.has(k.slice(0, k.indexOf('/') + 1)));
  if (stray.length)
    throw new ModelBundleError(`${source}: unexpected tensor(s) ${stray.slice(0, 3).join(', ')}`);
  const file = parseSafetensors(bytes, source);
  assertFinite(file.tensors, source);
  for (const [key, t] of file.tensors) {
    const c = key.slice(0, key.indexOf('/')) as WeightComponent;
    byComponent.get(c)!.set(key.slice(c.length + 1), t);
  }
  const unet = UNet2DConditionModel.create(h.spec.unet, new Rng(0), false);
  const vae = AutoencoderKL.create(h.spec.vae, new Rng(0), false);
  const text = CLIPTextModel.create(h.spec.textEncoder, new Rng(0), false);
  try {
    assign(unet.params, byComponent.get('unet')!);
    assign(vae.params, byComponent.get('vae')!);
    assign(text.params, byComponent.get('text_encoder')!);
  } catch (err) {
    unet.dispose();
    vae.dispose();
    text.dispose();
    throw new ModelBundleError(`${source}: ${(err as Error).message}`);
  }
  return {
    unet,
    text,
    tokenizer: h.spec.tokenizer,
    latent: {
      vae,
      vaeSha256: h.vaeSha256,
      imageSize: h.spec.imageSize,
      files: h.files,
      textKeysPrefixed: h.textKeysPrefixed,
    },
  };
}

function assign(params: ParameterSet, tensors: Map<string, NamedTensor>): void {
  const map = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of tensors) map.set(name, tf.tensor(t.data, t.shape, 'float32'));
    params.setWeights(map, 'diffusers');
  } finally {
    tf.dispose([...map.values()]);
  }
}

/** A model artifact of either kind: the world's pixel model bundle or a latent model. */
export async function decodeAnyModel(bytes: Uint8Array, source = 'model'): Promise<DiffusionModel> {
  const format = parseSafetensorsHeader(bytes, source).metadata.format;
  return format === LATENT_MODEL_FORMAT ? decodeLatentModel(bytes, source) : decodeModelBundle(bytes, source);
}

export function encodeAnyModel(
  model: DiffusionModel,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Uint8Array {
  return model.latent ? encodeLatentModel(model, unetWeights) : encodeModelBundle(model, unetWeights);
}

/** What a model artifact declares, from its header alone (no weight is decoded). */
export interface ModelDescription {
  space: 'pixel' | 'latent';
  unet: UNetConfig;
  textEncoder: TextEncoderConfig;
  /** Side of the images it draws, in pixels. */
  imageSize: number;
  /** Channels of the images it draws (3). */
  imageChannels: number;
}

export async function describeModel(bytes: Uint8Array, source = 'model'): Promise<ModelDescription> {
  const header = parseSafetensorsHeader(bytes, source);
  if (header.metadata.format === LATENT_MODEL_FORMAT) {
    const { spec } = await readLatentHeader(header.metadata, source);
    return {
      space: 'latent',
      unet: spec.unet,
      textEncoder: spec.textEncoder,
      imageSize: spec.imageSize,
      imageChannels: spec.vae.out_channels,
    };
  }
  const c = checkModelBundleHeader(header, source);
  return {
    space: 'pixel',
    unet: c.unet,
    textEncoder: c.textEncoder,
    imageSize: c.unet.sample_size,
    imageChannels: c.unet.in_channels,
  };
}

/**
 * The model as a diffusers folder (relative path -> bytes): the original config and tokenizer
 * files, the UNet with `unetWeights` (TF.js layout, e.g. the EMA weights) or its own, and the VAE
 * and text encoder as loaded, in float32 under diffusers' and transformers' names. Components the
 * engine does not load (safety checker, feature extractor) are set to `[null, null]` in
 * model_index.json, since their folders are not part of the model.
 */
export function diffusersFolderFiles(
  model: DiffusionModel,
  unetWeights?: ReadonlyMap<string, tf.Tensor>,
): Map<string, Uint8Array> {
  const latent = requireLatent(model);
  const out = new Map<string, Uint8Array>();
  const enc = new TextEncoder();
  for (const [rel, text] of Object.entries(latent.files)) {
    if (rel === 'model_index.json') {
      const index = JSON.parse(text) as Record<string, unknown>;
      for (const k of ['safety_checker', 'feature_extractor', 'image_encoder'])
        if (k in index) index[k] = [null, null];
      if ('requires_safety_checker' in index) index.requires_safety_checker = false;
      out.set(rel, enc.encode(`${JSON.stringify(index, null, 2)}\n`));
    } else out.set(rel, enc.encode(text));
  }
  const meta = { metadata: { format: 'pt' } };
  out.set(
    weightFile('unet'),
    serializeSafetensors(diffusersTensors(model.unet.params, '', unetWeights), meta),
  );
  out.set(weightFile('vae'), serializeSafetensors(diffusersTensors(latent.vae.params, ''), meta));
  const strip = (n: string) => (latent.textKeysPrefixed ? n : n.replace(/^text_model\./, ''));
  out.set(
    weightFile('text_encoder'),
    serializeSafetensors(diffusersTensors(model.text.params, '', undefined, strip), meta),
  );
  return out;
}
