import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { runDoctor } from '../../cli/commands/doctor';

const root = path.join(__dirname, '..', '..');

/** A port nothing listens on: bind, read the number, close. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('dro doctor', () => {
  test('reports Node, the backend that will run, Go and the local store', async () => {
    const checks = await runDoctor();
    const byName = new Map(checks.map((c) => [c.name, c]));
    assert.match(byName.get('node')!.detail, new RegExp(process.version.replace(/\./g, '\\.')));
    assert.match(byName.get('tfjs backend')!.detail, /(wasm|cpu|tensorflow) will run/);
    assert.ok(byName.has('go'));
    assert.equal(byName.get('artifact store')!.ok, true);
  });

  test('an S3 endpoint that refuses is a failed check naming the endpoint', async () => {
    const port = await closedPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-'));
    const file = path.join(dir, 'run.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        storage: { kind: 's3', bucket: 'nope', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true },
      }),
    );
    const checks = await runDoctor(file);
    const store = checks.find((c) => c.name === 'artifact store')!;
    assert.equal(store.ok, false);
    assert.match(store.detail, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  test('a TEMPORAL_ADDRESS that does not answer fails the command with the address named', async () => {
    const port = await closedPort();
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'dro.cjs'), 'doctor'], {
      encoding: 'utf8',
      env: { ...process.env, TEMPORAL_ADDRESS: `127.0.0.1:${port}`, DRO_LOG_LEVEL: 'silent' },
    });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`FAIL\\s+temporal\\s+.*127\\.0\\.0\\.1:${port}`));
  });
});
