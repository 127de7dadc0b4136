/**
 * Evaluation shards reused by content: an evaluation of {base, sft, dro} followed by one of
 * {base, sft, dro2} (another out prefix, as the eval stage of a run with another DRO) computes only
 * dro2's shards, the reused ones are the first evaluation's content-keyed shards, and every result
 * equals an evaluation computed from scratch in a fresh store. A content-keyed shard whose bytes no
 * longer match their digest is not reused: it is recomputed into the next generation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createEvaluationActivities,
  shardContentStoreKey,
  type EvaluationDocument,
  type EvaluationShardDocument,
} from '../../activities/evaluation';
import type { StageDeps } from '../../activities/stage';
import { createWorldActivities } from '../../activities/world';
import { initBackend } from '../../engine/backend';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';
import { planShards, type EvalModelInput, type EvaluationSettings } from '../../contracts/evaluation';

const env = new MockActivityEnvironment();
const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;

const SETTINGS: EvaluationSettings = {
  seed: 5,
  genevalPrompts: 2,
  imagesPerPrompt: 2,
  winratePrompts: 2,
  winrateSamples: 3,
  samplerSteps: 2,
  guidanceScale: 2,
  bootstrapSamples: 50,
  shardSize: 5,
  gridPrompts: 1,
};

interface Evaluated {
  /** Per model: how many of its shards were computed and how many reused. */
  shards: Record<string, { computed: number; reused: number }>;
  docs: EvaluationShardDocument[];
  evaluation: EvaluationDocument;
  results: Record<string, string>;
  tables: string;
}

