/**
 * The built-in world's starting point: a seeded random UNet of a named configuration at the run's
 * resolution, with the world's word tokenizer and a text encoder sized to it, as one model bundle.
 */
import { worldTokenizer } from '../world/world-text';
import { encodeModelBundle } from '../io/model-bundle';
import { Rng } from '../rng';
import { CLIPTextModel, demoTextEncoderConfig } from './text-encoder';
import { UNet2DConditionModel } from './unet';
import { UNET_CONFIGS, validateUNetConfig, type UNetConfig, type UNetConfigName } from './unet-config';

/** Smallest image side of the built-in world: its detector judges shapes at that size. */
export const MIN_WORLD_RESOLUTION = 16;

/**
 * Why the built-in world cannot use the named UNet configuration at `resolution`, or undefined: it
 * trains in RGB pixel space, at MIN_WORLD_RESOLUTION or more, divisible by the UNet's downsampling.
 */
export function worldUNetProblem(name: UNetConfigName, resolution: number): string | undefined {
  const base = UNET_CONFIGS[name];
  if (base === undefined) return `model.unet: unknown UNet configuration '${String(name)}'`;
  if (base.in_channels !== 3)
    return (
      `model.unet '${name}' takes ${base.in_channels}-channel latents; the built-in world trains in RGB pixel ` +
      `space: use 'demo' (or give model.baseCheckpoint)`
    );
  if (!Number.isInteger(resolution) || resolution < MIN_WORLD_RESOLUTION)
    return `model.resolution ${resolution}: the built-in world needs at least ${MIN_WORLD_RESOLUTION} px (its detector judges shapes at that size)`;
  const factor = 2 ** (base.block_out_channels.length - 1);
  if (resolution % factor !== 0)
    return `model.resolution ${resolution} must be divisible by ${factor} for model.unet '${name}'`;
  return undefined;
}

/** The named UNet configuration at `resolution`; a RangeError says why the world cannot use it. */
export function worldUNetConfig(name: UNetConfigName, resolution: number): UNetConfig {
  const problem = worldUNetProblem(name, resolution);
  if (problem !== undefined) throw new RangeError(problem);
  const config = { ...UNET_CONFIGS[name], sample_size: resolution };
  validateUNetConfig(config);
  return config;
}

/** The initial model bundle: UNet and text encoder drawn from their own seeds. */
export function encodeInitialWorldModel(
  unetConfig: UNetConfig,
  seeds: { unet: number; text: number },
): Uint8Array {
  const tokenizer = worldTokenizer();
  const unet = UNet2DConditionModel.create(unetConfig, new Rng(seeds.unet), false);
  const text = CLIPTextModel.create(
    demoTextEncoderConfig(tokenizer.vocabSize, tokenizer.config.maxLength, unetConfig.cross_attention_dim),
    new Rng(seeds.text),
    false,
  );
  try {
    return encodeModelBundle({ unet, text, tokenizer });
  } finally {
    unet.dispose();
    text.dispose();
  }
}
