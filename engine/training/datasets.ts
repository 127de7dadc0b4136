/**
 * In-memory training data: images in the model's input space (HWC, values in [-1, 1]) with prompts.
 * Loading from artifacts, Pick-a-Pic shards or folders happens outside; here the shapes are checked.
 */
import type { UNetConfig } from '../models/unet-config';
import { TrainingInputError } from './errors';

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

/** Prompt + image: an expert demonstration, or a captioned pretraining image. */
export interface ImageExample {
  prompt: string;
  /** HWC, values in [-1, 1]. */
  image: Float32Array;
}

export interface ImageDataset extends ImageShape {
  examples: ImageExample[];
}

/** One preference judgement: the preferred and the other image for one prompt (Diffusion-DPO). */
export interface PreferencePair {
  prompt: string;
  winner: Float32Array;
  loser: Float32Array;
}

export interface PreferenceDataset extends ImageShape {
  pairs: PreferencePair[];
}

function checkShape(ds: ImageShape, unet: UNetConfig, what: string): number {
  if (ds.channels !== unet.in_channels) {
    throw new TrainingInputError(
      `${what}: images have ${ds.channels} channels, the model takes ${unet.in_channels}`,
    );
  }
  const factor = 2 ** (unet.block_out_channels.length - 1);
  if (ds.height % factor !== 0 || ds.width % factor !== 0) {
    throw new TrainingInputError(`${what}: ${ds.height}x${ds.width} images are not divisible by ${factor}`);
  }
  return ds.height * ds.width * ds.channels;
}

function checkImage(image: Float32Array, size: number, what: string): void {
  if (image.length !== size) {
    throw new TrainingInputError(`${what} has ${image.length} values, expected ${size}: wrong image size`);
  }
  for (let i = 0; i < image.length; i++) {
    const v = image[i]!;
    if (!Number.isFinite(v) || v < -1.0001 || v > 1.0001) {
      throw new TrainingInputError(
        `${what} has value ${v} at index ${i}; images must be finite and in [-1, 1]`,
      );
    }
  }
}

/** Throws a TrainingInputError naming the example when the set cannot train `unet`. */
export function validateImageDataset(ds: ImageDataset, unet: UNetConfig, what = 'expert set'): void {
  if (ds.examples.length === 0) throw new TrainingInputError(`${what} is empty`);
  const size = checkShape(ds, unet, what);
  ds.examples.forEach((ex, i) => checkImage(ex.image, size, `${what} example ${i} ("${ex.prompt}")`));
}

export function validatePreferenceDataset(
  ds: PreferenceDataset,
  unet: UNetConfig,
  what = 'preference set',
): void {
  if (ds.pairs.length === 0) throw new TrainingInputError(`${what} is empty`);
  const size = checkShape(ds, unet, what);
  ds.pairs.forEach((p, i) => {
    checkImage(p.winner, size, `${what} pair ${i} winner ("${p.prompt}")`);
    checkImage(p.loser, size, `${what} pair ${i} loser ("${p.prompt}")`);
  });
}

/** Mirrors an HWC image left-right. */
export function flipHorizontal(image: Float32Array, shape: ImageShape): Float32Array {
  const { height: h, width: w, channels: c } = shape;
  const out = new Float32Array(image.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + x) * c;
      const dst = (y * w + (w - 1 - x)) * c;
      for (let k = 0; k < c; k++) out[dst + k] = image[src + k]!;
    }
  }
  return out;
}
