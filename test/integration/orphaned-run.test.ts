/**
 * A `dro run` killed with SIGKILL mid-activity leaves its run open in the state directory's
 * history. The next `dro run` there runs its own config to the end, names the open run, and never
 * executes the open run's work (each run of the embedded server has its own task queues).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tinyPipelineConfig } from '../harness/tiny-config';

const ROOT = path.join(__dirname, '..', '..');
const DRO = path.join(ROOT, 'bin', 'dro.cjs');

describe('an interrupted dro run', { timeout: 420_000 }, () => {
  let dir: string;
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = {
      ...process.env,
      DRO_STATE_DIR: path.join(dir, 'state'),
      DRO_LOG_LEVEL: 'error',
    };
    delete e.TEMPORAL_ADDRESS;
    return e;
  };
  const writeConfig = (name: string, seed: number): string => {
    const file = path.join(dir, `${name}.json`);
    const {
      $schema: _schema,
      storage: _storage,
      ...config
    } = tinyPipelineConfig({
      name,
      seed,
      temporal: { embeddedPort: 0, embeddedUiPort: 0 },
    });
    fs.writeFileSync(file, JSON.stringify(config));
    return file;
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-orphan-'));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the next dro run in the same state directory runs its own config and reports the open run', async () => {
    // 1. Start a run and SIGKILL it once it is inside a compute activity.
    const first = spawn(
      process.execPath,
      [DRO, 'run', '--config', writeConfig('first', 1), '--run-id', 'first'],
      {
        cwd: dir,
        env: env(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    first.stdout.on('data', (d: Buffer) => (out += d.toString()));
    first.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      first.on('exit', (_c, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the first run never reached pretraining:\n${out}`)),
        180_000,
      );
      const check = (): void => {
        if (/\[pretrain\] started/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      first.stdout.on('data', check);
    });
    first.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    // 2. Another config in the same state directory: it runs to the end and names the open run.
    const second = spawnSync(
      process.execPath,
      [DRO, 'run', '--config', writeConfig('second', 2), '--run-id', 'second'],
      {
        cwd: dir,
        env: env(),
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    assert.equal(second.status, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /Open run first \(from an earlier, interrupted dro run\) is left alone/);
    assert.match(second.stdout, /Report: +file:\/\/\S+\/runs\/second\/executions\/\S+\/report\.html/);

    // 3. The open run is still open and its pretraining was not run by the second run's workers.
    const status = spawnSync(
      process.execPath,
      [DRO, 'status', 'first', '--json', '--config', writeConfig('first', 1)],
      {
        cwd: dir,
        env: env(),
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.equal(status.status, 0, status.stdout + status.stderr);
    const described = JSON.parse(status.stdout) as { status: string };
    assert.equal(described.status, 'RUNNING');
    // Stage cache entries are committed only when a stage finishes: both runs finished their base
    // stage (two seeds, two keys), but only the second run's pretraining finished.
    const keys = (stage: string) => fs.readdirSync(path.join(dir, 'state', 'artifacts', 'cache', stage));
    assert.equal(keys('base').length, 2);
    assert.equal(keys('pretrain').length, 1, 'the open run was left alone');
  });
});
