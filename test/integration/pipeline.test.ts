/**
 * The whole pipeline on a real Temporal dev server with both workers and a real store: a tiny
 * built-in-world configuration (demo UNet at 16 px, a handful of steps per stage) runs base-model
 * preparation + pretraining, simulated preferences, the preference reward model, sharded expert
 * ranking, SFT and DRO, and writes the run report. Every artifact must exist and verify.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../config/load';
import type { PipelineConfig, PipelineConfigInput } from '../../config/schemas';
import { TASK_QUEUES } from '../../config/task-queues';
import { decodeImageDataset } from '../../engine/io/image-dataset';
import type { ExpertSet } from '../../engine/ranking/expert-ranking';
import { LocalArtifactStore, S3ArtifactStore, type ArtifactRef, type ArtifactStore } from '../../storage';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import { pipelineWorkflow, trainingWorkflowId } from '../../workflows/pipeline';
import { pipelineProgressQuery, type RunReport } from '../../workflows/pipeline-types';
import { startS3Server, type S3TestServer } from '../harness/s3-server';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { DRO_RUN_ID, DRO_STAGE } from '../../config/search-attributes';

/** The smallest configuration that still runs every stage for real. */
export function tinyPipelineConfig(overrides: PipelineConfigInput = {}): PipelineConfig {
  return parseConfig(
    {
      name: 'pipeline-test',
      seed: 3,
      model: { unet: 'demo', resolution: 16 },
      pretrain: {
        steps: 4,
        batchSize: 4,
        gradientAccumulation: 1,
        checkpointEvery: 2,
        stepsPerActivity: 2,
        corpusSize: 32,
      },
      data: { source: 'world', prompts: 10 },
      eval: { samplerSteps: 3, guidanceScale: 3 },
      ranking: { rewardModel: 'preference', topK: 6, shardSize: 8 },
      sft: {
        steps: 2,
        batchSize: 2,
        gradientAccumulation: 1,
        checkpointEvery: 1,
        stepsPerActivity: 2,
        randomFlip: false,
      },
      dro: {
        steps: 2,
        batchSize: 2,
        gradientAccumulation: 1,
        checkpointEvery: 1,
        stepsPerActivity: 2,
        randomFlip: false,
        bufferSize: 2,
        bufferBatchSize: 2,
        bufferSampleSteps: 2,
        samplerSteps: 3,
      },
      ...overrides,
    },
    'tiny pipeline config',
  );
}

async function readJson<T>(store: ArtifactStore, ref: ArtifactRef): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await store.get(ref.uri, ref.sha256))) as T;
}

async function runPipeline(
  temporal: TemporalHarness,
  store: ArtifactStore,
  runId: string,
  config: PipelineConfig = tinyPipelineConfig(),
  workflowId = `pipeline-${runId}`,
) {
  const workers = await temporal.startWorkers({ store });
  try {
    const handle = await temporal.client.workflow.start(pipelineWorkflow, {
      taskQueue: WORKFLOW_TASK_QUEUE,
      workflowId,
      args: [{ runId, config }],
    });
    const result = await handle.result();
    const progress = await handle.query(pipelineProgressQuery);
    const description = await handle.describe();
    const history = await handle.fetchHistory();
    return { result, progress, description, history, config };
  } finally {
    await workers.stop();
  }
}

