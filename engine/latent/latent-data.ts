/**
 * Training data of a latent model in the UNet's space: every image encoded once by the frozen VAE,
 * z ~ q(z | x) drawn with a seeded Rng per image (diffusers' `latent_dist.sample()`, as SD's
 * fine-tuning scripts and the Diffusion-DPO reference do), times `scaling_factor`.
 *
 * With random flips on, the mirrored image is encoded too: flipping a latent is only approximately
 * the latent of the flipped image, so the flipped latent is stored rather than computed.
 *
 * A set is one safetensors artifact: `latents` [N, h, w, c] (and `flipped`, or for preference pairs
 * `winner`/`loser` and their flips), the prompts and how it was encoded in `__metadata__`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { UNetConfig } from '../models/unet-config';
import type { AutoencoderKL } from '../models/vae';
import { Rng } from '../rng';
import { flipHorizontal, type ImageShape } from '../training/datasets';
import { TrainingInputError } from '../training/errors';

export const LATENT_SET_FORMAT = 'dro-pipeline/latent-set@1';

/** One expert (or captioned) example in latent space. */
export interface LatentExample {
  prompt: string;
  /** Latent HWC, scaled by the VAE's scaling_factor. */
  image: Float32Array;
  /** Latent of the mirrored image, when the set was encoded with flips. */
  flipped?: Float32Array;
}

export interface LatentImageSet extends ImageShape {
  space: 'latent';
  examples: LatentExample[];
}

export interface LatentPair {
  prompt: string;
  winner: Float32Array;
  loser: Float32Array;
  winnerFlipped?: Float32Array;
  loserFlipped?: Float32Array;
}

export interface LatentPairSet extends ImageShape {
  space: 'latent';
  pairs: LatentPair[];
}

/** How a set was encoded; part of its metadata and of the key it is stored under. */
export interface LatentEncoding {
  /** `sample`: z = mean + std * noise with noise from Rng(seed, image); `mean`: z = mean. */
  mode: 'sample' | 'mean';
  seed: number;
  flips: boolean;
  vaeSha256: string;
  /** SHA-256 of the artifact the images came from. */
  sourceSha256: string;
  scalingFactor: number;
  /** Prompts longer than the tokenizer allows (they are truncated, see docs/latent-models.md). */
  truncatedPrompts?: number;
}

export function isLatentSet<T extends object>(ds: T): ds is T & { space: 'latent' } {
  return (ds as { space?: unknown }).space === 'latent';
}

/** The Rng of image `index` (and its mirror): independent of batching and of the other images. */
function imageRng(seed: number, index: number, flipped: boolean): Rng {
  return new Rng(seed * 4_294_967_296 + index * 2 + (flipped ? 1 : 0));
}

