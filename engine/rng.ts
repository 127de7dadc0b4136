/**
 * The project's one seeded, serializable random number generator (xoshiro128**, seeded through
 * splitmix32).
 *
 * Everything that must reproduce draws from an `Rng`: training (whose `state()` is stored in
 * checkpoints; TF.js' own seeded ops keep hidden state and are not used for that), sampling noise,
 * and the built-in world (prompts, scenes, perturbations, simulated users), the study's blinding
 * and the bootstrap. A string seed names a stream (`new Rng('corpus:0')`), and `fork(label)`
 * derives an independent one, which keeps one consumer's draws from shifting another's when code
 * changes.
 */
import * as tf from '@tensorflow/tfjs-core';

/** JSON-safe snapshot of an `Rng`. */
export interface RngState {
  /** The four 32-bit words of xoshiro128** as unsigned integers. */
  s: [number, number, number, number];
  /** Second Box-Muller output waiting to be returned, or null. */
  spare: number | null;
}

function splitmix32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const TWO_POW_32 = 4294967296;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  /**
   * `seed` is a finite number (its integer part and the high word of larger values both count) or
   * a string naming a stream.
   */
  constructor(seed: number | string) {
    const sm = splitmix32(typeof seed === 'string' ? hashString(seed) : numericSeed(seed));
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static fromState(state: RngState): Rng {
    const words = state.s;
    if (
      !Array.isArray(words) ||
      words.length !== 4 ||
      words.some((w) => !Number.isInteger(w) || w < 0 || w >= TWO_POW_32)
    ) {
      throw new RangeError('RngState.s must hold four unsigned 32-bit integers');
    }
    if (words.every((w) => w === 0)) throw new RangeError('RngState.s must not be all zero');
    const rng = new Rng(0);
    [rng.s0, rng.s1, rng.s2, rng.s3] = words;
    rng.spare = state.spare ?? null;
    return rng;
  }

  state(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  clone(): Rng {
    return Rng.fromState(this.state());
  }

  /** Next raw unsigned 32-bit output. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [lo, hi), by default [0, 1), with 53 random bits. */
  uniform(lo = 0, hi = 1): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    const u = (a * 67108864 + b) / 9007199254740992;
    return lo === 0 && hi === 1 ? u : lo + (hi - lo) * u;
  }

  /**
   * Uniform integer, unbiased (rejection sampling): `int(n)` in [0, n), `int(min, maxExclusive)` in
   * [min, maxExclusive).
   */
  int(minOrN: number, maxExclusive?: number): number {
    const min = maxExclusive === undefined ? 0 : minOrN;
    if (maxExclusive === undefined) maxExclusive = minOrN;
    if (!Number.isInteger(min) || !Number.isInteger(maxExclusive) || maxExclusive <= min) {
      throw new RangeError(`Rng.int needs integers min < maxExclusive, got [${min}, ${maxExclusive})`);
    }
    const range = maxExclusive - min;
    if (range > TWO_POW_32) throw new RangeError(`Rng.int range ${range} exceeds 2^32`);
    const limit = TWO_POW_32 - (TWO_POW_32 % range);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return min + (x % range);
    }
  }

  /** Standard normal sample (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [lo, hi], both ends included. */
  intBetween(lo: number, hi: number): number {
    return this.int(lo, hi + 1);
  }

  /** True with probability `p`. */
  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.choice: empty list');
    return items[this.int(items.length)] as T;
  }

  /** `k` distinct items in random order (the list itself is left as it is). */
  sample<T>(items: readonly T[], k: number): T[] {
    if (!Number.isInteger(k) || k < 0 || k > items.length) {
      throw new RangeError(`Rng.sample: cannot take ${k} of ${items.length} items`);
    }
    const copy = items.slice();
    for (let i = 0; i < k; i++) {
      const j = this.int(i, copy.length);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy.slice(0, k);
  }

  /** An independent stream named by this one's current state and `label`; this one does not advance. */
  fork(label: string | number): Rng {
    return new Rng(`${this.s0}:${this.s1}:${this.s2}:${this.s3}:${label}`);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  fillUniform(out: Float32Array, low = 0, high = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * this.uniform();
    return out;
  }

  /** A float32 tensor of standard normal samples drawn from this generator. */
  normalTensor(shape: number[], mean = 0, std = 1): tf.Tensor {
    return tf.tensor(this.fillNormal(new Float32Array(sizeOf(shape)), mean, std), shape, 'float32');
  }

  uniformTensor(shape: number[], low = 0, high = 1): tf.Tensor {
    return tf.tensor(this.fillUniform(new Float32Array(sizeOf(shape)), low, high), shape, 'float32');
  }
}

function numericSeed(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
  const hi = Math.floor(Math.abs(seed) / TWO_POW_32);
  return (Math.trunc(seed) ^ Math.imul(hi, 0x27d4eb2d)) >>> 0;
}

/** FNV-1a over the UTF-16 code units. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function sizeOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid tensor shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}
