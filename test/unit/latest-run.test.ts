/**
 * `resolveLatestRun`: the newest completed run of a config hash, its models (base first), its reward
 * model and preference set, read from the run's manifest; clear permanent failures otherwise. The
 * cluster's visibility store is a fake here.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  completedRunsQuery,
  createLatestRunActivities,
  newestRun,
  type CompletedRun,
  type LatestRunResult,
} from '../../activities/latest-run';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';
import type { PipelineResult } from '../../contracts/pipeline';

const HASH = 'c'.repeat(64);
let dir: string;
let store: LocalArtifactStore;

const put = (key: string, text: string) =>
  store.put(key, new TextEncoder().encode(text), { kind: 'test', producer: 'latest-run.test' });

/** A completed run in the store: its models and a manifest naming its reward and preferences. */
async function storedRun(runId: string, rewardModel: string) {
  const models: Record<string, ArtifactRef> = {};
  for (const stage of ['base', 'dro', 'sft'])
    models[stage] = await put(`runs/${runId}/${stage}/model`, `${runId} ${stage}`);
  const reward = await put(`runs/${runId}/reward/reward.json`, '{}');
  const preferences = await put(`runs/${runId}/preferences/pairs.parquet`, 'pairs');
  const manifest = await put(
    `runs/${runId}/executions/e1/manifest.json`,
    JSON.stringify({
      runId,
      finishedAt: '2026-11-30T03:00:00.000Z',
      config: { ranking: { rewardModel } },
      artifacts: [
        { stage: 'reward', role: 'reward', ...reward },
        { stage: 'preferences', role: 'preferences', ...preferences },
      ],
    }),
  );
  const result = { runId, manifest, models } as unknown as PipelineResult;
  return { result, models, reward, preferences };
}

function activities(runs: CompletedRun[], results: Record<string, PipelineResult>) {
  const asked: string[] = [];
  const env = new MockActivityEnvironment();
  const created = createLatestRunActivities({
    store,
    logger: createLogger({ level: 'silent' }),
    runs: {
      async *list(hash) {
        asked.push(hash);
        yield* runs;
      },
      result: (id) => Promise.resolve(results[id]!),
    },
  });
  const resolveLatestRun = (input: Parameters<typeof created.resolveLatestRun>[0]) =>
    env.run(created.resolveLatestRun, input) as Promise<LatestRunResult>;
  return { resolveLatestRun, asked };
}

function failure(type: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, type);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, message);
    return true;
  };
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-latest-run-'));
  store = new LocalArtifactStore({ root: dir });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

void describe('resolveLatestRun', () => {
  void test('the newest run closes last; ties go to the greater id', () => {
    const at = (iso: string) => new Date(iso);
    assert.equal(
      newestRun([
        { workflowId: 'nightly-b', closeTime: at('2026-11-29T03:00:00Z') },
        { workflowId: 'nightly-c', closeTime: at('2026-11-30T03:00:00Z') },
        { workflowId: 'nightly-a', closeTime: at('2026-11-28T03:00:00Z') },
      ])?.workflowId,
      'nightly-c',
    );
    assert.equal(
      newestRun([
        { workflowId: 'x-1', closeTime: at('2026-11-30T03:00:00Z') },
        { workflowId: 'x-2', closeTime: at('2026-11-30T03:00:00Z') },
      ])?.workflowId,
      'x-2',
    );
    assert.equal(newestRun([]), undefined);
    assert.equal(
      completedRunsQuery(HASH),
      `WorkflowType = 'pipelineWorkflow' AND ExecutionStatus = 'Completed' AND DroConfigHash = '${HASH}'`,
    );
  });

  void test("the newest completed run's models, reward model and preference set", async () => {
    const old = await storedRun('nightly-old', 'preference');
    const fresh = await storedRun('nightly-new', 'preference');
    const { resolveLatestRun, asked } = activities(
      [
        { workflowId: 'nightly-old', closeTime: new Date('2026-11-29T03:10:00Z') },
        { workflowId: 'nightly-new', closeTime: new Date('2026-11-30T03:10:00Z') },
      ],
      { 'nightly-old': old.result, 'nightly-new': fresh.result },
    );
    const got = await resolveLatestRun({ configHash: HASH });
    assert.deepEqual(asked, [HASH]);
    assert.equal(got.runId, 'nightly-new');
    assert.equal(got.closedAt, '2026-11-30T03:10:00.000Z');
    assert.deepEqual(
      got.models.map((m) => [m.name, m.model.sha256]),
      [
        ['base', fresh.models.base!.sha256],
        ['sft', fresh.models.sft!.sha256],
        ['dro', fresh.models.dro!.sha256],
      ],
    );
    assert.deepEqual(got.rewards, [{ name: 'preference', reward: fresh.reward }]);
    assert.deepEqual(got.trainingPrompts, fresh.preferences);
  });

  void test('a run ranked with the detector evaluates without a reward model of its own', async () => {
    const run = await storedRun('detector-run', 'detector');
    const { resolveLatestRun } = activities([{ workflowId: 'detector-run' }], { 'detector-run': run.result });
    assert.deepEqual((await resolveLatestRun({ configHash: HASH })).rewards, []);
  });

  void test('no completed run, a deleted model or a malformed hash fail permanently, saying why', async () => {
    await assert.rejects(
      activities([], {}).resolveLatestRun({ configHash: HASH }),
      failure('NoCompletedRunError', new RegExp(`no completed run with config hash ${HASH}`)),
    );
    const run = await storedRun('pruned', 'preference');
    await store.delete(run.models.dro!.uri);
    await assert.rejects(
      activities([{ workflowId: 'pruned' }], { pruned: run.result }).resolveLatestRun({ configHash: HASH }),
      failure('NoCompletedRunError', /run pruned .*its dro model .* is no longer in the store/),
    );
    await assert.rejects(
      activities([], {}).resolveLatestRun({ configHash: 'abc' }),
      failure('PipelineBadInput', /field "configHash" must be a config hash/),
    );
  });
});
