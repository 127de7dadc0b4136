/**
 * Stable Diffusion pipeline folders in diffusers' layout, as users download them:
 *
 *   model_index.json                     pipeline class and one [library, class] per component
 *   unet/config.json + weights           UNet2DConditionModel
 *   vae/config.json + weights            AutoencoderKL
 *   text_encoder/config.json + weights   transformers CLIPTextModel
 *   tokenizer/                           vocab.json + merges.txt (or tokenizer.json), tokenizer_config.json
 *   scheduler/scheduler_config.json      the training noise schedule
 *
 * Weights are `diffusion_pytorch_model.safetensors` (diffusers) or `model.safetensors`
 * (transformers), or their `.fp16.safetensors` variants, or a sharded `*.safetensors.index.json`;
 * F32, F16 and BF16 tensors load as float32. `readDiffusersPipeline` validates every config and the
 * cross-component contracts without reading a weight; `loadDiffusersPipeline` then checks every
 * tensor's name and shape against the configs (and that it is finite) before building the models.
 * Every error names the file and the field or tensor.
 *
 * The engine reads from a local folder (a path or a file:// URI); other stores provide a
 * `PipelineFileSource`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import { ClipTokenizer } from '../models/clip-tokenizer';
import {
  canonicalTextEncoderKey,
  CLIPTextModel,
  TEXT_ENCODER_BUFFERS,
  textEncoderParamSpecs,
  type TextEncoderConfig,
} from '../models/text-encoder';
import { TokenizerError } from '../models/tokenizer';
import { UNet2DConditionModel } from '../models/unet';
import { validateUNetConfig, type UNetConfig } from '../models/unet-config';
import { unetParamSpecs } from '../models/unet-params';
import { AutoencoderKL, modernVaeKey, vaeParamSpecs } from '../models/vae';
import { validateVaeConfig, vaeScaleFactor, type VaeConfig } from '../models/vae-config';
import type { ParamSpec } from '../nn/params';
import { Rng } from '../rng';
import type { NoiseScheduleConfig } from '../schedulers/ddpm-schedule';
import {
  DiffusersFolderError,
  parseConfigFile,
  parseJsonFile,
  parseModelIndex,
  schedulerFrom,
  SpecialTokensMapSchema,
  TokenizerConfigSchema,
  textEncoderConfigFrom,
  unetConfigFrom,
  vaeConfigFrom,
  type ModelIndex,
  type SchedulerInfo,
} from './diffusers-configs';
import { assertFinite, parseSafetensors, readSafetensorsHeader, type NamedTensor } from './safetensors';

export { DiffusersFolderError } from './diffusers-configs';

/** Read access to the files of a pipeline folder; paths are '/'-separated and relative. */
export interface PipelineFileSource {
  /** Names the folder in errors (a path or URI). */
  readonly name: string;
  /** The file's bytes, or undefined when there is no such file. */
  read(relPath: string): Promise<Uint8Array | undefined>;
  exists(relPath: string): Promise<boolean>;
}

/** A folder on the local file system, given as a path or a file:// URI. */
export function localPipelineSource(location: string): PipelineFileSource {
  let root = location;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    if (!location.startsWith('file://')) {
      throw new DiffusersFolderError(
        `${location}: the engine reads pipeline folders from local paths and file:// URIs; copy other stores to a local folder first`,
      );
    }
    root = fileURLToPath(location);
  }
  const full = (rel: string) => path.join(root, ...rel.split('/'));
  return {
    name: location,
    async read(rel) {
      try {
        return await readWholeFile(full(rel));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new DiffusersFolderError(`${location}/${rel}: cannot read (${(err as Error).message})`);
      }
    },
    async exists(rel) {
      try {
        return (await fs.stat(full(rel))).isFile();
      } catch {
        return false;
      }
    },
  };
}

/**
 * The whole file in one array. fs.readFile stops at 2 GiB, less than SD1.5's float32 UNet
 * (3.4 GB), so the file is read in chunks into one array (up to Node's 4 GiB array limit).
 */