export interface EncodeOptions {
  mode: 'sample' | 'mean';
  seed: number;
  flips: boolean;
  /** Images per VAE call. Default 8. */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Latents of pixel images (HWC in [-1, 1], all `shape`), in order; with `flips` also those of the
 * mirrored images. The image side must be the VAE's image size for the UNet.
 */
export async function encodeImages(
  vae: AutoencoderKL,
  images: readonly Float32Array[],
  shape: ImageShape,
  options: EncodeOptions,
): Promise<{ latents: Float32Array[]; flipped?: Float32Array[]; shape: ImageShape }> {
  const f = vae.scaleFactor;
  const c = vae.config.latent_channels;
  const latentShape = { height: shape.height / f, width: shape.width / f, channels: c };
  const batch = options.batchSize ?? 8;
  const run = async (source: readonly Float32Array[], flipped: boolean): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (let start = 0; start < source.length; start += batch) {
      const part = source.slice(start, start + batch);
      const size = shape.height * shape.width * shape.channels;
      const flat = new Float32Array(part.length * size);
      part.forEach((img, i) => flat.set(img, i * size));
      const x = tf.tensor4d(flat, [part.length, shape.height, shape.width, shape.channels]);
      const noise =
        options.mode === 'sample'
          ? (tf.concat(
              part.map((_, i) =>
                imageRng(options.seed, start + i, flipped).normalTensor([
                  1,
                  latentShape.height,
                  latentShape.width,
                  c,
                ]),
              ),
            ) as tf.Tensor4D)
          : undefined;
      const z = vae.encodeLatents(x, noise);
      const data = (await z.data()) as Float32Array;
      tf.dispose([x, z, ...(noise ? [noise] : [])]);
      const n = data.length / part.length;
      for (let i = 0; i < part.length; i++) out.push(data.slice(i * n, (i + 1) * n));
      options.onProgress?.(
        out.length + (flipped ? source.length : 0),
        source.length * (options.flips ? 2 : 1),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    return out;
  };
  const latents = await run(images, false);
  if (!options.flips) return { latents, shape: latentShape };
  const mirrored = images.map((img) => flipHorizontal(img, shape));
  return { latents, flipped: await run(mirrored, true), shape: latentShape };
}

function stack(arrays: readonly Float32Array[], shape: ImageShape): TensorToWrite {
  const size = shape.height * shape.width * shape.channels;
  const data = new Float32Array(arrays.length * size);
  arrays.forEach((a, i) => data.set(a, i * size));
  return { shape: [arrays.length, shape.height, shape.width, shape.channels], data };
}

function metadataOf(kind: 'images' | 'pairs', prompts: string[], encoding: LatentEncoding) {
  return {
    format: LATENT_SET_FORMAT,
    kind,
    prompts: JSON.stringify(prompts),
    encoding: JSON.stringify(encoding),
  };
}

export function encodeLatentImageSet(set: LatentImageSet, encoding: LatentEncoding): Uint8Array {
  const tensors = new Map<string, TensorToWrite>([
    [
      'latents',
      stack(
        set.examples.map((e) => e.image),
        set,
      ),
    ],
  ]);
  if (encoding.flips)
    tensors.set(
      'flipped',
      stack(
        set.examples.map((e) => e.flipped!),
        set,
      ),
    );
  return serializeSafetensors(tensors, {
    metadata: metadataOf(
      'images',
      set.examples.map((e) => e.prompt),
      encoding,
    ),
  });
}

export function encodeLatentPairSet(set: LatentPairSet, encoding: LatentEncoding): Uint8Array {
  const tensors = new Map<string, TensorToWrite>([
    [
      'winner',
      stack(
        set.pairs.map((p) => p.winner),
        set,
      ),
    ],
    [
      'loser',
      stack(
        set.pairs.map((p) => p.loser),
        set,
      ),
    ],
  ]);
  if (encoding.flips) {
    tensors.set(
      'winner_flipped',
      stack(
        set.pairs.map((p) => p.winnerFlipped!),
        set,
      ),
    );
    tensors.set(
      'loser_flipped',
      stack(
        set.pairs.map((p) => p.loserFlipped!),
        set,
      ),
    );
  }
  return serializeSafetensors(tensors, {
    metadata: metadataOf(
      'pairs',
      set.pairs.map((p) => p.prompt),
      encoding,
    ),
  });
}

interface ParsedSet {
  shape: ImageShape;
  prompts: string[];
  encoding: LatentEncoding;
  take: (name: string) => Float32Array[] | undefined;
}

function parseSet(bytes: Uint8Array, kind: 'images' | 'pairs', source: string): ParsedSet {
  const file = parseSafetensors(bytes, source);
  const meta = file.metadata;
  if (meta.format !== LATENT_SET_FORMAT || meta.kind !== kind)
    throw new TrainingInputError(
      `${source} is not a latent ${kind} set (format '${meta.format ?? 'none'}', kind '${meta.kind ?? 'none'}')`,
    );
  let prompts: unknown;
  let encoding: LatentEncoding;
  try {
    prompts = JSON.parse(meta.prompts ?? 'null');
    encoding = JSON.parse(meta.encoding ?? 'null') as LatentEncoding;
  } catch {
    throw new TrainingInputError(`${source}: __metadata__ 'prompts' or 'encoding' is not JSON`);
  }
  if (!Array.isArray(prompts) || prompts.some((p) => typeof p !== 'string'))
    throw new TrainingInputError(`${source}: __metadata__ 'prompts' must be a list of strings`);
  const n = prompts.length;
  let shape: ImageShape | undefined;
  const take = (name: string): Float32Array[] | undefined => {
    const t = file.tensors.get(name);
    if (!t) return undefined;
    const [count, h, w, c] = t.shape as [number, number, number, number];
    if (t.shape.length !== 4 || count !== n)
      throw new TrainingInputError(
        `${source}: tensor '${name}' must be [${n}, h, w, c], got [${t.shape.join(', ')}]`,
      );
    shape ??= { height: h, width: w, channels: c };
    if (shape.height !== h || shape.width !== w || shape.channels !== c)
      throw new TrainingInputError(`${source}: tensor '${name}' differs in shape from the others`);
    const size = h * w * c;
    return Array.from({ length: n }, (_, i) => t.data.slice(i * size, (i + 1) * size));
  };
  const first = take(kind === 'images' ? 'latents' : 'winner');
  if (!first) throw new TrainingInputError(`${source}: no latents`);
  return { shape: shape!, prompts: prompts as string[], encoding, take };
}

export function decodeLatentImageSet(
  bytes: Uint8Array,
  source = 'latent set',
): LatentImageSet & { encoding: LatentEncoding } {
  const p = parseSet(bytes, 'images', source);
  const latents = p.take('latents')!;
  const flipped = p.take('flipped');
  return {
    space: 'latent',
    ...p.shape,
    encoding: p.encoding,
    examples: p.prompts.map((prompt, i) => ({
      prompt,
      image: latents[i]!,
      ...(flipped ? { flipped: flipped[i]! } : {}),
    })),
  };
}

export function decodeLatentPairSet(
  bytes: Uint8Array,
  source = 'latent pair set',
): LatentPairSet & { encoding: LatentEncoding } {
  const p = parseSet(bytes, 'pairs', source);
  const winner = p.take('winner')!;
  const loser = p.take('loser');
  if (!loser) throw new TrainingInputError(`${source}: no 'loser' latents`);
  const wf = p.take('winner_flipped');
  const lf = p.take('loser_flipped');
  return {
    space: 'latent',
    ...p.shape,
    encoding: p.encoding,
    pairs: p.prompts.map((prompt, i) => ({
      prompt,
      winner: winner[i]!,
      loser: loser[i]!,
      ...(wf && lf ? { winnerFlipped: wf[i]!, loserFlipped: lf[i]! } : {}),
    })),
  };
}

function checkLatent(data: Float32Array, size: number, what: string): void {
  if (data.length !== size)
    throw new TrainingInputError(`${what} has ${data.length} values, expected ${size}: wrong latent size`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!))
      throw new TrainingInputError(`${what} has the non-finite value ${data[i]} at index ${i}`);
  }
}

