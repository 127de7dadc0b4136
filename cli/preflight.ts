/**
 * Pre-flight checks: what a config needs from this machine and its files, checked before any
 * server or worker starts. `dro validate`, `dro doctor` and `dro run` share them.
 *
 * The schema (config/schemas.ts) already refused every value that is wrong on its own or against
 * another field; these checks need the file system or the machine:
 * - `model.baseCheckpoint`: a supported scheme (a path, `file://` or `s3://`); a local file exists,
 *   is readable and is a model bundle whose header (configs, tensor names and shapes) is
 *   consistent and whose UNet is the one `model.unet` names, with the SHA-256
 *   `model.baseCheckpointSha256` records when given; or a diffusers pipeline folder whose
 *   configs, tokenizer, schedule and weight headers are consistent, at `model.resolution`.
 * - `data.paths`: local entries exist; parquet shards have the required columns and honest row
 *   counts, and their first rows (`maxRowsScanned`) are valid; a caption folder follows its layout
 *   and its images declare a usable size. `ranking.topK` is at most the images the run will have.
 * - `ranking.onnxModel` (local) exists.
 * - `data.generators`: a `bundle` entry's local file exists and is a model bundle drawing 3-channel
 *   images at the base model's size.
 * - The built-in world's evaluation keeps a held-out prompt of every tag: with `data.generators` or
 *   `data.promptSplit`, a config whose training prompts cover a tag of the evaluation suite is
 *   refused (docs/world.md).
 * - `ranking.preferenceInit` (local) exists, has the recorded SHA-256 and holds the weights of the
 *   preference model the reward stage trains.
 * - A local artifact root is, or can be created as, a writable directory.
 * - The workflow ids fit Temporal's limit and the workflow's input fits its payload limit.
 * - A lower bound of the memory the run holds at once is below the machine's memory.
 * S3 objects are not fetched here (no network); the run checks them when it reads them.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- the readers load on demand: they pull in
   TF.js and parquet, which checking a plain config does not need. */
import { ClipOnnxReward } from '../engine/rewards/clip-onnx-reward';
import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineConfig } from '../config/schemas';
import { jsonPath } from '../config/load';
import type { ModelBundleConfigs } from '../engine/io/model-bundle';
import type * as ModelBundleModule from '../engine/io/model-bundle';
import type * as SafetensorsModule from '../engine/io/safetensors';
import type * as PreferenceModelModule from '../engine/rewards/preference-model';
import type * as FolderImportModule from '../engine/data/folder-import';
import type * as PickapicModule from '../engine/data/pickapic';
import type * as ImageCodecModule from '../engine/data/image-codec';
import type * as TextEncoderModule from '../engine/models/text-encoder';
import type * as DiffusersPipelineModule from '../engine/io/diffusers-pipeline';
import type * as LatentModelModule from '../engine/latent/latent-model';
import type * as PromptSplitModule from '../engine/world/prompt-split';
import type * as SuiteModule from '../engine/eval/suite';
import type * as WorldModule from '../engine/world/world';
import type * as StageModule from '../activities/stage';
import { UNET_CONFIGS, type UNetConfig } from '../engine/models/unet-config';
import { unetParamSpecs } from '../engine/models/unet-params';
import { stateDir } from '../infra/paths';
import { deviceProblems, type DeviceCheckDeps } from './device-check';
import { s3BucketNameProblem } from '../storage/config';
import { digestFile } from '../storage/digest';
import { recordedDigestProblem } from '../storage/verify';
import { isUri, parseArtifactUri } from '../storage/uri';

/** One problem, located by the config field's JSON path (`$.model.baseCheckpoint`). */
export interface PreflightProblem {
  path: string;
  message: string;
}

export interface PreflightOptions {
  /** Directory that relative paths resolve against. Default: `process.cwd()`. */
  cwd?: string;
  /** The `--run-id` a run continues; its length counts into the workflow ids. Default: a new id. */
  runId?: string;
  /** Memory of the machine in bytes. Default: `os.totalmem()`. */
  totalMemoryBytes?: number;
  /** Pick-a-Pic rows (over all shards) read and validated in full. Default 2000. */
  maxRowsScanned?: number;
  /** Caption-folder images whose headers are read. Default 2000. */
  maxImagesScanned?: number;
  /** How the GPU a config asks for is looked for. Default: this machine's. */
  devices?: DeviceCheckDeps;
}