async function readWholeFile(file: string): Promise<Uint8Array> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const out = new Uint8Array(size);
    const chunk = 1 << 28;
    for (let pos = 0; pos < size;) {
      const { bytesRead } = await handle.read(out, pos, Math.min(chunk, size - pos), pos);
      if (bytesRead === 0) throw new Error(`file ended after ${pos} of ${size} bytes`);
      pos += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

export interface PipelineReadOptions {
  /**
   * Which weight files to prefer: 'fp16' takes `*.fp16.safetensors` where present. Default: the
   * plain files, falling back to the fp16 variant where it is the only one.
   */
  variant?: 'fp16';
}

/** Everything a pipeline folder declares, validated; no weight has been read. */
export interface DiffusersPipelineSpec {
  source: string;
  modelIndex: ModelIndex;
  unet: UNetConfig;
  vae: VaeConfig;
  textEncoder: TextEncoderConfig;
  tokenizer: ClipTokenizer;
  scheduler: SchedulerInfo;
  /** Image side the UNet's sample_size corresponds to (sample_size x the VAE's scale factor). */
  imageSize: number;
  /** Weight files per component, relative to the folder (several for a sharded checkpoint). */
  weights: Record<WeightComponent, string[]>;
}

export type WeightComponent = 'unet' | 'vae' | 'text_encoder';

async function readText(src: PipelineFileSource, rel: string, what: string): Promise<string> {
  const bytes = await src.read(rel);
  if (!bytes) throw new DiffusersFolderError(`${src.name}: ${what}: ${rel} not found`);
  return new TextDecoder('utf-8').decode(bytes);
}

async function readJson(src: PipelineFileSource, rel: string, what: string): Promise<unknown> {
  return parseJsonFile(await readText(src, rel, what), `${src.name}/${rel}`);
}

export const WEIGHT_BASENAMES: Record<WeightComponent, string> = {
  unet: 'diffusion_pytorch_model',
  vae: 'diffusion_pytorch_model',
  text_encoder: 'model',
};

/** The safetensors file(s) of a component, honouring the variant preference. */
async function findWeights(
  src: PipelineFileSource,
  component: WeightComponent,
  options: PipelineReadOptions,
): Promise<string[]> {
  const base = `${component}/${WEIGHT_BASENAMES[component]}`;
  const stems = options.variant === 'fp16' ? [`${base}.fp16`, base] : [base, `${base}.fp16`];
  for (const stem of stems) {
    if (await src.exists(`${stem}.safetensors`)) return [`${stem}.safetensors`];
    const indexFile = `${stem}.safetensors.index.json`;
    if (await src.exists(indexFile)) {
      const index = (await readJson(src, indexFile, `component '${component}'`)) as {
        weight_map?: Record<string, unknown>;
      };
      const map = index?.weight_map;
      if (!map || typeof map !== 'object' || Object.values(map).some((v) => typeof v !== 'string')) {
        throw new DiffusersFolderError(
          `${src.name}/${indexFile}: field 'weight_map' must map tensor names to file names`,
        );
      }
      return [...new Set(Object.values(map) as string[])].map((f) => `${component}/${f}`);
    }
  }
  for (const stem of stems) {
    if (await src.exists(`${stem}.bin`)) {
      throw new DiffusersFolderError(
        `${src.name}/${stem}.bin: PyTorch pickle weights are not read (they can run code); convert the folder to safetensors`,
      );
    }
  }
  throw new DiffusersFolderError(
    `${src.name}: component '${component}' has no weights (looked for ${stems.map((s) => `${s}.safetensors`).join(', ')})`,
  );
}

/** transformers writes 1e30 as model_max_length when a tokenizer has no limit of its own. */
const NO_LIMIT = 1e29;

async function readTokenizer(src: PipelineFileSource, textConfig: TextEncoderConfig): Promise<ClipTokenizer> {
  const configFile = `${src.name}/tokenizer/tokenizer_config.json`;
  const config = parseConfigFile(
    TokenizerConfigSchema,
    await readJson(src, 'tokenizer/tokenizer_config.json', "component 'tokenizer'"),
    configFile,
  );
  const mapBytes = await src.read('tokenizer/special_tokens_map.json');
  const specials: z.output<typeof SpecialTokensMapSchema> = mapBytes
    ? parseConfigFile(
        SpecialTokensMapSchema,
        parseJsonFile(new TextDecoder().decode(mapBytes), `${src.name}/tokenizer/special_tokens_map.json`),
        `${src.name}/tokenizer/special_tokens_map.json`,
      )
    : {};
  let maxLength = config.model_max_length;
  if (maxLength >= NO_LIMIT) maxLength = textConfig.max_position_embeddings;
  if (!Number.isSafeInteger(maxLength)) {
    throw new DiffusersFolderError(
      `${configFile}: field 'model_max_length' (${maxLength}): must be an integer`,
    );
  }
  if (maxLength > textConfig.max_position_embeddings) {
    throw new DiffusersFolderError(
      `${configFile}: field 'model_max_length' (${maxLength}) exceeds text_encoder/config.json max_position_embeddings ${textConfig.max_position_embeddings}`,
    );
  }
  const tokens = {
    maxLength,
    bosToken: config.bos_token ?? specials.bos_token,
    eosToken: config.eos_token ?? specials.eos_token,
    padToken: config.pad_token ?? specials.pad_token,
    unkToken: config.unk_token ?? specials.unk_token,
  };

  const vocabText = await src.read('tokenizer/vocab.json');
  const mergesText = await src.read('tokenizer/merges.txt');
  try {
    if (vocabText && mergesText) {
      return ClipTokenizer.fromSources(
        {
          vocab: new TextDecoder().decode(vocabText),
          merges: new TextDecoder().decode(mergesText),
          vocabFile: `${src.name}/tokenizer/vocab.json`,
          mergesFile: `${src.name}/tokenizer/merges.txt`,
        },
        tokens,
      );
    }
    const fast = await src.read('tokenizer/tokenizer.json');
    if (!fast) {
      throw new DiffusersFolderError(
        `${src.name}: component 'tokenizer': neither vocab.json + merges.txt nor tokenizer.json found`,
      );
    }
    return ClipTokenizer.fromSources(
      { ...fromTokenizerJson(fast, `${src.name}/tokenizer/tokenizer.json`) },
      tokens,
    );
  } catch (err) {
    if (err instanceof TokenizerError) throw new DiffusersFolderError(err.message);
    throw err;
  }
}

/** vocab and merges out of a `tokenizers` tokenizer.json (BPE model). */
export function fromTokenizerJson(
  bytes: Uint8Array,
  file: string,
): { vocab: string; merges: string; vocabFile: string; mergesFile: string } {
  const json = parseJsonFile(new TextDecoder().decode(bytes), file) as {
    model?: { type?: unknown; vocab?: unknown; merges?: unknown; end_of_word_suffix?: unknown };
  };
  const model = json?.model;
  if (!model || model.type !== 'BPE' || model.end_of_word_suffix !== '</w>') {
    throw new DiffusersFolderError(
      `${file}: field 'model' is not CLIP's BPE model (type BPE, end_of_word_suffix '</w>')`,
    );
  }
  if (!Array.isArray(model.merges))
    throw new DiffusersFolderError(`${file}: field 'model.merges' must be a list`);
  const merges = model.merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === 'string')) return m.join(' ');
    throw new DiffusersFolderError(`${file}: field 'model.merges[${i}]' is neither "a b" nor ["a", "b"]`);
  });
  return {
    vocab: JSON.stringify(model.vocab),
    merges: merges.join('\n'),
    vocabFile: `${file} (model.vocab)`,
    mergesFile: `${file} (model.merges)`,
  };
}

