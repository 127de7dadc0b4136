/**
 * A text-to-image diffusion model as the pipeline handles it: the denoising UNet, the (frozen) text
 * encoder and its tokenizer. Only the UNet is trained by SFT, DRO and DPO, as in the reference.
 *
 * A latent model (Stable Diffusion loaded from a diffusers folder) also carries its VAE: the UNet
 * then denoises VAE latents (scaled by `scaling_factor`) instead of pixels, training data is
 * encoded into that space once, and generated latents are decoded back to images.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CLIPTextModel } from '../models/text-encoder';
import type { UNet2DConditionModel } from '../models/unet';
import type { AutoencoderKL } from '../models/vae';

/** What the pipeline needs of a tokenizer: the built-in world's word tokenizer and CLIP's BPE one. */
export interface PromptTokenizer {
  readonly config: { readonly maxLength: number };
  readonly vocabSize: number;
  /** Exactly `maxLength` ids of one prompt. */
  encode(prompt: string): number[];
  /** Row-major [prompts.length, maxLength] ids. */
  encodeBatch(prompts: readonly string[]): Int32Array;
}

/** The latent space of a latent model: its frozen VAE and what identifies it. */
export interface LatentSpace {
  vae: AutoencoderKL;
  /**
   * SHA-256 of the VAE's weights as the model artifact stores them. Encoded training data is
   * keyed by it, so every stage of a run (whose models share the VAE) reuses one encoding.
   */
  vaeSha256: string;
  /** Image side the UNet's `sample_size` corresponds to (sample_size x the VAE's factor). */
  imageSize: number;
  /**
   * The pipeline folder's config and tokenizer files (relative path -> text), verbatim: the model
   * is rebuilt from them and an exported folder carries them unchanged.
   */
  files: Record<string, string>;
  /** Whether the folder's text encoder keys carry transformers 4's `text_model.` prefix. */
  textKeysPrefixed: boolean;
}

export interface DiffusionModel {
  unet: UNet2DConditionModel;
  text: CLIPTextModel;
  tokenizer: PromptTokenizer;
  /** Present for latent models; absent for pixel-space models (the built-in world). */
  latent?: LatentSpace;
}

/** Frees every network of a model. */
export function disposeModel(model: DiffusionModel): void {
  model.unet.dispose();
  model.text.dispose();
  model.latent?.vae.dispose();
}

/** Text encoder states [B, L, D] for a batch of prompts; no gradient. */
export function encodePrompts(
  model: Pick<DiffusionModel, 'text' | 'tokenizer'>,
  prompts: readonly string[],
): tf.Tensor3D {
  const ids = model.tokenizer.encodeBatch(prompts);
  return tf.tidy(() =>
    model.text.encode(tf.tensor2d(ids, [prompts.length, model.tokenizer.config.maxLength], 'int32')),
  );
}
