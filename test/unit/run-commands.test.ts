/**
 * Small rules of the run commands: the Ctrl-C line names the run that stays open, config hash
 * arguments take the prefix `dro runs list` prints, and `dro runs list` shows the newest run first.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkConfigHash,
  MIN_HASH_PREFIX,
  resolveHashPrefix,
  RunCommandError,
  sortRuns,
  type RunRow,
  runsTable,
} from '../../cli/commands/runs';
import { interruptedMessage, RunInterruptedError, runInterruptibly } from '../../cli/interrupt';

describe('an interrupted command', () => {
  test('names the real run id in the resume command, never a placeholder', async () => {
    const printed: string[] = [];
    const original = console.error;
    const exitCode = process.exitCode;
    console.error = (line: string) => printed.push(line);
    try {
      await runInterruptibly(() =>
        Promise.reject(new RunInterruptedError('interrupted', 'demo-2026-12-01-ab12cd34')),
      );
    } finally {
      console.error = original;
      assert.equal(process.exitCode, 130);
      process.exitCode = exitCode;
    }
    assert.equal(printed.length, 1);
    assert.match(printed[0]!, /`dro resume demo-2026-12-01-ab12cd34 --attach`/);
    assert.doesNotMatch(printed[0]!, /<runId>/);
  });

  test('other workflows are named with how to end them; an unknown one points at the list', () => {
    const evalLine = interruptedMessage('eval-2026-12-01-ab12cd34', 'cancel');
    assert.match(evalLine, /workflow eval-2026-12-01-ab12cd34 stays open/);
    assert.match(evalLine, /`dro cancel eval-2026-12-01-ab12cd34 --force`/);
    assert.doesNotMatch(evalLine, /dro resume/);
    assert.match(interruptedMessage(undefined), /`dro runs list --status running`/);
    assert.doesNotMatch(interruptedMessage(undefined), /<runId>/);
  });

  test('stopping `dro run --submit --follow` leaves the run to the workers and says how to follow it again', () => {
    const line = interruptedMessage('demo-2026-12-07-1f0c9a2e', 'follow');
    assert.match(line, /^Stopped following: run demo-2026-12-07-1f0c9a2e goes on/);
    assert.match(line, /`dro status demo-2026-12-07-1f0c9a2e --follow`/);
    assert.doesNotMatch(line, /workers stopped|dro resume/);
  });
});

describe('config hash arguments', () => {
  const A = 'fc0063dc5525' + 'a'.repeat(52);
  const B = 'fc0063dc5525' + 'b'.repeat(52);
  const C = '0123456789ab' + 'c'.repeat(52);

  test('the 12 digits `dro runs list` prints resolve to the whole hash', () => {
    assert.equal(resolveHashPrefix('--latest-of', checkConfigHash('0123456789ab'), [A, C]), C);
    assert.equal(resolveHashPrefix('--config-hash', checkConfigHash('FC0063DC5525AAAA'), [A, B]), A);
    // A whole hash needs no run on the cluster (a schedule made before the config's first run).
    assert.equal(resolveHashPrefix('--latest-of', checkConfigHash(B), []), B);
  });

  test('an ambiguous or unknown prefix is an error naming the option', () => {
    assert.throws(
      () => resolveHashPrefix('--config-hash', 'fc0063dc5525', [A, B, C]),
      (e: Error) =>
        e instanceof RunCommandError &&
        /^--config-hash fc0063dc5525: ambiguous, 2 config hashes start with it \(fc0063dc5525aaaa, fc0063dc5525bbbb\); give more digits$/.test(
          e.message,
        ),
    );
    assert.throws(
      () => resolveHashPrefix('--latest-of', 'deadbeef', [A, C]),
      /: --latest-of deadbeef: no run on this cluster has a config hash starting with deadbeef/,
    );
  });

  test('what is not hex, or too short, is refused before any cluster is asked', () => {
    for (const bad of ['fc00', 'xyz123456789', 'fc0063dc552g', `${A}0`, ''])
      assert.throws(
        () => checkConfigHash(bad, '--config-hash'),
        new RegExp(
          `: --config-hash .*: give a config hash \\(64 hex digits.*first ${MIN_HASH_PREFIX} or more digits`,
        ),
      );
  });
});

test('runs are listed newest started first', () => {
  const row = (runId: string, startTime: string): RunRow => ({ runId, status: 'completed', startTime });
  const rows = [
    row('old', '2026-11-30T10:00:00.000Z'),
    row('new', '2026-12-01T09:00:00.000Z'),
    row('b-same', '2026-12-01T08:00:00.000Z'),
    row('a-same', '2026-12-01T08:00:00.000Z'),
  ];
  assert.deepEqual(
    sortRuns(rows).map((r) => r.runId),
    ['new', 'a-same', 'b-same', 'old'],
  );
});

test('the kind column appears only when a scheduled evaluation is listed', () => {
  const pipeline: RunRow = {
    runId: 'r1',
    status: 'completed',
    startTime: '2026-12-01T09:00:00.000Z',
    configHash: 'ab'.repeat(32),
  };
  assert.doesNotMatch(runsTable([pipeline]).join('\n'), /kind|pipeline/);
  const lines = runsTable([
    { ...pipeline, kind: 'pipeline' },
    {
      runId: 'evals-2026-12-01T03:00:00Z',
      status: 'completed',
      startTime: '2026-12-01T03:00:00.000Z',
      kind: 'evaluation',
    },
  ]);
  assert.match(lines[0]!, /config hash +kind$/);
  assert.match(lines[1]!, /^r1 +completed +\S+ +abababababab +pipeline$/);
  assert.match(lines[2]!, /^evals-\S+ +completed +\S+ +- +evaluation$/);
});
