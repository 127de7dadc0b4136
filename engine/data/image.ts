/**
 * In-memory image types shared by the renderer, the codecs, the detector and the perturbations.
 * Layout is row-major HWC RGB (3 channels), the layout PNG/JPEG decoders produce and the one a
 * model's NHWC tensors use.
 */

/** 8-bit RGB image, `data.length === width * height * 3`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Floating-point RGB image with values in [0, 1], `data.length === width * height * 3`. */
export interface RgbImageF32 {
  width: number;
  height: number;
  data: Float32Array;
}

export function toFloat(image: RgbImage): RgbImageF32 {
  const data = new Float32Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = (image.data[i] as number) / 255;
  return { width: image.width, height: image.height, data };
}

/** Rounds to the nearest 8-bit level, clamping out-of-range values. */
export function toUint8(image: RgbImageF32): RgbImage {
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Math.round((image.data[i] as number) * 255);
    data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { width: image.width, height: image.height, data };
}

/** Throws when the buffer length does not match the stated size (names `what` in the message). */
export function assertImageShape(
  image: { width: number; height: number; data: ArrayLike<number> },
  what: string,
): void {
  const { width, height } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what}: invalid size ${width}x${height}`);
  }
  if (image.data.length !== width * height * 3) {
    throw new RangeError(
      `${what}: expected ${width * height * 3} values (${width}x${height}x3), got ${image.data.length}`,
    );
  }
}

/** Maps [0, 1] RGB to the model's [-1, 1] input space. */
export function toModelSpace(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! * 2 - 1;
  return out;
}

/** Maps model outputs back to [0, 1] RGB, clipping. */
export function fromModelSpace(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.min(1, Math.max(0, (data[i]! + 1) / 2));
  return out;
}
