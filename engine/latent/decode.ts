/**
 * Generated samples to images: a latent model's samples are VAE latents (x scaling_factor), which
 * are decoded (divided by scaling_factor, decoded, clamped to [-1, 1]); a pixel model's samples
 * already are images. Every consumer of generated images (rewards, evaluation, the report) goes
 * through `samplesToImages`, so it never has to know which kind of model drew them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DiffusionModel } from '../training/diffusion-model';

/** Side of the images a model draws, in pixels. */
export function imageSideOf(model: DiffusionModel): number {
  return model.latent ? model.latent.imageSize : model.unet.config.sample_size;
}

/**
 * Images (HWC, in [-1, 1]) of generated samples, one per sample, decoded `batchSize` at a time.
 * Pixel samples are returned as they are (unclamped, as before).
 */
export async function samplesToImages(
  model: DiffusionModel,
  samples: readonly Float32Array[],
  batchSize = 8,
): Promise<Float32Array[]> {
  const latent = model.latent;
  if (!latent) return [...samples];
  const side = model.unet.config.sample_size;
  const c = model.unet.config.in_channels;
  const out: Float32Array[] = [];
  for (let start = 0; start < samples.length; start += batchSize) {
    const part = samples.slice(start, start + batchSize);
    const flat = new Float32Array(part.length * side * side * c);
    part.forEach((s, i) => flat.set(s, i * side * side * c));
    const images = tf.tidy(() =>
      tf.clipByValue(latent.vae.decodeLatents(tf.tensor4d(flat, [part.length, side, side, c])), -1, 1),
    );
    const data = (await images.data()) as Float32Array;
    images.dispose();
    const n = data.length / part.length;
    for (let i = 0; i < part.length; i++) out.push(data.slice(i * n, (i + 1) * n));
  }
  return out;
}
