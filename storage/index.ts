/**
 * The artifact store's public API.
 *
 * ```ts
 * const store = openStore(config.storage); // { kind: 'local' } or { kind: 's3', bucket: ... }
 * const ref = await store.put('runs/r1/checkpoint.bin', bytes, { kind: 'checkpoint', producer: 'sft' });
 * const same = await storeForUri(ref.uri, config.storage).get(ref.uri, ref.sha256); // verified
 * ```
 */
import path from 'node:path';
import type { ArtifactStore } from './artifact-store';
import type { StorageConfigInput } from './config';
import { StorageConfig } from './config';
import { LocalArtifactStore } from './local-store';
import type { S3StoreOptions } from './s3-store';
import { S3ArtifactStore } from './s3-store';
import { parseArtifactUri } from './uri';

export type {
  ArtifactData,
  ArtifactMetadata,
  ArtifactRef,
  ArtifactStore,
  PutOptions,
} from './artifact-store';
export { StorageConfig, LocalStorageConfig, S3StorageConfig } from './config';
export type { StorageConfigInput } from './config';
export * from './errors';
export { LocalArtifactStore, defaultLocalRoot } from './local-store';
export type { LocalStoreOptions } from './local-store';
export { S3ArtifactStore, checkS3Access, mapS3Error } from './s3-store';
export type { S3AccessReport, S3Credentials, S3StoreOptions } from './s3-store';
export { parseArtifactUri, formatFileUri, formatS3Uri, validateKey } from './uri';
export { sha256Hex, digestFile, digestStream, isSha256Hex } from './digest';

/** Settings that are not part of the config file (they come from the environment or from tests). */
export type S3ClientOverrides = Pick<
  S3StoreOptions,
  'credentials' | 'maxAttempts' | 'connectionTimeoutMs' | 'queueSize'
>;

/** Opens the store a storage config describes; the config is validated (and defaulted) here. */
export function openStore(config: StorageConfigInput, overrides: S3ClientOverrides = {}): ArtifactStore {
  const parsed = StorageConfig.parse(config);
  if (parsed.kind === 'local')
    return new LocalArtifactStore(parsed.root === undefined ? {} : { root: parsed.root });
  const { kind: _kind, ...s3 } = parsed;
  return new S3ArtifactStore({ ...s3, ...overrides });
}

/**
 * A store that can read `uri`. When `config` describes the same local root or S3 bucket, its
 * settings (endpoint, region, path style) are used; otherwise a local store rooted at the file's
 * directory, or an S3 store with the default AWS settings for the URI's bucket.
 */
export function storeForUri(
  uri: string,
  config?: StorageConfigInput,
  overrides: S3ClientOverrides = {},
): ArtifactStore {
  const parsed = parseArtifactUri(uri);
  const configured = config === undefined ? undefined : StorageConfig.parse(config);
  if (parsed.scheme === 'file') {
    if (configured?.kind === 'local') {
      const local = new LocalArtifactStore(configured.root === undefined ? {} : { root: configured.root });
      const rel = path.relative(local.root, parsed.path);
      if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) return local;
    }
    return new LocalArtifactStore({ root: path.dirname(parsed.path) });
  }
  if (configured?.kind === 's3' && configured.bucket === parsed.bucket) {
    const { kind: _kind, ...s3 } = configured;
    return new S3ArtifactStore({ ...s3, ...overrides, prefix: '' });
  }
  return new S3ArtifactStore({ bucket: parsed.bucket, ...overrides });
}
