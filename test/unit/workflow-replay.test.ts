/**
 * Recorded histories of pipelineWorkflow and trainingWorkflow (test/fixtures/histories/, written
 * by tools/record-histories.ts) replay against today's workflow code without nondeterminism: a
 * change that would break running workflows fails here and must go behind `patched()`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { temporal as proto } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../workers/create-worker';
import { installRuntime } from '../../workers/runtime';

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');

void describe('workflow replay', { timeout: 120_000 }, () => {
  for (const [file, workflowId] of [
    ['pipeline.binpb', 'replay'],
    ['training-dro.binpb', 'replay-train-dro'],
  ] as const) {
    void test(`${file} replays deterministically`, async () => {
      installRuntime();
      const history = proto.api.history.v1.History.decode(fs.readFileSync(path.join(DIR, file)));
      assert.ok((history.events?.length ?? 0) > 10, `${file} holds a real history`);
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
    });
  }
});
