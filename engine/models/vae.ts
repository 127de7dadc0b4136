/**
 * AutoencoderKL (diffusers) in TF.js, NHWC, with diffusers' state-dict names.
 *
 * Encoder: conv_in -> per level resnets (+ a stride-2 conv whose input is padded right and bottom
 * only, diffusers' Downsample2D with padding 0) -> mid block (resnet, single-head self-attention,
 * resnet) -> GroupNorm, SiLU, conv_out to 2 x latent_channels -> quant_conv: the mean and
 * log-variance of a diagonal Gaussian posterior.
 * Decoder: post_quant_conv -> conv_in -> mid block -> per level (layers_per_block + 1) resnets
 * (+ nearest x2 and a conv) -> GroupNorm, SiLU, conv_out.
 *
 * Scaling: the UNet works on `latents = (z - shift_factor) * scaling_factor`; `encodeLatents` and
 * `decodeLatents` apply it, `encode`/`decode` work on the unscaled z as diffusers' do.
 * Images are in [-1, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import { upsampleNearest2x } from '../ops';
import { attention, conv, DIFFUSERS_ATTENTION, groupNorm, silu, type AttentionNames } from '../nn/layers';
import { ParameterSet, type ParamReader, type ParamSpec } from '../nn/params';
import type { Rng } from '../rng';
import { VAE_CONSTANTS, type VaeConfig, validateVaeConfig, vaeScaleFactor } from './vae-config';

const EPS = VAE_CONSTANTS.eps;

/** The VAE's attention has biases on q/k/v, unlike the UNet's. */
const VAE_ATTENTION: AttentionNames = { ...DIFFUSERS_ATTENTION, qkvBias: true };

class Specs {
  readonly list: ParamSpec[] = [];
  conv(prefix: string, cin: number, cout: number, k: number): void {
    const fanIn = cin * k * k;
    this.list.push({ name: `${prefix}.weight`, shape: [cout, cin, k, k], kind: 'conv', fanIn });
    this.list.push({ name: `${prefix}.bias`, shape: [cout], kind: 'bias', fanIn });
  }
  linear(prefix: string, cin: number, cout: number): void {
    this.list.push({ name: `${prefix}.weight`, shape: [cout, cin], kind: 'linear', fanIn: cin });
    this.list.push({ name: `${prefix}.bias`, shape: [cout], kind: 'bias', fanIn: cin });
  }
  norm(prefix: string, c: number): void {
    this.list.push({ name: `${prefix}.weight`, shape: [c], kind: 'norm_weight' });
    this.list.push({ name: `${prefix}.bias`, shape: [c], kind: 'norm_bias' });
  }
  resnet(prefix: string, cin: number, cout: number): void {
    this.norm(`${prefix}.norm1`, cin);
    this.conv(`${prefix}.conv1`, cin, cout, 3);
    this.norm(`${prefix}.norm2`, cout);
    this.conv(`${prefix}.conv2`, cout, cout, 3);
    if (cin !== cout) this.conv(`${prefix}.conv_shortcut`, cin, cout, 1);
  }
  midBlock(prefix: string, c: number, withAttention: boolean): void {
    if (withAttention) {
      const a = `${prefix}.attentions.0`;
      this.norm(`${a}.group_norm`, c);
      for (const proj of ['to_q', 'to_k', 'to_v', 'to_out.0']) this.linear(`${a}.${proj}`, c, c);
    }
    this.resnet(`${prefix}.resnets.0`, c, c);
    this.resnet(`${prefix}.resnets.1`, c, c);
  }
}

