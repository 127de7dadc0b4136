/**
 * The whole pipeline on a real-format latent model: config/tiny-sd.json (the random Stable
 * Diffusion folder test/fixtures/tiny-sd, Pick-a-Pic preferences from test/fixtures/pickapic-tiny)
 * on a real Temporal dev server and store. Every stage runs; SFT, DRO and DPO train the UNet on
 * VAE latents encoded once; evaluation decodes samples with the VAE, skips GenEval with its reason
 * and reports reward win rates; each trained model is also written as a diffusers folder that the
 * folder loader reads back with the trained weights.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSafetensors } from '../../engine/io/safetensors';
import { loadConfigFile } from '../../config/load';
import { PipelineConfig } from '../../config/schemas';
import { loadDiffusersPipeline } from '../../engine/io/diffusers-pipeline';
import { decodeLatentImageSet } from '../../engine/latent/latent-data';
import { LATENT_MODEL_FORMAT } from '../../engine/latent/latent-model';
import { startPipeline } from '../../cli/commands/run';
import { LocalArtifactStore, type ArtifactRef, type ArtifactStore } from '../../storage';
import { pipelineProgressQuery } from '../../contracts/pipeline';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';

const ROOT = path.join(import.meta.dirname, '..', '..');

async function readJson<T>(store: ArtifactStore, ref: ArtifactRef): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await store.get(ref.uri, ref.sha256))) as T;
}

describe('tiny Stable Diffusion pipeline (config/tiny-sd.json)', { timeout: 600_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  const cwd = process.cwd();

  before(async () => {
    // The config names its fixtures relative to the repository root.
    process.chdir(ROOT);
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-tiny-sd-'));
  });

  after(async () => {
    await temporal?.teardown();
    process.chdir(cwd);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('runs every stage on latents and exports diffusers folders', async () => {
    const store = new LocalArtifactStore({ root: dir });
    const shipped = loadConfigFile(path.join(ROOT, 'config', 'tiny-sd.json'));
    const config = PipelineConfig.parse({ ...shipped, storage: { kind: 'local', root: dir } });
    const runId = 'tiny-sd';
    const workers = await temporal.startWorkers({ store });
    let progress;
    try {
      const handle = await startPipeline(temporal.client, { runId, config });
      await handle.result();
      progress = await handle.query(pipelineProgressQuery);
    } finally {
      await workers.stop();
    }
    assert.deepEqual(
      progress.stages.map((s) => [s.stage, s.status]),
      [
        ['base', 'done'],
        ['pretrain', 'skipped'],
        ['preferences', 'done'],
        ['reward', 'done'],
        ['ranking', 'done'],
        ['sft', 'done'],
        ['dro', 'done'],
        ['dpo', 'done'],
        ['eval', 'done'],
        ['report', 'done'],
      ],
    );
    const stage = (name: string) => progress.stages.find((s) => s.stage === name)!.artifacts!;

    // The base model is the folder as one latent-model artifact.
    const base = stage('base').model!;
    const baseBytes = await store.get(base.uri, base.sha256);
    assert.equal(parseSafetensors(baseBytes).metadata.format, LATENT_MODEL_FORMAT);

    // Expert images were encoded into latents once (shared by SFT and DRO), the pairs once (DPO).
    const imageSets = (await store.list('latents/images/')).filter((k) => k.endsWith('.safetensors'));
    const pairSets = (await store.list('latents/pairs/')).filter((k) => k.endsWith('.safetensors'));
    assert.equal(imageSets.length, 1, imageSets.join(', '));
    assert.equal(pairSets.length, 1, pairSets.join(', '));
    const latents = decodeLatentImageSet(await store.get(imageSets[0]!));
    assert.deepEqual([latents.height, latents.width, latents.channels], [8, 8, 4]);
    assert.equal(latents.examples.length, config.ranking.topK);
    assert.ok(
      latents.examples.every((e) => e.flipped),
      'randomFlip: mirrored images encoded too',
    );
    assert.equal(latents.encoding.sourceSha256, stage('ranking').experts!.sha256);
    // The one caption longer than CLIP's 77 tokens is truncated (and counted), not refused.
    const { decodeLatentPairSet } = await import('../../engine/latent/latent-data');
    assert.equal(decodeLatentPairSet(await store.get(pairSets[0]!)).encoding.truncatedPrompts, 1);

    // Evaluation: GenEval skipped with its reason, reward win rates of every trained model.
    const evaluation = await readJson<{
      geneval: { skipped?: string; table: unknown[] };
      winRates: { method: string; reward: string }[];
      rewards: { name: string }[];
    }>(store, stage('eval').evaluation!);
    assert.match(evaluation.geneval.skipped ?? '', /GenEval is skipped: .*latent model/);
    assert.deepEqual(evaluation.geneval.table, []);
    assert.deepEqual(
      evaluation.rewards.map((r) => r.name),
      ['preference'],
    );
    assert.ok(evaluation.winRates.length > 0);

    // Every trained model: a latent model artifact and a diffusers folder holding its EMA UNet.
    for (const name of ['sft', 'dro', 'dpo']) {
      const summary = await readJson<{
        diffusers: { prefix: string; files: Record<string, ArtifactRef> };
      }>(store, stage(name).summary!);
      const folder = fs.mkdtempSync(path.join(os.tmpdir(), `export-${name}-`));
      try {
        for (const [rel, ref] of Object.entries(summary.diffusers.files)) {
          fs.mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
          fs.writeFileSync(path.join(folder, rel), await store.get(ref.uri, ref.sha256));
        }
        const pipe = await loadDiffusersPipeline(folder);
        try {
          const model = stage(name).model!;
          const bundle = parseSafetensors(await store.get(model.uri, model.sha256));
          const got = pipe.unet.params.getWeights('diffusers');
          try {
            for (const [n, t] of got)
              assert.deepEqual(t.dataSync(), bundle.tensors.get(`unet/${n}`)!.data, `${name}: ${n}`);
          } finally {
            for (const t of got.values()) t.dispose();
          }
        } finally {
          pipe.dispose();
        }
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
      }
    }
    // The report was written.
    assert.ok(stage('report').html);
  });
});
