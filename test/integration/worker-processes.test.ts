/**
 * Compute workers as their own processes (`dro worker --queue gpu`): two of them against one
 * server share a run's ranking shards, and a run during which one of them is SIGKILLed still
 * completes, with the same artifacts as the undisturbed run.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startPipeline } from '../../cli/commands/run';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { LocalArtifactStore } from '../../storage';
import { pipelineProgressQuery } from '../../contracts/pipeline';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { tinyPipelineConfig } from '../harness/tiny-config';

const ROOT = path.join(__dirname, '..', '..');

interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
}

/** Starts `dro worker --queue gpu` and resolves once it says it started. */
function startGpuWorker(address: string, configFile: string): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'dro.cjs'), 'worker', '--queue', 'gpu', '--config', configFile],
    {
      cwd: ROOT,
      env: { ...process.env, TEMPORAL_ADDRESS: address, DRO_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start in 60 s:\n${text}`)), 60_000);
    child.stdout!.on('data', () => {
      if (text.includes('started on')) {
        clearTimeout(timer);
        resolve({ child, output: () => text });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${text}`));
    });
  });
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  await exited;
}

describe('compute workers as separate processes', { timeout: 420_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-workers-'));
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the tiny pipeline on a fresh store with two gpu worker processes and an in-process cpu worker. */
  async function runWithTwoWorkers(name: string, killOneAtStage?: string) {
    const root = path.join(dir, name);
    const config = tinyPipelineConfig({ name, storage: { kind: 'local', root } });
    const configFile = path.join(dir, `${name}.json`);
    fs.writeFileSync(configFile, JSON.stringify({ name, storage: { kind: 'local', root } }));
    const store = new LocalArtifactStore({ root });
    const gpu = await Promise.all([
      startGpuWorker(temporal.address, configFile),
      startGpuWorker(temporal.address, configFile),
    ]);
    const cpu = await temporal.startWorkers({ store, taskQueues: [TASK_QUEUES.cpu] });
    try {
      const handle = await startPipeline(temporal.client, { runId: name, config });
      let killed = false;
      if (killOneAtStage) {
        for (let i = 0; i < 600 && !killed; i++) {
          const p = await handle.query(pipelineProgressQuery).catch(() => undefined);
          if (p?.running?.includes(killOneAtStage as never)) {
            gpu[0]!.child.kill('SIGKILL');
            killed = true;
          } else await new Promise((r) => setTimeout(r, 250));
        }
        assert.ok(killed, `the run never reached ${killOneAtStage}`);
      }
      const result = await handle.result();
      const history = await handle.fetchHistory();
      return { result, history, killed };
    } finally {
      await cpu.stop();
      await Promise.all(gpu.map(stopWorker));
    }
  }

  test('two gpu worker processes share the ranking shards; SIGKILL of one mid-run still completes the run', async () => {
    const first = await runWithTwoWorkers('two-workers');
    // Who started each ranking part: the ActivityTaskStarted event names the worker's identity.
    const events = first.history.events ?? [];
    const scheduledIds = new Map<string, string>();
    for (const e of events) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a?.activityType?.name === 'scoreRankingShards') scheduledIds.set(String(e.eventId), 'part');
    }
    const identities = new Set(
      events
        .map((e) => e.activityTaskStartedEventAttributes)
        .filter((a) => a && scheduledIds.has(String(a.scheduledEventId)))
        .map((a) => a!.identity),
    );
    assert.equal(scheduledIds.size, 4);
    assert.equal(identities.size, 2, `ranking parts ran on ${[...identities].join(', ')}`);

    const second = await runWithTwoWorkers('one-killed', 'dro');
    assert.ok(second.killed);
    // Same config, separate stores: the surviving worker finished the run with the same models.
    for (const m of ['base', 'sft', 'dro'] as const)
      assert.equal(second.result.models[m]?.sha256, first.result.models[m]?.sha256, `${m} model differs`);
  });
});