/**
 * Reads and validates a pipeline folder's configs and tokenizer, and checks that the components
 * fit together (latent channels, text width, vocabulary and sequence length), without reading
 * any weight: a bad folder fails here, before anything is trained.
 */
export async function readDiffusersPipeline(
  source: string | PipelineFileSource,
  options: PipelineReadOptions = {},
): Promise<DiffusersPipelineSpec> {
  const src = typeof source === 'string' ? localPipelineSource(source) : source;
  const at = (rel: string) => `${src.name}/${rel}`;
  if (!(await src.exists('model_index.json'))) {
    throw new DiffusersFolderError(
      `${src.name}: model_index.json not found: a directory is not a model bundle file and, without it, not a diffusers pipeline folder`,
    );
  }
  const modelIndex = parseModelIndex(
    await readJson(src, 'model_index.json', 'pipeline'),
    at('model_index.json'),
  );
  const component = (name: string, file: string) =>
    readJson(src, `${name}/${file}`, `missing component '${name}'`);

  const unet = unetConfigFrom(await component('unet', 'config.json'), at('unet/config.json'));
  const vae = vaeConfigFrom(await component('vae', 'config.json'), at('vae/config.json'));
  const textEncoder = textEncoderConfigFrom(
    await component('text_encoder', 'config.json'),
    at('text_encoder/config.json'),
  );
  const scheduler = schedulerFrom(
    await component('scheduler', 'scheduler_config.json'),
    at('scheduler/scheduler_config.json'),
  );
  for (const [file, validate] of [
    ['unet/config.json', () => validateUNetConfig(unet)],
    ['vae/config.json', () => validateVaeConfig(vae)],
    ['text_encoder/config.json', () => textEncoderParamSpecs(textEncoder)],
  ] as const) {
    try {
      validate();
    } catch (err) {
      throw new DiffusersFolderError(`${at(file)}: ${(err as Error).message}`);
    }
  }
  if (vae.latent_channels !== unet.in_channels) {
    throw new DiffusersFolderError(
      `${at('vae/config.json')}: field 'latent_channels' (${vae.latent_channels}) differs from unet/config.json in_channels ${unet.in_channels}`,
    );
  }
  if (unet.out_channels !== unet.in_channels) {
    throw new DiffusersFolderError(
      `${at('unet/config.json')}: field 'out_channels' (${unet.out_channels}) differs from in_channels ${unet.in_channels}; the engine trains noise prediction on the latent it is given`,
    );
  }
  if (textEncoder.hidden_size !== unet.cross_attention_dim) {
    throw new DiffusersFolderError(
      `${at('text_encoder/config.json')}: field 'hidden_size' (${textEncoder.hidden_size}) differs from unet/config.json cross_attention_dim ${unet.cross_attention_dim}`,
    );
  }
  const tokenizer = await readTokenizer(src, textEncoder);
  if (tokenizer.vocabSize > textEncoder.vocab_size) {
    throw new DiffusersFolderError(
      `${at('tokenizer')}: the tokenizer has ${tokenizer.vocabSize} ids, more than text_encoder/config.json vocab_size ${textEncoder.vocab_size}`,
    );
  }
  const weights = {
    unet: await findWeights(src, 'unet', options),
    vae: await findWeights(src, 'vae', options),
    text_encoder: await findWeights(src, 'text_encoder', options),
  };
  return {
    source: src.name,
    modelIndex,
    unet,
    vae,
    textEncoder,
    tokenizer,
    scheduler,
    imageSize: unet.sample_size * vaeScaleFactor(vae),
    weights,
  };
}

