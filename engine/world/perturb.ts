/**
 * Seeded degradations that imitate generated images (soft edges, sampling noise, color casts),
 * used to measure how robust the detector is on images that are not exact renders.
 */
import type { RgbImageF32 } from '../data/image';
import type { Rng } from '../rng';
import { blurPlane } from './filters';

export function gaussianBlur(image: RgbImageF32, sigma: number): RgbImageF32 {
  const { width: w, height: h } = image;
  if (!(sigma > 0)) return { width: w, height: h, data: image.data.slice() };
  const out = new Float32Array(image.data.length);
  for (let c = 0; c < 3; c++) blurPlane(image.data, w, h, sigma, 'clamp', 3, c, out);
  return { width: w, height: h, data: out };
}

/** Independent Gaussian noise per value with standard deviation `sigma` (image units, [0, 1]), clamped. */
export function addNoise(image: RgbImageF32, sigma: number, rng: Rng): RgbImageF32 {
  const data = new Float32Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = clamp01((image.data[i] as number) + sigma * rng.normal());
  return { width: image.width, height: image.height, data };
}

/** A global color cast: per channel, gain 1 + U(-amount, amount) and offset U(-amount, amount). */
export function colorJitter(image: RgbImageF32, amount: number, rng: Rng): RgbImageF32 {
  const gain = [0, 1, 2].map(() => 1 + rng.uniform(-amount, amount));
  const offset = [0, 1, 2].map(() => rng.uniform(-amount, amount));
  const data = new Float32Array(image.data.length);
  for (let i = 0; i < data.length; i++) {
    const c = i % 3;
    data[i] = clamp01((image.data[i] as number) * (gain[c] as number) + (offset[c] as number));
  }
  return { width: image.width, height: image.height, data };
}

export interface PerturbLevel {
  /** Gaussian blur sigma in pixels. */
  blur: number;
  /** Noise standard deviation in [0, 1] image units. */
  noise: number;
  /** Color-cast amount (see colorJitter). */
  jitter: number;
}

/** Named levels used by the robustness measurements. */
export const PERTURB_LEVELS = {
  mild: { blur: 0.5, noise: 0.02, jitter: 0.02 },
  moderate: { blur: 0.8, noise: 0.05, jitter: 0.05 },
  strong: { blur: 1.2, noise: 0.08, jitter: 0.08 },
} as const satisfies Record<string, PerturbLevel>;

/** Blur, then color cast, then noise (the order a soft, tinted, grainy sample would show). */
export function perturb(image: RgbImageF32, level: PerturbLevel, rng: Rng): RgbImageF32 {
  let out = gaussianBlur(image, level.blur);
  if (level.jitter > 0) out = colorJitter(out, level.jitter, rng);
  if (level.noise > 0) out = addNoise(out, level.noise, rng);
  return out;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