describe('pipeline workflow on a real Temporal dev server', { timeout: 300_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-pipeline-'));
  });

  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('runs every stage and writes verified artifacts (local store)', async () => {
    const store = new LocalArtifactStore({ root: dir });
    const runId = 'tiny-local';
    const { result, progress, description, history, config } = await runPipeline(temporal, store, runId);

    // Every stage ran (DPO is off), in order, and the search attributes say where the run is.
    assert.deepEqual(
      progress.stages.map((s) => [s.stage, s.status]),
      [
        ['base', 'done'],
        ['pretrain', 'done'],
        ['preferences', 'done'],
        ['reward', 'done'],
        ['ranking', 'done'],
        ['sft', 'done'],
        ['dro', 'done'],
        ['dpo', 'skipped'],
        ['report', 'done'],
      ],
    );
    assert.equal(progress.stage, 'done');
    assert.equal(description.typedSearchAttributes.get(DRO_STAGE), 'done');
    assert.equal(description.typedSearchAttributes.get(DRO_RUN_ID), runId);

    // Compute stages ran on the compute queue, I/O on the I/O queue; training ran as named children.
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => a != null)
      .map((a) => [a.activityType?.name, a.taskQueue?.name]);
    assert.deepEqual(scheduled, [
      ['prepareWorld', TASK_QUEUES.gpu],
      ['simulatePreferences', TASK_QUEUES.gpu],
      ['trainRewardModel', TASK_QUEUES.gpu],
      ['rankExperts', TASK_QUEUES.gpu],
      ['writeRunReport', TASK_QUEUES.cpu],
    ]);
    const children = (history.events ?? [])
      .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId)
      .filter((id) => id != null);
    assert.deepEqual(children, [
      trainingWorkflowId(runId, 'pretrain'),
      trainingWorkflowId(runId, 'sft'),
      trainingWorkflowId(runId, 'dro'),
    ]);

    // Every artifact of every stage exists and verifies against its digest.
    const refs = progress.stages.flatMap((s) => Object.values(s.artifacts ?? {}));
    assert.ok(refs.length >= 14, `only ${refs.length} artifacts recorded`);
    for (const ref of refs) {
      assert.ok(ref.uri.startsWith(`${store.baseUri}/runs/${runId}/`), ref.uri);
      const bytes = await store.get(ref.uri, ref.sha256);
      assert.equal(bytes.byteLength, ref.size, ref.uri);
    }

    // The expert set: K images at the model's resolution, sorted by score, matching the ranking JSON.
    const ranking = progress.stages.find((s) => s.stage === 'ranking')!.artifacts!;
    const experts = decodeImageDataset(await store.get(ranking.experts!.uri, ranking.experts!.sha256));
    assert.equal(experts.examples.length, config.ranking.topK);
    assert.equal(experts.height, config.model.resolution);
    const scores = experts.scores!;
    for (let i = 1; i < scores.length; i++)
      assert.ok(scores[i - 1]! >= scores[i]!, `scores not sorted at ${i}`);
    const set = await readJson<ExpertSet>(store, ranking.ranking!);
    assert.deepEqual(
      set.experts.map((e) => e.uid),
      experts.ids,
    );
    assert.equal(set.total, 2 * config.data.prompts);
    assert.equal(set.rewardModel.name, 'world-preference');
    assert.match(set.rewardModel.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    const shards = await store.list(`runs/${runId}/ranking/shards/`);
    assert.equal(shards.length, Math.ceil(set.total / config.ranking.shardSize));

    // The DRO summary holds the loss history with the reference implementation's logged terms.
    const summary = await readJson<{ history: Record<string, number>[] }>(store, result.summaries.dro!);
    assert.ok(summary.history.length >= 1);
    for (const term of ['loss', 'diff', 'expert', 'policy', 'expert0', 'policy0', 'expertDiff', 'policyDiff'])
      assert.ok(Number.isFinite(summary.history[0]![term]), `DRO history lacks ${term}`);

    // The report ties it together.
    const report = await readJson<RunReport>(store, result.report);
    assert.equal(report.runId, runId);
    assert.deepEqual(report.models.dro, result.models.dro);
    assert.deepEqual(report.summaries.dro, result.summaries.dro);
    assert.equal(report.expertSet.k, config.ranking.topK);
    assert.equal(report.preferences.rows, config.data.prompts);
    assert.ok(report.rewardModel.accuracyPairs >= 1);
    assert.ok(report.stages.every((s) => s.status === 'skipped' || typeof s.seconds === 'number'));

    // A second pipeline with the same run id continues the run: every stage finds its artifacts.
    const expertsWritten = (await store.head(ranking.experts!.uri))!.metadata.createdAt;
    const again = await runPipeline(temporal, store, runId, config, `pipeline-${runId}-again`);
    assert.deepEqual(again.result.report, result.report);
    assert.deepEqual(again.result.models, result.models);
    assert.equal((await store.head(ranking.experts!.uri))!.metadata.createdAt, expertsWritten);
  });
});

describe('pipeline workflow with an S3 artifact store', { timeout: 300_000 }, () => {
  let temporal: TemporalHarness;
  let s3: S3TestServer;

  before(async () => {
    [temporal, s3] = await Promise.all([startTemporalHarness(), startS3Server()]);
  });

  after(async () => {
    await temporal?.teardown();
    await s3?.stop();
  });

  test('runs to the report with every artifact in the bucket, DPO baseline included', async () => {
    const store = new S3ArtifactStore({
      bucket: s3.bucket,
      prefix: 'dro',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    const runId = 'tiny-s3';
    const config = tinyPipelineConfig({
      dpo: {
        enabled: true,
        steps: 2,
        batchSize: 2,
        gradientAccumulation: 1,
        checkpointEvery: 1,
        stepsPerActivity: 2,
      },
    });
    const { result, progress } = await runPipeline(temporal, store, runId, config);
    assert.equal(progress.stages.find((s) => s.stage === 'dpo')?.status, 'done');
    assert.ok(result.models.dpo && result.summaries.dpo);
    const refs = progress.stages.flatMap((s) => Object.values(s.artifacts ?? {}));
    for (const ref of refs) {
      assert.ok(ref.uri.startsWith(`s3://${s3.bucket}/dro/runs/${runId}/`), ref.uri);
      assert.equal((await store.get(ref.uri, ref.sha256)).byteLength, ref.size);
    }
    const report = await readJson<RunReport>(store, result.report);
    assert.deepEqual(report.models, result.models);
  });
});