/** Temporal's default limit on workflow ids (`limit.maxIDLengthLimit`), in bytes. */
export const WORKFLOW_ID_LIMIT = 1000;
/** Temporal's default limit on one payload (`limit.blobSize.error`): 2 MiB. */
export const PAYLOAD_LIMIT = 2 * 1024 * 1024;
/** Length of a run id `dro run` makes (`YYYY-MM-DD-xxxxxxxx`). */
const NEW_RUN_ID_LENGTH = 19;
/** Suffix `dro run --run-id` adds to the workflow id of a continued run (`-xxxx`). */
const CONTINUE_SUFFIX_LENGTH = 5;
const LONGEST_CHILD_SUFFIX = '-train-pretrain';

type Source = { kind: 'file'; file: string } | { kind: 's3' } | { kind: 'invalid'; message: string };

/** Where a path or URI from a config points, the way the activities resolve it. */
function resolveSource(value: string, cwd: string): Source {
  if (!isUri(value)) {
    if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) && !/^[A-Za-z]:[\\/]/.test(value)) {
      const scheme = value.slice(0, value.indexOf(':'));
      return { kind: 'invalid', message: `unsupported scheme '${scheme}:' (use a path, file:// or s3://)` };
    }
    return { kind: 'file', file: path.resolve(cwd, value) };
  }
  const scheme = value.slice(0, value.indexOf(':')).toLowerCase();
  if (scheme !== 'file' && scheme !== 's3')
    return { kind: 'invalid', message: `unsupported scheme '${scheme}://' (use a path, file:// or s3://)` };
  try {
    const parsed = parseArtifactUri(value);
    if (parsed.scheme === 'file') return { kind: 'file', file: parsed.path };
    const problem = s3BucketNameProblem(parsed.bucket);
    return problem
      ? { kind: 'invalid', message: `${value}: bucket ${parsed.bucket} ${problem}` }
      : { kind: 's3' };
  } catch (err) {
    return { kind: 'invalid', message: (err as Error).message };
  }
}

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'a parent is not a directory';
  return code ?? (err as Error).message;
}

/** Stat of an existing, readable entry, or the reason it cannot be used. */
async function readableEntry(file: string): Promise<{ stat: Stats } | { problem: string }> {
  try {
    const stat = await fs.stat(file);
    await fs.access(file, fsConstants.R_OK);
    return { stat };
  } catch (err) {
    return { problem: `cannot read ${file} (${errnoText(err)})` };
  }
}

/** Same structure (everything but `sample_size`). */
function sameUNet(a: UNetConfig, b: UNetConfig): boolean {
  const strip = (c: UNetConfig) => JSON.stringify({ ...c, sample_size: 0 });
  return strip(a) === strip(b);
}

/**
 * A diffusers pipeline folder as the base model: every config, the tokenizer (merges against the
 * vocab), the cross-component contracts, the training schedule and every weight file's header
 * (names and shapes against the configs), reading no tensor data; and `model.resolution` must be
 * the image size the VAE and UNet work at (the expert images are stored at it and encoded).
 */
async function checkDiffusersBase(
  config: PipelineConfig,
  folder: string,
  add: (field: string, message: string) => void,
): Promise<Pick<ModelBundleConfigs, 'unet' | 'textEncoder'> | undefined> {
  const pipeline = require('../engine/io/diffusers-pipeline') as typeof DiffusersPipelineModule;
  const { checkSchedule } = require('../engine/latent/latent-model') as typeof LatentModelModule;
  try {
    const spec = await pipeline.readDiffusersPipeline(folder);
    checkSchedule(spec);
    await pipeline.checkPipelineWeightHeaders(folder, spec);
    if (config.model.resolution !== spec.imageSize)
      add(
        'model.resolution',
        `model.resolution ${config.model.resolution}: the diffusers folder ${folder} works at ${spec.imageSize} px ` +
          `(unet/config.json sample_size ${spec.unet.sample_size} x the VAE's factor ${spec.imageSize / spec.unet.sample_size}); set it to ${spec.imageSize}`,
      );
    return { unet: spec.unet, textEncoder: spec.textEncoder };
  } catch (err) {
    add('model.baseCheckpoint', (err as Error).message);
    return undefined;
  }
}

