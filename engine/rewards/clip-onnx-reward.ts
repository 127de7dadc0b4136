/**
 * CLIP-based reward models (PickScore, HPS v2 and the like) exported to ONNX, loaded from a folder
 * laid out as their Hugging Face repositories are:
 *
 *   model.onnx                  inputs pixel_values float32 [N, 3, H, W] and input_ids int64 (or
 *                               int32) [N, L], optionally attention_mask like input_ids; output
 *                               `scores` [N] / [N, 1] (one score per image-prompt pair) or
 *                               `logits_per_image` [N, N], whose diagonal is used
 *   preprocessor_config.json    transformers' CLIPImageProcessor settings
 *   vocab.json, merges.txt      the CLIP BPE tokenizer
 *   tokenizer_config.json       optional: model_max_length and special tokens
 *
 * Images go through the model's own preprocessing: resize so the shortest side is `size`
 * (`shortest_edge`, or an exact height x width) with PIL's resampling filter, center crop to
 * `crop_size`, rescale by `rescale_factor` and normalize with `image_mean` / `image_std`. The resize
 * reproduces Pillow's two-pass fixed-point resampler (see {@link pilResize}), so an 8-bit image is
 * preprocessed to the same bytes as transformers' PIL image processor gives; the torchvision
 * processor (transformers' default when torchvision is installed) resizes in floating point and
 * differs by up to a few levels of 255.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { RgbImage } from '../data/image';
import { ClipTokenizer } from '../models/clip-tokenizer';
import { OnnxContractError } from './onnx-reward';
import { checkBatch } from './reward-model';
import type { ImageBatch, RewardImage, RewardModel } from './reward-model';

/** A file of the folder is missing or malformed. Permanent. */
export class ClipRewardFolderError extends Error {
  override readonly name = 'ClipRewardFolderError';
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    detail: string,
  ) {
    super(`CLIP reward model ${file}${field === undefined ? '' : ` field '${field}'`}: ${detail}`);
  }
}

/** Pillow's filters (PIL.Image.Resampling values) that {@link pilResize} implements. */
interface ResampleFilter {
  support: number;
  weight(x: number): number;
}

const BILINEAR: ResampleFilter = {
  support: 1,
  weight: (x) => {
    const a = Math.abs(x);
    return a < 1 ? 1 - a : 0;
  },
};

/** Keys' cubic with a = -0.5, as Pillow's BICUBIC. */
const BICUBIC: ResampleFilter = {
  support: 2,
  weight: (x) => {
    const a = -0.5;
    const t = Math.abs(x);
    if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
    return 0;
  },
};

const FILTERS: Readonly<Record<number, ResampleFilter>> = { 2: BILINEAR, 3: BICUBIC };

/** Pillow's 8-bit coefficient precision (32 - 8 - 2 bits). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc, for one axis. */
function axisCoefficients(inSize: number, outSize: number, filter: ResampleFilter) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      kk[xx * ksize + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0) kk[xx * ksize + x] = kk[xx * ksize + x]! / ww;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const fixed = new Float64Array(kk.length);
  for (let i = 0; i < kk.length; i++) {
    const k = kk[i]!;
    fixed[i] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
  }
  return { ksize, bounds, kk: fixed };
}