/** Tensors saved by transformers that are not parameters and may use an integer dtype. */
function withoutBuffers(bytes: Uint8Array, names: readonly string[]): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8) return bytes;
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.byteLength - 8) return bytes;
  let header: Record<string, { data_offsets: [number, number] } & Record<string, unknown>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as typeof header;
  } catch {
    return bytes; // the safetensors reader reports the malformed header
  }
  if (!names.some((name) => name in header)) return bytes;
  // Rebuild the file without them: the remaining tensors keep their order and are re-packed.
  const dataStart = 8 + n;
  const kept = Object.entries(header)
    .filter(([k]) => k !== '__metadata__' && !names.includes(k))
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const out: Record<string, unknown> = {};
  if (header.__metadata__) out.__metadata__ = header.__metadata__;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [k, e] of kept) {
    const [b, end] = e.data_offsets;
    chunks.push(bytes.subarray(dataStart + b, dataStart + end));
    out[k] = { ...e, data_offsets: [offset, offset + end - b] };
    offset += end - b;
  }
  const json = new TextEncoder().encode(JSON.stringify(out));
  const result = new Uint8Array(8 + json.byteLength + offset);
  new DataView(result.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  result.set(json, 8);
  let pos = 8 + json.byteLength;
  for (const c of chunks) {
    result.set(c, pos);
    pos += c.byteLength;
  }
  return result;
}

