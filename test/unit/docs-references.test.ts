import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

// A comment that explains the code by pointing at a note must point at one a reader of this
// repository has: a file under docs/ (or another path in the repository), never a note kept elsewhere.
const ROOT = path.resolve(__dirname, '../..');
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

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'fixtures') continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sources(full));
    else if (/\.(ts|py|sh|mjs|cjs)$/.test(name)) out.push(full);
  }
  return out;
}

describe('notes the code cites', () => {
  const files = DIRS.flatMap((d) => sources(path.join(ROOT, d)));

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
