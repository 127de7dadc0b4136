/**
 * The reward-model contract shared by expert ranking, feedback simulation and evaluation.
 *
 * A reward model maps (image, prompt) pairs to scalar scores; higher means more preferred. Scores
 * are only compared within one model, never across models, so no scale is imposed. Every artifact
 * derived from scores (expert sets, win rates) records the model's identity so that a result can be
 * traced to the exact model that produced it and mixing scores of two models can be refused.
 */
import type { RgbImage, RgbImageF32 } from '../data/image';
import { assertImageShape } from '../data/image';

/** One image of a batch: 8-bit or [0, 1] float RGB, row-major HWC (engine/data's image types). */
export type RewardImage = RgbImage | RgbImageF32;

/** Images scored together; sizes may differ, models resize to their own input resolution. */
export type ImageBatch = readonly RewardImage[];

/** What artifacts store about the reward model that produced their scores. */
export interface RewardModelIdentity {
  /** Stable model family name, e.g. 'geneval-detector', 'world-preference', 'onnx:pickscore'. */
  name: string;
  /** Version of the scoring rule or of the weights' configuration. */
  version: string;
  /** Content digest of the weights (e.g. 'sha256:...'), when the model has weights. */
  digest?: string;
}

export interface RewardModel {
  readonly name: string;
  readonly version: string;
  /** Content digest of the weights, if any (see RewardModelIdentity). */
  readonly digest?: string;
  /** One finite score per image; `prompts[i]` is the prompt image i was generated for. */
  score(images: ImageBatch, prompts: readonly string[]): Promise<number[]>;
}

/** The identity record of a model, as stored in artifacts. */
export function rewardModelIdentity(model: RewardModel): RewardModelIdentity {
  const id: RewardModelIdentity = { name: model.name, version: model.version };
  if (model.digest !== undefined) id.digest = model.digest;
  return id;
}

export function sameIdentity(a: RewardModelIdentity, b: RewardModelIdentity): boolean {
  return a.name === b.name && a.version === b.version && (a.digest ?? '') === (b.digest ?? '');
}

export function formatIdentity(id: RewardModelIdentity): string {
  return `${id.name}@${id.version}${id.digest ? ` (${id.digest})` : ''}`;
}

/**
 * A reward model can point at the one image it cannot score (index into the batch); callers that
 * know the image's uid report it. Permanent: the same image fails the same way again.
 */
export class UnscorableImageError extends Error {
  override readonly name = 'UnscorableImageError';
  constructor(
    readonly index: number,
    detail: string,
  ) {
    super(`image ${index} of the batch cannot be scored: ${detail}`);
  }
}

/** Throws when images and prompts disagree in number or an image buffer has the wrong size. */
export function checkBatch(model: string, images: ImageBatch, prompts: readonly string[]): void {
  if (images.length !== prompts.length) {
    throw new RangeError(`${model}: ${images.length} images but ${prompts.length} prompts`);
  }
  images.forEach((image, i) => {
    try {
      assertImageShape(image, `${model} image ${i}`);
    } catch (err) {
      throw new UnscorableImageError(i, (err as Error).message);
    }
  });
}

/** Value at pixel (x, y) channel c in [0, 1], whatever the image's storage type. */
function scaleOf(image: RewardImage): number {
  return image.data instanceof Uint8Array ? 1 / 255 : 1;
}

/**
 * Bilinear resize to width x height with values in [0, 1] (pixel centers aligned, as
 * PIL/torchvision do without antialiasing). Returns the input converted when sizes already match.
 * Downscaling by more than 2x first averages boxes so small details do not alias.
 */
export function resizeToFloat(image: RewardImage, width: number, height: number): Float32Array {
  const s = scaleOf(image);
  const { width: w0, height: h0, data } = image;
  if (w0 === width && h0 === height) {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = (data[i] as number) * s;
    return out;
  }
  const fx = Math.floor(w0 / width);
  const fy = Math.floor(h0 / height);
  if (fx >= 2 && fy >= 2 && w0 % fx === 0 && h0 % fy === 0) {
    const w1 = w0 / fx;
    const h1 = h0 / fy;
    const pooled = new Float32Array(w1 * h1 * 3);
    const norm = s / (fx * fy);
    for (let y = 0; y < h1; y++)
      for (let x = 0; x < w1; x++)
        for (let c = 0; c < 3; c++) {
          let acc = 0;
          for (let dy = 0; dy < fy; dy++)
            for (let dx = 0; dx < fx; dx++) acc += data[((y * fy + dy) * w0 + x * fx + dx) * 3 + c] as number;
          pooled[(y * w1 + x) * 3 + c] = acc * norm;
        }
    return resizeToFloat({ width: w1, height: h1, data: pooled }, width, height);
  }
  const out = new Float32Array(width * height * 3);
  const sx = w0 / width;
  const sy = h0 / height;
  for (let y = 0; y < height; y++) {
    const srcY = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h0 - 1);
    const y0 = Math.floor(srcY);
    const y1 = Math.min(y0 + 1, h0 - 1);
    const ty = srcY - y0;
    for (let x = 0; x < width; x++) {
      const srcX = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w0 - 1);
      const x0 = Math.floor(srcX);
      const x1 = Math.min(x0 + 1, w0 - 1);
      const tx = srcX - x0;
      for (let c = 0; c < 3; c++) {
        const a = data[(y0 * w0 + x0) * 3 + c] as number;
        const b = data[(y0 * w0 + x1) * 3 + c] as number;
        const d = data[(y1 * w0 + x0) * 3 + c] as number;
        const e = data[(y1 * w0 + x1) * 3 + c] as number;
        out[(y * width + x) * 3 + c] =
          ((a * (1 - tx) + b * tx) * (1 - ty) + (d * (1 - tx) + e * tx) * ty) * s;
      }
    }
  }
  return out;
}
