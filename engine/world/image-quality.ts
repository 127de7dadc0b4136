/**
 * No-reference image quality for simulated raters: people prefer crisp, clean images, so the
 * simulated utility rewards sharp edges and penalizes grain.
 *
 * - noise: Immerkaer's estimator made robust, per color channel. The 3x3 kernel [1 -2 1; -2 4 -2; 1 -2 1] cancels
 *   locally linear content; on Gaussian noise of deviation sigma its response has deviation
 *   6 sigma. The median absolute response (most pixels of a scene are flat) gives
 *   sigma ~ median|r| / (0.6745 * 6), insensitive to the few edge pixels.
 * - sharpness: at every edge pixel (local 3x3 range above `EDGE_RANGE`) the largest step to a
 *   neighbor divided by the local range: ~1 for a step edge, ~1/(sigma sqrt(2 pi)) for an edge
 *   blurred by a Gaussian of sigma pixels. Averaged over edge pixels.
 * quality = 0.5 sharpness + 0.5 (1 - min(1, noise / NOISE_SCALE)), in [0, 1].
 */
import type { RgbImage, RgbImageF32 } from '../data/image';
import { assertImageShape } from '../data/image';

const EDGE_RANGE = 0.15;
const NOISE_SCALE = 0.1;

export interface ImageQuality {
  /** Estimated noise deviation in [0, 1] image units. */
  noise: number;
  /** Mean normalized edge steepness in [0, 1]; 0 when the image has no edges. */
  sharpness: number;
  /** Combined quality in [0, 1]. */
  quality: number;
}

function luminance(image: RgbImage | RgbImageF32): Float32Array {
  const s = image.data instanceof Uint8Array ? 1 / 255 : 1;
  const n = image.width * image.height;
  const out = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    const r = image.data[p * 3] as number;
    const g = image.data[p * 3 + 1] as number;
    const b = image.data[p * 3 + 2] as number;
    out[p] = (0.299 * r + 0.587 * g + 0.114 * b) * s;
  }
  return out;
}

export function imageQuality(image: RgbImage | RgbImageF32): ImageQuality {
  assertImageShape(image, 'imageQuality image');
  const { width: w, height: h } = image;
  const y = luminance(image);
  const at = (xx: number, yy: number): number => y[yy * w + xx] as number;
  const responses: number[] = [];
  // Noise per color channel (luminance would average independent channel noise down).
  const s = image.data instanceof Uint8Array ? 1 / 255 : 1;
  const ch = (xx: number, yy: number, c: number): number => (image.data[(yy * w + xx) * 3 + c] as number) * s;
  for (let j = 1; j < h - 1; j++)
    for (let i = 1; i < w - 1; i++)
      for (let c = 0; c < 3; c++) {
        const r =
          ch(i - 1, j - 1, c) -
          2 * ch(i, j - 1, c) +
          ch(i + 1, j - 1, c) -
          2 * ch(i - 1, j, c) +
          4 * ch(i, j, c) -
          2 * ch(i + 1, j, c) +
          ch(i - 1, j + 1, c) -
          2 * ch(i, j + 1, c) +
          ch(i + 1, j + 1, c);
        responses.push(Math.abs(r));
      }
  let edgeSum = 0;
  let edges = 0;
  for (let j = 1; j < h - 1; j++) {
    for (let i = 1; i < w - 1; i++) {
      let lo = Infinity;
      let hi = -Infinity;
      let step = 0;
      const c = at(i, j);
      for (let dj = -1; dj <= 1; dj++)
        for (let di = -1; di <= 1; di++) {
          const v = at(i + di, j + dj);
          if (v < lo) lo = v;
          if (v > hi) hi = v;
          if ((di === 0) !== (dj === 0)) step = Math.max(step, Math.abs(v - c));
        }
      const range = hi - lo;
      if (range > EDGE_RANGE) {
        edgeSum += Math.min(1, step / range);
        edges++;
      }
    }
  }
  responses.sort((a, b) => a - b);
  const med = responses.length ? (responses[responses.length >> 1] as number) : 0;
  const noise = med / (0.6745 * 6);
  const sharpness = edges ? edgeSum / edges : 0;
  const quality = 0.5 * sharpness + 0.5 * (1 - Math.min(1, noise / NOISE_SCALE));
  return { noise, sharpness, quality };
}
