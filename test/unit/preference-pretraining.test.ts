/**
 * The preference model's pretraining on captioned scenes and its use as the reward stage's
 * starting point (`ranking.preferenceInit`): word order counts, pretraining teaches the model to
 * tell a scene's caption from a contradicting one, the stage fine-tunes the given weights and
 * records them, and weights that do not fit or do not match their SHA-256 are refused by name.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createRewardActivities,
  type RewardDescriptor,
  type TrainRewardModelResult,
} from '../../activities/reward';
import { readJsonArtifact, type StageDeps } from '../../activities/stage';
import { preflight } from '../../cli/preflight';
import { parseConfig } from '../../config/load';
import { initBackend } from '../../engine/backend';
import { writePickapicParquet } from '../../engine/data/pickapic';
import { Rng } from '../../engine/rng';
import { renderScene, sampleCaptionedScene } from '../../engine/world/render';
import { generatePrompts } from '../../engine/world/world';
import { simulateFeedback } from '../../engine/world/simulate';
import { worldGenerator } from '../../engine/world/world-generator';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors';
import {
  PreferenceModel,
  PreferenceWeightsError,
  checkPreferenceWeights,
  defaultPreferenceConfig,
  trainPreferenceModel,
  type PreferencePair,
} from '../../engine/rewards/preference-model';
import { pretrainPreferenceModel } from '../../engine/rewards/preference-pretraining';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';

/** Share of fresh scenes whose true caption the model scores above a contradicting caption. */
function captionAccuracy(model: PreferenceModel, scenes: number): number {
  const rng = new Rng('held-out scenes');
  const r = model.config.resolution;
  let right = 0;
  for (let i = 0; i < scenes; i++) {
    const c = sampleCaptionedScene(rng, { pWrong: 1, pPartial: 0 });
    const image = renderScene(c.scene, { resolution: r });
    const x = tf.tensor4d(image.data, [1, r, r, 3]);
    const s = model.forward(tf.concat([x, x]) as tf.Tensor4D, [
      model.tokenize(c.metadata.prompt),
      model.tokenize(c.caption),
    ]);
    const [pos, neg] = s.dataSync();
    if (pos! > neg!) right++;
    tf.dispose([x, s]);
  }
  return right / scenes;
}

function weightsBytes(model: PreferenceModel): Uint8Array {
  return model.serializeWeights();
}

