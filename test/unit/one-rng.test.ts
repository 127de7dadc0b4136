import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

// Everything that must reproduce draws from engine/rng.ts: a second generator would be a second
// stream to seed, checkpoint and keep in step, and Math.random cannot be seeded at all.
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
];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sources(full));
    else if (/\.(ts|mts|cts)$/.test(name)) out.push(full);
  }
  return out;
}

describe('one seeded generator', () => {
  const files = DIRS.flatMap((d) => sources(path.join(ROOT, d)));

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