/** The VAE's parameters (diffusers' state-dict keys and PyTorch shapes) as a function of its config. */
export function vaeParamSpecs(c: VaeConfig): ParamSpec[] {
  validateVaeConfig(c);
  const s = new Specs();
  const boc = c.block_out_channels;
  const n = boc.length;
  const top = boc[n - 1]!;

  s.conv('encoder.conv_in', c.in_channels, boc[0]!, 3);
  let out = boc[0]!;
  for (let i = 0; i < n; i++) {
    const inCh = out;
    out = boc[i]!;
    for (let j = 0; j < c.layers_per_block; j++)
      s.resnet(`encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? inCh : out, out);
    if (i < n - 1) s.conv(`encoder.down_blocks.${i}.downsamplers.0.conv`, out, out, 3);
  }
  s.midBlock('encoder.mid_block', top, c.mid_block_add_attention);
  s.norm('encoder.conv_norm_out', top);
  s.conv('encoder.conv_out', top, 2 * c.latent_channels, 3);

  s.conv('decoder.conv_in', c.latent_channels, top, 3);
  s.midBlock('decoder.mid_block', top, c.mid_block_add_attention);
  const rev = [...boc].reverse();
  out = rev[0]!;
  for (let i = 0; i < n; i++) {
    const inCh = out;
    out = rev[i]!;
    for (let j = 0; j <= c.layers_per_block; j++)
      s.resnet(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? inCh : out, out);
    if (i < n - 1) s.conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, out, out, 3);
  }
  s.norm('decoder.conv_norm_out', boc[0]!);
  s.conv('decoder.conv_out', boc[0]!, c.out_channels, 3);

  if (c.use_quant_conv) s.conv('quant_conv', 2 * c.latent_channels, 2 * c.latent_channels, 1);
  if (c.use_post_quant_conv) s.conv('post_quant_conv', c.latent_channels, c.latent_channels, 1);
  return s.list;
}

/**
 * State-dict keys that older diffusers checkpoints used for the mid-block attention (SD1.5's own
 * VAE file among them) and the names used now; loaders rename before matching.
 */
export const VAE_LEGACY_ATTENTION_NAMES: Readonly<Record<string, string>> = {
  query: 'to_q',
  key: 'to_k',
  value: 'to_v',
  proj_attn: 'to_out.0',
};

/** The current key for a possibly legacy VAE key (unchanged when it is current). */
export function modernVaeKey(key: string): string {
  const m =
    /^((?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$/.exec(
      key,
    );
  return m ? `${m[1]}.${VAE_LEGACY_ATTENTION_NAMES[m[2]!]}.${m[3]}` : key;
}

function resnet(p: ParamReader, prefix: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  let h = silu(groupNorm(p, `${prefix}.norm1`, x, groups, EPS)) as tf.Tensor4D;
  h = conv(p, `${prefix}.conv1`, h);
  h = silu(groupNorm(p, `${prefix}.norm2`, h, groups, EPS)) as tf.Tensor4D;
  h = conv(p, `${prefix}.conv2`, h);
  const shortcut = p.has(`${prefix}.conv_shortcut.weight`) ? conv(p, `${prefix}.conv_shortcut`, x) : x;
  return tf.add(shortcut, h);
}

function selfAttention(p: ParamReader, prefix: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const normed = groupNorm(p, `${prefix}.group_norm`, x, groups, EPS);
  const seq = tf.reshape(normed, [b, h * w, c]);
  // One head as wide as the channels (diffusers passes attention_head_dim = channels).
  const out = attention(p, prefix, seq, 1, VAE_ATTENTION);
  return tf.add(tf.reshape(out, [b, h, w, c]), x);
}

function midBlock(
  p: ParamReader,
  prefix: string,
  x: tf.Tensor4D,
  groups: number,
  attn: boolean,
): tf.Tensor4D {
  let h = resnet(p, `${prefix}.resnets.0`, x, groups);
  if (attn) h = selfAttention(p, `${prefix}.attentions.0`, h, groups);
  return resnet(p, `${prefix}.resnets.1`, h, groups);
}

/** diffusers' Downsample2D(padding=0): zero pad one row/column at the bottom/right, 3x3 stride 2. */
function downsample(p: ParamReader, prefix: string, x: tf.Tensor4D): tf.Tensor4D {
  const padded = tf.pad(x, [
    [0, 0],
    [0, 1],
    [0, 1],
    [0, 0],
  ]);
  const y = tf.conv2d(padded, p.get(`${prefix}.weight`) as tf.Tensor4D, 2, 'valid');
  return tf.add(y, p.get(`${prefix}.bias`));
}

/** Mean and log-variance (clamped as diffusers does) of the posterior q(z | x), NHWC. */
export interface LatentPosterior {
  mean: tf.Tensor4D;
  logvar: tf.Tensor4D;
}

export class AutoencoderKL {
  private constructor(
    readonly config: VaeConfig,
    readonly params: ParameterSet,
  ) {}

  /** A VAE with deterministic initial weights drawn from `rng` (frozen unless `trainable`). */
  static create(config: VaeConfig, rng: Rng, trainable = false): AutoencoderKL {
    return new AutoencoderKL(config, ParameterSet.create(vaeParamSpecs(config), rng, trainable));
  }

  /** A VAE around existing parameters (which must have been built from the same config). */
  static fromParameters(config: VaeConfig, params: ParameterSet): AutoencoderKL {
    const want = vaeParamSpecs(config).map((s) => s.name);
    const have = params.names;
    if (want.length !== have.length || want.some((n, i) => n !== have[i])) {
      throw new Error('parameter set does not match the VAE config');
    }
    return new AutoencoderKL(config, params);
  }

  /** Image to latent downsampling factor (8 for SD1.5). */
  get scaleFactor(): number {
    return vaeScaleFactor(this.config);
  }

  dispose(): void {
    this.params.dispose();
  }

  /** Posterior of images [B, H, W, in_channels] in [-1, 1]; H, W divisible by `scaleFactor`. */
  encode(images: tf.Tensor4D): LatentPosterior {
    const c = this.config;
    const [, h, w, ch] = images.shape;
    if (ch !== c.in_channels)
      throw new Error(`VAE input has ${ch} channels, config in_channels is ${c.in_channels}`);
    const f = this.scaleFactor;
    if (h % f !== 0 || w % f !== 0) throw new Error(`VAE input ${h}x${w} must be divisible by ${f}`);
    const moments = tf.tidy(() => {
      let m = this.encoder(images);
      if (c.use_quant_conv) m = conv(this.params, 'quant_conv', m);
      return m;
    });
    const [mean, logvar] = tf.tidy(() => {
      const [mu, lv] = tf.split(moments, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
      return [mu, tf.clipByValue(lv, VAE_CONSTANTS.logvarMin, VAE_CONSTANTS.logvarMax) as tf.Tensor4D];
    });
    moments.dispose();
    return { mean, logvar };
  }

  /** Images [B, h*f, w*f, out_channels] from unscaled latents z [B, h, w, latent_channels]. */
  decode(z: tf.Tensor4D): tf.Tensor4D {
    const c = this.config;
    if (z.shape[3] !== c.latent_channels) {
      throw new Error(
        `VAE latent has ${z.shape[3]} channels, config latent_channels is ${c.latent_channels}`,
      );
    }
    return tf.tidy(() => this.decoder(c.use_post_quant_conv ? conv(this.params, 'post_quant_conv', z) : z));
  }

  /** diffusers' AutoencoderKL.forward(sample_posterior=False): decode(posterior mean). */
  reconstruct(images: tf.Tensor4D): tf.Tensor4D {
    const { mean, logvar } = this.encode(images);
    try {
      return this.decode(mean);
    } finally {
      tf.dispose([mean, logvar]);
    }
  }

  /**
   * UNet latents of images: (z - shift_factor) * scaling_factor, z = mean + exp(logvar / 2) * noise.
   * Without `noise` z is the posterior mean (diffusers' `mode()`); `noise` has the latent's shape.
   */
  encodeLatents(images: tf.Tensor4D, noise?: tf.Tensor4D): tf.Tensor4D {
    const { mean, logvar } = this.encode(images);
    try {
      return tf.tidy(() => {
        const z = noise ? tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), noise)) : mean;
        return tf.mul(tf.sub(z, this.config.shift_factor ?? 0), this.config.scaling_factor) as tf.Tensor4D;
      });
    } finally {
      tf.dispose([mean, logvar]);
    }
  }

  /** Images in [-1, 1] (not clamped) from UNet latents: decode(latents / scaling_factor + shift). */
  decodeLatents(latents: tf.Tensor4D): tf.Tensor4D {
    const z = tf.tidy(
      () => tf.add(tf.div(latents, this.config.scaling_factor), this.config.shift_factor ?? 0) as tf.Tensor4D,
    );
    try {
      return this.decode(z);
    } finally {
      z.dispose();
    }
  }

  private encoder(x: tf.Tensor4D): tf.Tensor4D {
    const c = this.config;
    const p = this.params;
    const g = c.norm_num_groups;
    const n = c.block_out_channels.length;
    let h = conv(p, 'encoder.conv_in', x);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < c.layers_per_block; j++)
        h = resnet(p, `encoder.down_blocks.${i}.resnets.${j}`, h, g);
      if (i < n - 1) h = downsample(p, `encoder.down_blocks.${i}.downsamplers.0.conv`, h);
    }
    h = midBlock(p, 'encoder.mid_block', h, g, c.mid_block_add_attention);
    h = silu(groupNorm(p, 'encoder.conv_norm_out', h, g, EPS)) as tf.Tensor4D;
    return conv(p, 'encoder.conv_out', h);
  }

  private decoder(z: tf.Tensor4D): tf.Tensor4D {
    const c = this.config;
    const p = this.params;
    const g = c.norm_num_groups;
    const n = c.block_out_channels.length;
    let h = conv(p, 'decoder.conv_in', z);
    h = midBlock(p, 'decoder.mid_block', h, g, c.mid_block_add_attention);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= c.layers_per_block; j++)
        h = resnet(p, `decoder.up_blocks.${i}.resnets.${j}`, h, g);
      if (i < n - 1) h = conv(p, `decoder.up_blocks.${i}.upsamplers.0.conv`, upsampleNearest2x(h));
    }
    h = silu(groupNorm(p, 'decoder.conv_norm_out', h, g, EPS)) as tf.Tensor4D;
    return conv(p, 'decoder.conv_out', h);
  }
}
