/**
 * Writing a file so that its name holds either nothing (or its previous content) or the complete
 * bytes: the content goes to a hidden temporary file in the same directory, is hashed on the way,
 * fsynced, checked, and only then moved into place.
 */
import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactData } from './artifact-store';
import type { ContentDigest } from './digest';

/** Temporary files start with '.', which keys may not, so they never collide with artifacts. */
export function tempPathFor(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
}

/** Makes a completed rename durable; some filesystems cannot fsync directories, which is harmless. */
export async function syncDirectory(dir: string): Promise<void> {
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

export interface AtomicWriteOptions {
  /**
   * Never replace an existing `file` without asking: the temporary file is linked into place
   * (link(2) fails when the name exists). When it exists, `noClobber` resolves to true to replace
   * it (a leftover of an interrupted write), false to keep it and discard the new bytes.
   */
  noClobber?: (digest: ContentDigest) => Promise<boolean>;
  /** Called with the digest before anything is moved into place; throwing discards the bytes. */
  verify?: (digest: ContentDigest) => void;
}

/**
 * Writes `data` to `file` through a temporary file + fsync + rename (or link) and returns the digest
 * of what was written. On any failure the temporary file is removed and `file` is untouched.
 */
export async function writeFileAtomic(
  file: string,
  data: ArtifactData,
  options: AtomicWriteOptions = {},
): Promise<ContentDigest> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
  const handle = await fsp.open(tmp, 'wx', 0o644);
  let open = true;
  try {
    const hash = createHash('sha256');
    let size = 0;
    const chunks = data instanceof Uint8Array ? [data] : data;
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
    options.verify?.(digest);
    const { noClobber } = options;
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
