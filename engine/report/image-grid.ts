/**
 * Image grids for the report and the study: nearest-neighbour enlargement (a 16 px sample stays
 * sharp and every model pixel stays visible) and a grid of equally sized images, written as PNG.
 */
import { decodeImage, encodePng } from '../data/image-codec';
import type { RgbImage } from '../data/image';
import { assertImageShape } from '../data/image';

/** Each source pixel becomes a `scale` x `scale` block of the same colour. */
export function upscaleNearest(image: RgbImage, scale: number): RgbImage {
  assertImageShape(image, 'upscaleNearest image');
  if (!Number.isInteger(scale) || scale < 1 || scale > 64) {
    throw new RangeError(`upscaleNearest: scale must be an integer in [1, 64], got ${scale}`);
  }
  const width = image.width * scale;
  const height = image.height * scale;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const srcRow = Math.floor(y / scale) * image.width;
    for (let x = 0; x < width; x++) {
      const s = (srcRow + Math.floor(x / scale)) * 3;
      const d = (y * width + x) * 3;
      data[d] = image.data[s] as number;
      data[d + 1] = image.data[s + 1] as number;
      data[d + 2] = image.data[s + 2] as number;
    }
  }
  return { width, height, data };
}

/** The smallest integer scale that makes a side of `side` px at least `target` px (at least 1). */
export function scaleFor(side: number, target: number): number {
  return Math.max(1, Math.min(64, Math.ceil(target / side)));
}

export interface GridOptions {
  /** Images per row. Default: all in one row. */
  columns?: number;
  /** Nearest-neighbour enlargement of every image. Default 1. */
  scale?: number;
  /** Gap between and around cells, in output pixels. Default 4. */
  gap?: number;
  /** Gap colour. Default white. */
  background?: readonly [number, number, number];
}

export interface GridLayout {
  image: RgbImage;
  /** Top-left corner of each cell in the output, in input order. */
  cells: { x: number; y: number }[];
}

/**
 * Places equally sized images row by row. Cell `i` sits at
 * `x = gap + (i % columns) * (w * scale + gap)`, `y = gap + floor(i / columns) * (h * scale + gap)`.
 */
export function composeGrid(images: readonly RgbImage[], options: GridOptions = {}): GridLayout {
  if (images.length === 0) throw new RangeError('composeGrid: no images');
  const first = images[0] as RgbImage;
  images.forEach((im, i) => {
    assertImageShape(im, `composeGrid image ${i}`);
    if (im.width !== first.width || im.height !== first.height) {
      throw new RangeError(
        `composeGrid: image ${i} is ${im.width}x${im.height}, image 0 is ${first.width}x${first.height}`,
      );
    }
  });
  const scale = options.scale ?? 1;
  const gap = options.gap ?? 4;
  const columns = Math.min(options.columns ?? images.length, images.length);
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError(`composeGrid: bad columns ${columns}`);
  const rows = Math.ceil(images.length / columns);
  const cw = first.width * scale;
  const ch = first.height * scale;
  const width = gap + columns * (cw + gap);
  const height = gap + rows * (ch + gap);
  const data = new Uint8Array(width * height * 3);
  const bg = options.background ?? [255, 255, 255];
  for (let i = 0; i < width * height; i++) data.set(bg, i * 3);
  const cells: { x: number; y: number }[] = [];
  images.forEach((im, i) => {
    const big = upscaleNearest(im, scale);
    const ox = gap + (i % columns) * (cw + gap);
    const oy = gap + Math.floor(i / columns) * (ch + gap);
    for (let y = 0; y < ch; y++) {
      data.set(big.data.subarray(y * cw * 3, (y + 1) * cw * 3), ((oy + y) * width + ox) * 3);
    }
    cells.push({ x: ox, y: oy });
  });
  return { image: { width, height, data }, cells };
}

/** Decodes PNG/JPEG samples (errors name `source` and the index) and writes their grid as PNG. */
export function renderGridPng(
  encoded: readonly Uint8Array[],
  options: GridOptions & { source?: string } = {},
): Uint8Array {
  const source = options.source ?? 'grid';
  const images = encoded.map((bytes, i) => decodeImage(bytes, { source: `${source} image ${i}` }));
  return encodePng(composeGrid(images, options).image);
}
