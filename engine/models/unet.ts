/**
 * UNet2DConditionModel (diffusers) in TF.js, NHWC.
 *
 * Structure and names follow diffusers exactly (see unet-params.ts for the parameter list):
 * conv_in -> down blocks (ResnetBlock2D [+ Transformer2DModel] per layer, stride-2 downsampler) ->
 * mid block (resnet, transformer, resnet) -> up blocks (skip concatenation, resnet [+ transformer],
 * nearest x2 + conv upsampler) -> GroupNorm, SiLU, conv_out. Timestep t enters through a sinusoidal
 * embedding, Linear-SiLU-Linear, and a per-resnet projection; the text condition enters through
 * cross-attention.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2dDown, upsampleNearest2x } from '../ops';
import {
  attention,
  conv,
  dense,
  DIFFUSERS_ATTENTION,
  geluErf,
  groupNorm,
  layerNorm,
  silu,
} from '../nn/layers';
import { ParameterSet, type ParamReader } from '../nn/params';
import type { Rng } from '../rng';
import { headsFor, UNET_CONSTANTS, type UNetConfig, validateUNetConfig } from './unet-config';
import { unetParamSpecs } from './unet-params';
import { timestepEmbedding } from './timestep-embedding';

const K = UNET_CONSTANTS;

function resnetBlock(
  p: ParamReader,
  prefix: string,
  x: tf.Tensor4D,
  tembAct: tf.Tensor2D,
  groups: number,
): tf.Tensor4D {
  let h = silu(groupNorm(p, `${prefix}.norm1`, x, groups, K.resnetEps)) as tf.Tensor4D;
  h = conv(p, `${prefix}.conv1`, h);
  const t = dense(p, `${prefix}.time_emb_proj`, tembAct);
  h = tf.add(h, tf.reshape(t, [t.shape[0]!, 1, 1, t.shape[1]!]));
  h = silu(groupNorm(p, `${prefix}.norm2`, h, groups, K.resnetEps)) as tf.Tensor4D;
  h = conv(p, `${prefix}.conv2`, h);
  const shortcut = p.has(`${prefix}.conv_shortcut.weight`) ? conv(p, `${prefix}.conv_shortcut`, x) : x;
  return tf.add(shortcut, h);
}

function transformerBlock(
  p: ParamReader,
  prefix: string,
  x: tf.Tensor,
  context: tf.Tensor,
  heads: number,
): tf.Tensor {
  const eps = K.layerNormEps;
  let h = tf.add(
    attention(p, `${prefix}.attn1`, layerNorm(p, `${prefix}.norm1`, x, eps), heads, DIFFUSERS_ATTENTION),
    x,
  );
  h = tf.add(
    attention(
      p,
      `${prefix}.attn2`,
      layerNorm(p, `${prefix}.norm2`, h, eps),
      heads,
      DIFFUSERS_ATTENTION,
      context,
    ),
    h,
  );
  // GEGLU: the projection's first half is the value, the second half goes through GELU as the gate.
  const proj = dense(p, `${prefix}.ff.net.0.proj`, layerNorm(p, `${prefix}.norm3`, h, eps));
  const inner = proj.shape[proj.rank - 1]! / 2;
  const [value, gate] = tf.split(proj, [inner, inner], proj.rank - 1);
  const ff = dense(p, `${prefix}.ff.net.2`, tf.mul(value!, geluErf(gate!)));
  return tf.add(ff, h);
}

function transformer2d(
  p: ParamReader,
  prefix: string,
  x: tf.Tensor4D,
  context: tf.Tensor,
  heads: number,
  groups: number,
): tf.Tensor4D {
  const [b, hh, ww, c] = x.shape;
  let h = groupNorm(p, `${prefix}.norm`, x, groups, K.transformerNormEps);
  h = conv(p, `${prefix}.proj_in`, h);
  let seq = transformerBlock(
    p,
    `${prefix}.transformer_blocks.0`,
    tf.reshape(h, [b, hh * ww, c]),
    context,
    heads,
  );
  seq = tf.reshape(seq, [b, hh, ww, c]);
  return tf.add(conv(p, `${prefix}.proj_out`, seq as tf.Tensor4D), x);
}

export type Timesteps = number[] | Float32Array | tf.Tensor1D;

export class UNet2DConditionModel {
  private constructor(
    readonly config: UNetConfig,
    readonly params: ParameterSet,
  ) {}

  /** A new model with deterministic initial weights drawn from `rng`. */
  static create(config: UNetConfig, rng: Rng, trainable = true): UNet2DConditionModel {
    validateUNetConfig(config);
    return new UNet2DConditionModel(config, ParameterSet.create(unetParamSpecs(config), rng, trainable));
  }

  /** A model around existing parameters (which must have been built from the same config). */
  static fromParameters(config: UNetConfig, params: ParameterSet): UNet2DConditionModel {
    const want = unetParamSpecs(config).map((s) => s.name);
    const have = params.names;
    if (want.length !== have.length || want.some((n, i) => n !== have[i])) {
      throw new Error('parameter set does not match the UNet config');
    }
    return new UNet2DConditionModel(config, params);
  }

  /** Independent copy of the weights (ref/policy/phi). */
  clone(trainable = this.params.trainable): UNet2DConditionModel {
    return new UNet2DConditionModel(this.config, this.params.clone(trainable));
  }

  dispose(): void {
    this.params.dispose();
  }

  /**
   * Noise prediction eps(x, t, context).
   * @param x [B, H, W, in_channels] with H, W divisible by 2^(levels-1)
   * @param t one timestep per sample ([B]) or a single one for all
   * @param context [B, L, cross_attention_dim] text encoder states
   */
  predict(x: tf.Tensor4D, t: Timesteps, context: tf.Tensor3D): tf.Tensor4D {
    const c = this.config;
    const [b, h, w, ch] = x.shape;
    if (ch !== c.in_channels)
      throw new Error(`UNet input has ${ch} channels, config in_channels is ${c.in_channels}`);
    const factor = 2 ** (c.block_out_channels.length - 1);
    if (h % factor !== 0 || w % factor !== 0) {
      throw new Error(`UNet input ${h}x${w} must be divisible by ${factor}`);
    }
    if (context.rank !== 3 || context.shape[0] !== b || context.shape[2] !== c.cross_attention_dim) {
      throw new Error(
        `UNet context must be [${b}, L, ${c.cross_attention_dim}], got [${context.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => this.forward(x, this.timestepTensor(t, b), context));
  }

  private timestepTensor(t: Timesteps, batch: number): tf.Tensor1D {
    const tt = t instanceof tf.Tensor ? t : tf.tensor1d(Array.from(t), 'float32');
    if (tt.rank !== 1 || (tt.shape[0] !== batch && tt.shape[0] !== 1)) {
      throw new Error(`UNet timesteps must have shape [${batch}] or [1], got [${tt.shape.join(', ')}]`);
    }
    return tt.shape[0] === batch ? tt : (tf.tile(tt, [batch]) as tf.Tensor1D);
  }

  private forward(x: tf.Tensor4D, t: tf.Tensor1D, context: tf.Tensor3D): tf.Tensor4D {
    const c = this.config;
    const p = this.params;
    const g = c.norm_num_groups;
    const n = c.block_out_channels.length;

    const tproj = timestepEmbedding(t, c.block_out_channels[0]!, K.flipSinToCos, K.freqShift);
    let temb = dense(p, 'time_embedding.linear_1', tproj);
    temb = dense(p, 'time_embedding.linear_2', silu(temb));
    // Every resnet applies SiLU to the embedding before its projection: do it once.
    const tembAct = silu(temb) as tf.Tensor2D;

    let h = conv(p, 'conv_in', x);
    const skips: tf.Tensor4D[] = [h];
    c.down_block_types.forEach((type, i) => {
      const prefix = `down_blocks.${i}`;
      for (let j = 0; j < c.layers_per_block; j++) {
        h = resnetBlock(p, `${prefix}.resnets.${j}`, h, tembAct, g);
        if (type === 'CrossAttnDownBlock2D') {
          h = transformer2d(p, `${prefix}.attentions.${j}`, h, context, headsFor(c, i), g);
        }
        skips.push(h);
      }
      if (i < n - 1) {
        h = conv2dDown(
          h,
          p.get(`${prefix}.downsamplers.0.conv.weight`) as tf.Tensor4D,
          p.get(`${prefix}.downsamplers.0.conv.bias`) as tf.Tensor1D,
        );
        skips.push(h);
      }
    });

    h = resnetBlock(p, 'mid_block.resnets.0', h, tembAct, g);
    h = transformer2d(p, 'mid_block.attentions.0', h, context, headsFor(c, n - 1), g);
    h = resnetBlock(p, 'mid_block.resnets.1', h, tembAct, g);

    c.up_block_types.forEach((type, i) => {
      const prefix = `up_blocks.${i}`;
      // diffusers indexes heads of up blocks by the reversed block order.
      const heads = headsFor(c, n - 1 - i);
      for (let j = 0; j <= c.layers_per_block; j++) {
        const skip = skips.pop();
        if (!skip) throw new Error('UNet skip connections exhausted (inconsistent config)');
        h = tf.concat([h, skip], 3);
        h = resnetBlock(p, `${prefix}.resnets.${j}`, h, tembAct, g);
        if (type === 'CrossAttnUpBlock2D')
          h = transformer2d(p, `${prefix}.attentions.${j}`, h, context, heads, g);
      }
      if (i < n - 1) h = conv(p, `${prefix}.upsamplers.0.conv`, upsampleNearest2x(h));
    });

    h = silu(groupNorm(p, 'conv_norm_out', h, g, K.resnetEps)) as tf.Tensor4D;
    return conv(p, 'conv_out', h);
  }
}
