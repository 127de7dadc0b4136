/**
 * diffusers' `get_timestep_embedding` (Timesteps module): half = dim/2,
 * freq_i = exp(-ln(10000) i / (half - freq_shift)), emb = [cos(t freq), sin(t freq)] when
 * flip_sin_to_cos (SD1.5), else [sin, cos]. Frequencies are rounded to float32 the way PyTorch
 * computes them so the embedding matches bit-for-bit up to the sin/cos rounding.
 */
import * as tf from '@tensorflow/tfjs-core';

export function timestepFrequencies(dim: number, freqShift = 0): Float32Array {
  if (dim % 2 !== 0) throw new Error(`timestep embedding dim must be even, got ${dim}`);
  const half = dim / 2;
  const out = new Float32Array(half);
  const negLog = Math.fround(-Math.log(10000));
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(negLog * i) / Math.fround(half - freqShift));
    out[i] = Math.exp(exponent);
  }
  return out;
}

/** timesteps: [B] float or int tensor. Returns [B, dim]. */
export function timestepEmbedding(
  timesteps: tf.Tensor1D,
  dim: number,
  flipSinToCos = true,
  freqShift = 0,
): tf.Tensor2D {
  return tf.tidy(() => {
    const freqs = tf.tensor2d(timestepFrequencies(dim, freqShift), [1, dim / 2]);
    const args = tf.mul(tf.reshape(tf.cast(timesteps, 'float32'), [-1, 1]), freqs);
    const parts = flipSinToCos ? [tf.cos(args), tf.sin(args)] : [tf.sin(args), tf.cos(args)];
    return tf.concat(parts, 1) as tf.Tensor2D;
  });
}
