/**
 * PNG and JPEG encoding/decoding to and from 8-bit RGB HWC images (pure JS: pngjs, jpeg-js).
 * Decoding sniffs the format from the magic bytes, so a "jpg" column holding PNG bytes works.
 * Errors name the source (file, row, column) given by the caller.
 */
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbImage } from './image';
import { assertImageShape } from './image';

/** Bytes that are not a decodable PNG or JPEG. Permanent: retrying cannot help. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
  constructor(
    readonly source: string,
    detail: string,
  ) {
    super(`${source}: undecodable image (${detail})`);
  }
}

/** A decodable image smaller than the configured minimum side. */
export class ImageTooSmallError extends Error {
  override readonly name = 'ImageTooSmallError';
  constructor(
    readonly source: string,
    readonly width: number,
    readonly height: number,
    readonly minSide: number,
  ) {
    super(`${source}: image ${width}x${height} is smaller than the minimum side ${minSide}`);
  }
}

export type ImageFormat = 'png' | 'jpeg';

export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47)
    return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

export interface DecodeOptions {
  /** Named in error messages, e.g. "shard-0001.parquet row 17 jpg_0". Default "image". */
  source?: string;
  /** Smallest accepted width and height in pixels. Default 1. */
  minSide?: number;
  /** Largest accepted image in megapixels (guards memory on hostile input). Default 64. */
  maxMegapixels?: number;
  /** Color that transparent PNG pixels are composited over. Default white. */
  matte?: readonly [number, number, number];
}

/**
 * Width and height as the header declares them (PNG IHDR, JPEG SOF), without decoding pixels;
 * undefined when the header cannot be found. Lets a decoder refuse a huge image before it
 * allocates the pixels.
 */
export function readImageDimensions(bytes: Uint8Array): { width: number; height: number } | undefined {
  const format = sniffImageFormat(bytes);
  const u16 = (i: number) => ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
  if (format === 'png') {
    // Signature (8), then the IHDR chunk: length (4), type (4), width (4), height (4).
    if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (format === 'jpeg') {
    let i = 2;
    while (i + 4 <= bytes.length) {
      if (bytes[i] !== 0xff) return undefined;
      const marker = bytes[i + 1] as number;
      if (marker === 0xff) {
        i++; // fill byte
        continue;
      }
      // Standalone markers carry no length.
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
        i += 2;
        continue;
      }
      if (marker === 0xd9 || marker === 0xda) return undefined; // end of image, or scan before any frame
      const length = u16(i + 2);
      const isFrame =
        marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame) {
        if (i + 9 > bytes.length) return undefined;
        return { height: u16(i + 5), width: u16(i + 7) };
      }
      if (length < 2) return undefined;
      i += 2 + length;
    }
  }
  return undefined;
}

export function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): RgbImage {
  const source = options.source ?? 'image';
  const minSide = options.minSide ?? 1;
  const maxMp = options.maxMegapixels ?? 64;
  const format = sniffImageFormat(bytes);
  let image: RgbImage;
  if (format === undefined)
    throw new ImageDecodeError(source, bytes.length === 0 ? 'empty' : 'neither PNG nor JPEG signature');
  // The declared size is checked before any pixel is allocated: a small file can claim a huge image.
  const declared = readImageDimensions(bytes);
  if (declared === undefined)
    throw new ImageDecodeError(
      source,
      format === 'png' ? 'PNG without an IHDR header' : 'JPEG without a frame (SOF) header',
    );
  if (declared.width * declared.height > maxMp * 1e6)
    throw new ImageDecodeError(
      source,
      `${format.toUpperCase()} declares ${declared.width}x${declared.height}, larger than ${maxMp} megapixels`,
    );
  if (declared.width === 0 || declared.height === 0)
    throw new ImageDecodeError(
      source,
      `${format.toUpperCase()} declares ${declared.width}x${declared.height}`,
    );
  if (format === 'png') {
    let png: PNG;
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      throw new ImageDecodeError(source, `PNG: ${(err as Error).message}`);
    }
    if (png.width * png.height > maxMp * 1e6)
      throw new ImageDecodeError(source, `PNG larger than ${maxMp} megapixels`);
    const matte = options.matte ?? [255, 255, 255];
    const n = png.width * png.height;
    const data = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const a = (png.data[i * 4 + 3] as number) / 255;
      for (let c = 0; c < 3; c++) {
        data[i * 3 + c] = Math.round((png.data[i * 4 + c] as number) * a + (matte[c] as number) * (1 - a));
      }
    }
    image = { width: png.width, height: png.height, data };
  } else {
    let raw: { width: number; height: number; data: Uint8Array };
    try {
      raw = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        maxResolutionInMP: maxMp,
        maxMemoryUsageInMB: 1024,
      });
    } catch (err) {
      throw new ImageDecodeError(source, `JPEG: ${(err as Error).message}`);
    }
    if (raw.data.length !== raw.width * raw.height * 3) {
      throw new ImageDecodeError(
        source,
        `JPEG decoded to ${raw.data.length} bytes for ${raw.width}x${raw.height}`,
      );
    }
    image = { width: raw.width, height: raw.height, data: raw.data };
  }
  if (image.width < minSide || image.height < minSide)
    throw new ImageTooSmallError(source, image.width, image.height, minSide);
  return image;
}

/** Lossless 8-bit RGB PNG. */
export function encodePng(image: RgbImage): Uint8Array {
  assertImageShape(image, 'encodePng image');
  const png = new PNG({
    width: image.width,
    height: image.height,
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
  });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const out = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Baseline JPEG at `quality` (1-100, default 90). */
export function encodeJpeg(image: RgbImage, quality = 90): Uint8Array {
  assertImageShape(image, 'encodeJpeg image');
  const n = image.width * image.height;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[i * 4] = image.data[i * 3] as number;
    rgba[i * 4 + 1] = image.data[i * 3 + 1] as number;
    rgba[i * 4 + 2] = image.data[i * 3 + 2] as number;
    rgba[i * 4 + 3] = 255;
  }
  const out = jpeg.encode({ width: image.width, height: image.height, data: rgba }, quality);
  return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
}

export function encodeImage(image: RgbImage, format: ImageFormat, quality?: number): Uint8Array {
  return format === 'png' ? encodePng(image) : encodeJpeg(image, quality);
}
