import { createHash } from 'node:crypto';
import type { ChunkSource, ContentDigest } from './digest';
import { isSha256Hex } from './digest';
import { ArtifactNotFoundError, DigestMismatchError } from './errors';
import type { StoredMetadata } from './metadata';

/** Rejects a malformed expected digest before any I/O. */
export function checkExpectedSha256(uri: string, expectedSha256: string | undefined): void {
  if (expectedSha256 !== undefined && !isSha256Hex(expectedSha256)) {
    throw new TypeError(
      `expectedSha256 for ${uri} must be 64 lower-case hex digits, got ${JSON.stringify(expectedSha256)}`,
    );
  }
}

/**
 * Why an input file a config names does not match the SHA-256 the config records for it, or
 * undefined when it does. `field` is the config field naming the file.
 */
export function recordedDigestProblem(
  field: string,
  source: string,
  actualSha256: string,
  recordedSha256: string | undefined,
): string | undefined {
  if (recordedSha256 === undefined || actualSha256 === recordedSha256) return undefined;
  return (
    `${field} ${source} has SHA-256 ${actualSha256}, not the recorded ${recordedSha256} ` +
    `(${field}Sha256): the file was replaced or corrupted`
  );
}

/** What a read is checked against: a digest, and the written size when it is known to belong to it. */
export interface ExpectedContent {
  sha256: string;
  size?: number;
}

/**
 * The caller's expected digest, else the stored one. The stored size is only used when it describes
 * the expected content, to report truncation and to size the read buffer.
 */
export function expectedContent(
  uri: string,
  expectedSha256: string | undefined,
  meta: StoredMetadata | undefined,
): ExpectedContent {
  const sha256 = expectedSha256 ?? meta?.sha256;
  if (sha256 === undefined) throw new ArtifactNotFoundError(uri, 'no metadata: its write never completed');
  return meta !== undefined && meta.sha256 === sha256 ? { sha256, size: meta.size } : { sha256 };
}

/** Throws DigestMismatchError naming the URI when what was read is not the expected content. */
export function checkDigest(uri: string, expected: ExpectedContent, actual: ContentDigest): void {
  if (actual.sha256 !== expected.sha256)
    throw new DigestMismatchError(uri, expected.sha256, actual.sha256, actual.size, expected.size);
}

/**
 * Reads a stream of an artifact's bytes into one array, hashing each chunk as it arrives, and
 * verifies the result. The array is allocated once at the expected size (else at `sizeHint`, the
 * size the server or filesystem reports), so a multi-gigabyte artifact is never held twice and is
 * not limited by the 2 GiB of `fs.readFile`. Only when more bytes arrive than announced (a changed
 * object, which then fails verification) are chunks collected.
 */
export async function readVerified(
  uri: string,
  chunks: ChunkSource,
  expected: ExpectedContent,
  sizeHint?: number,
): Promise<Uint8Array> {
  const hash = createHash('sha256');
  const capacity = expected.size ?? sizeHint;
  const buffer = capacity === undefined ? undefined : new Uint8Array(capacity);
  // Used only when the size is unknown or more bytes arrive than announced.
  const spill: Uint8Array[] = [];
  let filled = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    if (buffer !== undefined && spill.length === 0 && filled + chunk.byteLength <= buffer.byteLength) {
      buffer.set(chunk, filled);
    } else {
      if (buffer !== undefined && spill.length === 0) spill.push(buffer.subarray(0, filled));
      // A stream may reuse the memory behind a chunk it has handed out.
      spill.push(Uint8Array.from(chunk));
    }
    filled += chunk.byteLength;
  }
  checkDigest(uri, expected, { sha256: hash.digest('hex'), size: filled });
  if (spill.length === 0) return buffer === undefined ? new Uint8Array(0) : buffer.subarray(0, filled);
  const whole = new Uint8Array(filled);
  let pos = 0;
  for (const part of spill) {
    whole.set(part, pos);
    pos += part.byteLength;
  }
  return whole;
}
