/**
 * Every error class the engine defines is either listed as permanent (a Temporal retry policy
 * then fails at once instead of retrying what cannot succeed) or named here as transient with a
 * reason, and each sets `name` to its class name, which is how the failure type is derived. A new
 * error class fails this test until someone decides which it is.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  ENGINE_PERMANENT_ERRORS,
  NON_RETRYABLE_ERROR_TYPES,
  STORE_PERMANENT_ERRORS,
} from '../../contracts/errors';
import { PERMANENT_STORE_ERROR_TYPES } from '../../storage';
import { REPO_ROOT, sourceFiles } from '../harness/source-files';

/** Engine errors that a retry can fix, with why. */
const TRANSIENT: Record<string, string> = {};

test('every engine error class is classified and names itself', () => {
  const root = path.join(REPO_ROOT, 'engine');
  const found: string[] = [];
  for (const file of sourceFiles(['engine'], /\.ts$/)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/class (\w+Error) extends \w*Error\b[^{]*\{([\s\S]*?)\n\}/g)) {
      const [, name, body] = m;
      found.push(name!);
      assert.match(
        body!,
        new RegExp(`name = '${name}'`),
        `${path.relative(root, file)}: ${name} must set name = '${name}'`,
      );
      const permanent = (ENGINE_PERMANENT_ERRORS as readonly string[]).includes(name!);
      assert.ok(
        permanent || name! in TRANSIENT,
        `${path.relative(root, file)}: ${name} is neither in ENGINE_PERMANENT_ERRORS nor listed as transient`,
      );
      if (permanent) assert.ok(NON_RETRYABLE_ERROR_TYPES.includes(name!));
    }
  }
  assert.ok(found.length >= 20, `only ${found.length} error classes found: the scan is broken`);
});

// The store's permanent types are spelled twice: from its error classes (storage may not import
// contracts) and for workflows (which may not import storage). The two agree.
test("the workflows' list of permanent store failures is the store's own", () => {
  assert.deepEqual([...STORE_PERMANENT_ERRORS].sort(), [...PERMANENT_STORE_ERROR_TYPES].sort());
  for (const t of PERMANENT_STORE_ERROR_TYPES) assert.ok(NON_RETRYABLE_ERROR_TYPES.includes(t), t);
});
