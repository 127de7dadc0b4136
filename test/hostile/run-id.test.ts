/**
 * A malformed run id is refused by every command that takes one before any server starts: no
 * embedded Temporal server, no state directory, one line naming the id and the rule.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { RAW_JS_ERROR, runDroMeasured, STACK_FRAME } from './measured-cli';

const TIME_LIMIT_MS = 30_000;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-hostile-runid-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const BAD_ID = 'bad id!';

describe('run-id commands refuse a malformed id before a server starts', { concurrency: 2 }, () => {
  const commands: string[][] = [
    ['status', BAD_ID],
    ['status', BAD_ID, '--follow'],
    ['cancel', BAD_ID],
    ['resume', BAD_ID],
    ['resume', BAD_ID, '--attach'],
    ['runs', 'show', BAD_ID],
    ['runs', 'verify', BAD_ID],
  ];
  commands.forEach((args, i) => {
    test(args.filter((a) => a !== BAD_ID).join(' '), async () => {
      const state = path.join(work, `state-${i}`);
      const r = await runDroMeasured(work, args, state, { work, timeLimitMs: TIME_LIMIT_MS });
      const shown = `output:\n${r.output}`;
      assert.equal(r.code, 1, shown);
      assert.match(r.output, /run id "bad id!": use 1-128 letters, digits/, shown);
      assert.doesNotMatch(r.output, /^Temporal:/m, `a server was started; ${shown}`);
      assert.equal(fs.existsSync(state), false, 'a state directory was created');
      assert.doesNotMatch(r.output, STACK_FRAME, `stack trace; ${shown}`);
      assert.doesNotMatch(r.output, RAW_JS_ERROR, `raw JavaScript error; ${shown}`);
    });
  });
});
