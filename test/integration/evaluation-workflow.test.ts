/**
 * The evaluation workflow on a real Temporal dev server: two compute workers share the shards of
 * an evaluation of two random 16 px world models; a second execution under the same `out`
 * recomputes no shard (no generation happens, the shard artifacts keep their creation times) and
 * returns the same artifacts; a malformed suite fails the workflow at once, naming file and line.
 *
 * The workflow runs on a queue of its own, from a bundle of workflows/evaluation.ts, so the test
 * does not depend on which workflows the production bundle registers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { temporal as temporalProto } from '@temporalio/proto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createEvaluationActivities, type EvaluationDocument } from '../../activities/evaluation';
import { createWorldActivities, type PrepareWorldResult } from '../../activities/world';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { initBackend } from '../../engine/backend';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';
import type { EvaluationInput } from '../../contracts/evaluation';
import { evaluationWorkflow } from '../../workflows/evaluation';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { createWorker } from '../../workers/create-worker';

const QUEUE = 'dro-eval-test';

type History = temporalProto.api.history.v1.IHistory;

function activitiesIn(history: History): string[] {
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => n != null);
}

describe('evaluation workflow on a real Temporal dev server', { timeout: 180_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  let store: LocalArtifactStore;
  let models: { name: string; model: ArtifactRef }[];
  const workers: Worker[] = [];
  const connections: NativeConnection[] = [];
  let runs: Promise<void>[] = [];
  /** Shards each compute worker computed (not found committed), and the most evaluated at once. */
  const computedBy = [0, 0];
  let inFlight = 0;
  let maxInFlight = 0;

  before(async () => {
    await initBackend('wasm');
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-eval-wf-'));
    store = new LocalArtifactStore({ root: dir });
    const deps = { store, logger: temporal.logger };
    const env = new MockActivityEnvironment();
    const world = createWorldActivities(deps);
    models = [];
    for (const [name, seed] of [
      ['base', 5],
      ['dro', 6],
    ] as const) {
      const w = (await env.run(world.prepareWorld, {
        runId: 'eval-wf',
        out: `models/${name}`,
        seed,
        unet: 'demo' as const,
        resolution: 16,
        captionNoise: 0,
        corpusSize: 1,
      })) as PrepareWorldResult;
      models.push({ name, model: w.model });
    }
    // Two compute workers, as two GPU processes would be: each its own connection, activities and
    // model cache (the SDK allows one worker per queue and connection).
    for (const worker of [0, 1]) {
      const evaluation = createEvaluationActivities(deps);
      const evaluateShard: typeof evaluation.evaluateShard = async (input) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          const r = await evaluation.evaluateShard(input);
          if (r.computed) computedBy[worker]!++;
          return r;
        } finally {
          inFlight--;
        }
      };
      const connection = await NativeConnection.connect({ address: temporal.address });
      connections.push(connection);
      const w = await createWorker({
        connection,
        namespace: temporal.namespace,
        taskQueue: TASK_QUEUES.gpu,
        runsWorkflows: false,
        activities: { ...evaluation, evaluateShard },
        shutdownGraceTime: '2 seconds',
      });
      workers.push(w);
    }
    // The workflow and the I/O activity (planEvaluation).
    const io = createEvaluationActivities(deps);
    workers.push(
      await Worker.create({
        connection: temporal.env.nativeConnection,
        namespace: temporal.namespace,
        taskQueue: QUEUE,
        workflowsPath: path.join(__dirname, '..', '..', 'workflows', 'evaluation.ts'),
        activities: {},
      }),
      await Worker.create({
        connection: temporal.env.nativeConnection,
        namespace: temporal.namespace,
        taskQueue: TASK_QUEUES.cpu,
        activities: { planEvaluation: io.planEvaluation },
      }),
    );
    runs = workers.map((w) => w.run());
    for (const r of runs) r.catch(() => undefined);
  });

  after(async () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(runs);
    for (const c of connections) await c.close();
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const input = (out: string, extra: Partial<EvaluationInput> = {}): EvaluationInput => ({
    runId: 'eval-wf',
    out,
    models,
    rewards: [],
    settings: {
      seed: 3,
      genevalPrompts: 3,
      imagesPerPrompt: 2,
      winratePrompts: 2,
      winrateSamples: 3,
      samplerSteps: 2,
      guidanceScale: 2,
      bootstrapSamples: 200,
      shardSize: 4,
      gridPrompts: 2,
    },
    ...extra,
  });

  const execute = async (workflowId: string, args: EvaluationInput) => {
    const handle = await temporal.client.workflow.start(evaluationWorkflow, {
      taskQueue: QUEUE,
      workflowId,
      args: [args],
    });
    const result = await handle.result();
    return { result, history: await handle.fetchHistory() };
  };

  test('shards fan out over both compute workers; a second execution or evaluation recomputes none', async () => {
    const out = 'evals/wf';
    const first = await execute('eval-wf-1', input(out));
    // 2 models x (3 prompts x 2 GenEval images + 2 prompts x 3 win-rate samples) = 24 images, 4 per shard.
    assert.deepEqual(first.result.shards, { total: 6, computed: 6, reused: 0 });
    assert.ok(
      computedBy[0]! > 0 && computedBy[1]! > 0,
      `both workers computed shards: ${computedBy.join(', ')}`,
    );
    assert.ok(maxInFlight >= 2, `shards ran at once (at most ${maxInFlight})`);
    const shardKeys = (await store.list(`${out}/shards/`)).sort();
    assert.equal(shardKeys.length, 6);
    const created = await Promise.all(shardKeys.map(async (k) => (await store.head(k))!.metadata.createdAt));

    const doc = JSON.parse(
      new TextDecoder().decode(await store.get(first.result.evaluation.uri, first.result.evaluation.sha256)),
    ) as EvaluationDocument;
    assert.deepEqual(Object.keys(first.result.results), ['base', 'dro']);
    assert.deepEqual(
      doc.winRates.map((w) => `${w.a} vs ${w.b} (${w.reward})`),
      ['dro vs base (detector)'],
    );
    assert.equal(doc.geneval.summaries.base!.images, 6);
    assert.match(first.result.tables, /GenEval[\s\S]*Win rate/);

    const before = [...computedBy];
    const second = await execute('eval-wf-2', input(out));
    assert.deepEqual(second.result.shards, { total: 6, computed: 0, reused: 6 });
    assert.deepEqual(computedBy, before, 'no worker generated an image');
    assert.deepEqual(
      await Promise.all(shardKeys.map(async (k) => (await store.head(k))!.metadata.createdAt)),
      created,
    );
    const { shards: _a, ...firstRest } = first.result;
    const { shards: _b, ...secondRest } = second.result;
    assert.deepEqual(secondRest, firstRest);
    const scheduled = activitiesIn(second.history);
    assert.equal(scheduled.filter((a) => a === 'evaluateShard').length, 6);
    assert.deepEqual(
      scheduled.filter((a) => a !== 'evaluateShard'),
      ['planEvaluation', 'summarizeEvaluation'],
    );

    // Another evaluation (another prefix) of the same models finds every shard by content.
    const third = await execute('eval-wf-3', input('evals/wf-other'));
    assert.deepEqual(third.result.shards, { total: 6, computed: 0, reused: 6 });
    assert.deepEqual(computedBy, before, 'no worker generated an image');
    const resultsOf = async (r: typeof first.result) =>
      Promise.all(
        Object.values(r.results).map(async (ref) => new TextDecoder().decode(await store.get(ref.uri))),
      );
    assert.deepEqual(await resultsOf(third.result), await resultsOf(first.result));
    assert.equal(third.result.tables, first.result.tables);
  });

  test('a malformed suite fails the workflow without retries, naming the file and line', async () => {
    const suite = await store.put(
      'suites/broken.jsonl',
      new TextEncoder().encode(
        '{"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"}\nnot json\n',
      ),
      { kind: 'test', producer: 'test' },
    );
    const handle = await temporal.client.workflow.start(evaluationWorkflow, {
      taskQueue: QUEUE,
      workflowId: 'eval-wf-bad-suite',
      args: [input('evals/bad', { suite })],
    });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause;
      assert.ok(cause instanceof ApplicationFailure, String(cause));
      assert.equal(cause.type, 'EvalSuiteError');
      assert.match(cause.message, /broken\.jsonl line 2: malformed JSON/);
      return true;
    });
    const history = await handle.fetchHistory();
    const attempts = (history.events ?? [])
      .map((e) => e.activityTaskStartedEventAttributes?.attempt)
      .filter((a): a is number => a != null);
    assert.deepEqual(attempts, [1]);
    assert.equal(await store.exists('evals/bad/plan.json'), false);
  });
});
