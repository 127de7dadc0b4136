/**
 * Artifact store on the local filesystem.
 *
 * Layout: the artifact `key` is the file `<root>/<key>`, its metadata the file
 * `<root>/<key>.meta.json`. Both are written to a hidden temporary file in the same directory,
 * fsynced and moved into place, so a key holds either nothing or complete bytes. The object is
 * moved with link(2), which fails when the name exists, so a committed artifact is never
 * replaced (write-once; see storage/write-once.ts). The object is renamed into
 * place first and the metadata second; an object without metadata is the leftover of an
 * interrupted write and is invisible to `head`, `exists` and `list`.
 *
 * Because keys map to paths, `a` and `a/b` cannot both be artifacts here (they can in S3).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { stateDir } from '../infra/paths';
import type { ArtifactMetadata, ArtifactRef, ArtifactStore, PutOptions } from './artifact-store';
import type { ContentDigest } from './digest';
import { ArtifactNotFoundError, InvalidArtifactUriError } from './errors';
import type { StoredMetadata } from './metadata';
import {
  buildStoredMetadata,
  encodeStoredMetadata,
  parseStoredMetadata,
  toHead,
  validatePutOptions,
} from './metadata';
import {
  formatFileUri,
  isUri,
  METADATA_SUFFIX,
  parseArtifactUri,
  validateKey,
  validateListPrefix,
} from './uri';
import { checkExpectedSha256, verifyArtifactBytes } from './verify';
import { sameOrRefuse, settleExisting } from './write-once';

export interface LocalStoreOptions {
  /** Directory holding the artifacts. Default: `<stateDir()>/artifacts`. */
  root?: string;
}

