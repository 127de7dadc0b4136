/**
 * Embedding lookup usable under a gradient on every backend: the wasm backend has no gradient for
 * gather (no UnsortedSegmentSum kernel), so a trainable lookup is a one-hot matrix times the table.
 */
import * as tf from '@tensorflow/tfjs-core';
// Autodiff needs the gradient registry, which tfjs-core does not load by default.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { matmul2d } from './linear';

/** ids: integer tensor of any shape; table: [vocab, dim]. Returns [...ids.shape, dim]. */
export function embeddingLookup(ids: tf.Tensor, table: tf.Tensor2D): tf.Tensor {
  if (ids.dtype !== 'int32') throw new Error(`embeddingLookup: ids must be int32, got ${ids.dtype}`);
  if (table.rank !== 2)
    throw new Error(`embeddingLookup: table must be [vocab, dim], got [${table.shape.join(', ')}]`);
  const [vocab, dim] = table.shape;
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(tf.reshape(ids, [-1]), vocab), 'float32') as tf.Tensor2D;
    return tf.reshape(matmul2d(oneHot, table), [...ids.shape, dim]);
  });
}

/** Lookup without gradient support (inference only), cheaper for large vocabularies. */
export function embeddingGather(ids: tf.Tensor, table: tf.Tensor2D): tf.Tensor {
  return tf.gather(table, ids);
}
