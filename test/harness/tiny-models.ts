/**
 * The small random models and expert images that engine tests sample and train with: a tiny UNet
 * and text encoder over the world's tokenizer, and a four-word tokenizer with 8x8 latent "experts"
 * for DRO buffer tests.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { DEFAULT_SPECIAL_TOKENS, WordTokenizer } from '../../engine/models/tokenizer';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET, type UNetConfig } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import type { DiffusionModel } from '../../engine/training/diffusion-model';
import { worldTokenizer } from '../../engine/world/world-text';

/** The world's tokenizer, a tiny text encoder (seed 1) and a tiny UNet (seed 2). Dispose both models. */
export function tinyWorldModel(): DiffusionModel {
  const tokenizer = worldTokenizer();
  return {
    tokenizer,
    text: CLIPTextModel.create(
      demoTextEncoderConfig(tokenizer.vocabSize, 16, TINY_UNET.cross_attention_dim),
      new Rng(1),
      false,
    ),
    unet: UNet2DConditionModel.create(TINY_UNET, new Rng(2), false),
  };
}

/** A five-word tokenizer, its tiny text encoder (seed 2) and four 8x8x4 expert latents (seed 1). */
export function tinyDroWorld() {
  const tokenizer = new WordTokenizer({
    words: ['a', 'red', 'blue', 'circle', 'square'],
    maxLength: 6,
    ...DEFAULT_SPECIAL_TOKENS,
  });
  const text = CLIPTextModel.create(
    demoTextEncoderConfig(tokenizer.vocabSize, 6, TINY_UNET.cross_attention_dim),
    new Rng(2),
    false,
  );
  const rng = new Rng(1);
  const images = {
    height: 8,
    width: 8,
    channels: 4,
    examples: ['a red circle', 'a blue square', 'a red square', 'a blue circle'].map((prompt) => ({
      prompt,
      image: rng.fillUniform(new Float32Array(8 * 8 * 4), -1, 1),
    })),
  };
  return { tokenizer, text, images };
}

/** A UNet with every weight random, norm scales and biases included (they start at 1 and 0). */
export function randomUNet(config: UNetConfig, seed: number): UNet2DConditionModel {
  const unet = UNet2DConditionModel.create(config, new Rng(seed), false);
  const rng = new Rng(seed + 1000);
  for (const v of unet.params.variables()) {
    tf.tidy(() => v.assign(tf.add(v, tf.mul(rng.normalTensor(v.shape), 0.1))));
  }
  return unet;
}

/** max |a - b| / max |a|, the parity measure of the engine's tests. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} and ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return diff / scale;
}
