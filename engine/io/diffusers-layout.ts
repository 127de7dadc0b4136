/**
 * Weight layout conversion between diffusers' PyTorch state dicts and the engine's TF.js layers.
 *
 * - Conv2d: PyTorch stores [O, I, kh, kw]; `tf.conv2d` wants [kh, kw, I, O]. `convToTf`/`convFromTf`
 *   permute between them (a pure transpose: values are unchanged).
 * - Linear: PyTorch stores W as [O, I] and computes y = x W^T + b. The engine keeps W as stored and
 *   multiplies by its transpose (or transposes once on load to [I, O] for y = x W); either way no
 *   element moves within a row, so `linearToTf` is a plain 2-D transpose. A 1x1 conv used as a
 *   projection (proj_in/proj_out of SD1.5's Transformer2DModel) is a conv: [O, I, 1, 1].
 * - Norm scales, biases and embeddings are 1-D or unchanged.
 * Activations are NCHW in PyTorch and NHWC here: `nchwToNhwc` / `nhwcToNchw` for fixtures.
 */

export class LayoutError extends Error {
  override name = 'LayoutError';
}

export interface ArrayWithShape {
  shape: number[];
  data: Float32Array;
}

function check(name: string, a: ArrayWithShape, rank: number, what: string): void {
  if (a.shape.length !== rank)
    throw new LayoutError(`${name}: expected a rank-${rank} ${what}, got shape [${a.shape.join(', ')}]`);
  const n = a.shape.reduce((p, d) => p * d, 1);
  if (n !== a.data.length)
    throw new LayoutError(
      `${name}: shape [${a.shape.join(', ')}] holds ${n} values, data has ${a.data.length}`,
    );
}

/** Generic row-major permutation: out axis k is input axis perm[k]. */
export function permute(a: ArrayWithShape, perm: readonly number[]): ArrayWithShape {
  const rank = a.shape.length;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let k = rank - 1; k >= 0; k--) {
    inStrides[k] = s;
    s *= a.shape[k]!;
  }
  const outShape = perm.map((p) => a.shape[p]!);
  const strides = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(a.data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += idx[k]! * strides[k]!;
    out[o] = a.data[src]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < outShape[k]!) break;
      idx[k] = 0;
    }
  }
  return { shape: outShape, data: out };
}

/** PyTorch conv weight [O, I, kh, kw] -> TF.js [kh, kw, I, O]. */
export function convToTf(a: ArrayWithShape, name = 'conv weight'): ArrayWithShape {
  check(name, a, 4, 'conv weight [O, I, kh, kw]');
  return permute(a, [2, 3, 1, 0]);
}

/** TF.js conv weight [kh, kw, I, O] -> PyTorch [O, I, kh, kw]. */
export function convFromTf(a: ArrayWithShape, name = 'conv weight'): ArrayWithShape {
  check(name, a, 4, 'conv weight [kh, kw, I, O]');
  return permute(a, [3, 2, 0, 1]);
}

/** PyTorch linear weight [O, I] -> [I, O], so that y = x W (x: [N, I]). Its own inverse. */
export function linearToTf(a: ArrayWithShape, name = 'linear weight'): ArrayWithShape {
  check(name, a, 2, 'linear weight');
  return permute(a, [1, 0]);
}

/** [B, C, H, W] -> [B, H, W, C]. */
export function nchwToNhwc(a: ArrayWithShape, name = 'activation'): ArrayWithShape {
  check(name, a, 4, 'NCHW array');
  return permute(a, [0, 2, 3, 1]);
}

/** [B, H, W, C] -> [B, C, H, W]. */
export function nhwcToNchw(a: ArrayWithShape, name = 'activation'): ArrayWithShape {
  check(name, a, 4, 'NHWC array');
  return permute(a, [0, 3, 1, 2]);
}
