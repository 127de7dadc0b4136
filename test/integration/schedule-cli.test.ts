/**
 * Schedules through the real CLI against a real Temporal server: `dro schedule create` with an
 * interval, `trigger` starts a pipeline run that the workers complete, `list`, `pause` and
 * `delete` act on it; a malformed interval or cron and an unknown schedule are refused by name.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LocalArtifactStore } from '../../storage';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { tinyPipelineConfig } from '../harness/tiny-config';

const ROOT = path.join(__dirname, '..', '..');

describe('dro schedule', { timeout: 300_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  let configFile: string;
  let root: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-schedule-'));
    root = path.join(dir, 'artifacts');
    const { $schema: _schema, ...config } = tinyPipelineConfig({
      name: 'nightly',
      storage: { kind: 'local', root },
      eval: { enabled: false },
    });
    configFile = path.join(dir, 'nightly.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const dro = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), ...args, '--config', configFile], {
      cwd: dir,
      env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, DRO_LOG_LEVEL: 'error' },
      encoding: 'utf8',
      timeout: 60_000,
    });

  test('a CLI-created schedule starts a run that completes', async () => {
    const created = dro('schedule', 'create', 'nightly', '--every', '1d');
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /Schedule nightly created: every 1d/);
    const listed = dro('schedule', 'list', '--json');
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { schedule: string; paused: boolean }[]).map((s) => [
        s.schedule,
        s.paused,
      ]),
      [['nightly', false]],
    );

    const workers = await temporal.startWorkers({ store: new LocalArtifactStore({ root }) });
    try {
      const triggered = dro('schedule', 'trigger', 'nightly');
      assert.equal(triggered.status, 0, triggered.stderr);
      // The scheduled run's id is the schedule's id plus the time it fired.
      let runId: string | undefined;
      for (let i = 0; i < 60 && !runId; i++) {
        for await (const w of temporal.client.workflow.list({ query: "WorkflowType = 'pipelineWorkflow'" }))
          if (w.workflowId.startsWith('nightly')) runId = w.workflowId;
        if (!runId) await new Promise((r) => setTimeout(r, 500));
      }
      assert.ok(runId, 'the trigger started no run');
      const result = (await temporal.client.workflow.getHandle(runId).result()) as { runId: string };
      assert.equal(result.runId, runId);
      const manifests = fs.readdirSync(path.join(root, 'runs'));
      assert.ok(
        manifests.some((d) => d.startsWith('nightly')),
        manifests.join(', '),
      );
    } finally {
      await workers.stop();
    }

    assert.equal(dro('schedule', 'pause', 'nightly').status, 0);
    assert.deepEqual(
      (JSON.parse(dro('schedule', 'list', '--json').stdout) as { paused: boolean }[]).map((s) => s.paused),
      [true],
    );
    assert.equal(dro('schedule', 'delete', 'nightly').status, 0);
    assert.match(dro('schedule', 'list').stdout, /no schedules/);
  });

  test('malformed intervals, cron specs and unknown schedules are refused by name', () => {
    const every = dro('schedule', 'create', 'bad', '--every', 'often');
    assert.equal(every.status, 1);
    assert.match(every.stderr, /--every "often": use a positive number with s, m, h or d/);
    const cron = dro('schedule', 'create', 'bad', '--cron', '61 * *');
    assert.equal(cron.status, 1);
    assert.match(cron.stderr, /--cron "61 \* \*": use 5 fields/);
    const unknown = dro('schedule', 'pause', 'nothing-here');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no schedule nothing-here/);
  });
});