/**
 * Throws a TrainingInputError naming the example when a latent set cannot train `unet`: latent
 * channels or side other than the UNet's, a missing flip while `randomFlip` is on, a non-finite
 * value. Latents are not bounded like pixels (a VAE's latents, scaled, are roughly unit variance).
 */
export function validateLatentSet(
  ds: (LatentImageSet | LatentPairSet) & ImageShape,
  unet: UNetConfig,
  randomFlip: boolean,
  what: string,
): void {
  if (ds.channels !== unet.in_channels)
    throw new TrainingInputError(
      `${what}: latents have ${ds.channels} channels, the UNet takes ${unet.in_channels}`,
    );
  if (ds.height !== unet.sample_size || ds.width !== unet.sample_size)
    throw new TrainingInputError(
      `${what}: latents are ${ds.height}x${ds.width}, the UNet's sample_size is ${unet.sample_size}`,
    );
  const size = ds.height * ds.width * ds.channels;
  if ('examples' in ds) {
    if (ds.examples.length === 0) throw new TrainingInputError(`${what} is empty`);
    ds.examples.forEach((ex, i) => {
      const at = `${what} example ${i} ("${ex.prompt}")`;
      checkLatent(ex.image, size, at);
      if (randomFlip && !ex.flipped)
        throw new TrainingInputError(`${at}: randomFlip is on but the set holds no flipped latents`);
      if (ex.flipped) checkLatent(ex.flipped, size, `${at} (flipped)`);
    });
  } else {
    if (ds.pairs.length === 0) throw new TrainingInputError(`${what} is empty`);
    ds.pairs.forEach((p, i) => {
      const at = `${what} pair ${i} ("${p.prompt}")`;
      checkLatent(p.winner, size, `${at} winner`);
      checkLatent(p.loser, size, `${at} loser`);
      if (randomFlip && !(p.winnerFlipped && p.loserFlipped))
        throw new TrainingInputError(`${at}: randomFlip is on but the set holds no flipped latents`);
    });
  }
}
