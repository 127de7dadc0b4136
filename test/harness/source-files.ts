import { readdirSync } from 'node:fs';
import path from 'node:path';

/** The repository root, for tests that read the code itself. */
export const REPO_ROOT = path.resolve(__dirname, '../..');

/**
 * Every file under `dirs` (relative to the repository root) whose name matches `pattern`, leaving
 * out `node_modules` and test `fixtures` (recorded data, not code).
 */
export function sourceFiles(dirs: readonly string[], pattern: RegExp = /\.(ts|mts|cts)$/): string[] {
  return dirs.flatMap((dir) =>
    readdirSync(path.join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && pattern.test(e.name))
      .map((e) => path.join(e.parentPath, e.name))
      .filter((f) => !f.split(path.sep).some((part) => part === 'node_modules' || part === 'fixtures')),
  );
}
