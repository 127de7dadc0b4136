/**
 * The whole pipeline on a real Temporal dev server with both workers and a real store: a tiny
 * built-in-world configuration (demo UNet at 16 px, a handful of steps per stage) runs base-model
 * preparation + pretraining, simulated preferences, the preference reward model, sharded expert
 * ranking, SFT and DRO, and writes the run report. Every artifact must exist and verify. Then
 * the stage cache: a second run of the same config computes nothing, and a run that failed in its
 * last stage, resumed under the same run id, runs only that stage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PipelineConfig } from '../../config/schemas';
import { tinyPipelineConfig } from '../harness/tiny-config';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { decodeImageDataset } from '../../engine/io/image-dataset';
import type { ExpertSet } from '../../engine/ranking/expert-ranking';
import { LocalArtifactStore, S3ArtifactStore, type ArtifactRef, type ArtifactStore } from '../../storage';
import { trainingWorkflowId } from '../../workflows/pipeline';
import { pipelineProgressQuery, type RunManifest, type RunReport } from '../../contracts/pipeline';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import { runsQuery, verifyManifest } from '../../cli/commands/runs';
import { startPipeline } from '../../cli/commands/run';
import { configHash } from '../../cli/provenance';
import type { temporal as temporalProto } from '@temporalio/proto';
import { startS3Server, type S3TestServer } from '../harness/s3-server';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { DRO_RUN_ID, DRO_STAGE } from '../../contracts/search-attributes';

async function readJson<T>(store: ArtifactStore, ref: ArtifactRef): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await store.get(ref.uri, ref.sha256))) as T;
}

type History = temporalProto.api.history.v1.IHistory;

/** Activity types scheduled in a history, in order. */
function activitiesIn(history: History): string[] {
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => n != null);
}

function childrenIn(history: History): string[] {
  return (history.events ?? [])
    .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId)
    .filter((id): id is string => id != null);
}