function clip8(acc: number): number {
  const v = Math.floor(acc / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Pillow's `Image.resize(size, resample)` for an 8-bit RGB image, bit for bit: per-axis
 * coefficients widened by the downscale factor (antialiasing), rounded to 22-bit fixed point,
 * a horizontal pass rounded and clipped to 8 bits, then a vertical pass. `resample` is Pillow's
 * enum value: 2 bilinear, 3 bicubic.
 */
export function pilResize(image: RgbImage, width: number, height: number, resample = 3): RgbImage {
  const filter = FILTERS[resample];
  if (!filter) throw new RangeError(`resample ${resample} is not supported (2 bilinear, 3 bicubic)`);
  const { width: w0, height: h0, data } = image;
  if (w0 === width && h0 === height) return { width, height, data: Uint8Array.from(data) };
  let src = data;
  let w = w0;
  if (width !== w0) {
    const { ksize, bounds, kk } = axisCoefficients(w0, width, filter);
    const out = new Uint8Array(width * h0 * 3);
    for (let y = 0; y < h0; y++)
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2]!;
        const xmax = bounds[xx * 2 + 1]!;
        for (let c = 0; c < 3; c++) {
          let acc = ONE / 2;
          for (let x = 0; x < xmax; x++) acc += src[(y * w0 + x + xmin) * 3 + c]! * kk[xx * ksize + x]!;
          out[(y * width + xx) * 3 + c] = clip8(acc);
        }
      }
    src = out;
    w = width;
  }
  if (height !== h0) {
    const { ksize, bounds, kk } = axisCoefficients(h0, height, filter);
    const out = new Uint8Array(w * height * 3);
    for (let yy = 0; yy < height; yy++) {
      const ymin = bounds[yy * 2]!;
      const ymax = bounds[yy * 2 + 1]!;
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          let acc = ONE / 2;
          for (let y = 0; y < ymax; y++) acc += src[((y + ymin) * w + x) * 3 + c]! * kk[yy * ksize + y]!;
          out[(yy * w + x) * 3 + c] = clip8(acc);
        }
    }
    src = out;
  }
  return { width, height, data: src };
}

/** The subset of CLIPImageProcessor's settings that affects the pixels. */
export interface ClipPreprocessConfig {
  /** Resize target: shortest side, or exact size. Undefined: no resize. */
  size?: { shortestEdge: number } | { height: number; width: number };
  /** Pillow resample filter (2 bilinear, 3 bicubic). */
  resample: number;
  /** Center crop. Undefined: no crop. */
  cropSize?: { height: number; width: number };
  /** Undefined: no rescale. */
  rescaleFactor?: number;
  /** Undefined: no normalization. */
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
}

/** transformers' get_resize_output_image_size(default_to_square=False) for a shortest edge. */
function resizedSize(
  size: NonNullable<ClipPreprocessConfig['size']>,
  width: number,
  height: number,
): { width: number; height: number } {
  if (!('shortestEdge' in size)) return { width: size.width, height: size.height };
  const s = size.shortestEdge;
  if (width <= height) return { width: s, height: Math.trunc((s * height) / width) };
  return { width: Math.trunc((s * width) / height), height: s };
}

function toUint8Image(image: RewardImage): RgbImage {
  if (image.data instanceof Uint8Array) return image as RgbImage;
  // Float images are quantized as an 8-bit file of them would be, then follow the PIL path.
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(Math.min(Math.max(image.data[i]!, 0), 1) * 255);
  return { width: image.width, height: image.height, data };
}

/** CHW float32 pixels of one image after the CLIP preprocessing. */
export function clipPreprocess(image: RewardImage, config: ClipPreprocessConfig): Float32Array {
  let img = toUint8Image(image);
  if (config.size) {
    const { width, height } = resizedSize(config.size, img.width, img.height);
    img = pilResize(img, width, height, config.resample);
  }
  let top = 0;
  let left = 0;
  let { width: w, height: h } = img;
  if (config.cropSize) {
    const { height: ch, width: cw } = config.cropSize;
    if (ch > img.height || cw > img.width)
      throw new RangeError(`crop ${cw}x${ch} is larger than the resized image ${img.width}x${img.height}`);
    top = Math.floor((img.height - ch) / 2);
    left = Math.floor((img.width - cw) / 2);
    w = cw;
    h = ch;
  }
  const out = new Float32Array(3 * w * h);
  const scale = config.rescaleFactor ?? 1;
  for (let c = 0; c < 3; c++) {
    const mean = config.normalize ? config.normalize.mean[c]! : 0;
    const std = config.normalize ? config.normalize.std[c]! : 1;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = img.data[((y + top) * img.width + x + left) * 3 + c]! * scale;
        out[(c * h + y) * w + x] = (v - mean) / std;
      }
  }
  return out;
}

