/**
 * `dro runs list` through the real CLI against a real Temporal server, with pipeline runs started
 * by hand and left without workers (as a killed `dro run` leaves them): newest started first, a
 * running run no worker serves is shown as such, and `--config-hash` takes the 12 digits the list
 * prints, refusing an ambiguous or unknown prefix by name; so does `dro schedule create --latest-of`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { privateTaskQueues } from '../../contracts/task-queues';
import { DRO_CONFIG_HASH, DRO_CONFIG_NAME, DRO_RUN_ID } from '../../contracts/search-attributes';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';

const ROOT = path.join(__dirname, '..', '..');
// The first 8 digits are shared, the first 12 are not: 8 is ambiguous, the listed 12 are unique.
const H1 = 'abcdef01' + '1111' + '1'.repeat(52);
const H2 = 'abcdef01' + '2222' + '2'.repeat(52);

describe('dro runs list', { timeout: 300_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  const polls = new AbortController();

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-runs-list-'));
    // Started in this order; listed newest first, which is not the order of the ids.
    for (const [id, hash] of [
      ['zeta', H1],
      ['alpha', H1],
      ['mid', H2],
    ] as const) {
      await temporal.client.workflow.start('pipelineWorkflow', {
        workflowId: id,
        taskQueue: privateTaskQueues(id).cpu,
        args: [],
        typedSearchAttributes: [
          { key: DRO_RUN_ID, value: id },
          { key: DRO_CONFIG_HASH, value: hash },
          { key: DRO_CONFIG_NAME, value: 'listed' },
        ],
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    // Pollers on alpha's queue, as a worker keeps them: a worker has been seen there.
    const poll = async (): Promise<void> => {
      while (!polls.signal.aborted) {
        await temporal.client
          .withAbortSignal(polls.signal, () =>
            // The server refuses a long poll without a deadline.
            temporal.client.withDeadline(Date.now() + 30_000, () =>
              temporal.client.workflowService.pollWorkflowTaskQueue({
                namespace: temporal.namespace,
                taskQueue: { name: privateTaskQueues('alpha').cpu },
                identity: 'runs-list-test',
              }),
            ),
          )
          .catch(() => undefined);
      }
    };
    for (let i = 0; i < 2; i++) void poll();
    await new Promise((r) => setTimeout(r, 1000));
  });
  after(async () => {
    polls.abort();
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), ...args], {
      cwd: dir,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporal.address,
        DRO_STATE_DIR: path.join(dir, 'state'),
        DRO_LOG_LEVEL: 'error',
      },
      encoding: 'utf8',
      timeout: 120_000,
    });
  const dro = (...args: string[]) => cli('runs', 'list', ...args);

  test('newest started first; a running run without a worker is said to have none', () => {
    const r = dro('--json');
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { runId: string; status: string; workerSeen?: boolean }[];
    assert.deepEqual(
      rows.map((x) => [x.runId, x.status, x.workerSeen]),
      [
        ['mid', 'running', false],
        ['alpha', 'running', true],
        ['zeta', 'running', false],
      ],
    );
    const text = dro();
    assert.equal(text.status, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    assert.match(lines[1]!, /^mid +running \(no worker seen\) +\S+ +abcdef012222$/);
    assert.match(lines[2]!, /^alpha +running +\S+ +abcdef011111$/);
    assert.match(lines[3]!, /^zeta +running \(no worker seen\) /);
  });

  test('--config-hash takes the 12 digits the list prints', () => {
    const r = dro('--config-hash', 'abcdef011111', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { runId: string; configHash: string }[]).map((x) => [x.runId, x.configHash]),
      [
        ['alpha', H1],
        ['zeta', H1],
      ],
    );
    const whole = dro('--config-hash', H2, '--json');
    assert.deepEqual(
      (JSON.parse(whole.stdout) as { runId: string }[]).map((x) => x.runId),
      ['mid'],
    );
  });

  test('an ambiguous or unknown prefix is refused by name', () => {
    const ambiguous = dro('--config-hash', 'abcdef01');
    assert.equal(ambiguous.status, 1);
    assert.match(
      ambiguous.stderr,
      /--config-hash abcdef01: ambiguous, 2 config hashes start with it \(abcdef0111111111, abcdef0122222222\); give more digits/,
    );
    const unknown = dro('--config-hash', 'abcdef019999');
    assert.equal(unknown.status, 1);
    assert.match(
      unknown.stderr,
      /--config-hash abcdef019999: no run on this cluster has a config hash starting with abcdef019999/,
    );
  });

  test('schedule create --latest-of takes the 12 digits too, and refuses an ambiguous prefix', async () => {
    const r = cli('schedule', 'create', 'evals', '--latest-of', 'abcdef012222', '--every', '1d', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { latestOf: string }).latestOf, H2);
    const described = await temporal.client.schedule.getHandle('evals').describe();
    const action = described.action as { args?: { latestOf?: string }[] };
    assert.equal(action.args?.[0]?.latestOf, H2, 'the schedule keeps the whole hash');
    const ambiguous = cli('schedule', 'create', 'evals2', '--latest-of', 'abcdef01', '--every', '1d');
    assert.equal(ambiguous.status, 1);
    assert.match(ambiguous.stderr, /--latest-of abcdef01: ambiguous, 2 config hashes start with it/);
  });
});
