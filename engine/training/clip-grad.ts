import * as tf from '@tensorflow/tfjs-core';

/**
 * Scales gradients in place so their global L2 norm is at most `maxNorm`, as
 * torch.nn.utils.clip_grad_norm_ does (coefficient max_norm / (norm + 1e-6), capped at 1).
 * Returns the norm before clipping. A maxNorm of 0 disables clipping.
 */
export function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): number {
  const total = tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    return squares.length === 0 ? 0 : Math.sqrt((tf.addN(squares).dataSync() as Float32Array)[0] ?? 0);
  });
  if (maxNorm <= 0) return total;
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  if (coef < 1) {
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, coef));
      g.dispose();
    }
  }
  return total;
}