describe('preference-model pretraining', { timeout: 300_000 }, () => {
  let dir: string;
  let deps: StageDeps;
  let preferences: ArtifactRef;
  let pretrained: PreferenceModel;
  const env = new MockActivityEnvironment();

  before(async () => {
    await initBackend('wasm');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-pref-pretrain-'));
    deps = {
      store: new LocalArtifactStore({ root: path.join(dir, 'store') }),
      logger: createLogger({ level: 'warn', destination: process.stderr }),
    };
    const feedback = await simulateFeedback(
      generatePrompts('pretrain-stage', 24),
      worldGenerator({ resolution: 16 }),
      {
        seed: 4,
      },
    );
    const file = path.join(dir, 'prefs.parquet');
    await writePickapicParquet(file, feedback.rows);
    preferences = await deps.store.put('runs/r/preferences/pickapic.parquet', fs.readFileSync(file), {
      kind: 'pickapic-parquet',
      producer: 'test',
    });
    pretrained = (
      await pretrainPreferenceModel(defaultPreferenceConfig(), { seed: 2, steps: 120, batchSize: 32 })
    ).model;
  });
  after(() => {
    pretrained.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('word order changes the prompt vector; a bag of words cannot see it', () => {
    const swapped = [
      'a photo of a red circle and a blue square',
      'a photo of a blue circle and a red square',
    ];
    for (const wordOrder of [true, false]) {
      const model = new PreferenceModel(defaultPreferenceConfig({ wordOrder }), { seed: 3 });
      const t = model.textFeatures(swapped.map((p) => model.tokenize(p)));
      const [a, b] = tf.unstack(t).map((v) => Array.from(v.dataSync()));
      const differ = a!.some((v, i) => Math.abs(v - b![i]!) > 1e-6);
      assert.equal(differ, wordOrder, `wordOrder ${wordOrder}`);
      model.dispose();
      t.dispose();
    }
  });

  test('pretraining teaches true captions apart from contradicting ones', () => {
    const untrained = new PreferenceModel(defaultPreferenceConfig(), { seed: 2 });
    const before = captionAccuracy(untrained, 300);
    untrained.dispose();
    const after = captionAccuracy(pretrained, 300);
    assert.ok(after > 0.6 && after > before + 0.08, `held-out caption accuracy ${before} -> ${after}`);
  });

  test('pretraining is a function of its seed', async () => {
    const a = await pretrainPreferenceModel(defaultPreferenceConfig(), { seed: 5, steps: 3, batchSize: 8 });
    const b = await pretrainPreferenceModel(defaultPreferenceConfig(), { seed: 5, steps: 3, batchSize: 8 });
    const c = await pretrainPreferenceModel(defaultPreferenceConfig(), { seed: 6, steps: 3, batchSize: 8 });
    assert.deepEqual(weightsBytes(a.model), weightsBytes(b.model));
    assert.notDeepEqual(weightsBytes(a.model), weightsBytes(c.model));
    [a, b, c].forEach((r) => r.model.dispose());
  });

  test('fine-tuning starts from the given weights', async () => {
    const pair: PreferencePair = {
      prompt: 'a photo of a red circle',
      images: [
        { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(200) },
        { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(20) },
      ],
      label0: 1,
    };
    const init = pretrained.weights();
    const tuned = await trainPreferenceModel([pair], defaultPreferenceConfig(), {
      seed: 1,
      epochs: 1,
      lr: 1e-7,
      init,
    });
    const w = tuned.model.weights();
    const maxDiff = Math.max(
      ...[...init].map(([name, d]) => Math.max(...d.map((v, i) => Math.abs(v - w.get(name)![i]!)))),
    );
    assert.ok(maxDiff < 1e-4, `weights moved ${maxDiff} from the given start`);
    tuned.model.dispose();
    // The caller's weights are not trained in place.
    assert.deepEqual(init.get('text.embedding'), pretrained.weights().get('text.embedding'));
  });

  test('weights that do not fit are named', () => {
    const good = parseSafetensors(pretrained.serializeWeights(), 'good');
    assert.equal(checkPreferenceWeights(good, 'good').size, good.tensors.size);
    const without = new Map(good.tensors);
    without.delete('text.positional');
    assert.throws(
      () => checkPreferenceWeights({ tensors: without, metadata: good.metadata }, 'x.safetensors'),
      (e: Error) =>
        e instanceof PreferenceWeightsError &&
        /x\.safetensors: weight 'text\.positional' is missing/.test(e.message),
    );
    const otherVocab = JSON.stringify({ ...defaultPreferenceConfig(), vocab: ['<unk>', '<pad>', 'circle'] });
    assert.throws(
      () => checkPreferenceWeights({ tensors: good.tensors, metadata: { config: otherVocab } }, 'v'),
      /vocabulary differs/,
    );
    assert.throws(
      () => checkPreferenceWeights({ tensors: good.tensors, metadata: {} }, 'm'),
      /no preference-model config/,
    );
  });

  test('the reward stage fine-tunes ranking.preferenceInit and records it; a wrong SHA-256 is refused', async () => {
    const file = path.join(dir, 'pretrained.safetensors');
    const bytes = pretrained.serializeWeights();
    fs.writeFileSync(file, bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const rewards = createRewardActivities(deps);
    const base = { seed: 0, kind: 'preference' as const, preferences, epochs: 1 };
    const trained = (await env.run(rewards.trainRewardModel, {
      ...base,
      runId: 'init',
      preferenceInit: file,
      preferenceInitSha256: sha256,
    })) as TrainRewardModelResult;
    const descriptor = await readJsonArtifact<RewardDescriptor>(deps.store, trained.reward);
    assert.deepEqual(descriptor.init, { source: file, sha256 });
    const scratch = (await env.run(rewards.trainRewardModel, {
      ...base,
      runId: 'scratch',
    })) as TrainRewardModelResult;
    assert.equal((await readJsonArtifact<RewardDescriptor>(deps.store, scratch.reward)).init, undefined);
    assert.notEqual(trained.identity.digest, scratch.identity.digest);

    await assert.rejects(
      env.run(rewards.trainRewardModel, {
        ...base,
        runId: 'bad',
        preferenceInit: file,
        preferenceInitSha256: '0'.repeat(64),
      }),
      (e: unknown) =>
        e instanceof ApplicationFailure &&
        e.nonRetryable &&
        /ranking\.preferenceInitSha256/.test(e.message) &&
        e.message.includes(sha256),
    );
    await assert.rejects(
      env.run(rewards.trainRewardModel, {
        ...base,
        runId: 'missing',
        preferenceInit: path.join(dir, 'nope.safetensors'),
      }),
      (e: unknown) =>
        e instanceof ApplicationFailure &&
        e.nonRetryable &&
        /ranking\.preferenceInit.*no such file/.test(e.message),
    );
  });

  test('pre-flight names a preference init or a base checkpoint whose SHA-256 differs', async () => {
    const file = path.join(dir, 'pretrained.safetensors');
    fs.writeFileSync(file, pretrained.serializeWeights());
    const bad = parseConfig({ ranking: { preferenceInit: file, preferenceInitSha256: 'a'.repeat(64) } });
    const problems = await preflight(bad, { cwd: dir });
    assert.ok(
      problems.some(
        (p) => p.path.includes('ranking.preferenceInitSha256') && /replaced or corrupted/.test(p.message),
      ),
      JSON.stringify(problems),
    );
    const notWeights = path.join(dir, 'not-weights.safetensors');
    fs.writeFileSync(
      notWeights,
      serializeSafetensors(new Map([['x', { shape: [1], data: new Float32Array(1) }]])),
    );
    const wrong = await preflight(parseConfig({ ranking: { preferenceInit: notWeights } }), { cwd: dir });
    assert.ok(
      wrong.some(
        (p) => p.path.includes('ranking.preferenceInit') && /no preference-model config/.test(p.message),
      ),
      JSON.stringify(wrong),
    );
    const base = path.resolve(__dirname, '..', '..', 'models', 'world-base', 'base.safetensors');
    const baseBad = await preflight(
      parseConfig({ model: { baseCheckpoint: base, baseCheckpointSha256: 'b'.repeat(64) } }),
      { cwd: dir },
    );
    assert.ok(
      baseBad.some(
        (p) => p.path.includes('model.baseCheckpointSha256') && /replaced or corrupted/.test(p.message),
      ),
      JSON.stringify(baseBad),
    );
    const actual = createHash('sha256').update(fs.readFileSync(base)).digest('hex');
    const baseGood = await preflight(
      parseConfig({ model: { baseCheckpoint: base, baseCheckpointSha256: actual } }),
      {
        cwd: dir,
      },
    );
    assert.equal(baseGood.filter((p) => p.path.includes('Sha256')).length, 0, JSON.stringify(baseGood));
  });
});
