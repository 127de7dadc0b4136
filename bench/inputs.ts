/**
 * The networks and tensors every benchmark row times, built once per configuration the same way
 * (seed 2024), so `bench/run.ts` and `bench/profile.ts` measure identical work.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UNet2DConditionModel } from '../engine/models/unet';
import { UNET_CONFIGS, type UNetConfig } from '../engine/models/unet-config';
import { Rng } from '../engine/rng';
import { BATCH, CONTEXT_LENGTH, type BenchConfigName } from './spec';

export interface BenchInputs {
  config: UNetConfig;
  batch: number;
  size: number;
  /** The trained network and a frozen copy (DRO's reference). */
  phi: UNet2DConditionModel;
  ref: UNet2DConditionModel;
  /** One batch: noisy input, target noise, text context and timesteps. */
  x: tf.Tensor4D;
  target: tf.Tensor;
  ctx: tf.Tensor3D;
  t: number[];
  /** The batch twice over, as a DRO step feeds expert and policy branches together. */
  x2: tf.Tensor4D;
  target2: tf.Tensor;
  ctx2: tf.Tensor3D;
  t2: number[];
  /** Frees the tensors and both networks. */
  dispose(): void;
}

export function benchInputs(name: BenchConfigName): BenchInputs {
  const config = UNET_CONFIGS[name];
  const batch = BATCH[name];
  const size = config.sample_size;
  const rng = new Rng(2024);
  const phi = UNet2DConditionModel.create(config, rng);
  const ref = phi.clone(false);
  const shape = [batch, size, size, config.in_channels];
  const x = rng.normalTensor(shape) as tf.Tensor4D;
  const target = rng.normalTensor(shape);
  const ctx = rng.normalTensor([batch, CONTEXT_LENGTH, config.cross_attention_dim]) as tf.Tensor3D;
  const t = Array.from({ length: batch }, () => rng.int(0, 1000));
  const x2 = tf.concat([x, x]) as tf.Tensor4D;
  const target2 = tf.concat([target, target]);
  const ctx2 = tf.concat([ctx, ctx]) as tf.Tensor3D;
  return {
    config,
    batch,
    size,
    phi,
    ref,
    x,
    target,
    ctx,
    t,
    x2,
    target2,
    ctx2,
    t2: [...t, ...t],
    dispose: () => {
      tf.dispose([x, target, ctx, x2, target2, ctx2]);
      phi.dispose();
      ref.dispose();
    },
  };
}
