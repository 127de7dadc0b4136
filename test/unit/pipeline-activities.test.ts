/**
 * Input validation and idempotence of the pipeline's stage activities (run in a mock activity
 * context on a real local store), and the stage settings the workflow derives from the config.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createPreferenceActivities } from '../../activities/preferences';
import type { StageDeps } from '../../activities/stage';
import { createWorldActivities } from '../../activities/world';
import { parseConfig } from '../../config/load';
import { initBackend } from '../../engine/backend';
import { encodePng } from '../../engine/data/image-codec';
import { writePickapicParquet, type PickapicWriteRow } from '../../engine/data/pickapic';
import { decodeImageDataset } from '../../engine/io/image-dataset';
import { decodeModelBundle } from '../../engine/io/model-bundle';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore } from '../../storage';
import { trainingSettings } from '../../workflows/pipeline';

const env = new MockActivityEnvironment();
const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;

async function expectFailure(promise: Promise<unknown>, type: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `not an ApplicationFailure: ${String(err)}`);
    assert.equal(err.type, type);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, pattern);
    return true;
  });
}

function png(side: number, value: number): Uint8Array {
  return encodePng({ width: side, height: side, data: new Uint8Array(side * side * 3).fill(value) });
}

function row(i: number, overrides: Partial<PickapicWriteRow> = {}): PickapicWriteRow {
  return {
    caption: 'a photo of a red circle',
    image_0_uid: `u${i}-0`,
    image_1_uid: `u${i}-1`,
    jpg_0: png(16, 10 * i),
    jpg_1: png(16, 10 * i + 5),
    label_0: 1,
    label_1: 0,
    user_id: 1,
    ranking_id: i,
    ...overrides,
  };
}

describe('pipeline stage activities', { timeout: 60_000 }, () => {
  let dir: string;
  let deps: StageDeps;

  before(async () => {
    await initBackend('auto');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-stages-'));
    deps = {
      store: new LocalArtifactStore({ root: path.join(dir, 'store') }),
      logger: createLogger({ level: 'warn', destination: process.stderr }),
    };
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a missing base checkpoint fails permanently, naming the field and the path', async () => {
    const world = createWorldActivities(deps);
    const missing = path.join(dir, 'no-such-model.safetensors');
    for (const uri of [missing, pathToFileURL(missing).href]) {
      await expectFailure(
        run(world.importBaseModel, { runId: 'r', uri }),
        'PipelineSourceNotFound',
        new RegExp(`model\\.baseCheckpoint: cannot read .*no-such-model\\.safetensors \\(no such file\\)`),
      );
    }
    const notABundle = path.join(dir, 'not-a-bundle.safetensors');
    fs.writeFileSync(notABundle, 'hello');
    await expectFailure(
      run(world.importBaseModel, { runId: 'r', uri: notABundle }),
      'SafetensorsError',
      /model\.baseCheckpoint/,
    );
  });

  test('prepareWorld refuses a latent-space UNet and too small images', async () => {
    const world = createWorldActivities(deps);
    const input = {
      runId: 'r',
      seed: 0,
      unet: 'demo' as const,
      resolution: 16,
      captionNoise: 0.3,
      corpusSize: 4,
    };
    await expectFailure(
      run(world.prepareWorld, { ...input, unet: 'tiny' }),
      'PipelineBadInput',
      /model\.unet 'tiny' takes 4-channel latents/,
    );
    await expectFailure(
      run(world.prepareWorld, { ...input, resolution: 8 }),
      'PipelineBadInput',
      /model\.resolution 8: the built-in world needs at least 16 px/,
    );
  });

  test('prepareWorld writes the corpus and the initial model once; a retry returns them', async () => {
    const world = createWorldActivities(deps);
    const input = {
      runId: 'w',
      seed: 1,
      unet: 'demo' as const,
      resolution: 16,
      captionNoise: 0.5,
      corpusSize: 6,
    };
    const first = await run(world.prepareWorld, input);
    const corpus = decodeImageDataset(await deps.store.get(first.corpus.uri, first.corpus.sha256));
    assert.equal(corpus.examples.length, 6);
    assert.equal(corpus.height, 16);
    const model = decodeModelBundle(await deps.store.get(first.model.uri, first.model.sha256));
    assert.equal(model.unet.config.sample_size, 16);
    assert.equal(model.tokenizer.config.maxLength, model.text.config.max_position_embeddings);
    model.unet.dispose();
    model.text.dispose();
    const written = (await deps.store.head(first.model.uri))!.metadata.createdAt;
    const again = await run(world.prepareWorld, input);
    assert.deepEqual(again, first);
    assert.equal((await deps.store.head(first.model.uri))!.metadata.createdAt, written);
  });

  test('a missing preference shard fails permanently, naming data.paths[i]', async () => {
    const prefs = createPreferenceActivities(deps);
    await expectFailure(
      run(prefs.importPreferences, {
        runId: 'p',
        source: 'pickapic',
        paths: [path.join(dir, 'missing.parquet')],
        onBadRow: 'fail',
      }),
      'PipelineSourceNotFound',
      /data\.paths\[0\]: .*missing\.parquet does not exist/,
    );
    const junk = path.join(dir, 'junk.parquet');
    fs.writeFileSync(junk, 'not parquet at all');
    await assert.rejects(
      run(prefs.importPreferences, { runId: 'p', source: 'pickapic', paths: [junk], onBadRow: 'fail' }),
      (err: unknown) =>
        err instanceof ApplicationFailure && err.nonRetryable && /junk\.parquet/.test(err.message),
    );
  });

  test('bad rows are skipped and named by file and row, or fail the import', async () => {
    const shard = path.join(dir, 'shard.parquet');
    await writePickapicParquet(shard, [row(0), row(1, { caption: null }), row(2)], { validate: false });
    const prefs = createPreferenceActivities(deps);
    const result = await run(prefs.importPreferences, {
      runId: 'skip',
      source: 'pickapic',
      paths: [pathToFileURL(shard).href],
      onBadRow: 'skip',
    });
    assert.equal(result.rows, 2);
    assert.equal(result.skipped, 1);
    assert.deepEqual(result.badRows, [{ file: shard, row: 1, field: 'caption', reason: 'missing_caption' }]);
    assert.ok(await deps.store.exists(result.preferences.uri));
    await expectFailure(
      run(prefs.importPreferences, { runId: 'fail', source: 'pickapic', paths: [shard], onBadRow: 'fail' }),
      'PickapicRowError',
      /shard\.parquet row 1 field caption: missing_caption/,
    );
  });

  test('a caption folder becomes one row per image, shown twice (no comparison)', async () => {
    const folder = path.join(dir, 'folder');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'a.png'), png(16, 30));
    fs.writeFileSync(path.join(folder, 'a.txt'), 'a photo of a blue square');
    fs.writeFileSync(path.join(folder, 'b.png'), png(16, 90));
    fs.writeFileSync(path.join(folder, 'b.txt'), 'a photo of a red circle');
    const prefs = createPreferenceActivities(deps);
    const result = await run(prefs.importPreferences, {
      runId: 'folder',
      source: 'folder',
      paths: [folder],
      onBadRow: 'fail',
    });
    assert.equal(result.rows, 2);
    assert.equal(result.comparisons, 0);
    assert.equal(result.prompts, 2);
  });
});

describe('stage training settings', () => {
  test('come from the config; pretraining never flips images', () => {
    const config = parseConfig({ seed: 7, sft: { randomFlip: false }, dro: { margin: 0.002 } });
    const pretrain = trainingSettings(config, 'pretrain');
    assert.equal(pretrain.method, 'sft');
    assert.equal(pretrain.randomFlip, false);
    assert.equal(pretrain.steps, config.pretrain.steps);
    assert.equal(pretrain.learningRate, config.pretrain.learningRate);
    const dro = trainingSettings(config, 'dro');
    assert.ok(dro.method === 'dro');
    assert.equal(dro.margin, 0.002);
    assert.equal(dro.seed, 7);
    assert.equal(dro.samplerSteps, config.dro.samplerSteps);
    assert.equal(trainingSettings(config, 'sft').randomFlip, false);
    const dpo = trainingSettings(config, 'dpo');
    assert.ok(dpo.method === 'dpo' && dpo.beta === config.dpo.beta);
  });
});
