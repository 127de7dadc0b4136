/**
 * `dro worker --metrics`: a tiny run on two worker processes (compute and I/O), each serving
 * Prometheus metrics. Scraped during and after the run, the series move: training steps count up,
 * stages are looked up in the cache, artifacts are written, and the Temporal SDK's own series come
 * through the same endpoint. A malformed or taken address fails before anything connects.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startPipeline } from '../../cli/commands/run';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { tinyPipelineConfig } from '../harness/tiny-config';

const ROOT = path.join(__dirname, '..', '..');
const DRO = path.join(ROOT, 'bin', 'dro.cjs');

interface Dro {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function dro(args: string[], env: NodeJS.ProcessEnv = {}): Dro {
  const child = spawn(process.execPath, [DRO, ...args], {
    cwd: ROOT,
    env: { ...process.env, DRO_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

/** Resolves once the worker printed that it started; rejects when it exits first. */
async function started(w: Dro): Promise<void> {
  for (let waited = 0; !w.output().includes('started on'); waited += 100) {
    if (w.child.exitCode !== null) throw new Error(`worker exited with ${w.child.exitCode}:\n${w.output()}`);
    if (waited > 90_000) throw new Error(`worker did not start in 90 s:\n${w.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(w: Dro): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await w.exited;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** Sum of every sample of `name` (any labels) whose labels contain `having`. */
function total(text: string, name: string, having = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!line.includes(having)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('worker metrics endpoint', { timeout: 300_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-metrics-'));
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('series move during a run and stay after it', async () => {
    const root = path.join(dir, 'store');
    const name = 'metrics-run';
    const configFile = path.join(dir, 'worker.json');
    fs.writeFileSync(configFile, JSON.stringify({ name, storage: { kind: 'local', root } }));
    const [gpuPort, cpuPort] = [await freePort(), await freePort()];
    const env = { TEMPORAL_ADDRESS: temporal.address };
    const gpu = dro(
      ['worker', '--queue', 'gpu', '--config', configFile, '--metrics', `127.0.0.1:${gpuPort}`],
      env,
    );
    const cpu = dro(
      ['worker', '--queue', 'cpu', '--config', configFile, '--metrics', `127.0.0.1:${cpuPort}`],
      env,
    );
    try {
      await Promise.all([started(gpu), started(cpu)]);
      assert.match(gpu.output(), new RegExp(`metrics at http://127\\.0\\.0\\.1:${gpuPort}/metrics`));
      const config = tinyPipelineConfig({ name, storage: { kind: 'local', root } });
      const handle = await startPipeline(temporal.client, { runId: name, config });
      let finished = false;
      const result = handle.result().finally(() => (finished = true));
      const steps: number[] = [];
      while (!finished) {
        steps.push(total(await scrape(gpuPort), 'dro_training_steps_total'));
        await new Promise((r) => setTimeout(r, 300));
      }
      await result;
      const [gpuText, cpuText] = [await scrape(gpuPort), await scrape(cpuPort)];
      steps.push(total(gpuText, 'dro_training_steps_total'));

      // The counter only goes up, and it did go up while the run was scraped.
      assert.ok(steps.length >= 2, `scraped ${steps.length} time(s)`);
      for (let i = 1; i < steps.length; i++)
        assert.ok(steps[i]! >= steps[i - 1]!, `steps went down: ${steps}`);
      assert.ok(steps.at(-1)! > steps[0]!, `training steps never increased between scrapes: ${steps}`);
      // pretrain (4) + sft (2) + dro (2) micro-steps at least; a retried chunk redoes some.
      assert.ok(total(gpuText, 'dro_training_steps_total', 'stage="sft"') >= 2, gpuText);
      assert.ok(total(gpuText, 'dro_training_step_seconds_count', 'stage="dro"') >= 2);
      assert.match(gpuText, /^dro_training_loss\{stage="dro"\} -?[0-9.e+-]+$/m);
      assert.match(gpuText, /^dro_training_images_per_second\{stage="sft"\} [0-9.e+-]+$/m);
      assert.ok(total(gpuText, 'dro_evaluation_shards_total', 'outcome="computed"') >= 1);

      // Stages are looked up and committed by the I/O worker.
      assert.ok(total(cpuText, 'dro_stage_cache_lookups_total', 'outcome="computed"') >= 3, cpuText);
      assert.ok(total(cpuText, 'dro_stage_completions_total', 'outcome="computed"') >= 3);
      assert.ok(total(cpuText, 'dro_stage_seconds_total') > 0);
      for (const text of [gpuText, cpuText]) {
        assert.ok(total(text, 'dro_artifact_bytes_written_total', 'store="local"') > 0);
        assert.ok(total(text, 'dro_artifact_bytes_read_total', 'store="local"') > 0);
        // The SDK's series, through the same endpoint.
        assert.match(text, /^dro_sdk_metrics_up 1$/m);
        assert.match(text, /^# TYPE temporal_\w+ /m);
        assert.match(text, /^temporal_activity_execution_latency_count\{/m);
      }
      assert.match(gpuText, /^dro_task_queue_backlog\{task_queue="dro-gpu",type="activity"\} \d+$/m);
      assert.match(cpuText, /^dro_task_queue_backlog\{task_queue="dro-cpu",type="workflow"\} \d+$/m);

      // A second run of the same config reuses every stage: the reused counters move.
      const again = await startPipeline(temporal.client, { runId: `${name}-again`, config });
      await again.result();
      const reused = await scrape(cpuPort);
      assert.ok(total(reused, 'dro_stage_cache_lookups_total', 'outcome="reused"') >= 3, reused);
    } finally {
      await Promise.all([stop(gpu), stop(cpu)]);
    }
  });

  test('a malformed or taken address is refused before anything connects', async () => {
    // Nothing listens on this Temporal address: an error naming it would mean a connection was tried.
    const env = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    const malformed = dro(['worker', '--queue', 'gpu', '--metrics', 'localhost'], env);
    assert.equal(await malformed.exited, 1);
    assert.match(malformed.output(), /--metrics "localhost": use host:port/);

    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    const configFile = path.join(dir, 'taken.json');
    fs.writeFileSync(configFile, JSON.stringify({ workers: { metricsAddress: `127.0.0.1:${port}` } }));
    try {
      const taken = dro(['worker', '--queue', 'cpu', '--config', configFile], env);
      assert.equal(await taken.exited, 1);
      assert.match(
        taken.output(),
        new RegExp(`workers\\.metricsAddress "127\\.0\\.0\\.1:${port}": the address is already in use`),
      );
      assert.doesNotMatch(taken.output(), /started on/);
    } finally {
      holder.close();
    }
  });
});
