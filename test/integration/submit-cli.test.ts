/**
 * `dro run --submit` against a cluster whose workers run elsewhere, and the one ending of every
 * command that finishes a run. With the harness's workers serving the shared queues, `--submit`
 * returns once the run started and `--submit --follow` prints the ending `dro run` prints; a run
 * submitted while no worker serves it is finished by `dro resume --attach`, whose output names the
 * workflow before any progress and ends with the same blocks (stage table, GenEval, win-rate and
 * utility tables, report.html, manifest, DRO model, DRO loss). `--submit` without a cluster and
 * `dro status --follow` of an unknown run fail by name and write nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runEnding } from '../../cli/run-ending';
import type { PipelineResult } from '../../contracts/pipeline';
import { LocalArtifactStore } from '../../storage';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { tinyPipelineConfig } from '../harness/tiny-config';

const ROOT = path.join(__dirname, '..', '..');

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process's event loop (the harness's workers live in it). */
function dro(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Ran> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), ...args], {
    cwd,
    env: { ...process.env, DRO_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

/** The ending's lines with what differs between two runs of one config (ids, paths, times) blanked. */
function shape(lines: string[], root: string, runId: string): string[] {
  return lines.map((l) =>
    l
      .split(root)
      .join('<root>')
      .split(runId)
      .join('<run>')
      .replace(/executions\/[^/]+\//g, 'executions/<execution>/')
      // A stage row's seconds (and the padding, which follows their width).
      .replace(/^(\w+) +(done|skipped|failed) +[\d.]+ /, '$1 $2 <seconds> '),
  );
}

describe('dro run --submit and the ending of every command', { timeout: 900_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-submit-'));
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A config file of its own store, so that runs share no stage cache. */
  function configFile(name: string): { file: string; root: string; store: LocalArtifactStore } {
    const root = path.join(dir, name, 'artifacts');
    const { $schema: _schema, ...config } = tinyPipelineConfig({ name, storage: { kind: 'local', root } });
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    return { file, root, store: new LocalArtifactStore({ root }) };
  }

  test('--submit without a cluster, and status --follow of an unknown run: errors by name, nothing written', async () => {
    const { file, root } = configFile('nowhere');
    const stateDir = path.join(dir, 'state');
    const noCluster = await dro(
      [
        'run',
        '--submit',
        '--config',
        file,
        '--set',
        'temporal.embeddedPort=0',
        '--set',
        'temporal.embeddedUiPort=0',
      ],
      { TEMPORAL_ADDRESS: '', DRO_STATE_DIR: stateDir },
      dir,
    );
    assert.equal(noCluster.status, 1, noCluster.stdout + noCluster.stderr);
    assert.match(noCluster.stderr, /--submit: no Temporal cluster to submit to/);
    assert.ok(!fs.existsSync(stateDir), 'a state directory was written');

    const followAlone = await dro(['run', '--follow', '--config', file], { DRO_STATE_DIR: stateDir }, dir);
    assert.equal(followAlone.status, 1, followAlone.stdout + followAlone.stderr);
    assert.match(followAlone.stderr, /--follow: only with --submit/);
    assert.ok(!fs.existsSync(stateDir), 'a state directory was written');

    const unknown = await dro(
      ['status', 'no-such-run', '--follow', '--config', file],
      { TEMPORAL_ADDRESS: temporal.address },
      dir,
    );
    assert.equal(unknown.status, 1, unknown.stdout + unknown.stderr);
    assert.match(unknown.stderr, /run id no-such-run: no such run on this cluster/);
    assert.ok(!fs.existsSync(root), 'the store was written');
  });

  test('--submit returns at once; --submit --follow, status --follow and resume --attach print one ending', async () => {
    const env = { TEMPORAL_ADDRESS: temporal.address };

    // No worker serves the shared queues yet: --submit starts the run and returns regardless.
    const attached = configFile('attached');
    const submitted = await dro(
      ['run', '--submit', '--run-id', 'attached-1', '--config', attached.file],
      env,
      dir,
    );
    assert.equal(submitted.status, 0, submitted.stdout + submitted.stderr);
    assert.match(submitted.stdout, /^Workflow: attached-1/m);
    assert.match(submitted.stdout, /`dro status attached-1 --follow`/);
    assert.doesNotMatch(submitted.stdout, /Report:/);
    const open = await temporal.client.workflow.getHandle('attached-1').describe();
    assert.equal(open.status.name, 'RUNNING');

    // Its workers come with `dro resume --attach`.
    const resumed = await dro(['resume', 'attached-1', '--attach', '--config', attached.file], env, dir);
    assert.equal(resumed.status, 0, resumed.stdout + resumed.stderr);
    const resumedLines = resumed.stdout.trimEnd().split('\n');
    const workflowAt = resumedLines.findIndex((l) => l.startsWith('Workflow: attached-1'));
    const firstProgress = resumedLines.findIndex((l) => l.startsWith('['));
    assert.ok(workflowAt >= 0, resumed.stdout);
    assert.ok(
      firstProgress === -1 || workflowAt < firstProgress,
      `progress before Workflow:\n${resumed.stdout}`,
    );
    const attachedResult = (await temporal.client.workflow
      .getHandle('attached-1')
      .result()) as PipelineResult;
    const attachedEnding = (await runEnding(attachedResult, attached.store)).lines;

    // A run the harness's workers serve, followed to its end by the submitting command.
    const followed = configFile('followed');
    const workers = await temporal.startWorkers({ store: followed.store });
    let followedRun: Ran;
    let statusRun: Ran;
    try {
      followedRun = await dro(
        ['run', '--submit', '--follow', '--run-id', 'followed-1', '--config', followed.file],
        env,
        dir,
      );
      statusRun = await dro(['status', 'followed-1', '--follow', '--config', followed.file], env, dir);
    } finally {
      await workers.stop();
    }
    assert.equal(followedRun.status, 0, followedRun.stdout + followedRun.stderr);
    assert.equal(statusRun.status, 0, statusRun.stdout + statusRun.stderr);
    const followedResult = (await temporal.client.workflow
      .getHandle('followed-1')
      .result()) as PipelineResult;
    const followedEnding = (await runEnding(followedResult, followed.store)).lines;

    // Each command's output ends with its run's ending, in full and in order.
    const endsWith = (out: string, ending: string[], what: string): void =>
      assert.ok(out.trimEnd().endsWith(ending.join('\n')), `${what} does not end with the ending:\n${out}`);
    endsWith(resumed.stdout, attachedEnding, 'dro resume --attach');
    endsWith(followedRun.stdout, followedEnding, 'dro run --submit --follow');
    endsWith(statusRun.stdout, followedEnding, 'dro status --follow');
    // Of a run that completed before: its ending at once, no replayed progress.
    assert.doesNotMatch(statusRun.stdout, /^\[/m);

    // Every block is there: the tables of the evaluation, report.html first, the DRO loss.
    for (const block of [
      /^stage +status/,
      /GenEval/i,
      /win/i,
      /utility/i,
      /^Report: .*report\.html$/,
      /^Manifest:/,
      /^DRO model:/,
      /^DRO loss:/,
    ])
      assert.ok(
        attachedEnding.some((l) => block.test(l)),
        `no ${block} in the ending:\n${attachedEnding.join('\n')}`,
      );
    // The same config in two stores: the resumed run's ending has the blocks of the followed run's.
    assert.deepEqual(
      shape(attachedEnding, attached.root, 'attached-1'),
      shape(followedEnding, followed.root, 'followed-1'),
    );
  });
});
