/**
 * AutoencoderKL configuration, with diffusers' config keys (the fields of a pipeline's
 * `vae/config.json` that change the computation; the folder reader names any other field).
 */
export type VaeDownBlockType = 'DownEncoderBlock2D';
export type VaeUpBlockType = 'UpDecoderBlock2D';

export interface VaeConfig {
  /** Image channels in (3). */
  in_channels: number;
  /** Image channels out (3). */
  out_channels: number;
  down_block_types: VaeDownBlockType[];
  up_block_types: VaeUpBlockType[];
  /** Channels per level; the image is downsampled 2^(levels-1) times. */
  block_out_channels: number[];
  /** Resnets per encoder level; the decoder has one more per level, as in diffusers. */
  layers_per_block: number;
  /** Latent channels (4 for SD1.5); must equal the UNet's in_channels. */
  latent_channels: number;
  norm_num_groups: number;
  /** Image size the VAE was trained at (informational). */
  sample_size: number;
  /**
   * Latents fed to the UNet are (z - shift_factor) * scaling_factor with z drawn from the
   * posterior. Default 0.18215 (SD1.5).
   */
  scaling_factor: number;
  /** Default null (no shift; SD3/Flux VAEs set one). */
  shift_factor: number | null;
  /** 1x1 conv on the posterior moments. Default true. */
  use_quant_conv: boolean;
  /** 1x1 conv on the latent before the decoder. Default true. */
  use_post_quant_conv: boolean;
  /** Self-attention in the mid blocks. Default true. */
  mid_block_add_attention: boolean;
}

/** Fixed choices of diffusers' Encoder/Decoder that are not config keys. */
export const VAE_CONSTANTS = {
  /** GroupNorm eps of every resnet, the mid-block attention and the output norms. */
  eps: 1e-6,
  /** DiagonalGaussianDistribution clamps the log-variance to this range. */
  logvarMin: -30,
  logvarMax: 20,
} as const;

/** runwayml/stable-diffusion-v1-5 vae/config.json. */
export const SD15_VAE: VaeConfig = {
  in_channels: 3,
  out_channels: 3,
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  block_out_channels: [128, 256, 512, 512],
  layers_per_block: 2,
  latent_channels: 4,
  norm_num_groups: 32,
  sample_size: 512,
  scaling_factor: 0.18215,
  shift_factor: null,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
};

/** Spatial downsampling factor between an image and its latent (8 for SD1.5). */
export function vaeScaleFactor(c: VaeConfig): number {
  return 2 ** (c.block_out_channels.length - 1);
}

/** Validates structural consistency; throws naming the offending key. */
export function validateVaeConfig(c: VaeConfig): void {
  const n = c.block_out_channels.length;
  if (n < 1) throw new Error('VaeConfig.block_out_channels must not be empty');
  if (c.down_block_types.length !== n) {
    throw new Error(`VaeConfig.down_block_types has ${c.down_block_types.length} entries, expected ${n}`);
  }
  if (c.up_block_types.length !== n) {
    throw new Error(`VaeConfig.up_block_types has ${c.up_block_types.length} entries, expected ${n}`);
  }
  for (const ch of c.block_out_channels) {
    if (!Number.isSafeInteger(ch) || ch < 1 || ch % c.norm_num_groups !== 0) {
      throw new Error(
        `VaeConfig.block_out_channels ${ch} not divisible by norm_num_groups ${c.norm_num_groups}`,
      );
    }
  }
  if (c.layers_per_block < 1) throw new Error('VaeConfig.layers_per_block must be >= 1');
  for (const key of ['in_channels', 'out_channels', 'latent_channels'] as const) {
    if (!Number.isSafeInteger(c[key]) || c[key] < 1)
      throw new Error(`VaeConfig.${key} must be a positive integer`);
  }
  if (!(c.scaling_factor > 0))
    throw new Error(`VaeConfig.scaling_factor must be > 0, got ${c.scaling_factor}`);
}
