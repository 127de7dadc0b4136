/**
 * Artifact store in an S3 bucket (AWS or any S3-compatible server).
 *
 * Layout: the artifact `key` is the object `<prefix>/<key>`; its metadata is the companion object
 * `<prefix>/<key>.meta.json` (sha256, size, kind, producer, inputs, createdAt, extra).
 *
 * Atomicity: the object appears only when its single PUT or its multipart upload completes; a failed
 * multipart upload is aborted (lib-storage `leavePartsOnError: false`). The companion is written
 * only after the object is complete, so metadata never claims an incomplete object; an object
 * without a companion is the leftover of an interrupted write and `head`, `exists` and `list`
 * ignore it. The companion, not the object's user metadata, is authoritative because the digest of
 * a streamed upload is only known after its last part. The object also carries `dro-kind` and
 * `dro-producer` user metadata (plus `dro-sha256`/`dro-size` when the bytes are in memory) so that
 * S3 tools show what an object is.
 *
 * Integrity and write-once: an in-memory put of up to one part is a single PUT carrying its SHA-256
 * (the server rejects a body that does not match) and `If-None-Match: *`. Anything larger, and every
 * stream or file, is a multipart upload whose parts each carry their SHA-256 and whose completion
 * carries `If-None-Match: *`, so it never replaces an object another writer completed; the
 * whole-object SHA-256 is computed while streaming and recorded in the companion. Reads stream the
 * body into one buffer (or a temporary file for `getToFile`) while hashing it.
 *
 * Incomplete uploads left by a crashed process are not visible as objects but occupy space; a bucket
 * lifecycle rule `AbortIncompleteMultipartUpload` (e.g. after 1 day) removes them.
 */
import { randomBytes } from 'node:crypto';
import { artifactBytesRead, artifactBytesWritten } from '../infra/pipeline-metrics';
import { putFileWith } from './put-file';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type {
  ArtifactData,
  ArtifactMetadata,
  ArtifactRef,
  ArtifactStore,
  PutOptions,
} from './artifact-store';
import { writeFileAtomic } from './atomic-file';
import type { ContentDigest } from './digest';
import { digestingStream, sha256Hex } from './digest';
import {
  ArtifactNotFoundError,
  ArtifactWriteConflictError,
  BucketNotFoundError,
  InvalidArtifactUriError,
  StoreAccessDeniedError,
  StoreError,
  StoreUnreachableError,
} from './errors';
import type { StoredMetadata } from './metadata';
import {
  buildStoredMetadata,
  encodeStoredMetadata,
  parseStoredMetadata,
  toHead,
  validatePutOptions,
} from './metadata';
import {
  formatS3Uri,
  isUri,
  joinKey,
  METADATA_SUFFIX,
  parseArtifactUri,
  S3_BUCKET_NAME,
  validateKey,
  validateListPrefix,
  validatePrefix,
} from './uri';
import { checkDigest, checkExpectedSha256, expectedContent, readVerified } from './verify';
import { sameOrRefuse, settleExisting } from './write-once';

const MiB = 1024 * 1024;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix without leading or trailing '/'. Default: ''. */
  prefix?: string;
  /** Endpoint of an S3-compatible server. Default: AWS S3 for the region. */
  endpoint?: string;
  /** Default: `$AWS_REGION`, else `$AWS_DEFAULT_REGION`, else `us-east-1`. */
  region?: string;
  /** Path-style addressing (`endpoint/bucket`). Default: false. */
  forcePathStyle?: boolean;
  /** Multipart part size in MiB, at least 5. Default: 8. */
  partSizeMiB?: number;
  /** Parts uploaded in parallel; memory use is about `queueSize * partSizeMiB`. Default: 4. */
  queueSize?: number;
  /** Explicit credentials. Default: the standard AWS chain (env, shared profile, instance role). */
  credentials?: S3Credentials;
  /** Attempts per request, including the first. Default: 3 (the SDK's). */
  maxAttempts?: number;
  /** Milliseconds to wait for a TCP connection. Default: 5000. */
  connectionTimeoutMs?: number;
  /**
   * How long a large put waits for a concurrent writer of the same key to commit (write its
   * companion) before treating the object in its way as a leftover. Default: 2000 ms.
   */
  commitWaitMs?: number;
}