type Json = Record<string, unknown>;

async function readJson(file: string): Promise<Json> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new ClipRewardFolderError(file, undefined, `cannot read (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ClipRewardFolderError(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ClipRewardFolderError(file, undefined, 'must be a JSON object');
  return json as Json;
}

/** Parses preprocessor_config.json; every bad field is named. */
export function parsePreprocessorConfig(json: Json, file: string): ClipPreprocessConfig {
  const bad = (field: string, detail: string): never => {
    throw new ClipRewardFolderError(file, field, detail);
  };
  const posInt = (field: string, v: unknown): number =>
    Number.isSafeInteger(v) && (v as number) > 0
      ? (v as number)
      : bad(field, `must be a positive integer, got ${JSON.stringify(v)}`);
  const flag = (field: string, dflt: boolean): boolean => {
    const v = json[field];
    if (v === undefined) return dflt;
    return typeof v === 'boolean' ? v : bad(field, `must be true or false, got ${JSON.stringify(v)}`);
  };
  const triple = (field: string): [number, number, number] => {
    const v = json[field];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      return bad(field, `must be 3 numbers (one per RGB channel), got ${JSON.stringify(v)}`);
    return v as [number, number, number];
  };
  const config: ClipPreprocessConfig = { resample: 3 };
  if (flag('do_resize', true)) {
    const s = json.size;
    if (typeof s === 'number') config.size = { shortestEdge: posInt('size', s) };
    else if (typeof s === 'object' && s !== null && 'shortest_edge' in s)
      config.size = { shortestEdge: posInt('size.shortest_edge', (s as Json).shortest_edge) };
    else if (typeof s === 'object' && s !== null && 'height' in s && 'width' in s)
      config.size = {
        height: posInt('size.height', (s as Json).height),
        width: posInt('size.width', (s as Json).width),
      };
    else bad('size', `must be {shortest_edge} or {height, width}, got ${JSON.stringify(s)}`);
    const r = json.resample ?? 3;
    if (!(typeof r === 'number' && FILTERS[r]))
      bad('resample', `${JSON.stringify(r)} is not supported (2 bilinear, 3 bicubic)`);
    config.resample = r as number;
  }
  if (flag('do_center_crop', true)) {
    const c = json.crop_size;
    if (typeof c === 'number') config.cropSize = { height: posInt('crop_size', c), width: c };
    else if (typeof c === 'object' && c !== null)
      config.cropSize = {
        height: posInt('crop_size.height', (c as Json).height),
        width: posInt('crop_size.width', (c as Json).width),
      };
    else bad('crop_size', `must be a number or {height, width}, got ${JSON.stringify(c)}`);
    const s = config.size;
    const crop = config.cropSize!;
    if (s && 'shortestEdge' in s && (crop.height > s.shortestEdge || crop.width > s.shortestEdge))
      bad('crop_size', `${crop.width}x${crop.height} is larger than size.shortest_edge ${s.shortestEdge}`);
    if (s && 'height' in s && (crop.height > s.height || crop.width > s.width))
      bad('crop_size', `${crop.width}x${crop.height} is larger than size ${s.width}x${s.height}`);
  }
  if (flag('do_rescale', true)) {
    const f = json.rescale_factor ?? 1 / 255;
    if (typeof f !== 'number' || !Number.isFinite(f) || f <= 0)
      bad('rescale_factor', `must be a positive number, got ${JSON.stringify(f)}`);
    config.rescaleFactor = f as number;
  }
  if (flag('do_normalize', true)) {
    const mean = triple('image_mean');
    const std = triple('image_std');
    if (std.some((v) => v <= 0)) bad('image_std', `must be positive, got ${JSON.stringify(std)}`);
    config.normalize = { mean, std };
  }
  return config;
}

function specialToken(json: Json, field: string, dflt: string, file: string): string {
  const v = json[field];
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'string') return v;
  // Older configs store AddedToken objects.
  if (typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  throw new ClipRewardFolderError(file, field, `must be a token string, got ${JSON.stringify(v)}`);
}

/** model_max_length at or above this is transformers' "unset" sentinel (1e30). */
const UNSET_MAX_LENGTH = 1e6;

export interface ClipOnnxRewardOptions {
  /** Identity name. Default `clip-onnx:<folder name>`. */
  name?: string;
  /** Identity version. Default '1'. */
  version?: string;
  /** Output to read. Default `scores`, else `logits_per_image` (diagonal). */
  output?: string;
  /** Image-prompt pairs per inference call. Default 16. */
  batchSize?: number;
}

type Dim = number | string;
const shapeText = (shape: readonly Dim[]): string => `[${shape.join(', ')}]`;

function tensorMeta(
  list: readonly ort.InferenceSession.ValueMetadata[],
  name: string,
): ort.InferenceSession.TensorValueMetadata | undefined {
  const m = list.find((v) => v.name === name);
  return m && m.isTensor ? m : undefined;
}

const PIXELS = 'pixel_values';
const IDS = 'input_ids';
const MASK = 'attention_mask';

export class ClipOnnxReward implements RewardModel {
  private constructor(
    readonly name: string,
    readonly version: string,
    readonly digest: string,
    private readonly session: ort.InferenceSession,
    private readonly modelFile: string,
    readonly preprocess: ClipPreprocessConfig,
    readonly tokenizer: ClipTokenizer,
    private readonly pixelSize: { height: number; width: number },
    private readonly idsType: 'int64' | 'int32',
    private readonly hasMask: boolean,
    private readonly output: string,
    private readonly batchSize: number,
  ) {}

  /** True when `dir` is a folder with a preprocessor_config.json (the layout this class loads). */
  static async isClipRewardFolder(dir: string): Promise<boolean> {
    try {
      return (await fs.stat(path.join(dir, 'preprocessor_config.json'))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Loads the folder and checks the model against its preprocessing and tokenizer: a missing file,
   * a bad config field or an input the model does not declare (or declares with another shape)
   * is an error naming the file and the field or tensor.
   */
  static async load(dir: string, options: ClipOnnxRewardOptions = {}): Promise<ClipOnnxReward> {
    const batchSize = options.batchSize ?? 16;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const preFile = path.join(dir, 'preprocessor_config.json');
    const preBytes = await fs.readFile(preFile).catch((err: Error) => {
      throw new ClipRewardFolderError(preFile, undefined, `cannot read (${err.message})`);
    });
    const preprocess = parsePreprocessorConfig(await readJson(preFile), preFile);

    const vocabFile = path.join(dir, 'vocab.json');
    const mergesFile = path.join(dir, 'merges.txt');
    const tokConfigFile = path.join(dir, 'tokenizer_config.json');
    const readText = (file: string): Promise<string> =>
      fs.readFile(file, 'utf8').catch((err: Error) => {
        throw new ClipRewardFolderError(file, undefined, `cannot read (${err.message})`);
      });
    const [vocab, merges] = await Promise.all([readText(vocabFile), readText(mergesFile)]);
    const tokExists = await fs.stat(tokConfigFile).then(
      (s) => s.isFile(),
      () => false,
    );
    const tokJson: Json = tokExists ? await readJson(tokConfigFile) : {};
    const tokConfigText = tokExists ? await readText(tokConfigFile) : '';

    const modelFile = path.join(dir, 'model.onnx');
    const bytes = await fs.readFile(modelFile).catch((err: Error) => {
      throw new OnnxContractError(modelFile, undefined, `cannot read file (${err.message})`);
    });
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes);
    } catch (err) {
      throw new OnnxContractError(
        modelFile,
        undefined,
        `not a loadable ONNX model (${(err as Error).message.split('\n')[0]})`,
      );
    }
    const fail = (tensor: string | undefined, detail: string): never => {
      void session.release();
      throw new OnnxContractError(modelFile, tensor, detail);
    };

    for (const name of [PIXELS, IDS])
      if (!session.inputNames.includes(name))
        fail(`input '${name}'`, `is required but the model's inputs are ${session.inputNames.join(', ')}`);
    for (const name of session.inputNames)
      if (![PIXELS, IDS, MASK].includes(name))
        fail(`input '${name}'`, `is not one of ${PIXELS}, ${IDS}, ${MASK}, which a CLIP reward model takes`);
    const output = options.output ?? (session.outputNames.includes('scores') ? 'scores' : 'logits_per_image');
    if (!session.outputNames.includes(output))
      fail(
        `output '${output}'`,
        `is not an output of the model (outputs: ${session.outputNames.join(', ')})`,
      );

    // Pixel shape from the preprocessing: the crop, else an exact resize, else unknown.
    const s = preprocess.size;
    const side = preprocess.cropSize ?? (s && 'height' in s ? s : undefined);
    if (!side) {
      void session.release();
      throw new ClipRewardFolderError(
        preFile,
        'crop_size',
        "a shortest-edge resize needs do_center_crop with crop_size, so every image has the model's input size",
      );
    }
    const px = tensorMeta(session.inputMetadata, PIXELS);
    if (px) {
      const t = `input '${PIXELS}'`;
      if (px.type !== 'float32') fail(t, `must be float32, the model declares ${px.type}`);
      if (px.shape.length !== 4)
        fail(t, `must have rank 4 [N, 3, H, W], the model declares ${shapeText(px.shape)}`);
      const want: [number, number, string][] = [
        [1, 3, 'channels'],
        [2, side.height, `height, from ${path.basename(preFile)}`],
        [3, side.width, `width, from ${path.basename(preFile)}`],
      ];
      for (const [axis, v, what] of want) {
        const d = px.shape[axis];
        if (typeof d === 'number' && d !== v)
          fail(t, `dimension ${axis} (${what}) is ${d}, expected ${v}; shape ${shapeText(px.shape)}`);
      }
    }

    let idsType: 'int64' | 'int32' = 'int64';
    let seqLen: number | undefined;
    for (const name of [IDS, MASK]) {
      const m = tensorMeta(session.inputMetadata, name);
      if (!m) continue;
      const t = `input '${name}'`;
      if (m.type !== 'int64' && m.type !== 'int32')
        fail(t, `must be int64 or int32, the model declares ${m.type}`);
      if (name === IDS) idsType = m.type as 'int64' | 'int32';
      if (m.shape.length !== 2) fail(t, `must have rank 2 [N, L], the model declares ${shapeText(m.shape)}`);
      if (typeof m.shape[1] === 'number') seqLen = m.shape[1];
    }
    const configured = tokJson.model_max_length;
    let maxLength: number;
    if (configured === undefined || (typeof configured === 'number' && configured >= UNSET_MAX_LENGTH))
      maxLength = seqLen ?? 77;
    else if (Number.isSafeInteger(configured) && (configured as number) >= 2)
      maxLength = configured as number;
    else
      throw new ClipRewardFolderError(
        tokConfigFile,
        'model_max_length',
        `must be an integer >= 2, got ${JSON.stringify(configured)}`,
      );
    if (seqLen !== undefined && seqLen !== maxLength)
      fail(
        `input '${IDS}'`,
        `takes ${seqLen} tokens per prompt but ${path.basename(tokConfigFile)} model_max_length is ${maxLength}`,
      );

    let tokenizer: ClipTokenizer;
    try {
      tokenizer = ClipTokenizer.fromSources(
        { vocab, merges, vocabFile, mergesFile },
        {
          maxLength,
          bosToken: specialToken(tokJson, 'bos_token', '<|startoftext|>', tokConfigFile),
          eosToken: specialToken(tokJson, 'eos_token', '<|endoftext|>', tokConfigFile),
          padToken: specialToken(tokJson, 'pad_token', '<|endoftext|>', tokConfigFile),
          unkToken: specialToken(tokJson, 'unk_token', '<|endoftext|>', tokConfigFile),
        },
      );
    } catch (err) {
      void session.release();
      throw err;
    }

    // Everything that changes a score is in the digest: weights, preprocessing and tokenizer.
    const hash = createHash('sha256');
    for (const part of [bytes, preBytes, vocab, merges, tokConfigText]) {
      hash.update(createHash('sha256').update(part).digest());
    }
    return new ClipOnnxReward(
      options.name ?? `clip-onnx:${path.basename(path.resolve(dir))}`,
      options.version ?? '1',
      `sha256:${hash.digest('hex')}`,
      session,
      modelFile,
      preprocess,
      tokenizer,
      { height: side.height, width: side.width },
      idsType,
      session.inputNames.includes(MASK),
      output,
      batchSize,
    );
  }

  /** Model inputs for image-prompt pairs. */
  feeds(images: ImageBatch, prompts: readonly string[]): Record<string, ort.Tensor> {
    const n = images.length;
    const { height: h, width: w } = this.pixelSize;
    const plane = 3 * h * w;
    const pixels = new Float32Array(n * plane);
    images.forEach((im, i) => pixels.set(clipPreprocess(im, this.preprocess), i * plane));
    const L = this.tokenizer.config.maxLength;
    const ids = prompts.flatMap((p) => this.tokenizer.encode(p));
    const make = (values: number[]): ort.Tensor =>
      this.idsType === 'int64'
        ? new ort.Tensor(
            'int64',
            BigInt64Array.from(values, (v) => BigInt(v)),
            [n, L],
          )
        : new ort.Tensor('int32', Int32Array.from(values), [n, L]);
    const feeds: Record<string, ort.Tensor> = {
      [PIXELS]: new ort.Tensor('float32', pixels, [n, 3, h, w]),
      [IDS]: make(ids),
    };
    if (this.hasMask) {
      // transformers' mask: 1 through the first eos, 0 on the padding after it.
      const mask: number[] = [];
      for (let i = 0; i < n; i++) {
        const row = ids.slice(i * L, (i + 1) * L);
        const end = row.indexOf(this.tokenizer.eosId, 1);
        row.forEach((_, j) => mask.push(end < 0 || j <= end ? 1 : 0));
      }
      feeds[MASK] = make(mask);
    }
    return feeds;
  }

  async score(images: ImageBatch, prompts: readonly string[]): Promise<number[]> {
    checkBatch(this.name, images, prompts);
    const out: number[] = [];
    for (let i = 0; i < images.length; i += this.batchSize) {
      const n = Math.min(this.batchSize, images.length - i);
      const result = await this.session.run(this.feeds(images.slice(i, i + n), prompts.slice(i, i + n)));
      const t = result[this.output];
      const tensor = `output '${this.output}'`;
      if (!t) throw new OnnxContractError(this.modelFile, tensor, 'missing from the run result');
      const data = t.data as Float32Array;
      if (this.output === 'logits_per_image') {
        if (t.dims.length !== 2 || t.dims[0] !== n || t.dims[1] !== n)
          throw new OnnxContractError(
            this.modelFile,
            tensor,
            `has shape [${t.dims.join(', ')}] for ${n} pairs, expected [${n}, ${n}]`,
          );
        for (let k = 0; k < n; k++) out.push(Number(data[k * n + k]));
      } else {
        if (data.length !== n || t.dims.length > 2 || (t.dims.length === 2 && t.dims[1] !== 1))
          throw new OnnxContractError(
            this.modelFile,
            tensor,
            `has shape [${t.dims.join(', ')}] for ${n} pairs, expected [${n}] or [${n}, 1]`,
          );
        for (const v of data) out.push(Number(v));
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
