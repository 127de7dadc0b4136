/**
 * Functional building blocks shared by the UNet and the text encoder. Each reads its weights from a
 * `ParamReader` under a state-dict prefix, so the same code runs any of the ref/policy/phi copies.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2d, linear, batchMatmul, groupNorm as groupNormOp, layerNorm as layerNormOp } from '../ops';
import type { ParamReader } from './params';

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Exact GELU 0.5 x (1 + erf(x / sqrt 2)), PyTorch's default (approximate='none'). */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** CLIP's quick_gelu: x sigmoid(1.702 x). */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
}

/** GroupNorm over NHWC with per-channel affine `${prefix}.weight/.bias` (biased variance, as PyTorch). */
export function groupNorm(
  p: ParamReader,
  prefix: string,
  x: tf.Tensor4D,
  groups: number,
  eps: number,
): tf.Tensor4D {
  return groupNormOp(
    x,
    p.get(`${prefix}.weight`) as tf.Tensor1D,
    p.get(`${prefix}.bias`) as tf.Tensor1D,
    groups,
    eps,
  );
}

/** LayerNorm over the last axis. */
export function layerNorm(p: ParamReader, prefix: string, x: tf.Tensor, eps: number): tf.Tensor {
  return layerNormOp(
    x,
    p.get(`${prefix}.weight`) as tf.Tensor1D,
    p.get(`${prefix}.bias`) as tf.Tensor1D,
    eps,
  );
}

/** nn.Linear under `prefix` (weight stored [in, out]). */
export function dense(p: ParamReader, prefix: string, x: tf.Tensor, bias = true): tf.Tensor {
  return linear(
    x,
    p.get(`${prefix}.weight`) as tf.Tensor2D,
    bias ? (p.get(`${prefix}.bias`) as tf.Tensor1D) : undefined,
  );
}

/** nn.Conv2d(k, stride 1, padding k//2) under `prefix`. */
export function conv(p: ParamReader, prefix: string, x: tf.Tensor4D): tf.Tensor4D {
  return conv2d(x, p.get(`${prefix}.weight`) as tf.Tensor4D, p.get(`${prefix}.bias`) as tf.Tensor1D);
}

/** [B, L, heads*d] -> [B*heads, L, d] */
function splitHeads(x: tf.Tensor, heads: number): tf.Tensor3D {
  const [b, l, c] = x.shape as [number, number, number];
  const d = c / heads;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, l, heads, d]), [0, 2, 1, 3]), [b * heads, l, d]);
}

/** [B*heads, L, d] -> [B, L, heads*d] */
function mergeHeads(x: tf.Tensor3D, heads: number): tf.Tensor3D {
  const [bh, l, d] = x.shape;
  const b = bh / heads;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, heads, l, d]), [0, 2, 1, 3]), [b, l, heads * d]);
}

export interface AttentionNames {
  q: string;
  k: string;
  v: string;
  out: string;
  /** Whether q/k/v projections have a bias (diffusers: no; CLIP: yes). The output always has one. */
  qkvBias: boolean;
}

export const DIFFUSERS_ATTENTION: AttentionNames = {
  q: 'to_q',
  k: 'to_k',
  v: 'to_v',
  out: 'to_out.0',
  qkvBias: false,
};
export const CLIP_ATTENTION: AttentionNames = {
  q: 'q_proj',
  k: 'k_proj',
  v: 'v_proj',
  out: 'out_proj',
  qkvBias: true,
};

/**
 * Multi-head scaled dot-product attention. x: [B, Lq, C]; context (keys/values source, defaults to x):
 * [B, Lk, Dc]; mask: additive, broadcastable to [B*heads, Lq, Lk].
 */
export function attention(
  p: ParamReader,
  prefix: string,
  x: tf.Tensor,
  heads: number,
  names: AttentionNames,
  context?: tf.Tensor,
  mask?: tf.Tensor,
): tf.Tensor {
  const kv = context ?? x;
  const q = dense(p, `${prefix}.${names.q}`, x, names.qkvBias);
  const k = dense(p, `${prefix}.${names.k}`, kv, names.qkvBias);
  const v = dense(p, `${prefix}.${names.v}`, kv, names.qkvBias);
  const c = q.shape[2]!;
  if (c % heads !== 0) throw new Error(`${prefix}: inner dim ${c} not divisible by ${heads} heads`);
  const qh = tf.mul(splitHeads(q, heads), 1 / Math.sqrt(c / heads)) as tf.Tensor3D;
  let scores: tf.Tensor = batchMatmul(qh, splitHeads(k, heads), true);
  if (mask) scores = tf.add(scores, mask);
  const probs = tf.softmax(scores) as tf.Tensor3D;
  const out = mergeHeads(batchMatmul(probs, splitHeads(v, heads)), heads);
  return dense(p, `${prefix}.${names.out}`, out, true);
}