/** Region used when none is configured. */
export function resolveRegion(region?: string): string {
  return region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

/** The endpoint named in error messages. */
export function describeEndpoint(options: Pick<S3StoreOptions, 'endpoint' | 'region'>): string {
  return options.endpoint ?? `https://s3.${resolveRegion(options.region)}.amazonaws.com`;
}

export function createS3Client(options: S3StoreOptions): S3Client {
  return new S3Client({
    region: resolveRegion(options.region),
    ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.credentials !== undefined && { credentials: options.credentials }),
    ...(options.maxAttempts !== undefined && { maxAttempts: options.maxAttempts }),
    requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5000 },
    // Integrity is checked end to end with our own SHA-256; optional transport checksums (aws-chunked
    // trailers) are left off because several S3-compatible servers reject them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
const ACCESS_ERROR_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'Forbidden',
  'InvalidToken',
  'ExpiredToken',
  'InvalidClientTokenId',
  // versitygw answers an unknown access key id with 404 XAdminUserNotFound instead of InvalidAccessKeyId.
  'XAdminUserNotFound',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  errors?: unknown[];
  cause?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Node socket error codes found on the error, its cause, or inside an AggregateError. */
function networkCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 4) return undefined;
  const e = err as SdkErrorShape;
  if (e.code !== undefined && NETWORK_ERROR_CODES.has(e.code)) return e.code;
  for (const inner of e.errors ?? []) {
    const code = networkCode(inner, depth + 1);
    if (code !== undefined) return code;
  }
  return networkCode(e.cause, depth + 1);
}

