import * as tf from '@tensorflow/tfjs-core';
import { forEachValues, mapValues, runsOnHost, type UpdateRoute } from './host-update';

/**
 * Scales gradients in place so their global L2 norm is at most `maxNorm`, as
 * torch.nn.utils.clip_grad_norm_ does (coefficient max_norm / (norm + 1e-6), capped at 1).
 * Returns the norm before clipping. A maxNorm of 0 disables clipping.
 *
 * On host-memory backends the norm and the scaling are loops over the gradients' values instead of
 * two to three kernel calls per gradient tensor. The loops round as the cpu backend's kernels do
 * (squares in float32, each tensor's sum in float64 then float32, the sum over tensors in float32),
 * so they reproduce its results bit for bit; wasm's kernels sum in another order, so there the two
 * routes agree to float32 rounding.
 */
export function clipGradNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
  route: UpdateRoute = 'auto',
): number {
  const onHost = runsOnHost(route);
  const total = onHost ? hostNorm(grads) : kernelNorm(grads);
  if (maxNorm <= 0) return total;
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  if (coef < 1) {
    const c = Math.fround(coef);
    for (const [name, g] of grads) {
      if (onHost) {
        const scaled = mapValues([g], g.shape, ([values], out) => scaleLoop(values!, out, c));
        grads.set(name, scaled);
      } else {
        grads.set(name, tf.mul(g, coef));
      }
      g.dispose();
    }
  }
  return total;
}

function kernelNorm(grads: Map<string, tf.Tensor>): number {
  return tf.tidy(() => {
    const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    return squares.length === 0 ? 0 : Math.sqrt((tf.addN(squares).dataSync() as Float32Array)[0] ?? 0);
  });
}

function hostNorm(grads: Map<string, tf.Tensor>): number {
  const f = Math.fround;
  let total = 0;
  forEachValues(grads.values(), (values) => {
    total = f(total + f(sumOfSquares(values)));
  });
  return Math.sqrt(total);
}

/** The loops are module-level functions, which the JIT optimizes better than fresh closures. */
function sumOfSquares(values: Float32Array): number {
  const f = Math.fround;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += f(values[i]! * values[i]!);
  return sum;
}

function scaleLoop(values: Float32Array, out: Float32Array, c: number): void {
  const f = Math.fround;
  for (let i = 0; i < out.length; i++) out[i] = f(values[i]! * c);
}
