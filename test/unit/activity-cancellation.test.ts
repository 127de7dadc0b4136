/**
 * A long activity stops at its next progress heartbeat once it is cancelled (a cancelled run, or a
 * worker shutting down on Ctrl-C) instead of running to the end of its loop.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { heartbeat } from '../../activities/stage';

describe('activity heartbeats', () => {
  test('a cancelled activity stops at its next heartbeat', async () => {
    const env = new MockActivityEnvironment();
    let batches = 0;
    const run = env.run(async () => {
      for (let i = 0; i < 1000; i++) {
        batches++;
        heartbeat({ batch: i });
        if (i === 2) env.cancel('WORKER_SHUTDOWN');
        await new Promise((resolve) => setImmediate(resolve));
      }
      return 'finished';
    });
    await assert.rejects(run, (err: unknown) => err instanceof CancelledFailure);
    assert.ok(batches <= 4, `ran ${batches} batches after cancellation`);
  });

  test('an activity that is not cancelled runs to the end', async () => {
    const env = new MockActivityEnvironment();
    const result = await env.run(async () => {
      for (let i = 0; i < 5; i++) heartbeat({ batch: i });
      return 'finished';
    });
    assert.equal(result, 'finished');
  });
});
