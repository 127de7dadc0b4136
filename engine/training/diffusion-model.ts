/**
 * A text-to-image diffusion model as the pipeline handles it: the denoising UNet, the (frozen) text
 * encoder and its tokenizer. Only the UNet is trained by SFT, DRO and DPO, as in the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CLIPTextModel } from '../models/text-encoder';
import type { WordTokenizer } from '../models/tokenizer';
import type { UNet2DConditionModel } from '../models/unet';

export interface DiffusionModel {
  unet: UNet2DConditionModel;
  text: CLIPTextModel;
  tokenizer: WordTokenizer;
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
