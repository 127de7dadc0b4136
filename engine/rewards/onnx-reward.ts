/**
 * Reward models exported to ONNX (PickScore, HPSv2, ImageReward, ...), run with onnxruntime-node.
 *
 * Input contract (names configurable):
 *   pixel_values  float32 [N, 3, H, W]: RGB, values in [0, 1], then (x - mean) / std per channel
 *                 when `normalize` is given (CLIP exports use mean 0.48145466, 0.4578275,
 *                 0.40821073 and std 0.26862954, 0.26130258, 0.27577711). Images are resized
 *                 bilinearly to `resolution`.
 *   input_ids     int64 (or int32) [N, L]: the prompt's token ids from `tokenizer`, exactly L each.
 *                 Optional: image-only models have no text input.
 *   attention_mask optional, same shape as input_ids: 1 for tokens, 0 for padding (`padId`).
 *   scores        float32 [N] or [N, 1]: one score per image.
 * The model's declared inputs and outputs are checked when it is loaded; a mismatch is an
 * OnnxContractError naming the file and the offending input or output.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { checkBatch, resizeToFloat } from './reward-model';
import type { ImageBatch, RewardModel } from './reward-model';

export interface PromptTokenizer {
  /** Exactly `seqLen` ids (padded/truncated by the tokenizer). */
  encode(prompt: string): number[];
}

export interface OnnxRewardConfig {
  /** Path of the .onnx file. */
  file: string;
  /** Identity name. Default `onnx:<file name without extension>`. */
  name?: string;
  /** Identity version. Default '1'. */
  version?: string;
  /** Pixel input name. Default 'pixel_values'. */
  pixelInput?: string;
  /** Token-id input name; default 'input_ids' when a tokenizer is given, none otherwise. */
  idsInput?: string;
  /** Attention-mask input name, if the model has one. */
  attentionMaskInput?: string;
  /** Output name. Default 'scores'. */
  output?: string;
  /** Model input side(s) in pixels. */
  resolution: number | { width: number; height: number };
  /** Per-channel normalization after scaling to [0, 1]. Default none. */
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
  tokenizer?: PromptTokenizer;
  /** Token ids per prompt (L). Required with a tokenizer. */
  seqLen?: number;
  /** Id of padding, for the attention mask. Default 0. */
  padId?: number;
  /** Images per inference call. Default 16. */
  batchSize?: number;
}

/** The model file does not meet the input contract. Permanent. */
export class OnnxContractError extends Error {
  override readonly name = 'OnnxContractError';
  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    detail: string,
  ) {
    super(`ONNX reward model ${file}${tensor === undefined ? '' : ` ${tensor}`}: ${detail}`);
  }
}

type Dim = number | string;

function describeShape(shape: readonly Dim[]): string {
  return `[${shape.join(', ')}]`;
}

function metadataOf(
  list: readonly ort.InferenceSession.ValueMetadata[],
  name: string,
): ort.InferenceSession.TensorValueMetadata | undefined {
  const m = list.find((v) => v.name === name);
  return m && m.isTensor ? m : undefined;
}