async function checkBaseCheckpoint(
  config: PipelineConfig,
  cwd: string,
  add: (field: string, message: string) => void,
): Promise<Pick<ModelBundleConfigs, 'unet' | 'textEncoder'> | undefined> {
  const value = config.model.baseCheckpoint;
  if (!value) return undefined;
  const source = resolveSource(value, cwd);
  if (source.kind === 'invalid') return void add('model.baseCheckpoint', source.message);
  if (source.kind === 's3') return undefined;
  const entry = await readableEntry(source.file);
  if ('problem' in entry) return void add('model.baseCheckpoint', entry.problem);
  const expectedSha = config.model.baseCheckpointSha256;
  if (entry.stat.isDirectory()) {
    if (expectedSha)
      add(
        'model.baseCheckpointSha256',
        `model.baseCheckpoint ${source.file} is a diffusers folder; a SHA-256 checks one bundle file: remove model.baseCheckpointSha256`,
      );
    return checkDiffusersBase(config, source.file, add);
  }
  if (!entry.stat.isFile())
    return void add(
      'model.baseCheckpoint',
      `${source.file} is neither a file (a model bundle is one .safetensors file) nor a diffusers pipeline folder`,
    );
  const { checkModelBundleHeader } = require('../engine/io/model-bundle') as typeof ModelBundleModule;
  const { readSafetensorsHeader } = require('../engine/io/safetensors') as typeof SafetensorsModule;
  let configs: ModelBundleConfigs;
  try {
    configs = checkModelBundleHeader(await readSafetensorsHeader(source.file), source.file);
  } catch (err) {
    return void add('model.baseCheckpoint', (err as Error).message);
  }
  if (expectedSha) {
    const actual = (await digestFile(source.file)).sha256;
    const mismatch = recordedDigestProblem('model.baseCheckpoint', source.file, actual, expectedSha);
    if (mismatch) add('model.baseCheckpointSha256', mismatch);
  }
  const named = UNET_CONFIGS[config.model.unet];
  if (!sameUNet(configs.unet, named))
    add(
      'model.unet',
      `model.unet '${config.model.unet}' is not the UNet of model.baseCheckpoint ${source.file} ` +
        `(block_out_channels [${configs.unet.block_out_channels.join(', ')}], in_channels ${configs.unet.in_channels}); ` +
        `set model.unet to the matching configuration`,
    );
  return configs;
}

async function shardFiles(file: string): Promise<string[]> {
  const stat = await fs.stat(file);
  if (!stat.isDirectory()) return [file];
  const names = (await fs.readdir(file)).filter((n) => n.endsWith('.parquet')).sort();
  return names.map((n) => path.join(file, n));
}

/** Images the run will rank (an upper bound), or undefined when some source is remote. */
async function checkDataPaths(
  config: PipelineConfig,
  cwd: string,
  options: PreflightOptions,
  add: (field: string, message: string) => void,
  problemCount: () => number,
): Promise<number | undefined> {
  const { source, paths } = config.data;
  if (source === 'world') return 2 * config.data.prompts;
  const { listCaptionFolder } = require('../engine/data/folder-import') as typeof FolderImportModule;
  const { countPickapicRows, iteratePickapicShard } =
    require('../engine/data/pickapic') as typeof PickapicModule;
  let images = 0;
  let complete = true;
  const before = problemCount();
  let rowBudget = options.maxRowsScanned ?? 2000;
  for (const [i, value] of paths.entries()) {
    const field = `data.paths[${i}]`;
    const where = resolveSource(value, cwd);
    if (where.kind === 'invalid') {
      add(field, where.message);
      continue;
    }
    if (where.kind === 's3') {
      complete = false;
      continue;
    }
    const entry = await readableEntry(where.file);
    if ('problem' in entry) {
      add(field, entry.problem);
      continue;
    }
    if (source === 'folder') {
      if (!entry.stat.isDirectory()) {
        add(
          field,
          `${where.file} is not a folder (data.source 'folder' takes a folder of images and captions)`,
        );
        continue;
      }
      try {
        const pairs = await listCaptionFolder(where.file);
        images += pairs.length;
        const problem = await checkFolderImages(where.file, pairs, options.maxImagesScanned ?? 2000);
        if (problem) add(field, problem);
      } catch (err) {
        add(field, (err as Error).message);
      }
      continue;
    }
    let files: string[];
    try {
      files = await shardFiles(where.file);
    } catch (err) {
      add(field, `cannot read ${where.file} (${errnoText(err)})`);
      continue;
    }
    if (files.length === 0) {
      add(field, `directory ${where.file} holds no .parquet shards`);
      continue;
    }
    for (const file of files) {
      try {
        const rows = await countPickapicRows(file);
        images += 2 * rows;
        // Rows are checked in full (images decoded) up to the budget: enough to catch a wrong
        // export without reading a whole dataset before the run starts.
        if (rowBudget > 0 && config.data.onBadRow === 'fail') {
          for await (const _row of iteratePickapicShard(file, { onBadRow: 'fail' })) {
            if (--rowBudget <= 0) break;
          }
        }
      } catch (err) {
        add(field, (err as Error).message);
      }
    }
  }
  // Unknown when a source is remote or could not be read.
  return complete && problemCount() === before ? images : undefined;
}

