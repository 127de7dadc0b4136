/**
 * Artifact store on the local filesystem.
 *
 * Layout: the artifact `key` is the file `<root>/<key>`, its metadata the file
 * `<root>/<key>.meta.json`. Both are streamed to a hidden temporary file in the same directory,
 * hashed on the way, fsynced and moved into place (storage/atomic-file.ts), so a key holds either
 * nothing or complete bytes, and no artifact has to fit in memory to be written. The object is
 * moved with link(2), which fails when the name exists, so a committed artifact is never
 * replaced (write-once; see storage/write-once.ts). The object is renamed into
 * place first and the metadata second; an object without metadata is the leftover of an
 * interrupted write and is invisible to `head`, `exists` and `list`.
 *
 * Because keys map to paths, `a` and `a/b` cannot both be artifacts here (they can in S3).
 */
import type { Dirent, ReadStream } from 'node:fs';
import fsp from 'node:fs/promises';
import { putFileWith } from './put-file';
import path from 'node:path';
import { stateDir } from '../infra/paths';
import { artifactBytesRead, artifactBytesWritten } from '../infra/pipeline-metrics';
import type {
  ArtifactData,
  ArtifactMetadata,
  ArtifactRef,
  ArtifactStore,
  PutOptions,
} from './artifact-store';
import { writeFileAtomic } from './atomic-file';
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
import { checkDigest, checkExpectedSha256, expectedContent, readVerified } from './verify';
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

/** Opens `file` for reading; a missing file is ArtifactNotFoundError for `uri`. */
async function openForRead(file: string, uri: string): Promise<{ stream: ReadStream; size: number }> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (err) {
    if (isNotFound(err)) throw new ArtifactNotFoundError(uri);
    throw err;
  }
  try {
    const { size } = await handle.stat();
    return { stream: handle.createReadStream({ highWaterMark: READ_CHUNK }), size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Bytes per read: large enough that hashing, not system calls, dominates. */
const READ_CHUNK = 4 * 1024 * 1024;

const STORE_LABEL = { store: 'local' } as const;

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

  async put(key: string, data: ArtifactData, options: PutOptions): Promise<ArtifactRef> {
    validatePutOptions(key, options);
    const file = this.pathOf(key);
    const committed = await this.head(key);
    if (committed) return settleExisting(committed.ref, data, options);
    let kept: ArtifactRef | undefined;
    const digest = await writeFileAtomic(file, data, {
      noClobber: async (d) => {
        // A concurrent writer committed first, or an interrupted write left an object without metadata.
        const now = await this.head(key);
        if (now === undefined) return true;
        kept = options.ifExists === 'keep' ? now.ref : sameOrRefuse(now.ref, d);
        return false;
      },
    });
    if (kept) return kept;
    await writeFileAtomic(file + METADATA_SUFFIX, encodeStoredMetadata(buildStoredMetadata(options, digest)));
    artifactBytesWritten.inc(STORE_LABEL, digest.size);
    return { uri: this.uriOf(key), ...digest };
  }

  putFile(key: string, file: string, options: PutOptions): Promise<ArtifactRef> {
    return putFileWith((k, data, o) => this.put(k, data, o), key, file, options, READ_CHUNK);
  }

  async get(uriOrKey: string, expectedSha256?: string): Promise<Uint8Array> {
    const { uri, expected, file } = await this.prepareRead(uriOrKey, expectedSha256);
    const { stream, size } = await openForRead(file, uri);
    try {
      const bytes = await readVerified(uri, stream, expected, size);
      artifactBytesRead.inc(STORE_LABEL, bytes.byteLength);
      return bytes;
    } finally {
      stream.destroy();
    }
  }

  async getToFile(uriOrKey: string, file: string, expectedSha256?: string): Promise<ArtifactRef> {
    const { uri, expected, file: source } = await this.prepareRead(uriOrKey, expectedSha256);
    const { stream } = await openForRead(source, uri);
    try {
      const digest = await writeFileAtomic(path.resolve(file), stream, {
        verify: (d) => checkDigest(uri, expected, d),
      });
      artifactBytesRead.inc(STORE_LABEL, digest.size);
      return { uri, ...digest };
    } finally {
      stream.destroy();
    }
  }

  private async prepareRead(uriOrKey: string, expectedSha256: string | undefined) {
    const key = this.keyOf(uriOrKey);
    const uri = this.uriOf(key);
    checkExpectedSha256(uri, expectedSha256);
    const meta = await this.readMetadata(key);
    if (meta === undefined && expectedSha256 === undefined) throw new ArtifactNotFoundError(uri);
    return { uri, expected: expectedContent(uri, expectedSha256, meta), file: this.pathOf(key) };
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
