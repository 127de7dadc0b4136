/**
 * Errors raised by the artifact store. Each has a stable `type` (equal to its class name) so that a
 * Temporal retry policy can list the permanent ones in `nonRetryableErrorTypes`.
 */

/** Base class: every store error carries a stable `type` string. */
export abstract class StoreError extends Error {
  abstract readonly type: string;
}

/** A URI or artifact key that the store cannot address. */
export class InvalidArtifactUriError extends StoreError {
  readonly type = 'InvalidArtifactUriError';
  override name = 'InvalidArtifactUriError';
  constructor(
    readonly uri: string,
    reason: string,
  ) {
    super(`Invalid artifact URI or key ${JSON.stringify(uri)}: ${reason}`);
  }
}

/** The bytes read do not hash to the expected SHA-256: the artifact is corrupt, truncated or replaced. */
export class DigestMismatchError extends StoreError {
  readonly type = 'DigestMismatchError';
  override name = 'DigestMismatchError';
  /** True when fewer bytes were read than the artifact was written with. */
  readonly truncated: boolean;
  constructor(
    readonly uri: string,
    readonly expectedSha256: string,
    readonly actualSha256: string,
    readonly actualSize: number,
    readonly expectedSize?: number,
  ) {
    const truncated = expectedSize !== undefined && actualSize < expectedSize;
    let shape: string;
    if (expectedSize === undefined) shape = `read ${actualSize} bytes; the written size is unknown`;
    else if (truncated) shape = `the object looks truncated: read ${actualSize} of ${expectedSize} bytes`;
    else if (actualSize > expectedSize)
      shape = `read ${actualSize} bytes, more than the ${expectedSize} written`;
    else shape = `the size matches (${actualSize} bytes), so the content changed in place`;
    super(
      `Digest mismatch for ${uri}: expected sha256 ${expectedSha256}, got ${actualSha256} (${shape}). ` +
        `The artifact is corrupt or was replaced; regenerate it.`,
    );
    this.truncated = truncated;
  }
}

/** Nothing (or only the leftover of an interrupted write) is stored under the URI. */
export class ArtifactNotFoundError extends StoreError {
  readonly type = 'ArtifactNotFoundError';
  override name = 'ArtifactNotFoundError';
  constructor(
    readonly uri: string,
    detail?: string,
  ) {
    super(`Artifact not found: ${uri}${detail ? ` (${detail})` : ''}`);
  }
}

/**
 * A put to a key that already holds a committed artifact with other bytes. Artifacts are written
 * once: a changed input must produce a new key, so nothing that points at the old bytes breaks.
 */
export class ArtifactExistsError extends StoreError {
  readonly type = 'ArtifactExistsError';
  override name = 'ArtifactExistsError';
  constructor(
    readonly uri: string,
    readonly existingSha256: string,
    readonly newSha256: string,
  ) {
    super(
      `Refusing to overwrite ${uri}: it already holds sha256 ${existingSha256}, the new bytes hash to ` +
        `${newSha256}. Artifacts are written once; write changed content under a new key.`,
    );
  }
}

/**
 * Another write of the same key completed while this one was in flight, and did not commit (write
 * its metadata) in time to compare with. Transient: a retry finds the committed artifact.
 */
export class ArtifactWriteConflictError extends StoreError {
  readonly type = 'ArtifactWriteConflictError';
  override name = 'ArtifactWriteConflictError';
  constructor(readonly uri: string) {
    super(
      `Write conflict at ${uri}: another write of this key completed first and has not committed yet; retry`,
    );
  }
}

/** The store's endpoint did not answer (connection refused, DNS failure, timeout). */
export class StoreUnreachableError extends StoreError {
  readonly type = 'StoreUnreachableError';
  override name = 'StoreUnreachableError';
  constructor(
    readonly endpoint: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Artifact store at ${endpoint} is unreachable: ${reason}`, options);
  }
}

/** The configured bucket does not exist. */
export class BucketNotFoundError extends StoreError {
  readonly type = 'BucketNotFoundError';
  override name = 'BucketNotFoundError';
  constructor(
    readonly bucket: string,
    readonly endpoint: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Bucket ${JSON.stringify(bucket)} does not exist at ${endpoint}; create it or fix storage.bucket`,
      options,
    );
  }
}

/** The server rejected the credentials or their permissions. The message never includes the secret. */
export class StoreAccessDeniedError extends StoreError {
  readonly type = 'StoreAccessDeniedError';
  override name = 'StoreAccessDeniedError';
  constructor(
    readonly endpoint: string,
    readonly bucket: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Access denied to bucket ${JSON.stringify(bucket)} at ${endpoint}: ${reason.replace(/[.\s]+$/, '')}. ` +
        `Check the access key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile) ` +
        `and the bucket policy.`,
      options,
    );
  }
}

/**
 * Error types that retrying cannot fix; suitable for a Temporal `nonRetryableErrorTypes` list.
 * Workflows cannot import this module (it does I/O), so contracts/errors.ts spells the same names;
 * a test holds the two equal.
 */
export const PERMANENT_STORE_ERROR_TYPES: readonly string[] = [
  InvalidArtifactUriError,
  DigestMismatchError,
  ArtifactNotFoundError,
  BucketNotFoundError,
  StoreAccessDeniedError,
  ArtifactExistsError,
].map((error) => error.name);

/**
 * True for errors that a retry cannot fix. An unreachable store may come back; a missing bucket,
 * refused credentials or corrupt bytes will not. Unknown errors count as transient.
 */
export function isPermanent(err: unknown): boolean {
  return err instanceof StoreError && PERMANENT_STORE_ERROR_TYPES.includes(err.type);
}