/** HTTP status of an SDK service error, if any. */
export function httpStatusOf(err: unknown): number | undefined {
  return (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/**
 * Maps an SDK error to the store's error classes. Errors it does not recognise are returned as they
 * are (and count as transient).
 */
export function mapS3Error(err: unknown, where: { endpoint: string; bucket: string }): Error {
  if (err instanceof StoreError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const name = e.name ?? '';
  if (name === 'NoSuchBucket') return new BucketNotFoundError(where.bucket, where.endpoint, { cause: err });
  if (ACCESS_ERROR_NAMES.has(name) || httpStatusOf(err) === 403) {
    return new StoreAccessDeniedError(
      where.endpoint,
      where.bucket,
      `${name || 'HTTP 403'}: ${e.message ?? ''}`.trim(),
      {
        cause: err,
      },
    );
  }
  if (name === 'CredentialsProviderError') {
    return new StoreAccessDeniedError(
      where.endpoint,
      where.bucket,
      'no credentials found in the environment, shared profile or instance metadata',
      { cause: err },
    );
  }
  const code = networkCode(err);
  if (code !== undefined) return new StoreUnreachableError(where.endpoint, code, { cause: err });
  if (name === 'TimeoutError' || name === 'RequestTimeout') {
    return new StoreUnreachableError(where.endpoint, `timed out (${e.message ?? name})`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A conditional write lost: the key exists (If-None-Match) or another write is in flight. */
function isPreconditionFailed(err: unknown): boolean {
  const name = (err as SdkErrorShape | undefined)?.name;
  const status = httpStatusOf(err);
  return (
    name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || status === 412 || status === 409
  );
}

function isMissingObject(err: unknown): boolean {
  const name = (err as SdkErrorShape | undefined)?.name;
  return name === 'NoSuchKey' || (name === 'NotFound' && httpStatusOf(err) === 404);
}

const STORE_LABEL = { store: 's3' } as const;

export class S3ArtifactStore implements ArtifactStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly baseUri: string;
  /** Endpoint as named in error messages. */
  readonly endpoint: string;
  readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly commitWaitMs: number;

  constructor(options: S3StoreOptions) {
    if (!S3_BUCKET_NAME.test(options.bucket)) {
      throw new InvalidArtifactUriError(`s3://${options.bucket}`, 'bucket is not a valid S3 bucket name');
    }
    const partSizeMiB = options.partSizeMiB ?? 8;
    if (!Number.isInteger(partSizeMiB) || partSizeMiB < 5 || partSizeMiB > 5120) {
      throw new RangeError(`partSizeMiB must be an integer from 5 to 5120 (S3 limits), got ${partSizeMiB}`);
    }
    this.bucket = options.bucket;
    this.prefix = validatePrefix(options.prefix ?? '');
    this.baseUri = formatS3Uri(this.bucket, this.prefix);
    this.endpoint = describeEndpoint(options);
    this.partSize = partSizeMiB * MiB;
    this.queueSize = options.queueSize ?? 4;
    this.commitWaitMs = options.commitWaitMs ?? 2000;
    this.client = createS3Client(options);
  }

  /** Closes the client's sockets. */
  destroy(): void {
    this.client.destroy();
  }

  /** The key of `uriOrKey` inside this store; throws InvalidArtifactUriError for URIs outside it. */
  keyOf(uriOrKey: string): string {
    if (!isUri(uriOrKey)) return validateKey(uriOrKey);
    const parsed = parseArtifactUri(uriOrKey);
    if (parsed.scheme !== 's3' || parsed.bucket !== this.bucket) {
      throw new InvalidArtifactUriError(uriOrKey, `outside this store ${this.baseUri}`);
    }
    if (this.prefix === '') return validateKey(parsed.key, uriOrKey);
    if (!parsed.key.startsWith(`${this.prefix}/`)) {
      throw new InvalidArtifactUriError(uriOrKey, `outside this store ${this.baseUri}`);
    }
    return validateKey(parsed.key.slice(this.prefix.length + 1), uriOrKey);
  }

  uriOf(key: string): string {
    return formatS3Uri(this.bucket, this.objectKey(key));
  }

  private objectKey(key: string): string {
    return joinKey(this.prefix, validateKey(key));
  }

  private fail(err: unknown): Error {
    return mapS3Error(err, { endpoint: this.endpoint, bucket: this.bucket });
  }

  async put(key: string, data: ArtifactData, options: PutOptions): Promise<ArtifactRef> {
    validatePutOptions(key, options);
    const objectKey = this.objectKey(key);
    const committed = await this.readMetadata(key);
    if (committed) return settleExisting(toHead(this.uriOf(key), committed).ref, data, options);
    const userMetadata: Record<string, string> = {
      'dro-kind': encodeURIComponent(options.kind),
      'dro-producer': encodeURIComponent(options.producer),
    };
    let digest: ContentDigest;
    if (data instanceof Uint8Array && data.byteLength <= this.partSize) {
      digest = { sha256: sha256Hex(data), size: data.byteLength };
      userMetadata['dro-sha256'] = digest.sha256;
      userMetadata['dro-size'] = String(digest.size);
      const kept = await this.putSmall(key, objectKey, data, userMetadata, digest, options);
      if (kept) return kept;
    } else {
      const outcome = await this.putLarge(key, objectKey, data, userMetadata, options);
      if ('kept' in outcome) return outcome.kept;
      digest = outcome.digest;
    }
    const meta = buildStoredMetadata(options, digest);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey + METADATA_SUFFIX,
          Body: encodeStoredMetadata(meta),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        }),
      );
    } catch (err) {
      if (!isPreconditionFailed(err)) throw this.fail(err);
      // Another writer committed the same key between our check and now.
      const now = await this.readMetadata(key);
      if (now === undefined) throw this.fail(err);
      const ref = toHead(this.uriOf(key), now).ref;
      return options.ifExists === 'keep' ? ref : sameOrRefuse(ref, digest);
    }
    artifactBytesWritten.inc(STORE_LABEL, digest.size);
    return { uri: this.uriOf(key), ...digest };
  }

  putFile(key: string, file: string, options: PutOptions): Promise<ArtifactRef> {
    return putFileWith((k, data, o) => this.put(k, data, o), key, file, options, MiB);
  }

  /**
   * Streams `data` as a multipart upload (a single PUT when it fits in one part): at most
   * `queueSize` parts are in memory, each is sent with its SHA-256 for the server to check, and the
   * upload completes only if no object exists under the key yet (If-None-Match on the completion),
   * so a concurrent writer's object is never replaced. Resolves to the digest of what was
   * written, or to the committed artifact when another writer got there first with an accepted
   * outcome.
   */
  private async putLarge(
    key: string,
    objectKey: string,
    data: ArtifactData,
    userMetadata: Record<string, string>,
    options: PutOptions,
  ): Promise<{ digest: ContentDigest } | { kept: ArtifactRef }> {
    await this.removeLeftover(key, objectKey);
    let body: Uint8Array | Readable;
    let digest: () => ContentDigest;
    if (data instanceof Uint8Array) {
      const known = { sha256: sha256Hex(data), size: data.byteLength };
      userMetadata['dro-sha256'] = known.sha256;
      userMetadata['dro-size'] = String(known.size);
      body = data;
      digest = () => known;
    } else {
      const tap = digestingStream(data);
      body = Readable.from(tap.stream, { objectMode: false });
      digest = tap.digest;
    }
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: objectKey,
        Body: body,
        Metadata: userMetadata,
        ContentType: 'application/octet-stream',
        ChecksumAlgorithm: 'SHA256',
        IfNoneMatch: '*',
      },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return { digest: digest() };
    } catch (err) {
      if (!isPreconditionFailed(err)) throw this.fail(err);
      // Another writer completed an object under this key while this upload was in flight.
      let ours: ContentDigest;
      try {
        ours = digest();
      } catch {
        throw this.fail(err);
      }
      const ref = await this.awaitCommit(key);
      if (ref === undefined) throw new ArtifactWriteConflictError(this.uriOf(key));
      return { kept: options.ifExists === 'keep' ? ref : sameOrRefuse(ref, ours) };
    }
  }

  /**
   * An object without a companion is the leftover of an interrupted write, or of a write that is
   * committing right now. The conditional upload would fail on it and a stream cannot be sent
   * twice, so after giving a concurrent writer time to commit, the leftover is deleted first.
   */
  private async removeLeftover(key: string, objectKey: string): Promise<void> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      if (isMissingObject(err)) return;
      throw this.fail(err);
    }
    if ((await this.awaitCommit(key)) !== undefined) return;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** The committed artifact under `key`, waiting up to `commitWaitMs` for its companion to appear. */
  private async awaitCommit(key: string): Promise<ArtifactRef | undefined> {
    const deadline = Date.now() + this.commitWaitMs;
    for (;;) {
      const meta = await this.readMetadata(key);
      if (meta !== undefined) return toHead(this.uriOf(key), meta).ref;
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * One conditional PUT that the server checks against our SHA-256. Resolves to the committed
   * artifact when another writer got there first with an accepted outcome, else undefined.
   */
  private async putSmall(
    key: string,
    objectKey: string,
    data: Uint8Array,
    userMetadata: Record<string, string>,
    digest: ContentDigest,
    options: PutOptions,
  ): Promise<ArtifactRef | undefined> {
    const send = (conditional: boolean) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          Body: data,
          Metadata: userMetadata,
          ContentType: 'application/octet-stream',
          ChecksumSHA256: Buffer.from(digest.sha256, 'hex').toString('base64'),
          ...(conditional && { IfNoneMatch: '*' }),
        }),
      );
    try {
      await send(true);
      return undefined;
    } catch (err) {
      if (!isPreconditionFailed(err)) throw this.fail(err);
    }
    const now = await this.readMetadata(key);
    if (now !== undefined) {
      const ref = toHead(this.uriOf(key), now).ref;
      return options.ifExists === 'keep' ? ref : sameOrRefuse(ref, digest);
    }
    // An object without a companion is the leftover of an interrupted write: replace it.
    try {
      await send(false);
    } catch (err) {
      throw this.fail(err);
    }
    return undefined;
  }

  async get(uriOrKey: string, expectedSha256?: string): Promise<Uint8Array> {
    const { uri, expected, objectKey } = await this.prepareRead(uriOrKey, expectedSha256);
    let body: Readable | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      if (out.Body === undefined) throw new Error(`GetObject ${uri} returned no body`);
      body = out.Body as Readable;
      const bytes = await readVerified(uri, body, expected, out.ContentLength);
      artifactBytesRead.inc(STORE_LABEL, bytes.byteLength);
      return bytes;
    } catch (err) {
      if (isMissingObject(err)) throw new ArtifactNotFoundError(uri);
      throw this.fail(err);
    } finally {
      body?.destroy();
    }
  }

  async getToFile(uriOrKey: string, file: string, expectedSha256?: string): Promise<ArtifactRef> {
    const { uri, expected, objectKey } = await this.prepareRead(uriOrKey, expectedSha256);
    let body: Readable | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      if (out.Body === undefined) throw new Error(`GetObject ${uri} returned no body`);
      body = out.Body as Readable;
      const digest = await writeFileAtomic(path.resolve(file), body, {
        verify: (d) => checkDigest(uri, expected, d),
      });
      artifactBytesRead.inc(STORE_LABEL, digest.size);
      return { uri, ...digest };
    } catch (err) {
      if (isMissingObject(err)) throw new ArtifactNotFoundError(uri);
      throw this.fail(err);
    } finally {
      body?.destroy();
    }
  }

  private async prepareRead(uriOrKey: string, expectedSha256: string | undefined) {
    const key = this.keyOf(uriOrKey);
    const uri = this.uriOf(key);
    checkExpectedSha256(uri, expectedSha256);
    const meta = await this.readMetadata(key);
    if (meta === undefined && expectedSha256 === undefined) throw new ArtifactNotFoundError(uri);
    return { uri, expected: expectedContent(uri, expectedSha256, meta), objectKey: this.objectKey(key) };
  }

  async head(uriOrKey: string): Promise<{ ref: ArtifactRef; metadata: ArtifactMetadata } | undefined> {
    const key = this.keyOf(uriOrKey);
    // The companion is read with GET, not HEAD, so that a missing bucket reports NoSuchBucket.
    const meta = await this.readMetadata(key);
    if (meta === undefined) return undefined;
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw this.fail(err);
    }
    return toHead(this.uriOf(key), meta);
  }

  async exists(uriOrKey: string): Promise<boolean> {
    return (await this.head(uriOrKey)) !== undefined;
  }

  /** Keys (relative to the store prefix) of committed artifacts starting with `prefix`, sorted. */
  async list(prefix: string): Promise<string[]> {
    validateListPrefix(prefix);
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    const names = new Set<string>();
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base + prefix, ContinuationToken: token }),
        );
      } catch (err) {
        throw this.fail(err);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) names.add(object.Key.slice(base.length));
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    const keys: string[] = [];
    for (const name of names) {
      if (!name.endsWith(METADATA_SUFFIX)) continue;
      const key = name.slice(0, -METADATA_SUFFIX.length);
      if (names.has(key)) keys.push(key);
    }
    return keys.sort();
  }

  async delete(uriOrKey: string): Promise<void> {
    const objectKey = this.objectKey(this.keyOf(uriOrKey));
    try {
      // Companion first: an interrupted delete leaves an uncommitted object, never metadata without one.
      await this.client.send(
        new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey + METADATA_SUFFIX }),
      );
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      throw this.fail(err);
    }
  }

  private async readMetadata(key: string): Promise<StoredMetadata | undefined> {
    const name = this.objectKey(key) + METADATA_SUFFIX;
    let bytes: Uint8Array;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: name }));
      if (out.Body === undefined) return undefined;
      bytes = await out.Body.transformToByteArray();
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw this.fail(err);
    }
    return parseStoredMetadata(bytes, formatS3Uri(this.bucket, name));
  }
}

