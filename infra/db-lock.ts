/**
 * One dev server per database file. Two `temporal server start-dev` processes on one SQLite file
 * both claim its history shards and take them from each other ("shard status unknown"), which
 * fails the workflows of both; so a server takes `<dbFile>.lock` (the owning process' pid) before
 * it starts and gives it back when it stops. A lock whose process is gone is stale and taken over.
 */
import fs from 'node:fs';

export interface DbLockOwner {
  pid: number;
  /** Where the owner's server listens, when it wrote it. */
  address?: string;
}

export function dbLockPath(dbFile: string): string {
  return `${dbFile}.lock`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): DbLockOwner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as DbLockOwner;
    return Number.isInteger(owner.pid) && owner.pid > 0 ? owner : undefined;
  } catch {
    return undefined;
  }
}

/** The live process holding the lock of `dbFile`, if any. */
export function databaseOwner(dbFile: string): DbLockOwner | undefined {
  const owner = readOwner(dbLockPath(dbFile));
  return owner && alive(owner.pid) ? owner : undefined;
}

/**
 * Takes the lock of `dbFile` for this process, or returns the live process that holds it.
 * `release` removes the lock only while this process still owns it.
 */
export function lockDatabase(
  dbFile: string,
  address: string,
): { release: () => void; heldBy?: undefined } | { heldBy: DbLockOwner; release?: undefined } {
  const file = dbLockPath(dbFile);
  const mine: DbLockOwner = { pid: process.pid, address };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx' });
      return {
        release: () => {
          if (readOwner(file)?.pid === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = databaseOwner(dbFile);
    if (owner) return { heldBy: owner };
    // Stale (its process is gone) or unreadable: take it over.
    fs.rmSync(file, { force: true });
  }
  throw new Error(`could not take the lock ${file}: it keeps reappearing`);
}
