/**
 * Matrix products with hand-written gradients.
 *
 * Autodiff of a 2-D `tf.matMul` computes its gradients with the transposeA/transposeB flags, which the
 * wasm backend runs 9-17x slower than an explicit `tf.transpose` followed by a plain matMul (the flags
 * leave XNNPACK's fast path); the 2-D ops here transpose explicitly. Linear layers work on 2-D reshapes because a rank-3 x rank-2 matMul gets a
 * wrongly shaped weight gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gradientMode } from './gradient-mode';
// Autodiff needs the gradient registry, which tfjs-core does not load by default.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

type Grad = tf.GradSaveFunc;

const matmul2dOp = tf.customGrad((...args: (tf.Tensor | Grad)[]) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, Grad];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [as, bs] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, tf.transpose(bs)), tf.matMul(tf.transpose(as), g)];
    },
  };
});

/** [M,K] x [K,N] -> [M,N]. */
export function matmul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`matmul2d: cannot multiply [${a.shape.join(', ')}] by [${b.shape.join(', ')}]`);
  }
  return gradientMode() === 'autodiff' ? tf.matMul(a, b) : (matmul2dOp(a, b) as tf.Tensor2D);
}

// Unlike 2-D products, batched products run on a plain loop kernel in the wasm backend (no XNNPACK),
// where the transpose flags cost nothing and an explicit transpose is an extra pass: use the flags.
const batchMatmulOp = tf.customGrad((...args: (tf.Tensor | Grad)[]) => {
  const [a, b, save] = args as [tf.Tensor3D, tf.Tensor3D, Grad];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [as, bs] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      return [tf.matMul(g, bs, false, true), tf.matMul(as, g, true, false)];
    },
  };
});

const batchMatmulTransposedOp = tf.customGrad((...args: (tf.Tensor | Grad)[]) => {
  const [a, b, save] = args as [tf.Tensor3D, tf.Tensor3D, Grad];
  save([a, b]);
  return {
    value: tf.matMul(a, b, false, true),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [as, bs] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      return [tf.matMul(g, bs), tf.matMul(g, as, true, false)];
    },
  };
});

/**
 * Batched [B,M,K] x [B,K,N] -> [B,M,N] (no broadcasting over the batch); with `transposeB`, b is
 * [B,N,K] and the product is a b^T (attention scores q k^T without a separate transpose).
 */
export function batchMatmul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const inner = transposeB ? b.shape[2] : b.shape[1];
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== inner) {
    throw new Error(
      `batchMatmul: cannot multiply [${a.shape.join(', ')}] by [${b.shape.join(', ')}]${transposeB ? '^T' : ''}`,
    );
  }
  return (transposeB ? batchMatmulTransposedOp(a, b) : batchMatmulOp(a, b)) as tf.Tensor3D;
}

/**
 * Affine map over the last axis: y = x W + b with W stored as [in, out] (the transpose of PyTorch's
 * nn.Linear weight). Any leading shape is flattened to 2-D for the product and restored afterwards.
 */
export function linear(x: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[0] !== inDim) {
    throw new Error(
      `linear: input has ${inDim} features, weight is [${w.shape.join(', ')}] (expected [in, out])`,
    );
  }
  return tf.tidy(() => {
    const lead = x.shape.slice(0, -1);
    const y = matmul2d(x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]), w);
    const yb = bias ? tf.add(y, bias) : y;
    return x.rank === 2 ? yb : tf.reshape(yb, [...lead, w.shape[1]]);
  });
}
