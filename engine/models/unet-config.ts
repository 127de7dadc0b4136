/**
 * UNet2DConditionModel configuration, with diffusers' config keys and their meanings.
 *
 * diffusers quirk kept on purpose: `attention_head_dim` is the NUMBER of heads in
 * UNet2DConditionModel (8 for SD1.5); each head's width is the block's channels divided by it.
 */
export type DownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

export interface UNetConfig {
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  down_block_types: DownBlockType[];
  up_block_types: UpBlockType[];
  cross_attention_dim: number;
  /** Number of attention heads (diffusers' naming), one value or one per block. */
  attention_head_dim: number | number[];
  norm_num_groups: number;
  /** Spatial size of the samples the model is trained on. */
  sample_size: number;
}

/** Fixed by the parity fixtures produced with diffusers: do not change. */
export const TINY_UNET: UNetConfig = {
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [32, 64],
  layers_per_block: 2,
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 32,
  attention_head_dim: 2,
  norm_num_groups: 8,
  sample_size: 8,
};

/**
 * Built-in world: 3-channel 16 px images in pixel space (no VAE), about 1M parameters. Attention
 * only at the 8x8 level, where it is cheap, and one resnet per level: a DRO step at batch 4 (phi
 * with gradient and ref on 8 inputs) stays well under a second on wasm.
 */
export const DEMO_UNET: UNetConfig = {
  in_channels: 3,
  out_channels: 3,
  block_out_channels: [32, 64],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'],
  up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D'],
  cross_attention_dim: 64,
  attention_head_dim: 4,
  norm_num_groups: 8,
  sample_size: 16,
};

/** runwayml/stable-diffusion-v1-5 unet/config.json. */
export const SD15_UNET: UNetConfig = {
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 768,
  attention_head_dim: 8,
  norm_num_groups: 32,
  sample_size: 64,
};

export const UNET_CONFIGS = { tiny: TINY_UNET, demo: DEMO_UNET, sd15: SD15_UNET } as const;
export type UNetConfigName = keyof typeof UNET_CONFIGS;

/** Fixed SD1.5 choices that are not exposed as config keys here. */
export const UNET_CONSTANTS = {
  /** GroupNorm eps of resnets and the output norm. */
  resnetEps: 1e-5,
  /** GroupNorm eps of Transformer2DModel's outer norm. */
  transformerNormEps: 1e-6,
  /** LayerNorm eps inside BasicTransformerBlock. */
  layerNormEps: 1e-5,
  /** Sinusoidal embedding with [cos, sin] order (flip_sin_to_cos) and freq_shift 0. */
  flipSinToCos: true,
  freqShift: 0,
} as const;

export function headsFor(config: UNetConfig, blockIndex: number): number {
  const h = config.attention_head_dim;
  if (typeof h === 'number') return h;
  const v = h[blockIndex];
  if (v === undefined) throw new Error(`attention_head_dim has no entry for block ${blockIndex}`);
  return v;
}

/**
 * Bounds of every size in a UNet config read from a file. They admit SD1.5 and SDXL-sized models
 * with room to spare; beyond them a config is corrupt or hostile, and building it would allocate
 * without limit before any weight is checked.
 */
export const UNET_CONFIG_LIMITS = {
  channels: 8192,
  blocks: 8,
  layersPerBlock: 16,
  ioChannels: 64,
  sampleSize: 1024,
  heads: 256,
} as const;

function checkInt(value: unknown, key: string, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new Error(`UNetConfig.${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
}

function checkTypes(value: unknown, key: string, allowed: readonly string[], n: number): void {
  if (!Array.isArray(value) || value.length !== n)
    throw new Error(
      `UNetConfig.${key} has ${Array.isArray(value) ? value.length : 'no'} entries, expected ${n}`,
    );
  value.forEach((t, i) => {
    if (!allowed.includes(t as string))
      throw new Error(`UNetConfig.${key}[${i}] ${JSON.stringify(t)} is not one of ${allowed.join(', ')}`);
  });
}

/**
 * Validates types, bounds and structural consistency of a config (typically parsed from a
 * file's metadata); throws naming the offending key.
 */
export function validateUNetConfig(c: UNetConfig): void {
  if (typeof c !== 'object' || c === null || Array.isArray(c))
    throw new Error(`UNetConfig must be an object, got ${JSON.stringify(c)}`);
  const L = UNET_CONFIG_LIMITS;
  checkInt(c.in_channels, 'in_channels', 1, L.ioChannels);
  checkInt(c.out_channels, 'out_channels', 1, L.ioChannels);
  checkInt(c.layers_per_block, 'layers_per_block', 1, L.layersPerBlock);
  checkInt(c.cross_attention_dim, 'cross_attention_dim', 1, L.channels);
  checkInt(c.norm_num_groups, 'norm_num_groups', 1, L.channels);
  checkInt(c.sample_size, 'sample_size', 1, L.sampleSize);
  if (!Array.isArray(c.block_out_channels))
    throw new Error('UNetConfig.block_out_channels must be a list of integers');
  const n = c.block_out_channels.length;
  if (n < 1) throw new Error('UNetConfig.block_out_channels must not be empty');
  if (n > L.blocks) throw new Error(`UNetConfig.block_out_channels has ${n} entries, at most ${L.blocks}`);
  c.block_out_channels.forEach((ch, i) => checkInt(ch, `block_out_channels[${i}]`, 1, L.channels));
  checkTypes(c.down_block_types, 'down_block_types', ['CrossAttnDownBlock2D', 'DownBlock2D'], n);
  checkTypes(c.up_block_types, 'up_block_types', ['CrossAttnUpBlock2D', 'UpBlock2D'], n);
  if (Array.isArray(c.attention_head_dim)) {
    if (c.attention_head_dim.length !== n)
      throw new Error(
        `UNetConfig.attention_head_dim has ${c.attention_head_dim.length} entries, expected ${n}`,
      );
    c.attention_head_dim.forEach((h, i) => checkInt(h, `attention_head_dim[${i}]`, 1, L.heads));
  } else {
    checkInt(c.attention_head_dim, 'attention_head_dim', 1, L.heads);
  }
  if (c.down_block_types.length !== n) {
    throw new Error(`UNetConfig.down_block_types has ${c.down_block_types.length} entries, expected ${n}`);
  }
  if (c.up_block_types.length !== n) {
    throw new Error(`UNetConfig.up_block_types has ${c.up_block_types.length} entries, expected ${n}`);
  }
  for (const ch of c.block_out_channels) {
    if (ch % c.norm_num_groups !== 0) {
      throw new Error(
        `UNetConfig.block_out_channels ${ch} not divisible by norm_num_groups ${c.norm_num_groups}`,
      );
    }
  }
  c.block_out_channels.forEach((ch, i) => {
    const heads = headsFor(c, i);
    if (ch % heads !== 0)
      throw new Error(`UNetConfig.attention_head_dim ${heads} does not divide ${ch} channels`);
  });
  if (c.layers_per_block < 1) throw new Error('UNetConfig.layers_per_block must be >= 1');
}
