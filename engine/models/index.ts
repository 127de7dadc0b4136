/**
 * Models of the diffusion engine.
 *
 * ```ts
 * await initBackend();
 * const unet = UNet2DConditionModel.create(UNET_CONFIGS.demo, new Rng(seed));
 * const ref = unet.clone(false); // frozen copy
 * const eps = unet.predict(xNHWC, timesteps, context); // caller disposes eps
 * ```
 */
export { UNet2DConditionModel, type Timesteps } from './unet';
export {
  UNET_CONFIGS,
  TINY_UNET,
  DEMO_UNET,
  SD15_UNET,
  UNET_CONSTANTS,
  validateUNetConfig,
  type UNetConfig,
  type UNetConfigName,
  type DownBlockType,
  type UpBlockType,
} from './unet-config';
export { unetParamSpecs } from './unet-params';
export { timestepEmbedding, timestepFrequencies } from './timestep-embedding';
export {
  CLIPTextModel,
  textEncoderParamSpecs,
  demoTextEncoderConfig,
  SD15_TEXT_ENCODER,
  type TextEncoderConfig,
} from './text-encoder';
export { WordTokenizer, TokenizerError, DEFAULT_SPECIAL_TOKENS, type WordTokenizerConfig } from './tokenizer';
export { unetForwardFlops, unetTrainingFlops, type FlopShape } from './flops';
