import os from 'node:os';
import path from 'node:path';

/**
 * Where built server binaries are cached, outside any checkout so that every clone shares them.
 * Override with DRO_CACHE_DIR.
 */
export function cacheDir(): string {
  if (process.env.DRO_CACHE_DIR) return path.resolve(process.env.DRO_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'dro-pipeline');
}

export function binDir(): string {
  return path.join(cacheDir(), 'bin');
}

/**
 * Project state (Temporal database, local artifacts) lives under `.dro/` of the working directory
 * unless DRO_STATE_DIR says otherwise.
 */
export function stateDir(): string {
  return path.resolve(process.env.DRO_STATE_DIR ?? '.dro');
}