export class OnnxReward implements RewardModel {
  readonly name: string;
  readonly version: string;
  readonly digest: string;
  private readonly width: number;
  private readonly height: number;
  private readonly pixelInput: string;
  private readonly idsInput: string | undefined;
  private readonly idsType: 'int64' | 'int32';
  private readonly output: string;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly config: OnnxRewardConfig,
    digest: string,
    meta: { width: number; height: number; idsType: 'int64' | 'int32' },
  ) {
    this.name = config.name ?? `onnx:${path.basename(config.file).replace(/\.onnx$/i, '')}`;
    this.version = config.version ?? '1';
    this.digest = digest;
    this.width = meta.width;
    this.height = meta.height;
    this.idsType = meta.idsType;
    this.pixelInput = config.pixelInput ?? 'pixel_values';
    this.idsInput = config.idsInput ?? (config.tokenizer ? 'input_ids' : undefined);
    this.output = config.output ?? 'scores';
  }

  /** Loads and validates the model; every contract violation names the file and the tensor. */
  static async load(config: OnnxRewardConfig): Promise<OnnxReward> {
    const file = config.file;
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(file);
    } catch (err) {
      throw new OnnxContractError(file, undefined, `cannot read file (${(err as Error).message})`);
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes);
    } catch (err) {
      throw new OnnxContractError(
        file,
        undefined,
        `not a loadable ONNX model (${(err as Error).message.split('\n')[0]})`,
      );
    }
    const res =
      typeof config.resolution === 'number'
        ? { width: config.resolution, height: config.resolution }
        : config.resolution;
    if (!Number.isInteger(res.width) || !Number.isInteger(res.height) || res.width < 1 || res.height < 1)
      throw new OnnxContractError(file, undefined, `invalid resolution ${res.width}x${res.height}`);
    const pixelInput = config.pixelInput ?? 'pixel_values';
    const idsInput = config.idsInput ?? (config.tokenizer ? 'input_ids' : undefined);
    const output = config.output ?? 'scores';
    const fail = (tensor: string | undefined, detail: string): never => {
      void session.release();
      throw new OnnxContractError(file, tensor, detail);
    };
    if (idsInput !== undefined && !config.tokenizer)
      fail(`input '${idsInput}'`, 'configured without a tokenizer');
    if (config.tokenizer && !(Number.isInteger(config.seqLen) && (config.seqLen as number) > 0))
      fail(
        idsInput === undefined ? undefined : `input '${idsInput}'`,
        'seqLen (tokens per prompt) is required with a tokenizer',
      );

    const supplied = [pixelInput, idsInput, config.attentionMaskInput].filter(
      (n): n is string => n !== undefined,
    );
    for (const name of supplied) {
      if (!session.inputNames.includes(name))
        fail(
          `input '${name}'`,
          `is not an input of the model (model inputs: ${session.inputNames.join(', ')})`,
        );
    }
    for (const name of session.inputNames) {
      if (!supplied.includes(name))
        fail(
          `input '${name}'`,
          `is required by the model but not supplied by the config (supplied: ${supplied.join(', ')})`,
        );
    }
    if (!session.outputNames.includes(output))
      fail(
        `output '${output}'`,
        `is not an output of the model (model outputs: ${session.outputNames.join(', ')})`,
      );

    const checkDim = (
      tensor: string,
      shape: readonly Dim[],
      axis: number,
      want: number,
      what: string,
    ): void => {
      const d = shape[axis];
      if (typeof d === 'number' && d !== want)
        fail(tensor, `dimension ${axis} (${what}) is ${d}, expected ${want}; shape ${describeShape(shape)}`);
    };
    const px = metadataOf(session.inputMetadata, pixelInput);
    if (px) {
      const t = `input '${pixelInput}'`;
      if (px.type !== 'float32') fail(t, `must be float32, the model declares ${px.type}`);
      if (px.shape.length !== 0) {
        if (px.shape.length !== 4)
          fail(t, `must have rank 4 [N, 3, H, W], the model declares ${describeShape(px.shape)}`);
        checkDim(t, px.shape, 1, 3, 'channels');
        checkDim(t, px.shape, 2, res.height, 'height, from the configured resolution');
        checkDim(t, px.shape, 3, res.width, 'width, from the configured resolution');
      }
    }
    let idsType: 'int64' | 'int32' = 'int64';
    for (const name of [idsInput, config.attentionMaskInput]) {
      if (name === undefined) continue;
      const m = metadataOf(session.inputMetadata, name);
      if (!m) continue;
      const t = `input '${name}'`;
      if (m.type !== 'int64' && m.type !== 'int32')
        fail(t, `must be int64 or int32, the model declares ${m.type}`);
      if (name === idsInput) idsType = m.type as 'int64' | 'int32';
      if (m.shape.length !== 0) {
        if (m.shape.length !== 2)
          fail(t, `must have rank 2 [N, L], the model declares ${describeShape(m.shape)}`);
        checkDim(t, m.shape, 1, config.seqLen ?? 0, 'tokens per prompt, from seqLen');
      }
    }
    const out = metadataOf(session.outputMetadata, output);
    if (out && out.shape.length !== 0) {
      const t = `output '${output}'`;
      if (out.shape.length !== 1 && out.shape.length !== 2)
        fail(t, `must be [N] or [N, 1], the model declares ${describeShape(out.shape)}`);
      if (out.shape.length === 2) checkDim(t, out.shape, 1, 1, 'scores per image');
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    return new OnnxReward(session, config, digest, { ...res, idsType });
  }

  /** Model inputs for a batch, in the contract's layouts. */
  feeds(images: ImageBatch, prompts: readonly string[]): Record<string, ort.Tensor> {
    const { width: w, height: h } = this;
    const n = images.length;
    const plane = w * h;
    const pixels = new Float32Array(n * 3 * plane);
    const norm = this.config.normalize;
    images.forEach((image, i) => {
      const hwc = resizeToFloat(image, w, h);
      for (let c = 0; c < 3; c++) {
        const mean = norm ? (norm.mean[c] as number) : 0;
        const std = norm ? (norm.std[c] as number) : 1;
        const base = (i * 3 + c) * plane;
        for (let p = 0; p < plane; p++) pixels[base + p] = ((hwc[p * 3 + c] as number) - mean) / std;
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      [this.pixelInput]: new ort.Tensor('float32', pixels, [n, 3, h, w]),
    };
    if (this.idsInput !== undefined && this.config.tokenizer) {
      const len = this.config.seqLen as number;
      const ids = prompts.map((p, i) => {
        const t = this.config.tokenizer!.encode(p);
        if (t.length !== len)
          throw new RangeError(
            `${this.name}: tokenizer gave ${t.length} ids for prompt ${i} ("${p}"), expected ${len}`,
          );
        return t;
      });
      const flat = ids.flat();
      const make = (values: number[]): ort.Tensor =>
        this.idsType === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from(values.map((v) => BigInt(v))), [n, len])
          : new ort.Tensor('int32', Int32Array.from(values), [n, len]);
      feeds[this.idsInput] = make(flat);
      if (this.config.attentionMaskInput !== undefined) {
        const pad = this.config.padId ?? 0;
        feeds[this.config.attentionMaskInput] = make(flat.map((v) => (v === pad ? 0 : 1)));
      }
    }
    return feeds;
  }

  async score(images: ImageBatch, prompts: readonly string[]): Promise<number[]> {
    checkBatch(this.name, images, prompts);
    const batch = this.config.batchSize ?? 16;
    const out: number[] = [];
    for (let i = 0; i < images.length; i += batch) {
      const feeds = this.feeds(images.slice(i, i + batch), prompts.slice(i, i + batch));
      const n = Math.min(batch, images.length - i);
      const result = await this.session.run(feeds);
      const t = result[this.output];
      if (!t)
        throw new OnnxContractError(
          this.config.file,
          `output '${this.output}'`,
          'missing from the run result',
        );
      if (t.data.length !== n || (t.dims.length === 2 && t.dims[1] !== 1) || t.dims.length > 2)
        throw new OnnxContractError(
          this.config.file,
          `output '${this.output}'`,
          `has shape [${t.dims.join(', ')}] for a batch of ${n}, expected [${n}] or [${n}, 1]`,
        );
      for (const v of t.data as Float32Array) out.push(Number(v));
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