/** The default root of the local store: `<stateDir()>/artifacts`. */
export function defaultLocalRoot(): string {
  return path.join(stateDir(), 'artifacts');
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Temporary files start with '.', which keys may not, so they never collide with artifacts. */
function tempPathFor(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
}

/** Makes a completed rename durable; some filesystems cannot fsync directories, which is harmless. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Best effort only.
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `data` to `file` through a temporary file + fsync + rename and returns the digest of what
 * was written. On any failure the temporary file is removed and `file` is untouched.
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  /**
   * Called when `file` already exists and `noClobber` is set: resolves to true to replace it (a
   * leftover of an interrupted write), false to keep it and discard the new bytes.
   */
  noClobber?: (digest: ContentDigest) => Promise<boolean>,
): Promise<ContentDigest> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
  const handle = await fsp.open(tmp, 'wx', 0o644);
  let open = true;
  try {
    const hash = createHash('sha256');
    let size = 0;
    const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = data instanceof Uint8Array ? [data] : data;
    for await (const chunk of chunks) {
      hash.update(chunk);
      size += chunk.byteLength;
      let offset = 0;
      while (offset < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
        offset += bytesWritten;
      }
    }
    await handle.sync();
    open = false;
    await handle.close();
    const digest = { sha256: hash.digest('hex'), size };
    if (noClobber === undefined) await fsp.rename(tmp, file);
    else {
      try {
        await fsp.link(tmp, file);
        await fsp.rm(tmp, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await noClobber(digest)) await fsp.rename(tmp, file);
        else await fsp.rm(tmp, { force: true });
      }
    }
    await syncDirectory(path.dirname(file));
    return digest;
  } catch (err) {
    if (open) await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

export class LocalArtifactStore implements ArtifactStore {
  /** Absolute directory holding the artifacts. */
  readonly root: string;
  readonly baseUri: string;

  constructor(options: LocalStoreOptions = {}) {
    this.root = path.resolve(options.root ?? defaultLocalRoot());
    this.baseUri = formatFileUri(this.root);
  }

  /** The key of `uriOrKey` inside this store; throws InvalidArtifactUriError for URIs outside it. */
  keyOf(uriOrKey: string): string {
    if (!isUri(uriOrKey)) return validateKey(uriOrKey);
    const parsed = parseArtifactUri(uriOrKey);
    if (parsed.scheme !== 'file') {
      throw new InvalidArtifactUriError(uriOrKey, `not a file:// URI; this store is ${this.baseUri}`);
    }
    const rel = path.relative(this.root, parsed.path);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new InvalidArtifactUriError(uriOrKey, `outside this store's root ${this.baseUri}`);
    }
    return validateKey(rel.split(path.sep).join('/'), uriOrKey);
  }

  uriOf(key: string): string {
    return formatFileUri(this.pathOf(key));
  }

  /** Absolute file path of an artifact key. */
  pathOf(key: string): string {
    return path.join(this.root, ...validateKey(key).split('/'));
  }

  async put(
    key: string,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options: PutOptions,
  ): Promise<ArtifactRef> {
    validatePutOptions(key, options);
    const file = this.pathOf(key);
    const committed = await this.head(key);
    if (committed) return settleExisting(committed.ref, data, options);
    let kept: ArtifactRef | undefined;
    const digest = await writeFileAtomic(file, data, async (d) => {
      // A concurrent writer committed first, or an interrupted write left an object without metadata.
      const now = await this.head(key);
      if (now === undefined) return true;
      kept = options.ifExists === 'keep' ? now.ref : sameOrRefuse(now.ref, d);
      return false;
    });
    if (kept) return kept;
    await writeFileAtomic(file + METADATA_SUFFIX, encodeStoredMetadata(buildStoredMetadata(options, digest)));
    return { uri: this.uriOf(key), ...digest };
  }

  async get(uriOrKey: string, expectedSha256?: string): Promise<Uint8Array> {
    const key = this.keyOf(uriOrKey);
    const uri = this.uriOf(key);
    checkExpectedSha256(uri, expectedSha256);
    const file = this.pathOf(key);
    const meta = await this.readMetadata(key);
    if (meta === undefined && expectedSha256 === undefined) {
      throw new ArtifactNotFoundError(uri);
    }
    let bytes: Uint8Array;
    try {
      bytes = await fsp.readFile(file);
    } catch (err) {
      if (isNotFound(err)) throw new ArtifactNotFoundError(uri);
      throw err;
    }
    verifyArtifactBytes(uri, bytes, expectedSha256, meta);
    return bytes;
  }

  async head(uriOrKey: string): Promise<{ ref: ArtifactRef; metadata: ArtifactMetadata } | undefined> {
    const key = this.keyOf(uriOrKey);
    const meta = await this.readMetadata(key);
    if (meta === undefined) return undefined;
    try {
      await fsp.access(this.pathOf(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return toHead(this.uriOf(key), meta);
  }

  async exists(uriOrKey: string): Promise<boolean> {
    return (await this.head(uriOrKey)) !== undefined;
  }

  /** Keys of committed artifacts starting with `prefix`, sorted. */
  async list(prefix: string): Promise<string[]> {
    validateListPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash === -1 ? '' : prefix.slice(0, slash);
    const files = new Set<string>();
    await this.walk(dirKey, files);
    const keys: string[] = [];
    for (const file of files) {
      if (!file.endsWith(METADATA_SUFFIX)) continue;
      const key = file.slice(0, -METADATA_SUFFIX.length);
      if (key.startsWith(prefix) && files.has(key)) keys.push(key);
    }
    return keys.sort();
  }

  async delete(uriOrKey: string): Promise<void> {
    const file = this.pathOf(this.keyOf(uriOrKey));
    // Metadata first: an interrupted delete leaves an uncommitted object, never metadata without one.
    await fsp.rm(file + METADATA_SUFFIX, { force: true });
    await fsp.rm(file, { force: true });
  }

  private async readMetadata(key: string): Promise<StoredMetadata | undefined> {
    const file = this.pathOf(key) + METADATA_SUFFIX;
    let bytes: Uint8Array;
    try {
      bytes = await fsp.readFile(file);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return parseStoredMetadata(bytes, file);
  }

  /** Collects the keys of all non-hidden files below `dirKey`. */
  private async walk(dirKey: string, out: Set<string>): Promise<void> {
    const dir = dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/'));
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) await this.walk(key, out);
      else if (entry.isFile()) out.add(key);
    }
  }
}
