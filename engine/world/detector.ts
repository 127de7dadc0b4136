/**
 * Exact object detector for the built-in world (engine/world/world.ts).
 *
 * Images are modeled as `pixel = bg + alpha * (color - bg) + noise`: the renderer's anti-aliasing
 * mixes one object color with the background by coverage. So:
 * 1. the background is the median of the border pixels;
 * 2. each pixel of a lightly smoothed copy is unmixed against every palette color (alpha =
 *    projection on the bg->color segment, residual = distance from it) and takes the color with
 *    the smallest residual;
 * 3. objects are 8-connected regions of one color, seeded at alpha >= `foregroundAlpha` and grown
 *    through alpha >= `growAlpha` (hysteresis); each also owns the background pixels up to two
 *    steps around it (nearest object first), which hold its anti-aliased fringe;
 * 4. components whose alpha mass is below `minArea` are noise;
 * 5. the class is the best template fit: for each shape, size and box center follow from the alpha
 *    mass and centroid (both invariant to blur), the shape's coverage is rendered there, blurred
 *    at a few candidate strengths, and compared with the observed alpha by squared error (the
 *    maximum-likelihood choice under Gaussian pixel noise), normalized by the mass.
 * Boxes come from the winning fit, so centers and sizes are sub-pixel.
 */
import type { RgbImage, RgbImageF32 } from '../data/image';
import { assertImageShape } from '../data/image';
import { DEFAULT_SUPERSAMPLE, CROSS_HALF_WIDTH, RING_INNER_RADIUS, coverageWindow } from './render';
import { COLOR_NAMES, COLOR_RGB, SHAPE_CLASSES } from './world';
import type { Box, ColorName, ShapeClass } from './world';
import { blurPlane } from './filters';

export interface Detection {
  class: ShapeClass;
  color: ColorName;
  /** Fitted tight box [x0, y0, x1, y1] in pixels. */
  box: Box;
  /** Fitted box center in pixels. */
  center: [number, number];
  /** Alpha mass (object area) in square pixels. */
  area: number;
  /** Fit quality in [0, 1]: 1 - normalized squared error of the winning template. */
  score: number;
  /** Normalized squared error of the best fit per class, for diagnostics. */
  errors: Record<ShapeClass, number>;
}

export interface DetectorOptions {
  /** Smallest alpha mass kept, as a fraction of the image area. Default 0.02 (11.5 px at 24x24, half the smallest object). */
  minAreaFraction?: number;
  /** Alpha a pixel needs toward a color to seed an object. Default 0.5. */
  foregroundAlpha?: number;
  /** Alpha a same-colored neighbor needs to join an object (hysteresis). Default 0.3. */
  growAlpha?: number;
  /** Gaussian sigma (pixels) of the smoothing applied before labeling pixels. Default 0.5. */
  labelSmoothing?: number;
  /** Force the background color (0-255) instead of estimating it from the border. */
  background?: readonly [number, number, number];
  /** Blur strengths (pixels) tried when matching templates. Default [0, 0.5, 0.8, 1.1, 1.4, 1.8]. */
  templateBlurs?: readonly number[];
  /** Multipliers of the mass-derived size tried when matching templates. Default [1]. */
  sizeScales?: readonly number[];
}

/** Area of each shape as a fraction of its box, and its centroid's vertical offset (box units). */
const SHAPE_AREA: Record<ShapeClass, number> = {
  circle: Math.PI / 4,
  square: 1,
  triangle: 0.5,
  cross: 4 * CROSS_HALF_WIDTH - 4 * CROSS_HALF_WIDTH * CROSS_HALF_WIDTH,
  ring: Math.PI * (0.25 - RING_INNER_RADIUS * RING_INNER_RADIUS),
};
const CENTROID_DY: Record<ShapeClass, number> = { circle: 0, square: 0, triangle: 1 / 6, cross: 0, ring: 0 };

const PALETTE = COLOR_NAMES.map((name) => COLOR_RGB[name]);

function asFloat255(image: RgbImage | RgbImageF32): Float32Array {
  const out = new Float32Array(image.data.length);
  const scale = image.data instanceof Uint8Array ? 1 : 255;
  for (let i = 0; i < out.length; i++) out[i] = (image.data[i] as number) * scale;
  return out;
}

