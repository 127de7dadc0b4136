/** Separable Gaussian filtering of single planes and RGB images (shared by perturbations and the detector). */

/** Normalized 1-D Gaussian kernel with radius ceil(3 sigma). */
export function gaussianKernel(sigma: number): Float32Array {
  if (!(sigma > 0)) return Float32Array.of(1);
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp((-i * i) / (2 * sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] = (k[i] as number) / sum;
  return k;
}

/**
 * Blurs a w x h plane with `stride` interleaved channels at `offset` (in place into `out`).
 * `edge` 'zero' treats outside as 0 (templates), 'clamp' repeats the border (images).
 */
export function blurPlane(
  src: Float32Array,
  w: number,
  h: number,
  sigma: number,
  edge: 'zero' | 'clamp',
  stride = 1,
  offset = 0,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = -r; i <= r; i++) {
        let xx = x + i;
        if (xx < 0 || xx >= w) {
          if (edge === 'zero') continue;
          xx = xx < 0 ? 0 : w - 1;
        }
        acc += (k[i + r] as number) * (src[(y * w + xx) * stride + offset] as number);
      }
      tmp[y * w + x] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = -r; i <= r; i++) {
        let yy = y + i;
        if (yy < 0 || yy >= h) {
          if (edge === 'zero') continue;
          yy = yy < 0 ? 0 : h - 1;
        }
        acc += (k[i + r] as number) * (tmp[yy * w + x] as number);
      }
      out[(y * w + x) * stride + offset] = acc;
    }
  }
  return out;
}
