/**
 * Hostile input through the real command line: every case of `inputs.ts` runs
 * `node bin/dro.cjs validate <config>` in its own directory and state directory, and must
 *
 * - exit non-zero (not by a signal),
 * - name the file or field and the problem (the case's patterns),
 * - print no stack trace and no raw JavaScript error,
 * - finish within TIME_LIMIT_MS and stay under PEAK_RSS_LIMIT_KB of resident memory (peak RSS of
 *   the `dro` process, measured by `/usr/bin/time -f %M` where present, otherwise by
 *   `process.resourceUsage().maxRSS` reported by the process itself at exit),
 * - write nothing: no state directory, no new or changed file next to the inputs.
 *
 * Two cases run at a time (a CLI start costs about a second of CPU).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { HOSTILE_CASES } from './inputs';
import { RAW_JS_ERROR, runDroMeasured, snapshot, STACK_FRAME } from './measured-cli';

/** Wall-clock limit per input. Measured: 1.1-8.1 s, median 2.9 s, two at a time on a 2-core machine at load 7-15. */
const TIME_LIMIT_MS = 30_000;
/** Peak resident memory per input. Measured: 68-139 MB, median 78 MB (the largest input is a 17 MB config). */
const PEAK_RSS_LIMIT_KB = 256 * 1024;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-hostile-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe('dro validate refuses hostile input', { concurrency: 2 }, () => {
  test('the suite holds at least 80 inputs', () => {
    assert.ok(HOSTILE_CASES.length >= 80, `${HOSTILE_CASES.length} cases`);
    assert.equal(
      new Set(HOSTILE_CASES.map((c) => c.name)).size,
      HOSTILE_CASES.length,
      'case names are unique',
    );
  });

  HOSTILE_CASES.forEach((c, i) => {
    test(c.name, async (t) => {
      const dir = path.join(work, `case-${i}`);
      fs.mkdirSync(dir);
      const file = await c.setup(dir);
      const state = path.join(work, `state-${i}`);
      const before = snapshot(dir);
      const r = await runDroMeasured(dir, ['validate', file], state, { work, timeLimitMs: TIME_LIMIT_MS });
      const shown = `output:\n${r.output}`;
      assert.equal(r.signal, null, `killed by ${r.signal}; ${shown}`);
      assert.ok(r.code !== null && r.code !== 0, `exit code ${r.code}; ${shown}`);
      for (const pattern of c.expect) assert.match(r.output, pattern, shown);
      assert.doesNotMatch(r.output, STACK_FRAME, `stack trace; ${shown}`);
      assert.doesNotMatch(r.output, RAW_JS_ERROR, `raw JavaScript error; ${shown}`);
      assert.ok(r.ms < TIME_LIMIT_MS, `took ${r.ms} ms`);
      assert.ok(Number.isFinite(r.peakRssKb), `no peak RSS reported; ${shown}`);
      assert.ok(r.peakRssKb < PEAK_RSS_LIMIT_KB, `peak RSS ${r.peakRssKb} KB`);
      assert.equal(fs.existsSync(state), false, 'a state directory was created');
      assert.deepEqual(snapshot(dir), before, 'files changed next to the inputs');
      // Measured numbers, for the record: `node --test` prints diagnostics with each result.
      t.diagnostic(`${r.ms} ms, peak RSS ${r.peakRssKb} KB`);
    });
  });
});
