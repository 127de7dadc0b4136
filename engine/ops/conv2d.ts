/**
 * Convolutions with hand-written gradients, fast on the wasm backend.
 *
 * Autodiff of `tf.conv2d` uses Conv2DBackpropInput (conv2dTranspose, ~10x slower than conv2d on wasm)
 * and Conv2DBackpropFilter (no wasm kernel at all; naive on cpu). Both gradients are rewritten here as
 * plain forward convolutions, which XNNPACK runs fast:
 * - input gradient: conv2d of the (implicitly padded) output gradient with the kernel flipped
 *   spatially and its in/out channels swapped;
 * - filter gradient: one conv2d whose "batch" is the input channel and whose "channels" are the batch:
 *   the padded input transposed to [Ci, H, W, N] convolved with dy transposed to [H, W, N, Co] gives
 *   [Ci, kh, kw, Co].
 * Filters are in TF.js layout [kh, kw, Ci, Co], activations NHWC.
 */
import * as tf from '@tensorflow/tfjs-core';
// Autodiff needs the gradient registry, which tfjs-core does not load by default.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { gradientMode } from './gradient-mode';
import { matmul2d } from './linear';

type Grad = tf.GradSaveFunc;

/** Flipped, channel-swapped kernel: the filter of the input-gradient convolution. */
function flipKernel(w: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, ci, co] = w.shape;
  const taps = kh * kw;
  // Reversing both spatial axes is reversing the flattened tap axis. On wasm a product with the
  // anti-diagonal permutation matrix is ~5x faster than tf.reverse or tf.gather, and exact.
  const perm = new Float32Array(taps * taps);
  for (let i = 0; i < taps; i++) perm[i * taps + (taps - 1 - i)] = 1;
  const flipped = tf.matMul(tf.tensor2d(perm, [taps, taps]), tf.reshape(w, [taps, ci * co]));
  return tf.transpose(tf.reshape(flipped, [kh, kw, ci, co]), [0, 1, 3, 2]);
}

/** dW[kh,kw,ci,co] = sum_{n,h,w} xp[n, h*s+kh, w*s+kw, ci] dy[n,h,w,co], as one dilated conv2d. */
function filterGradient(xp: tf.Tensor4D, dy: tf.Tensor4D, k: number, stride: number): tf.Tensor4D {
  const xT = tf.transpose(xp, [3, 1, 2, 0]);
  const dyT = tf.transpose(dy, [1, 2, 0, 3]);
  let dwT = tf.conv2d(xT, dyT, 1, 'valid', 'NHWC', stride);
  if (dwT.shape[1] !== k || dwT.shape[2] !== k) dwT = tf.slice(dwT, [0, 0, 0, 0], [-1, k, k, -1]);
  return tf.transpose(dwT, [1, 2, 0, 3]);
}

const conv2dSameOp = tf.customGrad((...args: (tf.Tensor | Grad)[]) => {
  const [x, w, save] = args as [tf.Tensor4D, tf.Tensor4D, Grad];
  save([x, w]);
  return {
    value: tf.conv2d(x, w, 1, 'same'),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g = dy as tf.Tensor4D;
      const k = ws.shape[0];
      const p = (k - 1) / 2;
      // With symmetric padding p, 'same' on dy is exactly the padded-dy 'valid' convolution.
      const dx = tf.conv2d(g, flipKernel(ws), 1, 'same');
      const xp = tf.pad(xs, [
        [0, 0],
        [p, p],
        [p, p],
        [0, 0],
      ]);
      return [dx, filterGradient(xp, g, k, 1)];
    },
  };
});

function checkConvArgs(op: string, x: tf.Tensor, w: tf.Tensor): void {
  if (x.rank !== 4) throw new Error(`${op}: input must be NHWC rank 4, got shape [${x.shape.join(', ')}]`);
  if (w.rank !== 4) throw new Error(`${op}: filter must be [kh,kw,Ci,Co], got shape [${w.shape.join(', ')}]`);
  if (w.shape[2] !== x.shape[3]) {
    throw new Error(`${op}: filter expects ${w.shape[2]} input channels, input has ${x.shape[3]}`);
  }
}

/**
 * Stride-1 convolution with 'same' zero padding for odd square kernels (3x3 pads 1 on every side,
 * like PyTorch's padding=1). 1x1 kernels run as a matmul. Bias, when given, has shape [Co].
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, bias?: tf.Tensor1D): tf.Tensor4D {
  checkConvArgs('conv2d', x, w);
  const [kh, kw, ci, co] = w.shape;
  if (kh !== kw || kh % 2 !== 1) throw new Error(`conv2d: kernel must be odd and square, got ${kh}x${kw}`);
  return tf.tidy(() => {
    let y: tf.Tensor4D;
    if (gradientMode() === 'autodiff') {
      y = tf.conv2d(x, w, 1, 'same');
    } else if (kh === 1) {
      const [n, h, wd] = x.shape;
      y = tf.reshape(matmul2d(tf.reshape(x, [n * h * wd, ci]), tf.reshape(w, [ci, co])), [n, h, wd, co]);
    } else {
      y = conv2dSameOp(x, w) as tf.Tensor4D;
    }
    return bias ? tf.add(y, bias) : y;
  });
}

const conv2dDownOp = tf.customGrad((...args: (tf.Tensor | Grad)[]) => {
  const [x, w, save] = args as [tf.Tensor4D, tf.Tensor4D, Grad];
  const xp = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  save([x, xp, w]);
  return {
    value: tf.conv2d(xp, w, 2, 'valid'),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, xps, ws] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const [n, ho, wo, co] = dy.shape as [number, number, number, number];
      const [, h, wd] = xs.shape;
      // Spread dy onto the stride-1 grid (zeros between samples); the input gradient is then the
      // stride-1 one: dx[i] = sum_k dyz[i + 1 - k] w[k], i.e. 'same' with the flipped kernel.
      const dyz = tf.reshape(
        tf.pad(tf.reshape(dy, [n, ho, 1, wo, 1, co]), [
          [0, 0],
          [0, 0],
          [0, 1],
          [0, 0],
          [0, 1],
          [0, 0],
        ]),
        [n, 2 * ho, 2 * wo, co],
      ) as tf.Tensor4D;
      let dx = tf.conv2d(dyz, flipKernel(ws), 1, 'same');
      if (2 * ho !== h || 2 * wo !== wd) dx = tf.slice(dx, [0, 0, 0, 0], [-1, h, wd, -1]);
      return [dx, filterGradient(xps, dy as tf.Tensor4D, ws.shape[0], 2)];
    },
  };
});

/**
 * 3x3 stride-2 convolution with symmetric zero padding 1 (PyTorch's Conv2d(stride=2, padding=1)).
 * TF.js 'same' would pad only bottom/right for even sizes, so the padding is explicit.
 */
export function conv2dDown(x: tf.Tensor4D, w: tf.Tensor4D, bias?: tf.Tensor1D): tf.Tensor4D {
  checkConvArgs('conv2dDown', x, w);
  if (w.shape[0] !== 3 || w.shape[1] !== 3) {
    throw new Error(`conv2dDown: kernel must be 3x3, got ${w.shape[0]}x${w.shape[1]}`);
  }
  return tf.tidy(() => {
    const y =
      gradientMode() === 'autodiff'
        ? tf.conv2d(
            tf.pad(x, [
              [0, 0],
              [1, 1],
              [1, 1],
              [0, 0],
            ]),
            w,
            2,
            'valid',
          )
        : (conv2dDownOp(x, w) as tf.Tensor4D);
    return bias ? tf.add(y, bias) : y;
  });
}
