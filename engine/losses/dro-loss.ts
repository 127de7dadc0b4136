/**
 * Diffusion-DRO hinge ranking loss (docs/algorithm.md section 1).
 *
 * Paper symbol -> code name (the reference implementation's names in brackets):
 *   x_0 expert demonstration        -> expert half of the batch  [x0_expert]
 *   \bar{x}_t, \bar{eps}            -> expert noisy input/noise  [xt_expert, eps_expert]
 *   x_t, eps_theta(x_t, c)          -> policy step and its eps   [xt_policy, eps_policy]
 *   p_phi                           -> the trained network        [unet]
 *   p_theta_ref                     -> the frozen reference       [unet_ref]
 *
 * Both networks see one batch of 2B inputs: the B expert inputs first, then the B policy inputs.
 *   Le = |eps_phi(x_t^exp) - eps|^2,  Le0 = |eps_ref(x_t^exp) - eps|^2
 *   Lp = |eps_phi(x_t^pol) - eps^pol|^2, Lp0 = |eps_ref(x_t^pol) - eps^pol|^2
 *   diff = (Le - Le0) - (Lp - Lp0);  loss = mean(max(0, diff + margin))
 * Lowering the loss pushes phi to denoise expert samples better (relative to ref) than policy samples.
 */
import * as tf from '@tensorflow/tfjs-core';
import { perSampleMse } from './mse';
import { roundTensorToBf16, type Precision } from '../training/bf16';

export interface DroLossInputs {
  /** phi's predictions for [expert; policy] inputs, 2B samples. */
  predPhi: tf.Tensor;
  /** ref's predictions for the same inputs, computed outside the gradient tape (no gradient). */
  predRef: tf.Tensor;
  /** Targets: [fresh expert noise; recorded policy eps]. */
  target: tf.Tensor;
  /** Hinge margin; the reference default is 1e-3. */
  margin: number;
  /**
   * `bf16`: ref's per-sample losses Le0, Lp0 are rounded to bfloat16, as a reference network run in
   * bf16 outside autocast reports them (an error of up to half a bf16 ulp, about the margin's size).
   */
  refPrecision?: Precision;
}

/** Every per-sample term the reference logs, each [B]. */
export interface DroLossTerms {
  loss: tf.Scalar;
  diff: tf.Tensor1D;
  le: tf.Tensor1D;
  lp: tf.Tensor1D;
  le0: tf.Tensor1D;
  lp0: tf.Tensor1D;
}

export function droLoss({ predPhi, predRef, target, margin, refPrecision }: DroLossInputs): DroLossTerms {
  if (predPhi.shape[0] !== target.shape[0] || predRef.shape[0] !== target.shape[0]) {
    throw new Error(
      `droLoss: batch sizes differ (phi ${predPhi.shape[0]}, ref ${predRef.shape[0]}, target ${target.shape[0]})`,
    );
  }
  const n = target.shape[0] ?? 0;
  if (n % 2 !== 0 || n === 0)
    throw new Error(`droLoss: expected an even batch of [expert; policy], got ${n}`);
  return tf.tidy(() => {
    const lossesPhi = perSampleMse(predPhi, target);
    const exactRef = perSampleMse(predRef, target);
    const lossesRef = refPrecision === 'bf16' ? roundTensorToBf16(exactRef) : exactRef;
    const [le, lp] = tf.split(lossesPhi, 2) as [tf.Tensor1D, tf.Tensor1D];
    const [le0, lp0] = tf.split(lossesRef, 2) as [tf.Tensor1D, tf.Tensor1D];
    const diff = tf.sub(tf.sub(le, le0), tf.sub(lp, lp0)) as tf.Tensor1D;
    const loss = tf.mean(tf.relu(tf.add(diff, margin))) as tf.Scalar;
    return { loss, diff, le, lp, le0, lp0 };
  });
}
