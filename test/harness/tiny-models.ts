/**
 * The small random models and expert images that engine tests sample and train with: a tiny UNet
 * and text encoder over the world's tokenizer, and a four-word tokenizer with 8x8 latent "experts"
 * for DRO buffer tests.
 */
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { DEFAULT_SPECIAL_TOKENS, WordTokenizer } from '../../engine/models/tokenizer';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
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
