/**
 * `ranking.rewardModel: "onnx"` with `ranking.onnxModel` naming a CLIP-style folder: the reward
 * stage stores every file of the folder, later stages rebuild the same model from the stored copies,
 * and pre-flight names a folder that is not one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createRewardActivities,
  loadRewardModel,
  type RewardDescriptor,
  type TrainRewardModelResult,
} from '../../activities/reward';
import { readJsonArtifact, type StageDeps } from '../../activities/stage';
import { preflight } from '../../cli/preflight';
import { parseConfig } from '../../config/load';
import { initBackend } from '../../engine/backend';
import { writePickapicParquet } from '../../engine/data/pickapic';
import { generatePrompts } from '../../engine/world/world';
import { simulateFeedback } from '../../engine/world/simulate';
import { worldGenerator } from '../../engine/world/world-generator';
import { ClipOnnxReward } from '../../engine/rewards/clip-onnx-reward';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'clip-reward');

describe('CLIP reward folder in the reward stage', { timeout: 120_000 }, () => {
  let dir: string;
  let deps: StageDeps;
  let preferences: ArtifactRef;
  const env = new MockActivityEnvironment();
  const logger = createLogger({ level: 'warn', destination: process.stderr });

  before(async () => {
    await initBackend('auto');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-clip-stage-'));
    const store = new LocalArtifactStore({ root: path.join(dir, 'store') });
    deps = { store, logger };
    const feedback = await simulateFeedback(
      generatePrompts('clip-stage', 6),
      worldGenerator({ resolution: 16 }),
      {
        seed: 3,
      },
    );
    const file = path.join(dir, 'prefs.parquet');
    await writePickapicParquet(file, feedback.rows);
    preferences = await store.put('runs/r/preferences/pickapic.parquet', fs.readFileSync(file), {
      kind: 'pickapic-parquet',
      producer: 'test',
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('stores the folder and later stages score exactly as the folder does', async () => {
    const rewards = createRewardActivities(deps);
    const trained = (await env.run(rewards.trainRewardModel, {
      runId: 'r',
      seed: 0,
      kind: 'onnx' as const,
      onnxModel: FIXTURE,
      preferences,
    })) as TrainRewardModelResult;
    const descriptor = await readJsonArtifact<RewardDescriptor>(deps.store, trained.reward);
    assert.deepEqual(Object.keys(descriptor.clipFiles ?? {}).sort(), [
      'merges.txt',
      'model.onnx',
      'preprocessor_config.json',
      'tokenizer_config.json',
      'vocab.json',
    ]);
    assert.equal(descriptor.weights, undefined);
    const direct = await ClipOnnxReward.load(FIXTURE);
    const { model, dispose } = await loadRewardModel(deps, trained.reward);
    try {
      assert.equal(model.digest, direct.digest);
      const images = [0, 1, 2].map((k) => ({
        width: 20 + k * 7,
        height: 24,
        data: Uint8Array.from({ length: (20 + k * 7) * 24 * 3 }, (_, i) => (i * (31 + k)) % 256),
      }));
      const prompts = ['a photo of a red circle', 'two blue squares', ''];
      assert.deepEqual(await model.score(images, prompts), await direct.score(images, prompts));
    } finally {
      await dispose();
    }
  });

  test('pre-flight names a folder that is not a CLIP reward folder', async () => {
    const bad = path.join(dir, 'not-clip');
    fs.mkdirSync(bad);
    fs.copyFileSync(path.join(FIXTURE, 'model.onnx'), path.join(bad, 'model.onnx'));
    const config = parseConfig({ ranking: { rewardModel: 'onnx', onnxModel: bad } });
    const problems = await preflight(config, { cwd: dir });
    assert.ok(
      problems.some(
        (p) => p.path.includes('ranking.onnxModel') && /preprocessor_config\.json/.test(p.message),
      ),
      JSON.stringify(problems),
    );
    const good = parseConfig({ ranking: { rewardModel: 'onnx', onnxModel: FIXTURE } });
    const none = await preflight(good, { cwd: dir });
    assert.equal(none.filter((p) => p.path.includes('onnxModel')).length, 0, JSON.stringify(none));
  });
});
