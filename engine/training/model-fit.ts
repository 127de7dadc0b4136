import { ModelBundleError } from '../io/model-bundle';
import type { DiffusionModel } from './diffusion-model';

/**
 * Checks the shapes the text encoder, tokenizer and UNet must agree on, which a bundle assembled
 * from separate parts can get wrong; otherwise the first forward pass fails far from the cause.
 */
export function checkModelFits(model: DiffusionModel, source: string): void {
  const { unet, text, tokenizer } = model;
  if (text.config.hidden_size !== unet.config.cross_attention_dim) {
    throw new ModelBundleError(
      `${source}: text encoder hidden_size ${text.config.hidden_size} does not match the UNet's ` +
        `cross_attention_dim ${unet.config.cross_attention_dim}`,
    );
  }
  if (tokenizer.config.maxLength > text.config.max_position_embeddings) {
    throw new ModelBundleError(
      `${source}: tokenizer maxLength ${tokenizer.config.maxLength} exceeds the text encoder's ` +
        `max_position_embeddings ${text.config.max_position_embeddings}`,
    );
  }
  if (tokenizer.vocabSize > text.config.vocab_size) {
    throw new ModelBundleError(
      `${source}: tokenizer has ${tokenizer.vocabSize} tokens, the text encoder only ${text.config.vocab_size}`,
    );
  }
}
