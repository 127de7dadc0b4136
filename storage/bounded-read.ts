/**
 * Reading a user-named local file whole, with a byte bound that holds whatever the path is: a
 * regular file is refused by its size before a byte is read; a device such as /dev/zero or a pipe
 * (`<(...)`, a FIFO) reports no size, so it is read until the bound and refused past it, and a FIFO
 * that nobody writes to ends instead of blocking the process.
 */
import fs from 'node:fs';

export type BoundedReadProblem = 'missing' | 'unreadable' | 'directory' | 'too-large' | 'silent' | 'changed';

/** Why a bounded read refused; the message names the file as the user gave it. */
export class BoundedReadError extends Error {
  override name = 'BoundedReadError';
  constructor(
    readonly file: string,
    readonly problem: BoundedReadProblem,
    readonly detail: string,
    /** For `too-large`: the size the file reported, when it reported one. */
    readonly size?: number,
  ) {
    super(`${file}: ${detail}`);
  }
}

export interface BoundedReadOptions {
  /** What the file is, for messages (`config`, `suite`). */
  what?: string;
  /** How long a pipe may stay silent before the read gives up. Default 10 s. */
  silenceMs?: number;
}

const mib = (bytes: number): string =>
  bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${bytes} bytes`;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function openError(file: string, err: unknown): BoundedReadError {
  const code = codeOf(err);
  if (code === 'ENOENT') return new BoundedReadError(file, 'missing', 'cannot read it (no such file)');
  if (code === 'EISDIR') return new BoundedReadError(file, 'directory', 'cannot read it (is a directory)');
  if (code === 'EACCES')
    return new BoundedReadError(file, 'unreadable', 'cannot read it (permission denied)');
  return new BoundedReadError(file, 'unreadable', `cannot read it (${code ?? (err as Error).message})`);
}

/** The file's bytes, at most `limit` of them; a `BoundedReadError` otherwise. */
export function readFileBounded(file: string, limit: number, options: BoundedReadOptions = {}): Uint8Array {
  const what = options.what ?? 'file';
  const tooLarge = (size?: number) =>
    new BoundedReadError(
      file,
      'too-large',
      `${size === undefined ? `more than ${mib(limit)}` : mib(size)}, more than the ${mib(limit)} a ${what} may have; not read`,
      size,
    );
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw openError(file, err);
  }
  if (stat.isDirectory()) throw new BoundedReadError(file, 'directory', 'cannot read it (is a directory)');
  const regular = stat.isFile();
  if (regular && stat.size > limit) throw tooLarge(stat.size);
  let fd: number;
  try {
    // Non-blocking, so opening a FIFO without a writer returns at once.
    fd = fs.openSync(file, regular ? 'r' : fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw openError(file, err);
  }
  try {
    const buf = Buffer.alloc(Math.min(limit, regular ? stat.size : limit) + 1);
    let n = 0;
    let silentSince = Date.now();
    const silenceMs = options.silenceMs ?? 10_000;
    while (n < buf.length) {
      let got: number;
      try {
        got = fs.readSync(fd, buf, n, buf.length - n, regular ? n : null);
      } catch (err) {
        if (codeOf(err) !== 'EAGAIN') throw openError(file, err);
        if (Date.now() - silentSince > silenceMs)
          throw new BoundedReadError(file, 'silent', `nothing arrived in ${silenceMs / 1000} s; not read`);
        sleepSync(10);
        continue;
      }
      if (got === 0) break;
      n += got;
      silentSince = Date.now();
    }
    if (n > limit) throw tooLarge();
    // A regular file that grew between the stat and the read is not what was checked.
    if (regular && n !== stat.size)
      throw new BoundedReadError(file, 'changed', 'changed while it was read; try again');
    return new Uint8Array(buf.buffer, buf.byteOffset, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Bytes read per call: far below the 2 GiB a single read (and `fs.readFile`) can return. */
const CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * A regular file's bytes of any size, read in chunks into one array of its size (`fs.readFile`
 * stops at 2 GiB, which a float32 SD1.5 bundle passes). Errors are Node's, with their codes.
 */
export async function readWholeFile(file: string): Promise<Uint8Array> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const out = new Uint8Array(size);
    let n = 0;
    while (n < size) {
      const { bytesRead } = await handle.read(out, n, Math.min(CHUNK_BYTES, size - n), n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n !== size) throw new BoundedReadError(file, 'changed', 'changed while it was read; try again');
    return out;
  } finally {
    await handle.close();
  }
}
