import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { escapeControl, formatErrorChain } from '../../cli/terminal-text';
import { createLogger } from '../../infra/logger';
import { PinoTemporalLogger } from '../../workers/runtime';

const INNER = 'model.baseCheckpoint: cannot read /x/m.safetensors (no such file)';

function temporalFailure(): WorkflowFailedError {
  const app = ApplicationFailure.create({ message: INNER, type: 'SourceNotFound', nonRetryable: true });
  const activity = new ActivityFailure(
    'Activity task failed',
    'importBaseModel',
    '7',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker@host',
    app,
  );
  return new WorkflowFailedError('Workflow execution failed', activity, RetryState.NON_RETRYABLE_FAILURE);
}

describe('error output', () => {
  test("a workflow failure prints the activity's own message under it", () => {
    const text = formatErrorChain(temporalFailure());
    const lines = text.split('\n');
    assert.equal(lines[0], 'Workflow execution failed');
    assert.match(text, /caused by: activity importBaseModel failed/);
    assert.ok(lines.at(-1)!.includes(INNER), text);
    assert.match(lines.at(-1)!, /\[SourceNotFound\]/);
    assert.doesNotMatch(text, /^\s+at /m, 'no stack frames');
  });

  test('a cause cycle ends', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    assert.equal(formatErrorChain(b).split('\n').length, 2);
  });

  test('control characters from input are escaped, newlines kept only when asked', () => {
    assert.equal(escapeControl('key \u001b[2J\u0007'), 'key \\u001b[2J\\u0007');
    assert.equal(escapeControl('a\nb'), 'a\nb');
    assert.equal(escapeControl('a\nb', false), 'a\\nb');
    assert.equal(escapeControl('rtl \u202e'), 'rtl \\u202e');
    assert.match(formatErrorChain(new Error('bad \u001b]0;title\u0007')), /bad \\u001b\]0;title\\u0007/);
  });

  test('the SDK\'s "Activity failed" warning keeps the message and the stack', () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    const log = new PinoTemporalLogger(createLogger({ destination, pretty: false, level: 'warn' }));
    const error = ApplicationFailure.create({ message: INNER, type: 'SourceNotFound' });
    log.warn('Activity failed', { error, durationMs: 12 });
    const line = JSON.parse(chunks.join('')) as { msg: string; error: { message: string; stack: string } };
    assert.equal(line.msg, 'Activity failed');
    assert.equal(line.error.message, INNER);
    assert.match(line.error.stack, /SourceNotFound|ApplicationFailure|at /);
  });
});
