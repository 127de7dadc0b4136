/**
 * Diffusion-DPO loss (Wallace et al. 2023), as diffusers' research example computes it.
 *
 * Winner and loser share noise and timestep; both networks see [winners; losers] (2B samples):
 *   L_w, L_l       per-sample MSE of the trained model,  Lref_w, Lref_l of the frozen reference
 *   logits = (Lref_w - Lref_l) - (L_w - L_l)
 *   loss   = -mean(logsigmoid(0.5 * beta * logits))
 * The 0.5 is diffusers' `scale_term = -0.5 * beta_dpo`; with it, `beta` means what it means in the
 * published Diffusion-DPO runs (2500 for SD1.5 in diffusers' example). Implicit accuracy is the
 * share of logits > 0 (the model prefers the winner more than the reference does).
 */
import * as tf from '@tensorflow/tfjs-core';
import { perSampleMse } from './mse';

export interface DpoLossInputs {
  /** Trained model's predictions for [winners; losers]. */
  pred: tf.Tensor;
  /** Reference model's predictions, computed outside the gradient tape (no gradient). */
  predRef: tf.Tensor;
  /** The shared noise, repeated for winners and losers. */
  target: tf.Tensor;
  beta: number;
}

export interface DpoLossTerms {
  loss: tf.Scalar;
  logits: tf.Tensor1D;
  implicitAccuracy: tf.Scalar;
}

export function dpoLoss({ pred, predRef, target, beta }: DpoLossInputs): DpoLossTerms {
  const n = target.shape[0] ?? 0;
  if (n % 2 !== 0 || n === 0)
    throw new Error(`dpoLoss: expected an even batch of [winners; losers], got ${n}`);
  return tf.tidy(() => {
    const [lw, ll] = tf.split(perSampleMse(pred, target), 2);
    const [rw, rl] = tf.split(perSampleMse(predRef, target), 2);
    const logits = tf.sub(tf.sub(rw!, rl!), tf.sub(lw!, ll!)) as tf.Tensor1D;
    // -logsigmoid(z) = softplus(-z); logSigmoid's gradient fails on the wasm backend.
    const loss = tf.mean(tf.softplus(tf.mul(logits, -0.5 * beta))) as tf.Scalar;
    const implicitAccuracy = tf.mean(tf.cast(tf.greater(logits, 0), 'float32')) as tf.Scalar;
    return { loss, logits, implicitAccuracy };
  });
}
