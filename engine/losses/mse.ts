import * as tf from '@tensorflow/tfjs-core';

/**
 * Per-sample mean squared error over everything but the batch axis: `|pred - target|^2` averaged
 * over H, W, C, as `(pred - target).square().mean(dim=[1, 2, 3])` in the reference code.
 */
export function perSampleMse(pred: tf.Tensor, target: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const axes = Array.from({ length: pred.rank - 1 }, (_, i) => i + 1);
    return tf.mean(tf.square(tf.sub(pred, target)), axes) as tf.Tensor1D;
  });
}

/** Epsilon-prediction loss of SFT (and pretraining): the batch mean of the per-sample MSE. */
export function epsilonMseLoss(pred: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(perSampleMse(pred, target)) as tf.Scalar);
}