export interface ComponentLoad {
  component: WeightComponent;
  specs: ParamSpec[];
  /** Maps a stored key to the engine's name (legacy renames). */
  rename?: (key: string) => string;
  /** Stored keys that are buffers, skipped. */
  buffers?: readonly string[];
}

/**
 * The component's tensors in diffusers layout, keyed by the engine's names, after checking that
 * names and shapes match the config exactly and that every value is finite.
 */
async function readComponentWeights(
  src: PipelineFileSource,
  files: string[],
  load: ComponentLoad,
): Promise<Map<string, NamedTensor>> {
  const tensors = new Map<string, NamedTensor>();
  const origin = new Map<string, string>();
  for (const rel of files) {
    const file = `${src.name}/${rel}`;
    let bytes = await src.read(rel);
    if (!bytes) throw new DiffusersFolderError(`${file}: not found`);
    if (load.buffers) bytes = withoutBuffers(bytes, load.buffers);
    const parsed = parseSafetensors(bytes, file);
    assertFinite(parsed.tensors, file);
    for (const [key, t] of parsed.tensors) {
      if (load.buffers?.includes(key)) continue;
      const name = load.rename ? load.rename(key) : key;
      if (tensors.has(name)) throw new DiffusersFolderError(`${file}: tensor '${key}' appears twice`);
      tensors.set(name, t);
      origin.set(name, file);
    }
  }
  const where = files.length === 1 ? `${src.name}/${files[0]}` : `${src.name}/${load.component} weights`;
  checkComponentTensors(tensors, load, where, (name) => origin.get(name) ?? where);
  return tensors;
}

/**
 * Throws a DiffusersFolderError unless `tensors` (keyed by the engine's names) are exactly the
 * component's parameters with the shapes its config implies; `where` and `fileOf` name the source.
 */
export function checkComponentTensors(
  tensors: ReadonlyMap<string, { shape: number[] }>,
  load: Pick<ComponentLoad, 'component' | 'specs'>,
  where: string,
  fileOf: (name: string) => string = () => where,
): void {
  const configFile = `${load.component}/config.json`;
  const want = new Map(load.specs.map((s) => [s.name, s]));
  const missing = load.specs.filter((s) => !tensors.has(s.name)).map((s) => s.name);
  const unexpected = [...tensors.keys()].filter((k) => !want.has(k));
  if (missing.length || unexpected.length) {
    const parts: string[] = [];
    if (missing.length)
      parts.push(`missing ${missing.length} tensor(s) ${configFile} implies: ${preview(missing)}`);
    if (unexpected.length)
      parts.push(`${unexpected.length} tensor(s) ${configFile} does not describe: ${preview(unexpected)}`);
    throw new DiffusersFolderError(`${where}: ${parts.join('; ')}`);
  }
  for (const s of load.specs) {
    const t = tensors.get(s.name)!;
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new DiffusersFolderError(
        `${fileOf(s.name)}: tensor '${s.name}' has shape [${t.shape.join(', ')}], ${configFile} implies [${s.shape.join(', ')}]`,
      );
    }
  }
}

function preview(names: string[]): string {
  return names.length > 4 ? `${names.slice(0, 4).join(', ')}, ... (${names.length})` : names.join(', ');
}

function assign(
  params: { setWeights(m: Map<string, tf.Tensor>, layout: 'diffusers'): void },
  tensors: Map<string, NamedTensor>,
): void {
  const map = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of tensors) map.set(name, tf.tensor(t.data, t.shape, 'float32'));
    params.setWeights(map, 'diffusers');
  } finally {
    tf.dispose([...map.values()]);
  }
}

