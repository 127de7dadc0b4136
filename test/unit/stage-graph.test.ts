/**
 * The stage graph is sound for every shape of config (acyclic, every input produced by a stage
 * that has that output), disabled stages and their dependents are skipped with a reason, the
 * result-determining config hash ignores where and how fast the work runs, and every activity
 * belongs to exactly one task queue.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActivities, QUEUE_ACTIVITIES } from '../../activities';
import { configHash } from '../../cli/provenance';
import { canonicalJson } from '../../config/config-hash';
import { parseConfig } from '../../config/load';
import type { PipelineConfigInput } from '../../config/schemas';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore } from '../../storage';
import {
  checkGraph,
  skippedStages,
  STAGES,
  topologicalOrder,
  type StageDef,
} from '../../workflows/stage-graph';

const config = (input: PipelineConfigInput = {}) => parseConfig(input, 'test config');

const SHAPES: Record<string, PipelineConfigInput> = {
  'built-in world': {},
  'with DPO': { dpo: { enabled: true } },
  'without SFT': { sft: { enabled: false } },
  'imported base': { model: { baseCheckpoint: '/models/base.safetensors' } },
  'pickapic data': {
    model: { baseCheckpoint: '/models/base.safetensors' },
    data: { source: 'pickapic', paths: ['/data/a.parquet'] },
  },
};

void describe('stage graph', () => {
  for (const [name, input] of Object.entries(SHAPES)) {
    void test(`is acyclic and every input is produced (${name})`, () => {
      const c = config(input);
      assert.deepEqual(checkGraph(c), []);
      const order = topologicalOrder(c)!;
      assert.equal(order.length, Object.keys(STAGES).length);
      // Every stage comes after the stages it reads.
      for (const stage of order)
        for (const ref of Object.values(STAGES[stage].inputs(c)))
          assert.ok(
            order.indexOf(ref.split('.')[0] as never) < order.indexOf(stage),
            `${stage} before ${ref}`,
          );
    });
  }

  void test('a cycle and a missing output are reported', () => {
    const c = config();
    const cyclic: Record<string, StageDef> = {
      ...STAGES,
      base: { ...STAGES.base, inputs: () => ({ loop: 'report.report' }) },
    };
    assert.deepEqual(checkGraph(c, cyclic as typeof STAGES), ['the stage graph has a cycle']);
    const missing = { ...STAGES, sft: { ...STAGES.sft, inputs: () => ({ data: 'ranking.nothing' }) } };
    assert.deepEqual(checkGraph(c, missing), ["sft.data: stage 'ranking' has no output 'nothing'"]);
  });

  void test('disabled stages are skipped with a reason; DRO reads the base when SFT is off', () => {
    assert.deepEqual([...skippedStages(config())], [['dpo', 'dpo.enabled is false']]);
    const noSft = config({ sft: { enabled: false } });
    assert.deepEqual(
      [...skippedStages(noSft)],
      [
        ['sft', 'sft.enabled is false'],
        ['dpo', 'dpo.enabled is false'],
      ],
    );
    assert.equal(STAGES.dro.inputs(noSft).start, 'pretrain.model');
    const imported = config({ model: { baseCheckpoint: '/m.safetensors' } });
    assert.equal(skippedStages(imported).get('pretrain'), 'model.baseCheckpoint given');
    assert.equal(STAGES.sft.inputs(imported).start, 'base.model');
  });

  void test('DRO starts from the base by default, beside SFT, which still runs as a baseline', () => {
    const c = config();
    assert.equal(c.dro.warmStart, 'base');
    assert.equal(STAGES.dro.inputs(c).start, 'pretrain.model');
    assert.equal(skippedStages(c).has('sft'), false);
    const warm = config({ dro: { warmStart: 'sft' } });
    assert.equal(STAGES.dro.inputs(warm).start, 'sft.model');
    assert.notEqual(canonicalJson(STAGES.dro.slice(c)), canonicalJson(STAGES.dro.slice(warm)));
  });

  void test('DPO w/ SFT starts from the SFT model; by default DPO starts from the base', () => {
    assert.equal(STAGES.dpo.inputs(config({ dpo: { enabled: true } })).start, 'pretrain.model');
    const warm = config({ dpo: { enabled: true, warmStart: 'sft' } });
    assert.equal(STAGES.dpo.inputs(warm).start, 'sft.model');
    assert.equal(topologicalOrder(warm)!.indexOf('sft') < topologicalOrder(warm)!.indexOf('dpo'), true);
  });

  void test('DPO does not depend on SFT, DRO or the ranking', () => {
    const c = config({ dpo: { enabled: true } });
    const deps = new Set<string>();
    const visit = (stage: keyof typeof STAGES): void => {
      for (const ref of Object.values(STAGES[stage].inputs(c))) {
        const from = ref.split('.')[0] as keyof typeof STAGES;
        deps.add(from);
        visit(from);
      }
    };
    visit('dpo');
    assert.deepEqual([...deps].sort(), ['base', 'preferences', 'pretrain']);
  });
});

void describe('stage config slices', () => {
  const changedSlices = (input: PipelineConfigInput): string[] => {
    const a = config();
    const b = config(input);
    return (Object.keys(STAGES) as (keyof typeof STAGES)[]).filter(
      (stage) => canonicalJson(STAGES[stage].slice(a)) !== canonicalJson(STAGES[stage].slice(b)),
    );
  };
  void test('changing only evaluation settings changes only the evaluation stage', () => {
    assert.deepEqual(changedSlices({ eval: { guidanceScale: 3, genevalPrompts: 12, samplerSteps: 10 } }), [
      'eval',
    ]);
  });
  void test('changing the DRO margin changes only DRO; the name changes only the report', () => {
    assert.deepEqual(changedSlices({ dro: { margin: 0 } }), ['dro']);
    assert.deepEqual(changedSlices({ name: 'other' }), ['report']);
    assert.deepEqual(changedSlices({ workers: { gpuConcurrency: 2 }, dro: { stepsPerActivity: 2560 } }), []);
  });
  void test('a cap on experts per prompt changes the ranking; without one the ranking key is as before', () => {
    assert.deepEqual(changedSlices({ ranking: { maxPerPrompt: 1 } }), ['ranking']);
    assert.deepEqual(Object.keys(STAGES.ranking.slice(config()) as object).sort(), ['resolution', 'topK']);
  });
});

void describe('config hash', () => {
  const base = configHash(config());
  void test('ignores cluster, store, workers, chunking and the name', () => {
    for (const input of [
      { temporal: { embeddedPort: 9999, address: 'elsewhere:7233' } },
      { storage: { kind: 's3' as const, bucket: 'other-bucket' } },
      { workers: { gpuConcurrency: 4, heartbeatSeconds: 3, backend: 'cpu' as const } },
      { dro: { stepsPerActivity: 2560, checkpointEvery: 2560 } },
      { ranking: { shardSize: 7 } },
      { name: 'another-name' },
    ] satisfies PipelineConfigInput[])
      assert.equal(configHash(config(input)), base, JSON.stringify(input));
  });
  void test('changes with anything that changes results', () => {
    for (const input of [
      { seed: 1 },
      { dro: { margin: 0 } },
      { ranking: { topK: 10 } },
      { ranking: { maxPerPrompt: 1 } },
      { data: { prompts: 300 } },
      { eval: { guidanceScale: 3 } },
    ] satisfies PipelineConfigInput[])
      assert.notEqual(configHash(config(input)), base, JSON.stringify(input));
  });
});

void describe('task queues', () => {
  void test('every activity is registered by exactly one queue', () => {
    const all = Object.keys(
      createActivities({
        store: new LocalArtifactStore({ root: '/nonexistent' }),
        logger: createLogger({ level: 'silent' }),
      }),
    ).sort();
    const gpu: readonly string[] = QUEUE_ACTIVITIES.gpu;
    const cpu: readonly string[] = QUEUE_ACTIVITIES.cpu;
    assert.deepEqual([...gpu, ...cpu].sort(), all);
    assert.deepEqual(
      gpu.filter((n) => cpu.includes(n)),
      [],
    );
  });
});
