/**
 * `dro replay` against a real Temporal server: a run made by this code's workflows replays
 * cleanly; a run whose history another workflow implementation wrote (the same type name, a timer
 * where this code schedules an activity) is reported as FAILED by id, and the command exits 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NativeConnection, Worker } from '@temporalio/worker';
import { LocalArtifactStore } from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { smokeWorkflow } from '../../workflows/smoke';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';

const ROOT = path.join(__dirname, '..', '..');

describe('dro replay', { timeout: 300_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-replay-'));
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const replay = () =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), 'replay', '--json'], {
      cwd: dir,
      env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, DRO_LOG_LEVEL: 'error' },
      encoding: 'utf8',
      timeout: 240_000,
    });

  test("this code's runs replay; another implementation's history fails by id", async () => {
    const workers = await temporal.startWorkers({
      store: new LocalArtifactStore({ root: path.join(dir, 'a') }),
    });
    try {
      await temporal.client.workflow.execute(smokeWorkflow, {
        taskQueue: WORKFLOW_TASK_QUEUE,
        workflowId: 'replay-same',
        args: [{ message: 'replayed', pauseMs: 10 }],
      });
    } finally {
      await workers.stop();
    }
    const clean = replay();
    assert.equal(clean.status, 0, clean.stderr + clean.stdout);
    const cleanRows = JSON.parse(clean.stdout) as { workflowId: string; ok: boolean }[];
    assert.deepEqual(
      cleanRows.map((r) => [r.workflowId, r.ok]),
      [['replay-same', true]],
    );

    // The same workflow type, written by other code on its own queue.
    const connection = await NativeConnection.connect({ address: temporal.address });
    try {
      const other = await Worker.create({
        connection,
        taskQueue: 'divergent',
        workflowsPath: path.join(__dirname, '..', 'fixtures', 'workflows', 'divergent-smoke.ts'),
      });
      await other.runUntil(
        temporal.client.workflow.execute('smokeWorkflow', {
          taskQueue: 'divergent',
          workflowId: 'replay-divergent',
        }),
      );
    } finally {
      await connection.close();
    }
    const r = replay();
    assert.equal(r.status, 1, r.stderr + r.stdout);
    const rows = JSON.parse(r.stdout) as { workflowId: string; ok: boolean; error?: string }[];
    const divergent = rows.find((x) => x.workflowId === 'replay-divergent');
    assert.equal(divergent?.ok, false, r.stdout);
    assert.ok(divergent?.error, 'the failure says why');
    assert.equal(rows.find((x) => x.workflowId === 'replay-same')?.ok, true);
  });
});
