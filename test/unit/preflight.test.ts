import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { localRootProblem, preflight, WORKFLOW_ID_LIMIT } from '../../cli/preflight';
import { parseConfig } from '../../config/load';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'preflight-'));
const opts = { cwd: dir, totalMemoryBytes: 64 * 1024 ** 3 };

describe('preflight', () => {
  test('the demo-sized defaults pass on a 64 GiB machine', async () => {
    assert.deepEqual(await preflight(parseConfig({ storage: { kind: 'local', root: dir } }), opts), []);
  });

  test('a run that cannot fit in memory is refused with the estimate and the largest part', async () => {
    const config = parseConfig({
      storage: { kind: 'local', root: dir },
      pretrain: { corpusSize: 1_000_000 },
      model: { resolution: 512 },
    });
    const problems = await preflight(config, { ...opts, totalMemoryBytes: 4 * 1024 ** 3 });
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, '$.pretrain.corpusSize');
    assert.match(
      problems[0]!.message,
      /needs at least [\d.]+ GiB of memory .*more than this machine's 4\.0 GiB/,
    );
  });

  test('a --run-id that makes the workflow id too long is named', async () => {
    const config = parseConfig({ storage: { kind: 'local', root: dir } });
    const problems = await preflight(config, { ...opts, runId: 'r'.repeat(WORKFLOW_ID_LIMIT) });
    assert.ok(
      problems.some((p) => p.path === '$.name' && /more than Temporal's 1000/.test(p.message)),
      JSON.stringify(problems),
    );
  });

  test('a missing checkpoint and an unsupported scheme are named by field', async () => {
    const missing = await preflight(
      parseConfig({ storage: { kind: 'local', root: dir }, model: { baseCheckpoint: 'nope.safetensors' } }),
      opts,
    );
    assert.deepEqual(
      missing.map((p) => p.path),
      ['$.model.baseCheckpoint'],
    );
    assert.match(missing[0]!.message, /cannot read .*nope\.safetensors \(no such file or directory\)/);
    const scheme = await preflight(
      parseConfig({ storage: { kind: 'local', root: dir }, model: { baseCheckpoint: 'ftp://h/m' } }),
      opts,
    );
    assert.match(scheme[0]!.message, /unsupported scheme 'ftp:\/\/'/);
  });

  test('a local artifact root must be (or become) a writable directory', async () => {
    assert.equal(await localRootProblem(path.join(dir, 'new', 'artifacts')), undefined);
    assert.equal(await localRootProblem('/dev/null'), '/dev/null is not a directory');
    fs.writeFileSync(path.join(dir, 'file'), '');
    assert.match(
      (await localRootProblem(path.join(dir, 'file', 'a')))!,
      /cannot be created: .*file is not a directory/,
    );
  });
});
