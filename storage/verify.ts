import { isSha256Hex, sha256Hex } from './digest';
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
 * Checks bytes read from `uri` against the caller's expected digest, else the stored one, and throws
 * DigestMismatchError naming the URI. The stored size is only used to report truncation when it
 * describes the expected content.
 */
export function verifyArtifactBytes(
  uri: string,
  bytes: Uint8Array,
  expectedSha256: string | undefined,
  meta: StoredMetadata | undefined,
): void {
  const expected = expectedSha256 ?? meta?.sha256;
  if (expected === undefined) throw new ArtifactNotFoundError(uri, 'no metadata: its write never completed');
  const actual = sha256Hex(bytes);
  if (actual !== expected) {
    const expectedSize = meta !== undefined && meta.sha256 === expected ? meta.size : undefined;
    throw new DigestMismatchError(uri, expected, actual, bytes.byteLength, expectedSize);
  }
}