/** What `dro doctor` reports about an S3 store. */
export interface S3AccessReport {
  endpoint: string;
  bucket: string;
  /** The endpoint answered HTTP. */
  reachable: boolean;
  bucketExists: boolean;
  /** A probe object could be written and deleted. */
  canWrite: boolean;
  /** The first failure, by error type and message. */
  error?: { type: string; message: string };
}

function describeError(err: Error): { type: string; message: string } {
  return { type: err instanceof StoreError ? err.type : err.name, message: err.message };
}

/**
 * Checks that the S3 store is usable: the endpoint answers, the bucket exists, and a tiny probe
 * object can be written and deleted. Never throws for store problems; they are reported.
 */
export async function checkS3Access(options: S3StoreOptions): Promise<S3AccessReport> {
  const store = new S3ArtifactStore(options);
  const report: S3AccessReport = {
    endpoint: store.endpoint,
    bucket: store.bucket,
    reachable: false,
    bucketExists: false,
    canWrite: false,
  };
  const where = { endpoint: store.endpoint, bucket: store.bucket };
  try {
    try {
      // A one-key listing rather than HeadBucket: HEAD answers carry no error code, so a missing
      // bucket and an unknown access key would both read as a bare 404.
      await store.client.send(
        new ListObjectsV2Command({
          Bucket: store.bucket,
          MaxKeys: 1,
          Prefix: store.prefix === '' ? undefined : `${store.prefix}/`,
        }),
      );
    } catch (err) {
      report.reachable = httpStatusOf(err) !== undefined;
      report.error = describeError(mapS3Error(err, where));
      return report;
    }
    report.reachable = true;
    report.bucketExists = true;
    // Keys may not start with '.', so the probe can never collide with an artifact.
    const probe = joinKey(store.prefix, `.dro-doctor-probe-${randomBytes(6).toString('hex')}`);
    try {
      await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: probe, Body: 'probe' }));
      await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: probe }));
      report.canWrite = true;
    } catch (err) {
      report.error = describeError(mapS3Error(err, where));
    }
    return report;
  } finally {
    store.destroy();
  }
}
