/**
 * Run ids as commands take them: `dro run --run-id` makes ids from a safe alphabet, while commands
 * that look a run up also take the ids Temporal Schedules give their runs (`<name>-<RFC 3339
 * time>`, with ':'), and find the run's records where the pipeline wrote them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKey } from '../../activities/stage';
import { checkRunIdArg, checkRunIdRef, runRecordsKey } from '../../cli/run-ids';

const scheduled = 'nightly-2026-11-30T19:20:37Z';

test('a scheduled run id can be looked up but not chosen for a new run', () => {
  assert.equal(checkRunIdRef(scheduled), scheduled);
  assert.throws(() => checkRunIdArg(scheduled), /run id "nightly-2026-11-30T19:20:37Z"/);
  for (const bad of ['', '-x', 'a/b', 'a b', 'x'.repeat(129)])
    assert.throws(() => checkRunIdRef(bad), /run id/, JSON.stringify(bad));
});

test("the CLI reads a run's records under the key the pipeline's stages write", () => {
  for (const id of [scheduled, 'demo-2026-11-30-5694c276'])
    assert.equal(runKey(id, 'report', 'manifest.json'), `${runRecordsKey(id)}/report/manifest.json`);
  assert.equal(runRecordsKey(scheduled), 'runs/nightly-2026-11-30T19_20_37Z');
});
