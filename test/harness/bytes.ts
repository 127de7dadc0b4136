/** Test data for the artifact stores: reproducible byte patterns and chunked streams of them. */

/** `size` pseudo-random bytes from a linear congruential generator seeded with `seed`. */
export function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** `data` as an async stream of `chunk`-byte pieces, yielding to the event loop between them. */
export async function* chunked(data: Uint8Array, chunk: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += chunk) {
    await Promise.resolve();
    yield data.subarray(i, Math.min(i + chunk, data.byteLength));
  }
}