/** How each component's stored keys map to the engine's parameters. */
export function componentLoads(spec: DiffusersPipelineSpec): Record<WeightComponent, ComponentLoad> {
  return {
    unet: { component: 'unet', specs: unetParamSpecs(spec.unet) },
    vae: { component: 'vae', specs: vaeParamSpecs(spec.vae), rename: modernVaeKey },
    text_encoder: {
      component: 'text_encoder',
      specs: textEncoderParamSpecs(spec.textEncoder),
      buffers: TEXT_ENCODER_BUFFERS,
      rename: canonicalTextEncoderKey,
    },
  };
}

/**
 * Checks every weight file of a local pipeline folder from its safetensors header alone (names,
 * shapes, dtypes), reading no tensor data: what a pre-flight can afford on a 4 GB UNet.
 */
export async function checkPipelineWeightHeaders(root: string, spec: DiffusersPipelineSpec): Promise<void> {
  const loads = componentLoads(spec);
  for (const component of ['unet', 'vae', 'text_encoder'] as const) {
    const load = loads[component];
    const shapes = new Map<string, { shape: number[] }>();
    const origin = new Map<string, string>();
    for (const rel of spec.weights[component]) {
      const file = `${spec.source}/${rel}`;
      const header = await readSafetensorsHeader(path.join(root, ...rel.split('/')));
      for (const [key, t] of header.tensors) {
        if (load.buffers?.includes(key)) continue;
        const name = load.rename ? load.rename(key) : key;
        if (shapes.has(name)) throw new DiffusersFolderError(`${file}: tensor '${key}' appears twice`);
        shapes.set(name, t);
        origin.set(name, file);
      }
    }
    const where =
      spec.weights[component].length === 1
        ? `${spec.source}/${spec.weights[component][0]}`
        : `${spec.source}/${component} weights`;
    checkComponentTensors(shapes, load, where, (name) => origin.get(name) ?? where);
  }
}

/** The models of a pipeline folder; the caller owns them (`dispose()` frees all three). */
export interface DiffusersPipeline {
  spec: DiffusersPipelineSpec;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  text: CLIPTextModel;
  tokenizer: ClipTokenizer;
  /** The noise schedule of scheduler/scheduler_config.json. */
  schedule: NoiseScheduleConfig;
  dispose(): void;
}

export interface PipelineLoadOptions extends PipelineReadOptions {
  /** Whether the UNet's variables are trainable. Default true (the VAE and text encoder are frozen). */
  trainableUnet?: boolean;
}

/** Reads, validates and builds the UNet, VAE, text encoder and tokenizer of a pipeline folder. */
export async function loadDiffusersPipeline(
  source: string | PipelineFileSource,
  options: PipelineLoadOptions = {},
): Promise<DiffusersPipeline> {
  const src = typeof source === 'string' ? localPipelineSource(source) : source;
  const spec = await readDiffusersPipeline(src, options);
  const loads = componentLoads(spec);
  const unetW = await readComponentWeights(src, spec.weights.unet, loads.unet);
  const vaeW = await readComponentWeights(src, spec.weights.vae, loads.vae);
  const textW = await readComponentWeights(src, spec.weights.text_encoder, loads.text_encoder);
  // Initial values are overwritten at once; the seed only makes construction deterministic.
  const unet = UNet2DConditionModel.create(spec.unet, new Rng(0), options.trainableUnet ?? true);
  const vae = AutoencoderKL.create(spec.vae, new Rng(0), false);
  const text = CLIPTextModel.create(spec.textEncoder, new Rng(0), false);
  try {
    assign(unet.params, unetW);
    assign(vae.params, vaeW);
    assign(text.params, textW);
  } catch (err) {
    unet.dispose();
    vae.dispose();
    text.dispose();
    throw err;
  }
  return {
    spec,
    unet,
    vae,
    text,
    tokenizer: spec.tokenizer,
    schedule: spec.scheduler.schedule,
    dispose() {
      unet.dispose();
      vae.dispose();
      text.dispose();
    },
  };
}