function median(values: number[]): number {
  const s = values.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function smoothRgb(px: Float32Array, w: number, h: number, sigma: number): Float32Array {
  const out = new Float32Array(px.length);
  for (let c = 0; c < 3; c++) blurPlane(px, w, h, sigma, 'clamp', 3, c, out);
  return out;
}

function estimateBackground(px: Float32Array, w: number, h: number): [number, number, number] {
  const bg: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    const vals: number[] = [];
    for (let x = 0; x < w; x++) vals.push(px[x * 3 + c] as number, px[((h - 1) * w + x) * 3 + c] as number);
    for (let y = 1; y < h - 1; y++)
      vals.push(px[y * w * 3 + c] as number, px[(y * w + w - 1) * 3 + c] as number);
    bg[c] = median(vals);
  }
  return bg;
}

/** Detects every object in the image, largest first (ties: top-to-bottom, left-to-right). */
export function detectObjects(image: RgbImage | RgbImageF32, options: DetectorOptions = {}): Detection[] {
  assertImageShape(image, 'detectObjects image');
  const { width: w, height: h } = image;
  const n = w * h;
  const px = asFloat255(image);
  const bg = options.background ? [...options.background] : estimateBackground(px, w, h);
  const tau = options.foregroundAlpha ?? 0.5;
  const grow = Math.min(tau, options.growAlpha ?? 0.3);
  const labelSmoothing = options.labelSmoothing ?? 0.5;
  const minArea = (options.minAreaFraction ?? 0.02) * n;
  const blurs = options.templateBlurs ?? [0, 0.5, 0.8, 1.1, 1.4, 1.8];
  const sizeScales = options.sizeScales ?? [1];

  // 2. Per-pixel unmixing against each palette color, on a lightly smoothed copy (noise robustness).
  const smooth = labelSmoothing > 0 ? smoothRgb(px, w, h, labelSmoothing) : px;
  const dirs = PALETTE.map((c) => [
    c[0] - (bg[0] as number),
    c[1] - (bg[1] as number),
    c[2] - (bg[2] as number),
  ]);
  const label = new Int16Array(n).fill(-1);
  const labelAlpha = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    const r = (smooth[p * 3] as number) - (bg[0] as number);
    const g = (smooth[p * 3 + 1] as number) - (bg[1] as number);
    const b = (smooth[p * 3 + 2] as number) - (bg[2] as number);
    let best = -1;
    let bestResidual = Infinity;
    let bestAlpha = 0;
    for (let k = 0; k < dirs.length; k++) {
      const d = dirs[k] as number[];
      const dd = (d[0] as number) ** 2 + (d[1] as number) ** 2 + (d[2] as number) ** 2;
      const a = (r * (d[0] as number) + g * (d[1] as number) + b * (d[2] as number)) / dd;
      if (a < grow) continue;
      const ac = a > 1 ? 1 : a;
      const res =
        (r - ac * (d[0] as number)) ** 2 +
        (g - ac * (d[1] as number)) ** 2 +
        (b - ac * (d[2] as number)) ** 2;
      // Accept only pixels near the segment: colors far off every segment are something else.
      if (res < bestResidual && res < 0.25 * dd * ac * ac + 400) {
        bestResidual = res;
        best = k;
        bestAlpha = a;
      }
    }
    label[p] = best;
    labelAlpha[p] = bestAlpha;
  }

  // 3. Components by hysteresis: seeded at alpha >= tau, grown 8-connected through same-color
  // pixels with alpha >= grow, so thin parts dimmed by blur do not split an object.
  const comp = new Int32Array(n).fill(-1);
  const compColor: number[] = [];
  const stack: number[] = [];
  for (let p = 0; p < n; p++) {
    if ((label[p] as number) < 0 || (labelAlpha[p] as number) < tau || (comp[p] as number) >= 0) continue;
    const id = compColor.length;
    compColor.push(label[p] as number);
    comp[p] = id;
    stack.push(p);
    while (stack.length) {
      const q = stack.pop() as number;
      const qx = q % w;
      const qy = (q - qx) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = qy + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = qx + dx;
          if (xx < 0 || xx >= w) continue;
          const nq = yy * w + xx;
          if ((comp[nq] as number) < 0 && label[nq] === label[p]) {
            comp[nq] = id;
            stack.push(nq);
          }
        }
      }
    }
  }

  // Fringe ownership: background pixels within two steps, claimed by the nearest component (BFS).
  const owner = Int32Array.from(comp);
  let frontier: number[] = [];
  for (let p = 0; p < n; p++) if ((comp[p] as number) >= 0) frontier.push(p);
  for (let step = 0; step < 2; step++) {
    const next: number[] = [];
    for (const q of frontier) {
      const qx = q % w;
      const qy = (q - qx) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = qy + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = qx + dx;
          if (xx < 0 || xx >= w) continue;
          const nq = yy * w + xx;
          if ((owner[nq] as number) < 0) {
            owner[nq] = owner[q] as number;
            next.push(nq);
          }
        }
      }
    }
    frontier = next;
  }

  const members: number[][] = compColor.map(() => []);
  for (let p = 0; p < n; p++)
    if ((owner[p] as number) >= 0) (members[owner[p] as number] as number[]).push(p);

  const detections: (Detection & { order: number })[] = [];
  members.forEach((pixels, id) => {
    const colorIndex = compColor[id] as number;
    const palette = PALETTE[colorIndex] as readonly number[];
    // Object color: mean of the component's clearly interior pixels (absorbs color casts).
    const d0 = dirs[colorIndex] as number[];
    const dd0 = d0.reduce((s, v) => s + v * v, 0);
    const core = [0, 0, 0];
    let coreCount = 0;
    for (const p of pixels) {
      if (comp[p] !== id) continue;
      const a =
        (((px[p * 3] as number) - (bg[0] as number)) * (d0[0] as number) +
          ((px[p * 3 + 1] as number) - (bg[1] as number)) * (d0[1] as number) +
          ((px[p * 3 + 2] as number) - (bg[2] as number)) * (d0[2] as number)) /
        dd0;
      if (a >= 0.85) {
        for (let c = 0; c < 3; c++) core[c] = (core[c] as number) + (px[p * 3 + c] as number);
        coreCount++;
      }
    }
    const color = coreCount >= 3 ? core.map((v) => v / coreCount) : [...palette];
    const dir = color.map((v, c) => v - (bg[c] as number));
    const dd = dir.reduce((s, v) => s + v * v, 0);

    let x0 = w;
    let y0 = h;
    let x1 = -1;
    let y1 = -1;
    for (const p of pixels) {
      const x = p % w;
      const y = (p - x) / w;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    x0 = Math.max(0, x0 - 1);
    y0 = Math.max(0, y0 - 1);
    x1 = Math.min(w - 1, x1 + 1);
    y1 = Math.min(h - 1, y1 + 1);
    const ww = x1 - x0 + 1;
    const wh = y1 - y0 + 1;
    const observed = new Float32Array(ww * wh);
    let mass = 0;
    let mx = 0;
    let my = 0;
    for (const p of pixels) {
      const x = p % w;
      const y = (p - x) / w;
      let a =
        (((px[p * 3] as number) - (bg[0] as number)) * (dir[0] as number) +
          ((px[p * 3 + 1] as number) - (bg[1] as number)) * (dir[1] as number) +
          ((px[p * 3 + 2] as number) - (bg[2] as number)) * (dir[2] as number)) /
        dd;
      // Unclamped below 0 keeps noise unbiased; the cap limits outliers.
      a = Math.max(-0.5, Math.min(1.5, a));
      observed[(y - y0) * ww + (x - x0)] = a;
      mass += a;
      mx += a * (x + 0.5);
      my += a * (y + 0.5);
    }
    if (mass < minArea) return;
    mx /= mass;
    my /= mass;

    const errors = {} as Record<ShapeClass, number>;
    let bestClass: ShapeClass = 'circle';
    let bestErr = Infinity;
    let bestFit: [number, number, number] = [mx, my, 0];
    for (const cls of SHAPE_CLASSES) {
      const s0 = Math.sqrt(mass / SHAPE_AREA[cls]);
      let err = Infinity;
      for (const scale of sizeScales) {
        const s = s0 * scale;
        const cx = mx;
        const cy = my - CENTROID_DY[cls] * s;
        const template = coverageWindow(cls, cx, cy, s, x0, y0, ww, wh, DEFAULT_SUPERSAMPLE);
        for (const sigma of blurs) {
          const t = sigma > 0 ? blurPlane(template, ww, wh, sigma, 'zero') : template;
          let e = 0;
          for (let i = 0; i < t.length; i++) {
            const diff = (observed[i] as number) - (t[i] as number);
            e += diff * diff;
          }
          e /= mass;
          if (e < err) err = e;
          if (e < bestErr) {
            bestErr = e;
            bestClass = cls;
            bestFit = [cx, cy, s];
          }
        }
      }
      errors[cls] = err;
    }
    const [cx, cy, s] = bestFit;
    detections.push({
      class: bestClass,
      color: COLOR_NAMES[colorIndex] as ColorName,
      box: [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2],
      center: [cx, cy],
      area: mass,
      score: Math.max(0, 1 - bestErr),
      errors,
      order: Math.floor(cy) * w + Math.floor(cx),
    });
  });
  detections.sort((a, b) => b.area - a.area || a.order - b.order);
  return detections.map(({ order: _order, ...d }) => d);
}
