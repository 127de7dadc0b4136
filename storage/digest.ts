import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** SHA-256 digest and byte count of some content. */
export interface ContentDigest {
  /** Lower-case hex SHA-256. */
  sha256: string;
  size: number;
}

/** Chunks of content, from a stream (async) or a generator over data in memory (sync). */
export type ChunkSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** True for a lower-case hex SHA-256 string. */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}

/** Hex SHA-256 of a byte array. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Passes chunks through unchanged while hashing them, so a stream can be digested as it is
 * written. `digest()` is valid once the returned iterable has been fully consumed.
 */
export function digestingStream(source: ChunkSource): {
  stream: AsyncIterable<Uint8Array>;
  digest: () => ContentDigest;
} {
  const hash = createHash('sha256');
  let size = 0;
  let done = false;
  let result: ContentDigest | undefined;
  async function* pass(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.byteLength;
      yield chunk;
    }
    done = true;
  }
  return {
    stream: pass(),
    digest: () => {
      if (!done) throw new Error('digestingStream: digest() called before the stream was fully consumed');
      result ??= { sha256: hash.digest('hex'), size };
      return result;
    },
  };
}

/** Digest of an async iterable of chunks, consuming it. */
export async function digestStream(source: ChunkSource): Promise<ContentDigest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Digest of a file, read in chunks so large files do not need to fit in memory. */
export function digestFile(file: string): Promise<ContentDigest> {
  return digestStream(fs.createReadStream(file));
}
