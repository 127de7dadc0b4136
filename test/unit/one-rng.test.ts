import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT as ROOT, sourceFiles } from '../harness/source-files';

// Everything that must reproduce draws from engine/rng.ts: a second generator would be a second
// stream to seed, checkpoint and keep in step, and Math.random cannot be seeded at all.
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
];

describe('one seeded generator', () => {
  const files = sourceFiles(DIRS);

  test('only engine/rng.ts implements a generator', () => {
    const generators = files.filter((f) => {
      const text = readFileSync(f, 'utf8');
      // splitmix's increment, and a method that yields raw 32-bit words: the marks of a PRNG core.
      return /0x9e3779b9/i.test(text) || /^\s*(?:private\s+|public\s+)?nextUint32\s*\(\)\s*:/m.test(text);
    });
    assert.ok(files.length > 100, `scanned ${files.length} files`);
    assert.deepEqual(
      generators.map((f) => path.relative(ROOT, f)),
      ['engine/rng.ts'],
    );
  });

  test('nothing draws from Math.random', () => {
    const users = files.filter((f) => /Math\.random\s*\(/.test(readFileSync(f, 'utf8')));
    assert.deepEqual(
      users.map((f) => path.relative(ROOT, f)),
      [],
    );
  });
});
