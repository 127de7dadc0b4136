/**
 * A latent model's training data: the expert set (an image-dataset artifact) or the preference
 * pairs (a Pick-a-Pic parquet) encoded by the model's VAE into a latent set. Which latents result
 * depends only on the VAE, the source bytes and the flip setting: each image's posterior draw is
 * seeded from the source's digest, so every stage, chunk and retry gets the same latents.
 */
import { readResizedPreferencePairs } from '../data/preference-pairs';
import { decodeImageDataset } from '../io/image-dataset';
import type { DiffusionModel } from '../training/diffusion-model';
import { TrainingInputError } from '../training/errors';
import {
  encodeImages,
  encodeLatentImageSet,
  encodeLatentPairSet,
  type LatentEncoding,
  type LatentImageSet,
  type LatentPairSet,
} from './latent-data';

/** How latents are drawn from the VAE posterior (see ./latent-data.ts). */
export const LATENT_MODE = 'sample' as const;

/** Prompts with more tokens than the tokenizer allows: SD's pipelines truncate them (transformers' truncation=True). */
export function overlongPrompts(model: DiffusionModel, prompts: readonly string[]): string[] {
  const tok = model.tokenizer as { tokenize?: (p: string) => string[] };
  if (!tok.tokenize) return [];
  const room = model.tokenizer.config.maxLength - 2;
  return [...new Set(prompts)].filter((p) => tok.tokenize!(p).length > room);
}

export interface TrainingLatents {
  /** The latent-set file (encodeLatentImageSet / encodeLatentPairSet). */
  bytes: Uint8Array;
  /** Prompts of the examples (one per pair for pairs). */
  prompts: string[];
  /** Distinct prompts the tokenizer truncates. */
  overlong: string[];
}

/**
 * Encodes `source` (an image dataset for `images`, a Pick-a-Pic parquet for `pairs`, named `uri`
 * in errors, with digest `sha256`) into the latent set of `model`'s VAE. Throws TrainingInputError
 * when the images do not fit the VAE or no pair is left without a tie.
 */
export async function encodeTrainingLatents(
  model: DiffusionModel,
  kind: 'images' | 'pairs',
  source: Uint8Array,
  from: { uri: string; sha256: string },
  flips: boolean,
  onProgress?: (done: number, total: number) => void,
): Promise<TrainingLatents> {
  const latent = model.latent;
  if (!latent) throw new Error('encodeTrainingLatents needs a latent model');
  const side = latent.imageSize;
  // The seed of every image's posterior draw follows from the source's digest alone.
  const seed = Number.parseInt(from.sha256.slice(0, 8), 16);
  const options = { mode: LATENT_MODE, seed, flips, onProgress };
  const encodingOf = (prompts: readonly string[]): LatentEncoding => ({
    mode: LATENT_MODE,
    seed,
    flips,
    vaeSha256: latent.vaeSha256,
    sourceSha256: from.sha256,
    scalingFactor: latent.vae.config.scaling_factor,
    truncatedPrompts: overlongPrompts(model, prompts).length,
  });
  if (kind === 'images') {
    const ds = decodeImageDataset(source, from.uri);
    if (ds.height !== side || ds.width !== side || ds.channels !== 3)
      throw new TrainingInputError(
        `${from.uri}: expert images are ${ds.height}x${ds.width}x${ds.channels}; the model's VAE encodes ${side}x${side} RGB ` +
          `images into its UNet's latents: set model.resolution to ${side}`,
      );
    const prompts = ds.examples.map((e) => e.prompt);
    const enc = await encodeImages(
      latent.vae,
      ds.examples.map((e) => e.image),
      ds,
      options,
    );
    const set: LatentImageSet = {
      space: 'latent',
      ...enc.shape,
      examples: prompts.map((prompt, i) => ({
        prompt,
        image: enc.latents[i]!,
        ...(enc.flipped ? { flipped: enc.flipped[i]! } : {}),
      })),
    };
    return {
      bytes: encodeLatentImageSet(set, encodingOf(prompts)),
      prompts,
      overlong: overlongPrompts(model, prompts),
    };
  }
  const pairs = await readResizedPreferencePairs(source, from.uri, side);
  if (pairs.length === 0) throw new TrainingInputError(`${from.uri}: no preference pair without a tie`);
  const prompts = pairs.map((p) => p.prompt);
  // Winner and loser of pair i are images 2i and 2i + 1: each has its own posterior draw.
  const images = pairs.flatMap((p) => [p.winner, p.loser]);
  const enc = await encodeImages(latent.vae, images, { height: side, width: side, channels: 3 }, options);
  const set: LatentPairSet = {
    space: 'latent',
    ...enc.shape,
    pairs: pairs.map((p, i) => ({
      prompt: p.prompt,
      winner: enc.latents[2 * i]!,
      loser: enc.latents[2 * i + 1]!,
      ...(enc.flipped ? { winnerFlipped: enc.flipped[2 * i]!, loserFlipped: enc.flipped[2 * i + 1]! } : {}),
    })),
  };
  return {
    bytes: encodeLatentPairSet(set, encodingOf(prompts)),
    prompts,
    overlong: overlongPrompts(model, prompts),
  };
}
