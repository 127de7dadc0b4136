/**
 * Artifact URIs and keys.
 *
 * - `file:///abs/dir/key` addresses a file of the local store (percent-encoded like any file URL).
 * - `s3://bucket/prefix/key` addresses an S3 object.
 *
 * Keys are `/`-separated segments of `[A-Za-z0-9._=+@,~-]`. A segment may not start with `.`: such
 * names are reserved for temporary files and probes, so they can never collide with an artifact.
 * Keys may not end with `.meta.json`, the suffix of the metadata companion of each artifact.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArtifactUriError } from './errors';

/** Suffix of the JSON companion that holds an artifact's digest and metadata. */
export const METADATA_SUFFIX = '.meta.json';

/** S3 limits object keys to 1024 bytes. */
const MAX_KEY_BYTES = 1024;
const SEGMENT = /^[A-Za-z0-9_=+@,~-][A-Za-z0-9._=+@,~-]*$/;
/** S3 bucket naming rules: 3-63 characters of lower-case letters, digits, dots and hyphens. */
export const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export type ParsedArtifactUri =
  { scheme: 'file'; path: string } | { scheme: 's3'; bucket: string; key: string };

function checkSegments(value: string, what: string, original: string): void {
  for (const segment of value.split('/')) {
    if (segment === '') {
      throw new InvalidArtifactUriError(
        original,
        `${what} has an empty path segment (leading, trailing or double '/')`,
      );
    }
    if (!SEGMENT.test(segment)) {
      throw new InvalidArtifactUriError(
        original,
        `${what} segment ${JSON.stringify(segment)} must use only [A-Za-z0-9._=+@,~-] and not start with '.'`,
      );
    }
  }
}

/** Returns `key` when it is a valid artifact key, otherwise throws InvalidArtifactUriError. */
export function validateKey(key: string, original: string = key): string {
  if (key === '') throw new InvalidArtifactUriError(original, 'the key is empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new InvalidArtifactUriError(original, `the key is longer than ${MAX_KEY_BYTES} bytes`);
  }
  checkSegments(key, 'the key', original);
  if (key.endsWith(METADATA_SUFFIX)) {
    throw new InvalidArtifactUriError(
      original,
      `keys ending in ${METADATA_SUFFIX} are reserved for metadata`,
    );
  }
  return key;
}

/** Returns `prefix` when it is empty or a valid key prefix (no leading or trailing '/'). */
export function validatePrefix(prefix: string): string {
  if (prefix !== '') checkSegments(prefix, 'the prefix', prefix);
  return prefix;
}

const LIST_PREFIX = /^([A-Za-z0-9_=+@,~-][A-Za-z0-9._=+@,~-]*\/)*([A-Za-z0-9_=+@,~-][A-Za-z0-9._=+@,~-]*)?$/;

/**
 * Returns `prefix` when it can select keys in `list()`: empty, or whole segments followed by an
 * optional partial segment (`runs/`, `runs/ab`).
 */
export function validateListPrefix(prefix: string): string {
  if (!LIST_PREFIX.test(prefix)) {
    throw new InvalidArtifactUriError(
      prefix,
      "a list prefix must be '' or key segments, optionally ending in '/'",
    );
  }
  return prefix;
}

/** Joins a store prefix and a key with '/'. */
export function joinKey(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}/${key}`;
}

/** True when `value` looks like a URI (has a scheme) rather than a bare key. */
export function isUri(value: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value);
}

/** Parses a `file://` or `s3://` artifact URI; throws InvalidArtifactUriError naming the URI. */
export function parseArtifactUri(uri: string): ParsedArtifactUri {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const key = slash === -1 ? '' : rest.slice(slash + 1);
    if (!S3_BUCKET_NAME.test(bucket)) {
      throw new InvalidArtifactUriError(
        uri,
        `bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)`,
      );
    }
    if (key !== '') checkSegments(key, 'the key', uri);
    return { scheme: 's3', bucket, key };
  }
  if (uri.startsWith('file:')) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new InvalidArtifactUriError(uri, 'not a parseable file URL');
    }
    if (url.host !== '' && url.host !== 'localhost') {
      throw new InvalidArtifactUriError(
        uri,
        `file URIs must name a local path (file:///abs/path), not host ${url.host}`,
      );
    }
    if (url.search !== '' || url.hash !== '') {
      throw new InvalidArtifactUriError(uri, 'file URIs may not have a query or fragment');
    }
    if (!uri.startsWith('file:///') && !uri.startsWith('file://localhost/')) {
      throw new InvalidArtifactUriError(uri, 'file URIs must be absolute: file:///abs/path');
    }
    return { scheme: 'file', path: fileURLToPath(url) };
  }
  if (isUri(uri)) {
    throw new InvalidArtifactUriError(
      uri,
      `unsupported scheme ${uri.slice(0, uri.indexOf(':'))}; use file:// or s3://`,
    );
  }
  throw new InvalidArtifactUriError(uri, 'not a URI: expected file:///abs/path or s3://bucket/key');
}

/** `file://` URI of an absolute path. */
export function formatFileUri(absPath: string): string {
  if (!path.isAbsolute(absPath))
    throw new InvalidArtifactUriError(absPath, 'file URIs need an absolute path');
  return pathToFileURL(absPath).href;
}

/** `s3://bucket/key` URI; an empty key gives `s3://bucket`. */
export function formatS3Uri(bucket: string, key = ''): string {
  if (!S3_BUCKET_NAME.test(bucket)) {
    throw new InvalidArtifactUriError(
      `s3://${bucket}`,
      `bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name`,
    );
  }
  return key === '' ? `s3://${bucket}` : `s3://${bucket}/${key}`;
}
