/**
 * The artifact store: every pipeline output (datasets, checkpoints, reports) is written once under
 * a final key, addressed by URI and verified by its SHA-256 digest on every read.
 *
 * URIs: `file:///abs/dir/key` for the local store, `s3://bucket/prefix/key` for S3.
 */

/** Small JSON metadata stored beside each artifact. */
export interface ArtifactMetadata {
  /** What the artifact is, e.g. `checkpoint`, `expert-set`, `smoke`. */
  kind: string;
  /** Which stage or activity produced it. */
  producer: string;
  /** SHA-256 digests of the artifacts it was computed from. */
  inputs: string[];
  /** ISO-8601 time of the write. */
  createdAt: string;
  /** Free-form extra fields (config hash, step, ...). */
  extra?: Record<string, unknown>;
}

/** What a write returns and a reader needs to verify. */
export interface ArtifactRef {
  uri: string;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  size: number;
}

export interface PutOptions {
  kind: string;
  producer: string;
  inputs?: string[];
  extra?: Record<string, unknown>;
  /**
   * When the key already holds a committed artifact: `same` (default) returns it if the new bytes
   * are identical and throws ArtifactExistsError otherwise; `keep` returns it whatever the new bytes
   * are (for artifacts that any of several equivalent writers may produce, such as a checkpoint on
   * a deterministic trajectory rewritten by a retried attempt).
   */
  ifExists?: 'same' | 'keep';
}

/**
 * What a put writes: bytes in memory, or chunks (sync or async) that are hashed and written as they
 * come, so a large artifact never has to be held whole in memory.
 */
export type ArtifactData = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ArtifactStore {
  /** Base URI of the store, e.g. `file:///work/.dro/artifacts` or `s3://bucket/prefix`. */
  readonly baseUri: string;
  /**
   * Writes atomically and once: the key holds either nothing or the complete bytes, and a committed
   * artifact is never replaced (see PutOptions.ifExists).
   */
  put(key: string, data: ArtifactData, options: PutOptions): Promise<ArtifactRef>;
  /** `put` of a local file's content, streamed from disk and hashed on the way. */
  putFile(key: string, file: string, options: PutOptions): Promise<ArtifactRef>;
  /**
   * Reads and verifies against `expectedSha256` (or the stored digest when omitted). The bytes are
   * read into one array of the stored size while they are hashed, never collected and copied.
   */
  get(uriOrKey: string, expectedSha256?: string): Promise<Uint8Array>;
  /**
   * Streams the artifact into the local file `file`, verifying the digest as it goes. The bytes go
   * to a temporary file beside `file` that is moved into place only once they matched, so `file`
   * never holds a partial or unverified copy. Returns the reference of what was written.
   */
  getToFile(uriOrKey: string, file: string, expectedSha256?: string): Promise<ArtifactRef>;
  head(uriOrKey: string): Promise<{ ref: ArtifactRef; metadata: ArtifactMetadata } | undefined>;
  exists(uriOrKey: string): Promise<boolean>;
  list(prefix: string): Promise<string[]>;
  delete(uriOrKey: string): Promise<void>;
}