describe('evaluation shards reused by content', { timeout: 300_000 }, () => {
  let dir: string;
  const logger = createLogger({ level: 'error', destination: process.stderr });
  let deps: StageDeps;
  const bundles = new Map<string, Uint8Array>();
  const refs = new Map<string, ArtifactRef>();

  const text = async (d: StageDeps, ref: ArtifactRef): Promise<string> =>
    new TextDecoder().decode(await d.store.get(ref.uri, ref.sha256));

  /** plan, every shard, summary: as evaluationWorkflow runs them. */
  async function evaluate(d: StageDeps, out: string, models: EvalModelInput[]): Promise<Evaluated> {
    const acts = createEvaluationActivities(d);
    const planned = await run(acts.planEvaluation, {
      runId: 'reuse-test',
      out,
      models,
      rewards: [],
      settings: SETTINGS,
    });
    const shards = planShards({
      models: models.map((m) => m.name),
      genevalPrompts: planned.genevalPrompts,
      imagesPerPrompt: SETTINGS.imagesPerPrompt,
      winratePrompts: planned.winratePrompts,
      winrateSamples: SETTINGS.winrateSamples,
      genevalRoot: planned.genevalRoot,
      winrateRoot: planned.winrateRoot,
      shardSize: SETTINGS.shardSize!,
      gridPrompts: planned.gridPrompts,
    });
    const counts: Evaluated['shards'] = Object.fromEntries(
      models.map((m) => [m.name, { computed: 0, reused: 0 }]),
    );
    const shardRefs: ArtifactRef[] = [];
    const docs: EvaluationShardDocument[] = [];
    for (const s of shards) {
      const r = await run(acts.evaluateShard, {
        runId: 'reuse-test',
        out,
        plan: planned.plan,
        shard: s.shard,
        model: s.model,
        jobs: s.jobs,
      });
      counts[s.model]![r.computed ? 'computed' : 'reused']++;
      shardRefs.push(r.shard);
      docs.push(JSON.parse(await text(d, r.shard)) as EvaluationShardDocument);
    }
    const summary = await run(acts.summarizeEvaluation, {
      runId: 'reuse-test',
      out,
      plan: planned.plan,
      shards: shardRefs,
    });
    const results: Record<string, string> = {};
    for (const [name, ref] of Object.entries(summary.results)) results[name] = await text(d, ref);
    return {
      shards: counts,
      docs,
      evaluation: JSON.parse(await text(d, summary.evaluation)) as EvaluationDocument,
      results,
      tables: summary.tables,
    };
  }

  const modelsOf = (names: string[]): EvalModelInput[] =>
    names.map((name) => ({ name: name === 'dro2' ? 'dro' : name, model: refs.get(name)! }));

  /** What an evaluation concludes, without the artifact references that name its prefix and store. */
  const conclusions = (e: Evaluated) => ({
    results: e.results,
    tables: e.tables,
    geneval: e.evaluation.geneval,
    winRates: e.evaluation.winRates,
    winRateImages: e.evaluation.winRateImages,
    utility: e.evaluation.utility,
  });

  before(async () => {
    await initBackend('wasm');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-eval-reuse-'));
    deps = { store: new LocalArtifactStore({ root: path.join(dir, 'store') }), logger };
    const world = createWorldActivities(deps);
    for (const [name, seed] of [
      ['base', 1],
      ['sft', 2],
      ['dro', 3],
      ['dro2', 4],
    ] as const) {
      const w = await run(world.prepareWorld, {
        runId: 'reuse-test',
        out: `models/${name}`,
        seed,
        unet: 'demo',
        resolution: 16,
        captionNoise: 0,
        corpusSize: 1,
      });
      refs.set(name, w.model);
      bundles.set(name, await deps.store.get(w.model.uri, w.model.sha256));
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a second evaluation computes only the new model; its results equal a fresh computation', async () => {
    const first = await evaluate(deps, 'evals/first', modelsOf(['base', 'sft', 'dro']));
    assert.deepEqual(first.shards, {
      base: { computed: 2, reused: 0 },
      sft: { computed: 2, reused: 0 },
      dro: { computed: 2, reused: 0 },
    });

    // Another DRO model under the same name: only its shards are computed.
    const second = await evaluate(deps, 'evals/second', modelsOf(['base', 'sft', 'dro2']));
    assert.deepEqual(second.shards, {
      base: { computed: 0, reused: 2 },
      sft: { computed: 0, reused: 2 },
      dro: { computed: 2, reused: 0 },
    });
    // The reused shards are the first evaluation's content-keyed shards, read back by digest.
    second.docs.forEach((doc, n) => {
      assert.ok(doc.content, `shard ${n} names its content-keyed shard`);
      if (doc.model === 'dro') {
        assert.equal(doc.content.reused, false);
        assert.notDeepEqual(doc.content, first.docs[n]!.content);
      } else {
        assert.equal(doc.content.reused, true);
        assert.deepEqual(doc.content.ref, first.docs[n]!.content!.ref);
      }
    });
    // Content shards are written once: the store holds one per distinct shard.
    const stored = await deps.store.list('eval-shards/');
    assert.equal(stored.length, 8);

    // The same models evaluated from scratch in an empty store conclude the same.
    const fresh: StageDeps = { store: new LocalArtifactStore({ root: path.join(dir, 'fresh') }), logger };
    const freshRefs: EvalModelInput[] = [];
    for (const name of ['base', 'sft', 'dro2'])
      freshRefs.push({
        name: name === 'dro2' ? 'dro' : name,
        model: await fresh.store.put(`models/${name}.safetensors`, bundles.get(name)!, {
          kind: 'model',
          producer: 'test',
        }),
      });
    const scratch = await evaluate(fresh, 'evals/scratch', freshRefs);
    assert.deepEqual(scratch.shards, {
      base: { computed: 2, reused: 0 },
      sft: { computed: 2, reused: 0 },
      dro: { computed: 2, reused: 0 },
    });
    assert.deepEqual(conclusions(second), conclusions(scratch));
    assert.notDeepEqual(second.results.dro, first.results.dro);

    // A content-keyed shard whose bytes changed is not reused: it is computed again into the next
    // generation (the changed one is never overwritten), and the results stay the same.
    const broken = second.docs[0]!.content!.ref;
    const file = new URL(broken.uri).pathname;
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 2] = bytes[bytes.length - 2] === 0x30 ? 0x31 : 0x30;
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, bytes);
    const third = await evaluate(deps, 'evals/third', modelsOf(['base', 'sft', 'dro2']));
    assert.deepEqual(third.shards, {
      base: { computed: 1, reused: 1 },
      sft: { computed: 0, reused: 2 },
      dro: { computed: 0, reused: 2 },
    });
    assert.equal(third.docs[0]!.content!.ref.uri, broken.uri.replace(/\/0\.json$/, '/1.json'));
    assert.ok(
      (await deps.store.list('eval-shards/')).includes(shardContentStoreKey(third.docs[0]!.content!.key, 1)),
    );
    assert.deepEqual(conclusions(third), conclusions(scratch));
  });
});
