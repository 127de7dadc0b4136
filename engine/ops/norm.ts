/**
 * Normalization layers with hand-written gradients. Autodiff through tf.moments and the affine map
 * records ~35 small kernels per norm; on wasm each kernel costs tens of microseconds of fixed
 * overhead, so the closed-form backward (~14 kernels) matters for the many norms of a UNet.
 *
 * With x grouped as [N, M, G, K] (statistics over M and K for each n, g), xhat = (x - mean) * rstd:
 *   dgamma = sum_{n,m} dy xhat,  dbeta = sum_{n,m} dy,
 *   dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = dy gamma, means over (M, K).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';

type Grad = tf.GradSaveFunc;

/**
 * Shared core: x viewed as [N, M, G, K]; gamma/beta as [G, K] (broadcast over N, M).
 * Returns y in the same 4-D view.
 */
const groupedNormOp = (eps: number) =>
  tf.customGrad((...args: (tf.Tensor | Grad)[]) => {
    const [x, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor2D, tf.Tensor2D, Grad];
    // tf.moments would add a same-dtype Cast (a full copy on wasm) and leave x - mean to be
    // computed again; the deviations are reused instead, the same values in fewer passes.
    const mean = tf.mean(x, [1, 3], true);
    const dev = tf.sub(x, mean);
    const variance = tf.mean(tf.square(dev), [1, 3], true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(dev, rstd);
    save([xhat, rstd, gamma]);
    return {
      value: tf.add(tf.mul(xhat, gamma), beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gm] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor2D];
        const g = tf.mul(dy, gm);
        const meanG = tf.mean(g, [1, 3], true);
        const meanGX = tf.mean(tf.mul(g, xh), [1, 3], true);
        const dx = tf.mul(tf.sub(tf.sub(g, meanG), tf.mul(xh, meanGX)), rs);
        const dgamma = tf.sum(tf.mul(dy, xh), [0, 1]);
        const dbeta = tf.sum(dy, [0, 1]);
        return [dx, dgamma, dbeta];
      },
    };
  });

const opsByEps = new Map<number, ReturnType<typeof groupedNormOp>>();
function groupedNorm(x: tf.Tensor4D, gamma: tf.Tensor2D, beta: tf.Tensor2D, eps: number): tf.Tensor4D {
  let op = opsByEps.get(eps);
  if (!op) {
    op = groupedNormOp(eps);
    opsByEps.set(eps, op);
  }
  return op(x, gamma, beta) as tf.Tensor4D;
}

/** GroupNorm over NHWC (PyTorch semantics: biased variance, per-channel affine). */
export function groupNorm(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  groups: number,
  eps: number,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (c % groups !== 0) throw new Error(`groupNorm: ${c} channels not divisible into ${groups} groups`);
  if (gamma.size !== c || beta.size !== c) {
    throw new Error(`groupNorm: affine parameters must have ${c} values, got ${gamma.size} and ${beta.size}`);
  }
  const k = c / groups;
  return tf.tidy(() => {
    const y = groupedNorm(
      tf.reshape(x, [n, h * w, groups, k]),
      tf.reshape(gamma, [groups, k]),
      tf.reshape(beta, [groups, k]),
      eps,
    );
    return tf.reshape(y, [n, h, w, c]);
  });
}

/** LayerNorm over the last axis (a GroupNorm with one group per row). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1]!;
  if (gamma.size !== d || beta.size !== d) {
    throw new Error(`layerNorm: affine parameters must have ${d} values, got ${gamma.size} and ${beta.size}`);
  }
  return tf.tidy(() => {
    const y = groupedNorm(
      tf.reshape(x, [-1, 1, 1, d]),
      tf.reshape(gamma, [1, d]),
      tf.reshape(beta, [1, d]),
      eps,
    );
    return tf.reshape(y, x.shape);
  });
}