/** The first problem among the folder's images, judged from their headers only. */
async function checkFolderImages(
  dir: string,
  pairs: { fileName: string }[],
  budget: number,
): Promise<string | undefined> {
  const { readImageDimensions, sniffImageFormat } =
    require('../engine/data/image-codec') as typeof ImageCodecModule;
  for (const { fileName } of pairs.slice(0, budget)) {
    const file = path.join(dir, fileName);
    let bytes: Uint8Array;
    try {
      const handle = await fs.open(file, 'r');
      try {
        // Headers sit at the start; a JPEG's frame header follows its metadata segments (64 KiB max each).
        const buf = new Uint8Array(256 * 1024);
        const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
        bytes = buf.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (err) {
      return `${file}: cannot read (${errnoText(err)})`;
    }
    if (!sniffImageFormat(bytes)) return `${file}: undecodable image (neither PNG nor JPEG signature)`;
    const dims = readImageDimensions(bytes);
    if (!dims) return `${file}: undecodable image (no size header found)`;
    if (dims.width * dims.height > 64e6)
      return `${file}: image declares ${dims.width}x${dims.height}, larger than 64 megapixels`;
    if (dims.width < 16 || dims.height < 16)
      return `${file}: image ${dims.width}x${dims.height} is smaller than the minimum side 16`;
  }
  return undefined;
}

async function checkOnnxModel(config: PipelineConfig, cwd: string, add: (f: string, m: string) => void) {
  if (config.ranking.rewardModel !== 'onnx' || !config.ranking.onnxModel) return;
  const where = resolveSource(config.ranking.onnxModel, cwd);
  if (where.kind === 'invalid') return add('ranking.onnxModel', where.message);
  if (where.kind === 's3') return;
  const entry = await readableEntry(where.file);
  if ('problem' in entry) add('ranking.onnxModel', entry.problem);
  else if (entry.stat.isDirectory()) {
    // A CLIP-style reward folder: load it now, so a wrong input, crop size or tokenizer is named here.
    try {
      await ClipOnnxReward.load(where.file);
    } catch (err) {
      add('ranking.onnxModel', (err as Error).message);
    }
  } else if (!entry.stat.isFile()) add('ranking.onnxModel', `${where.file} is not a file`);
}

async function checkPreferenceInit(config: PipelineConfig, cwd: string, add: (f: string, m: string) => void) {
  const field = 'ranking.preferenceInit';
  if (config.ranking.rewardModel !== 'preference' || !config.ranking.preferenceInit) {
    if (config.ranking.preferenceInitSha256 && !config.ranking.preferenceInit)
      add(
        'ranking.preferenceInitSha256',
        'ranking.preferenceInitSha256 is set but ranking.preferenceInit is empty',
      );
    return;
  }
  const where = resolveSource(config.ranking.preferenceInit, cwd);
  if (where.kind === 'invalid') return add(field, where.message);
  if (where.kind === 's3') return;
  const entry = await readableEntry(where.file);
  if ('problem' in entry) return add(field, entry.problem);
  if (!entry.stat.isFile())
    return add(field, `${where.file} is not a file (a .safetensors file of preference-model weights)`);
  const expected = config.ranking.preferenceInitSha256;
  if (expected) {
    const actual = (await digestFile(where.file)).sha256;
    const mismatch = recordedDigestProblem(field, where.file, actual, expected);
    if (mismatch) return add('ranking.preferenceInitSha256', mismatch);
  }
  const { checkPreferenceWeights } =
    require('../engine/rewards/preference-model') as typeof PreferenceModelModule;
  const { readSafetensors } = require('../engine/io/safetensors') as typeof SafetensorsModule;
  try {
    checkPreferenceWeights(await readSafetensors(where.file), where.file);
  } catch (err) {
    add(field, (err as Error).message);
  }
}

/** Each `bundle` generator of `data.generators`: a readable model bundle at the base model's image size. */
async function checkGeneratorBundles(
  config: PipelineConfig,
  cwd: string,
  baseSize: number | undefined,
  add: (f: string, m: string) => void,
) {
  if (config.data.source !== 'world') return;
  for (const [i, g] of (config.data.generators ?? []).entries()) {
    if (g.kind !== 'bundle') continue;
    const field = `data.generators[${i}].path`;
    const where = resolveSource(g.path, cwd);
    if (where.kind === 'invalid') {
      add(field, where.message);
      continue;
    }
    if (where.kind === 's3') continue;
    const entry = await readableEntry(where.file);
    if ('problem' in entry) {
      add(field, `generator '${g.name}': ${entry.problem}`);
      continue;
    }
    if (!entry.stat.isFile()) {
      add(
        field,
        `generator '${g.name}': ${where.file} is not a file (a model bundle is one .safetensors file)`,
      );
      continue;
    }
    const { checkModelBundleHeader } = require('../engine/io/model-bundle') as typeof ModelBundleModule;
    const { readSafetensorsHeader } = require('../engine/io/safetensors') as typeof SafetensorsModule;
    try {
      const { unet } = checkModelBundleHeader(await readSafetensorsHeader(where.file), where.file);
      if (unet.in_channels !== 3 || (baseSize !== undefined && unet.sample_size !== baseSize))
        add(
          field,
          `generator '${g.name}': ${where.file} draws ${unet.in_channels}-channel ${unet.sample_size} px images; ` +
            `the preference images are 3-channel ${baseSize ?? 'RGB'} px, as the base model draws them`,
        );
    } catch (err) {
      add(field, `generator '${g.name}': ${(err as Error).message}`);
    }
  }
}

/**
 * With the new world settings (`data.generators`, `data.promptSplit`), the evaluation must keep a
 * held-out prompt of every tag: the simulated comparisons' prompts are drawn as the preferences
 * stage draws them and removed from the built-in suite as the evaluation removes them.
 */
function checkHeldOutPrompts(config: PipelineConfig, add: (f: string, m: string) => void) {
  const d = config.data;
  if (d.source !== 'world' || !config.eval.enabled) return;
  if (d.generators === undefined && d.promptSplit === undefined) return;
  const { preferencePrompts } = require('../engine/world/prompt-split') as typeof PromptSplitModule;
  const { buildWorldSuite } = require('../engine/eval/suite') as typeof SuiteModule;
  const { stageSeed } = require('../activities/stage') as typeof StageModule;
  const training = preferencePrompts(
    `preferences:${stageSeed(config.seed, 'prompts')}`,
    d.prompts,
    d.promptSplit,
  );
  let missing: string[];
  try {
    missing = buildWorldSuite({
      seed: `geneval-suite:${config.seed}`,
      trainingPrompts: training.map((p) => p.prompt),
    }).missingTags;
  } catch {
    missing = [...(require('../engine/world/world') as typeof WorldModule).TAGS]; // nothing is left
  }
  if (missing.length)
    add(
      d.promptSplit === 'hash' ? 'data.promptSplit' : 'data.prompts',
      `data.prompts ${d.prompts} (seed ${config.seed}): the training prompts cover every ${missing.join(', ')} prompt ` +
        `of the evaluation suite, so no held-out prompt of that tag is left to evaluate; ` +
        (d.promptSplit === 'hash'
          ? 'lower data.prompts'
          : "set data.promptSplit to 'hash' or lower data.prompts"),
    );
}

/**
 * Why `root` cannot hold artifacts, or undefined when it is a writable directory (or can be
 * created as one: its nearest existing ancestor is a writable directory).
 */
export async function localRootProblem(root: string): Promise<string | undefined> {
  if (root.includes('\0')) return 'the path contains a NUL byte';
  let dir = path.resolve(root);
  for (;;) {
    let stat;
    try {
      stat = await fs.stat(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        const parent = path.dirname(dir);
        if (parent === dir) return `${root} cannot be created`;
        dir = parent;
        continue;
      }
      return `${dir}: ${errnoText(err)}`;
    }
    if (!stat.isDirectory())
      return dir === path.resolve(root)
        ? `${root} is not a directory`
        : `${root} cannot be created: ${dir} is not a directory`;
    try {
      await fs.access(dir, fsConstants.W_OK | fsConstants.X_OK);
    } catch {
      return dir === path.resolve(root)
        ? `${root} is not writable`
        : `${root} cannot be created: ${dir} is not writable`;
    }
    return undefined;
  }
}

const GiB = 1024 ** 3;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;

/** Parameters of a list of specs. */
function countParams(specs: { shape: number[] }[]): number {
  return specs.reduce((sum, s) => sum + s.shape.reduce((a, d) => a * d, 1), 0);
}

/**
 * A lower bound of the bytes a run holds at once, by part. Model: the UNet in float32 six times
 * (trained weights, EMA, Adam's two moments, gradients, the frozen reference) plus the text
 * encoder once. Batch: per sample, the feature map of every resnet of each level, kept for the
 * backward pass, for the trained and the reference network on expert and policy inputs (4x).
 * Buffer: every step of every trajectory in the replay buffer. Data: the images the run keeps
 * decoded (8-bit RGB at the model's size): corpus and preference images.
 */
export function memoryLowerBound(
  config: PipelineConfig,
  unet: UNetConfig,
  textParams: number,
  images: number | undefined,
): { total: number; parts: { field: string; label: string; bytes: number }[] } {
  const unetParams = countParams(unetParamSpecs(unet));
  const side = unet.sample_size;
  const sample = unet.in_channels * side * side * 4;
  const stages = [
    ...(config.model.baseCheckpoint || config.data.source !== 'world' ? [] : [config.pretrain]),
    ...(config.sft.enabled ? [config.sft] : []),
    config.dro,
    ...(config.dpo.enabled ? [config.dpo] : []),
  ];
  const batch = Math.max(...stages.map((s) => s.batchSize));
  let featureBytes = 0;
  unet.block_out_channels.forEach((ch, i) => {
    const s = Math.max(1, Math.floor(side / 2 ** i));
    featureBytes += ch * s * s * 4 * unet.layers_per_block * 2;
  });
  const pixels = (config.data.source === 'world' ? config.model.resolution : side) ** 2 * 3;
  const corpus =
    !config.model.baseCheckpoint && config.data.source === 'world' ? config.pretrain.corpusSize : 0;
  const parts = [
    {
      field: config.model.baseCheckpoint ? 'model.baseCheckpoint' : 'model.unet',
      label: `model (${unetParams.toLocaleString('en-US')} UNet parameters x 6 copies)`,
      bytes: unetParams * 4 * 6 + textParams * 4,
    },
    { field: 'dro.batchSize', label: `batch of ${batch}`, bytes: batch * 4 * featureBytes },
    {
      field: 'dro.bufferSize',
      label: `replay buffer of ${config.dro.bufferSize} x ${config.dro.samplerSteps + 1} steps`,
      bytes: config.dro.bufferSize * config.dro.bufferBatchSize * (config.dro.samplerSteps + 1) * sample,
    },
    {
      field:
        corpus > (images ?? 0)
          ? 'pretrain.corpusSize'
          : config.data.source === 'world'
            ? 'data.prompts'
            : 'data.paths',
      label: `${(corpus + (images ?? 0)).toLocaleString('en-US')} images`,
      bytes: (corpus + (images ?? 0)) * pixels,
    },
  ];
  return { total: parts.reduce((a, p) => a + p.bytes, 0), parts };
}

/** Every problem the file system and the machine reveal about `config`; empty when none. */
export async function preflight(
  config: PipelineConfig,
  options: PreflightOptions = {},
): Promise<PreflightProblem[]> {
  const cwd = options.cwd ?? process.cwd();
  const problems: PreflightProblem[] = [];
  const add = (field: string, message: string) =>
    problems.push({
      path:
        field === '$'
          ? '$'
          : jsonPath(field.split(/\.|(?=\[)/).map((k) => (k.startsWith('[') ? Number(k.slice(1, -1)) : k))),
      message,
    });

  // Temporal's limits: ids of the workflow and its children, and the workflow's input.
  const runIdLength = options.runId !== undefined ? Buffer.byteLength(options.runId) : NEW_RUN_ID_LENGTH;
  const idLength =
    Buffer.byteLength(config.name) +
    1 +
    runIdLength +
    (options.runId !== undefined ? CONTINUE_SUFFIX_LENGTH : 0);
  if (idLength > WORKFLOW_ID_LIMIT)
    add(
      'name',
      `the workflow id '<name>-<runId>' would be ${idLength} bytes, more than Temporal's ${WORKFLOW_ID_LIMIT}; shorten name (or --run-id)`,
    );
  if (runIdLength + LONGEST_CHILD_SUFFIX.length > WORKFLOW_ID_LIMIT)
    add(
      '$',
      `--run-id is ${runIdLength} bytes; child workflow ids '<runId>${LONGEST_CHILD_SUFFIX}' would pass Temporal's ${WORKFLOW_ID_LIMIT}`,
    );
  const inputBytes = Buffer.byteLength(
    JSON.stringify({ runId: options.runId ?? 'x'.repeat(runIdLength), config }),
  );
  if (inputBytes > PAYLOAD_LIMIT)
    add(
      '$',
      `the config is ${inputBytes} bytes as the workflow's input, more than Temporal's payload limit of ${PAYLOAD_LIMIT} bytes (2 MiB); list fewer data.paths (a folder of shards counts as one)`,
    );

  if (config.storage.kind === 'local') {
    const root = config.storage.root ?? path.join(stateDir(), 'artifacts');
    const problem = await localRootProblem(path.resolve(cwd, root));
    if (problem) add(config.storage.root === undefined ? '$' : 'storage.root', `artifact root: ${problem}`);
  }

  const bundle = await checkBaseCheckpoint(config, cwd, add);
  const images = await checkDataPaths(config, cwd, options, add, () => problems.length);
  await checkOnnxModel(config, cwd, add);
  await checkPreferenceInit(config, cwd, add);
  await checkGeneratorBundles(
    config,
    cwd,
    bundle?.unet.sample_size ?? (config.model.baseCheckpoint ? undefined : config.model.resolution),
    add,
  );
  checkHeldOutPrompts(config, add);
  for (const p of deviceProblems(config, options.devices)) add(p.field, p.message);
  if (images !== undefined && config.data.source !== 'world' && config.ranking.topK > images)
    add(
      'ranking.topK',
      `ranking.topK (${config.ranking.topK}) is more than the ${images} images data.paths hold`,
    );

  // Memory: the bundle's UNet when it could be read, else the named one (at the world's size).
  const unet = bundle?.unet ?? {
    ...UNET_CONFIGS[config.model.unet],
    ...(config.data.source === 'world' && !config.model.baseCheckpoint
      ? { sample_size: config.model.resolution }
      : {}),
  };
  const textParams = bundle
    ? countParams(
        (require('../engine/models/text-encoder') as typeof TextEncoderModule).textEncoderParamSpecs(
          bundle.textEncoder,
        ),
      )
    : 0;
  const memory = memoryLowerBound(config, unet, textParams, images);
  const total = options.totalMemoryBytes ?? os.totalmem();
  if (memory.total > total) {
    const largest = memory.parts.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    add(
      largest.field,
      `the run needs at least ${gib(memory.total)} of memory (${memory.parts
        .filter((p) => p.bytes >= 0.05 * GiB)
        .map((p) => `${p.label}: ${gib(p.bytes)}`)
        .join('; ')}), more than this machine's ${gib(total)}`,
    );
  }
  return problems;
}
