/**
 * The project's npm settings: no `.npmrc` key npm does not know (npm 11 warns about each on every
 * `npm`/`npx` call, and npm 12 drops them), and onnxruntime-node's install script, which would
 * download the CUDA provider libraries from NuGet, is denied through package.json's allowScripts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

const ROOT = path.join(__dirname, '..', '..');
const npm = (...args: string[]) =>
  spawnSync('npm', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
const hasNpm = npm('--version').status === 0;

describe('npm settings', { skip: hasNpm ? false : 'npm is not on the PATH' }, () => {
  test('npm reads the project config without an unknown-config warning', () => {
    const r = npm('config', 'get', 'registry');
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Unknown project config/);
  });

  test("onnxruntime-node's install script is denied, so npm ci downloads no CUDA libraries", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      allowScripts?: Record<string, boolean>;
    };
    assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
    // npm versions with allowScripts (11.x) list the install scripts the policy leaves undecided.
    const pending = npm('approve-scripts', '--allow-scripts-pending');
    if (pending.status !== 0) return;
    assert.doesNotMatch(pending.stdout, /onnxruntime-node/, pending.stdout);
  });

  test('CI skips the download on npm versions without allowScripts too', () => {
    const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
    assert.match(ci, /^export ONNXRUNTIME_NODE_INSTALL=skip$/m);
    assert.ok(ci.indexOf('ONNXRUNTIME_NODE_INSTALL=skip') < ci.indexOf('npm ci'));
  });
});
