/**
 * Failures to reach or provide Temporal give one clear message and a non-zero exit: a
 * TEMPORAL_ADDRESS that does not answer, and no binary with no Go toolchain to build one.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  freePort,
  resolveTemporal,
  startDevServer,
  TemporalUnavailableError,
} from '../../infra/temporal-server';

const ROOT = path.resolve(__dirname, '..', '..');

const DRO = path.join(ROOT, 'bin', 'dro.cjs');

function droRun(
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DRO, 'run'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** The environment without anything that would point at Temporal, Go or a cache. */
function cleanEnv(overrides: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of [
    'TEMPORAL_ADDRESS',
    'TEMPORAL_NAMESPACE',
    'DRO_TEMPORAL_BIN',
    'DRO_CACHE_DIR',
    'DRO_STATE_DIR',
    'GOROOT',
  ]) {
    delete env[k];
  }
  return { ...env, NODE_NO_WARNINGS: '1', ...overrides };
}

describe('Temporal resolution errors', { timeout: 90_000 }, () => {
  let tmp: string;
  let silent: net.Server;
  let silentAddress: string;
  const silentSockets = new Set<net.Socket>();

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-temporal-errors-'));
    // Accepts connections and never says anything: a wrong service or a hung cluster.
    silent = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentAddress = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  });

  after(async () => {
    for (const socket of silentSockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a refused TEMPORAL_ADDRESS is named in the error', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    await assert.rejects(
      resolveTemporal({ env: { TEMPORAL_ADDRESS: address }, checkTimeoutMs: 1500 }),
      (err: unknown) =>
        err instanceof TemporalUnavailableError && err.message.includes(`TEMPORAL_ADDRESS=${address}`),
    );
  });

  test('a TEMPORAL_ADDRESS that accepts but never answers fails within the check timeout', async () => {
    const started = Date.now();
    await assert.rejects(
      resolveTemporal({ env: { TEMPORAL_ADDRESS: silentAddress }, checkTimeoutMs: 2000 }),
      (err: unknown) => err instanceof TemporalUnavailableError && err.message.includes(silentAddress),
    );
    assert.ok(Date.now() - started < 6000, `took ${Date.now() - started} ms`);
  });

  test('`dro run` with a dead TEMPORAL_ADDRESS prints one error naming it and exits non-zero', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const r = await droRun(cleanEnv({ TEMPORAL_ADDRESS: address, DRO_STATE_DIR: path.join(tmp, 'state-a') }));
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
    assert.match(lines[0] ?? '', new RegExp(`^TEMPORAL_ADDRESS=${address}: no Temporal server answered`));
    assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
  });

  test('a dev server binary that exits during start-up is reported with its log', async () => {
    const fake = path.join(tmp, 'temporal-crashes');
    fs.writeFileSync(fake, '#!/bin/sh\necho "fatal: cannot open database" >&2\nexit 3\n', { mode: 0o755 });
    await assert.rejects(
      startDevServer({
        binary: fake,
        dbFile: path.join(tmp, 'crash', 'temporal.db'),
        port: 0,
        headless: true,
      }),
      (err: unknown) =>
        err instanceof TemporalUnavailableError &&
        /stopped during start-up \(exit 3\)/.test(err.message) &&
        err.message.includes('fatal: cannot open database'),
    );
  });

  test('a dev server that never answers times out and leaves no process behind', async () => {
    const fake = path.join(tmp, 'temporal-hangs');
    const pidFile = path.join(tmp, 'hang.pid');
    fs.writeFileSync(fake, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 300\n`, { mode: 0o755 });
    const started = Date.now();
    await assert.rejects(
      startDevServer({
        binary: fake,
        dbFile: path.join(tmp, 'hang', 'temporal.db'),
        port: 0,
        headless: true,
        startTimeoutMs: 1500,
      }),
      (err: unknown) =>
        err instanceof TemporalUnavailableError && /did not answer within 1.5 s/.test(err.message),
    );
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.throws(() => process.kill(pid, 0), 'the hung server process is still alive');
  });

  test('a second dev server on a database in use is refused by name; the first keeps working', async () => {
    const dbFile = path.join(tmp, 'shared', 'temporal.db');
    const first = await startDevServer({ dbFile, port: 0, headless: true });
    try {
      await assert.rejects(
        startDevServer({ dbFile, port: 0, headless: true }),
        (err: unknown) =>
          err instanceof TemporalUnavailableError &&
          err.message.includes(dbFile) &&
          err.message.includes(`process ${process.pid} (its server at ${first.address})`) &&
          /dro server/.test(err.message),
      );
      // Asked for the first server's own port, it names the database, not the port.
      await assert.rejects(
        startDevServer({ dbFile, port: Number(first.address.split(':').pop()), headless: true }),
        (err: unknown) =>
          err instanceof TemporalUnavailableError && /runs one on that database/.test(err.message),
      );
      // Nothing else took the database: the first server's namespace still answers.
      const other = await resolveTemporal({ env: { TEMPORAL_ADDRESS: first.address }, checkTimeoutMs: 5000 });
      assert.equal(other.address, first.address);
    } finally {
      await first.stop();
    }
    // Stopped, it gives the database back.
    const next = await startDevServer({ dbFile, port: 0, headless: true });
    await next.stop();
  });

  test('`dro run` with no binary and no Go says to install Go', async () => {
    const emptyBin = path.join(tmp, 'empty-bin');
    fs.mkdirSync(emptyBin);
    const r = await droRun(
      cleanEnv({
        PATH: emptyBin,
        DRO_CACHE_DIR: path.join(tmp, 'cache'),
        DRO_STATE_DIR: path.join(tmp, 'state-b'),
      }),
    );
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /temporal was not found \(checked \$DRO_TEMPORAL_BIN, PATH and .*cache.*temporal-1\.5\.1\)/,
    );
    assert.match(r.stderr, /Go is not installed\. Install Go/);
    assert.ok(!fs.existsSync(path.join(tmp, 'state-b', 'temporal.db')), 'no server should have been started');
  });
});
