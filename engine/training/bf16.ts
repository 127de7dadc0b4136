/**
 * bfloat16 rounding, for emulating pure-bf16 training on float32 storage: a float32 whose low 16
 * bits are zero is exactly a bfloat16, so rounding a value (round to nearest, ties to even, as
 * torch's float -> bfloat16 conversion does) and keeping it in a Float32Array stores the bf16 number
 * without loss. NaN stays NaN (quiet), infinities stay infinite, and a finite value too large for
 * bf16 rounds to infinity as the conversion does.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Number format of a training run's state. */
export type Precision = 'fp32' | 'bf16';

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** Rounds a float32 bit pattern to the nearest bfloat16 (ties to even). */
function roundBits(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return (u | 0x00400000) & 0xffff0000;
  return ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
}

/** `x` rounded first to float32 (the opmath type the arithmetic ran in), then to bfloat16. */
export function bf16(x: number): number {
  scratchF[0] = x;
  scratchU[0] = roundBits(scratchU[0]!);
  return scratchF[0];
}

/** Rounds every value of `values` to bfloat16 in place. */
export function roundToBf16InPlace(values: Float32Array): Float32Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) bits[i] = roundBits(bits[i]!);
  return values;
}

/** A new float32 tensor holding `t`'s values rounded to bfloat16 (a constant: no gradient flows). */
export function roundTensorToBf16<T extends tf.Tensor>(t: T): T {
  const values = Float32Array.from(t.dataSync() as Float32Array);
  return tf.tensor(roundToBf16InPlace(values), t.shape, 'float32') as T;
}
