/**
 * `tools/dro-curve.ts` refuses a missing file, a file that is not a model bundle and a bad number
 * with one line naming the option, before a backend loads, and prints no stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { RAW_JS_ERROR, STACK_FRAME } from './measured-cli';

const ROOT = path.join(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-hostile-curve-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function curve(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['--import', require.resolve('tsx'), path.join(ROOT, 'tools', 'dro-curve.ts'), ...args],
    {
      cwd: work,
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('tools/dro-curve.ts refuses bad arguments in one line', () => {
  const notModel = path.join(work, 'notes.json');
  fs.writeFileSync(notModel, '{"hello": "world"}');
  const cases: [string, string[], RegExp][] = [
    ['no --model', [], /^dro-curve: --model is required$/m],
    [
      'a missing model file',
      ['--model', 'missing.safetensors'],
      /--model missing\.safetensors: cannot read it \(no such file\)/,
    ],
    ['a file that is not a model', ['--model', notModel, '--experts', notModel], /--model .*notes\.json: /],
  ];
  for (const [name, args, expect] of cases)
    test(name, () => {
      const r = curve(...args);
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, expect);
      assert.doesNotMatch(r.output, STACK_FRAME, `stack trace: ${r.output}`);
      assert.doesNotMatch(r.output, RAW_JS_ERROR, `raw JavaScript error: ${r.output}`);
      // Refused before the backend loaded: its selection is logged when it loads.
      assert.doesNotMatch(r.output, /backend selected/);
    });
});
