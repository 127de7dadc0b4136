import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT as ROOT, sourceFiles } from '../harness/source-files';

// A comment that explains the code by pointing at a note must point at one a reader of this
// repository has: a file under docs/ (or another path in the repository), never a note kept elsewhere.
const DIRS = [
  'engine',
  'activities',
  'workflows',
  'workers',
  'storage',
  'cli',
  'contracts',
  'config',
  'tools',
  'bench',
  'test',
];

describe('notes the code cites', () => {
  const files = sourceFiles(DIRS, /\.(ts|py|sh|mjs|cjs)$/);

  test('every docs/*.md a source file names exists', () => {
    const missing: string[] = [];
    let cited = 0;
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\bdocs\/[\w.-]+\.md\b/g)) {
        cited++;
        if (!existsSync(path.join(ROOT, m[0]))) missing.push(`${path.relative(ROOT, f)}: ${m[0]}`);
      }
    }
    assert.ok(cited > 5, `only ${cited} citations found`);
    assert.deepEqual(missing, []);
  });

  test('no source file cites a design note kept outside the repository', () => {
    const outside = files.filter(
      (f) => /\bDESIGN\.md\b/.test(readFileSync(f, 'utf8')) && !f.endsWith('docs-references.test.ts'),
    );
    assert.deepEqual(
      outside.map((f) => path.relative(ROOT, f)),
      [],
    );
  });
});