async function runPipeline(
  temporal: TemporalHarness,
  store: ArtifactStore,
  runId: string,
  config: PipelineConfig = tinyPipelineConfig(),
  override?: (activities: Activities) => Partial<Activities>,
) {
  const workers = await temporal.startWorkers({ store, ...(override && { override }) });
  try {
    const handle = await startPipeline(temporal.client, { runId, config });
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
        ['eval', 'done'],
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
      .map((a) => [a.activityType?.name, a.taskQueue?.name])
      .filter(([name]) => name !== 'lookupStage' && name !== 'commitStage');
    assert.deepEqual(scheduled, [
      ['prepareWorld', TASK_QUEUES.gpu],
      ['simulatePreferences', TASK_QUEUES.gpu],
      ['trainRewardModel', TASK_QUEUES.gpu],
      ['scoreRankingShards', TASK_QUEUES.gpu],
      ['scoreRankingShards', TASK_QUEUES.gpu],
      ['scoreRankingShards', TASK_QUEUES.gpu],
      ['scoreRankingShards', TASK_QUEUES.gpu],
      ['rankExperts', TASK_QUEUES.gpu],
      ['writeRunReport', TASK_QUEUES.cpu],
      ['writeRunManifest', TASK_QUEUES.cpu],
    ]);
    // Every cached stage asked the cache first and missed (a fresh store).
    assert.ok(progress.stages.filter((s) => s.cache).every((s) => s.cache!.hit === false));
    const children = (history.events ?? [])
      .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId)
      .filter((id) => id != null);
    // SFT and DRO both start from the base, so they start side by side, in either order.
    assert.deepEqual(
      [children[0], [...children.slice(1, 3)].sort(), children[3], children.length],
      [
        trainingWorkflowId(runId, 'pretrain'),
        [trainingWorkflowId(runId, 'dro'), trainingWorkflowId(runId, 'sft')],
        `${runId}-eval`,
        4,
      ],
    );

    // Every artifact of every stage exists and verifies against its digest.
    const refs = progress.stages.flatMap((s) => Object.values(s.artifacts ?? {}));
    assert.ok(refs.length >= 14, `only ${refs.length} artifacts recorded`);
    for (const ref of refs) {
      assert.match(
        ref.uri,
        new RegExp(`^${store.baseUri}/(stages/[a-z]+/[0-9a-f]{16}/a|runs/${runId}/executions/[^/]+)/`),
      );
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
    const rankingPrefix = ranking.ranking!.uri.slice(store.baseUri.length + 1).replace(/ranking\.json$/, '');
    const shards = await store.list(`${rankingPrefix}shards-${config.ranking.shardSize}/`);
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

    // The evaluation ran on base, SFT and DRO; its tables are printed and in the report for people.
    assert.ok(result.tables, 'no evaluation tables');
    for (const method of ['base', 'sft', 'dro']) assert.match(result.tables, new RegExp(`\\b${method}\\b`));
    const html = new TextDecoder().decode(
      await store.get(result.reportFiles.html.uri, result.reportFiles.html.sha256),
    );
    assert.match(html, /GenEval/);
    assert.doesNotMatch(html, /(src|href)="https?:/);
    const md = new TextDecoder().decode(await store.get(result.reportFiles.markdown.uri));
    assert.match(md, /\| *dro *\|/);

    // The manifest records the config hash, every stage's cache outcome and every artifact.
    const manifest = await readJson<RunManifest>(store, result.manifest);
    assert.equal(manifest.status, 'completed');
    assert.equal(manifest.provenance?.configHash, configHash(config));
    assert.deepEqual(
      (await verifyManifest(manifest)).filter((r) => r.status !== 'ok'),
      [],
    );

    // A second run of the same config computes nothing: every stage is a verified cache hit, no
    // compute activity and no training child is started, and the models are the same artifacts.
    const expertsWritten = (await store.head(ranking.experts!.uri))!.metadata.createdAt;
    const second = await runPipeline(temporal, store, `${runId}-second`, config);
    assert.deepEqual(childrenIn(second.history), []);
    assert.deepEqual(
      activitiesIn(second.history).filter((a) => a !== 'lookupStage'),
      ['writeRunReport', 'writeRunManifest'],
    );
    const cached = second.progress.stages.filter((s) => s.cache);
    assert.ok(cached.length >= 6);
    for (const s of cached)
      assert.deepEqual([s.stage, s.cache!.hit, s.cache!.fromRun], [s.stage, true, runId]);
    assert.deepEqual(second.result.models, result.models);
    assert.equal((await store.head(ranking.experts!.uri))!.metadata.createdAt, expertsWritten);

    // Runs are found by their result-determining config hash.
    const listed: string[] = [];
    for await (const w of temporal.client.workflow.list({
      query: runsQuery({ configHash: configHash(config) }),
    }))
      listed.push(w.workflowId);
    assert.deepEqual(listed.sort(), [runId, `${runId}-second`]);

    // A changed artifact is caught by the audit.
    const dro = manifest.artifacts.find((a) => a.stage === 'dro' && a.role === 'model')!;
    const file = new URL(dro.uri);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    const audit = await verifyManifest(manifest);
    assert.deepEqual(
      audit.filter((r) => r.status !== 'ok').map((r) => [r.stage, r.role, r.status]),
      [['dro', 'model', 'changed']],
    );
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    fs.writeFileSync(file, bytes);
  });

  test('a run that failed in its last stage resumes running only that stage', async () => {
    const store = new LocalArtifactStore({ root: path.join(dir, 'resume') });
    const runId = 'tiny-resume';
    const config = tinyPipelineConfig({ name: 'resume-test' });
    await assert.rejects(
      runPipeline(temporal, store, runId, config, () => ({
        writeRunReport: () =>
          Promise.reject(ApplicationFailure.nonRetryable('report disk full', 'PipelineBadInput')),
      })),
      /Workflow execution failed/,
    );
    const failed = await temporal.client.workflow.getHandle(runId).describe();
    assert.equal(failed.status.name, 'FAILED');
    const firstHistory = await temporal.client.workflow.getHandle(runId, failed.runId).fetchHistory();
    assert.equal(
      childrenIn(firstHistory).length,
      4,
      'the first execution trained pretrain, sft and dro, and evaluated',
    );

    // Same run id again: the reuse policy lets a failed run continue; only the report runs.
    const resumed = await runPipeline(temporal, store, runId, config);
    assert.notEqual(resumed.description.runId, failed.runId);
    assert.deepEqual(childrenIn(resumed.history), [], 'no training child was started again');
    assert.deepEqual(
      activitiesIn(resumed.history).filter((a) => a !== 'lookupStage'),
      ['writeRunReport', 'writeRunManifest'],
    );
    assert.ok(resumed.progress.stages.filter((s) => s.cache).every((s) => s.cache!.hit));
    // The failed execution left a manifest saying so.
    const manifests = (await store.list(`runs/${runId}/executions/`)).filter((k) =>
      k.endsWith('manifest.json'),
    );
    assert.equal(manifests.length, 2);
    const statuses = await Promise.all(
      manifests.map(
        async (k) => (JSON.parse(new TextDecoder().decode(await store.get(k))) as RunManifest).status,
      ),
    );
    assert.deepEqual(statuses.sort(), ['completed', 'failed']);

    // A completed run id is refused.
    await assert.rejects(startPipeline(temporal.client, { runId, config }), /already completed/);
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
    const stage = (name: string) => progress.stages.find((s) => s.stage === name)!;
    assert.equal(stage('dpo').status, 'done');
    // DPO needs only the base and the preferences: it starts beside the reward -> ranking -> SFT ->
    // DRO branch instead of after it, so the two branches overlap in time.
    assert.ok(
      stage('dpo').startedAtMs! < stage('ranking').finishedAtMs!,
      `DPO started at ${stage('dpo').startedAtMs}, after ranking finished at ${stage('ranking').finishedAtMs}`,
    );
    assert.ok(stage('dpo').finishedAtMs! > stage('reward').startedAtMs!);
    assert.ok(result.models.dpo && result.summaries.dpo);
    const refs = progress.stages.flatMap((s) => Object.values(s.artifacts ?? {}));
    for (const ref of refs) {
      assert.ok(ref.uri.startsWith(`s3://${s3.bucket}/dro/`), ref.uri);
      assert.equal((await store.get(ref.uri, ref.sha256)).byteLength, ref.size);
    }
    const report = await readJson<RunReport>(store, result.report);
    assert.deepEqual(report.models, result.models);
  });
});
