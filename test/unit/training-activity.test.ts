/**
 * The training activities in a mock activity context with a real local store: checkpoint cadence
 * and keys, the resume order (a newer committed checkpoint in the store, then the heartbeated one,
 * then the input checkpoint, then fresh), cancellation at an
 * update boundary, the non-retryable failures, and the finalized artifacts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { checkpointKey, createTrainingActivities, SUMMARY_FORMAT } from '../../activities/training';
import { initBackend } from '../../engine/backend';
import { decodeModelBundle } from '../../engine/io/model-bundle';
import { parseSafetensors } from '../../engine/io/safetensors';
import { decodeCheckpoint } from '../../engine/training/checkpoint';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, PERMANENT_STORE_ERROR_TYPES, type ArtifactRef } from '../../storage';
import {
  TRAINING_NON_RETRYABLE_ERROR_TYPES,
  type FinalizeTrainingInput,
  type FinalizeTrainingResult,
  type TrainChunkHeartbeat,
  type TrainChunkInput,
  type TrainChunkResult,
} from '../../contracts/training';
import { putTinyInputs, tinyDroSettings, tinyExperts, tinyModelBundle } from '../harness/training-worker';
import { encodePng } from '../../engine/data/image-codec';
import { writePickapicParquet } from '../../engine/data/pickapic';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';

let dir: string;
let store: LocalArtifactStore;
let inputs: { startModel: ArtifactRef; data: ArtifactRef };
const logger = createLogger({ level: 'warn', destination: process.stderr });
const activities = () => createTrainingActivities({ store: new LocalArtifactStore({ root: dir }), logger });

function train(input: TrainChunkInput, env = new MockActivityEnvironment()): Promise<TrainChunkResult> {
  return env.run(activities().trainChunk, input) as Promise<TrainChunkResult>;
}

function finalize(input: FinalizeTrainingInput): Promise<FinalizeTrainingResult> {
  return new MockActivityEnvironment().run(
    activities().finalizeTraining,
    input,
  ) as Promise<FinalizeTrainingResult>;
}

function chunkInput(runId: string, untilStep: number, extra: Partial<TrainChunkInput> = {}): TrainChunkInput {
  return { runId, stage: 'dro', settings: tinyDroSettings(8), ...inputs, untilStep, ...extra };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

before(async () => {
  await initBackend('wasm');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-training-activity-'));
  store = new LocalArtifactStore({ root: dir });
  inputs = await putTinyInputs(store);
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('trainChunk', () => {
  const beats: TrainChunkHeartbeat[] = [];
  let straight: ArtifactRef;

  test('writes a checkpoint at every checkpointEvery and heartbeats each one', async () => {
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: TrainChunkHeartbeat) => beats.push({ ...d }));
    const r = await train(chunkInput('straight', 8), env);
    straight = r.checkpoint;
    assert.equal(r.step, 8);
    assert.equal(r.record.restoredFrom, 'fresh');
    assert.equal(r.record.fromStep, 0);
    const keys = await store.list('runs/straight/dro/checkpoints/');
    // Every checkpoint was heartbeated; the store keeps the newest three (DEFAULT_KEEP_CHECKPOINTS).
    assert.deepEqual(
      keys.sort(),
      [4, 6, 8].map((s) => checkpointKey('straight', 'dro', s)),
    );
    assert.deepEqual(
      [...new Set(beats.filter((b) => b.checkpoint).map((b) => b.checkpointStep))],
      [2, 4, 6, 8],
    );
    assert.ok(beats.some((b) => typeof b.loss === 'number' && typeof b.imagesPerSecond === 'number'));
    const head = await store.head(r.checkpoint.uri);
    assert.equal(head?.metadata.kind, 'checkpoint');
    assert.deepEqual(head?.metadata.inputs, [inputs.startModel.sha256, inputs.data.sha256]);
  });

  test('chunks continued from checkpoints end on the same bytes as one straight chunk', async () => {
    const a = await train(chunkInput('chunked', 4));
    assert.equal(a.step, 4);
    const b = await train(chunkInput('chunked', 8, { fromCheckpoint: a.checkpoint }));
    assert.equal(b.record.restoredFrom, 'input');
    assert.equal(b.record.fromStep, 4);
    assert.equal(b.checkpoint.sha256, straight.sha256);
  });

  test('a retried attempt resumes from the heartbeated checkpoint, not the input one', async () => {
    const mid = beats.find((b) => b.checkpointStep === 6)!;
    const env = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: mid });
    const r = await train(chunkInput('retried', 8), env);
    assert.equal(r.record.restoredFrom, 'heartbeat');
    assert.equal(r.record.fromStep, 6);
    assert.equal(r.record.attempt, 2);
    assert.equal(r.checkpoint.sha256, straight.sha256);
  });

  test('a retried attempt without heartbeat details resumes from the newest committed checkpoint in the store', async () => {
    // The killed attempt committed steps 2, 4 and 6, but none of its checkpoint heartbeats reached
    // the server (SIGKILL within the SDK's throttle window), and it left a half-written step 8: an
    // object without its metadata, which must never be taken.
    await train(chunkInput('unbeaten', 6));
    const partial = path.join(dir, 'runs/unbeaten/dro/checkpoints/step-0000008.safetensors');
    fs.writeFileSync(partial, new Uint8Array([1, 2, 3]));
    const env = new MockActivityEnvironment({ attempt: 2 });
    const steps: number[] = [];
    env.on('heartbeat', (d: TrainChunkHeartbeat) => {
      if (typeof d.loss === 'number') steps.push(d.step);
    });
    const r = await train(chunkInput('unbeaten', 8), env);
    assert.equal(r.record.restoredFrom, 'store');
    assert.equal(r.record.fromStep, 6);
    assert.equal(r.record.attempt, 2);
    assert.deepEqual(r.record.restoredCheckpoint, {
      uri: `${store.baseUri}/${checkpointKey('unbeaten', 'dro', 6)}`,
      sha256: (await store.head(checkpointKey('unbeaten', 'dro', 6)))!.ref.sha256,
      step: 6,
    });
    // Only the micro-steps after the checkpoint were trained again.
    assert.deepEqual([...new Set(steps)], [8]);
    assert.equal(r.checkpoint.sha256, straight.sha256);
  });

  test('a newer committed checkpoint in the store wins over the heartbeated or input one', async () => {
    const a = await train(chunkInput('behind', 2));
    await train(chunkInput('behind', 6, { fromCheckpoint: a.checkpoint }));
    const two = beats.find((b) => b.checkpointStep === 2)!;
    const retried = await train(
      chunkInput('behind', 8, { fromCheckpoint: a.checkpoint }),
      new MockActivityEnvironment({ attempt: 3, heartbeatDetails: { ...two, checkpoint: a.checkpoint } }),
    );
    assert.equal(retried.record.restoredFrom, 'store');
    assert.equal(retried.record.fromStep, 6);
    assert.equal(retried.checkpoint.sha256, straight.sha256);
  });

  test('a stored checkpoint that fails verification is passed over for the next older one', async () => {
    await train(chunkInput('bad-newest', 6));
    const file = path.join(dir, checkpointKey('bad-newest', 'dro', 6));
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    const r = await train(chunkInput('bad-newest', 8), new MockActivityEnvironment({ attempt: 2 }));
    assert.equal(r.record.restoredFrom, 'store');
    assert.equal(r.record.fromStep, 4);
    assert.equal(r.checkpoint.sha256, straight.sha256);
  });

  test('cancellation stops at the next update boundary and keeps its checkpoint', async () => {
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: TrainChunkHeartbeat) => {
      if (d.checkpointStep === 2) env.cancel();
    });
    await assert.rejects(train(chunkInput('cancelled', 8), env), (err: unknown) => {
      assert.ok(err instanceof CancelledFailure, String(err));
      const at = err.details[0] as { step: number; checkpoint: ArtifactRef };
      assert.equal(at.step % 2, 0);
      assert.ok(at.step >= 2 && at.step < 8, `stopped at ${at.step}`);
      return true;
    });
    const keys = await store.list('runs/cancelled/dro/checkpoints/');
    assert.ok(keys.includes(checkpointKey('cancelled', 'dro', 2)));
    assert.ok(
      !keys.includes(checkpointKey('cancelled', 'dro', 8)),
      'ran to the end despite the cancellation',
    );
  });

  test('the configured backend trains the chunk and the stage output prefix holds its checkpoints', async () => {
    try {
      const r = await train(
        chunkInput('on-cpu', 2, { backend: 'cpu', out: 'stages/dro/0123456789abcdef/a' }),
        new MockActivityEnvironment(),
      );
      assert.equal(r.record.backend, 'cpu');
      assert.equal(
        r.checkpoint.uri,
        `${store.baseUri}/stages/dro/0123456789abcdef/a/checkpoints/step-0000002.safetensors`,
      );
    } finally {
      await initBackend('wasm');
    }
  });

  test('a non-finite loss is a non-retryable NonFiniteTrainingError naming the step', async () => {
    const settings = tinyDroSettings(40, { learningRate: 1e30, weightDecay: 0 });
    const f = await failureOf(train(chunkInput('nan', 40, { settings })));
    assert.equal(f.type, 'NonFiniteTrainingError');
    assert.equal(f.nonRetryable, true);
    const step = (f.details?.[0] as { step: number }).step;
    assert.match(f.message, new RegExp(`micro-step ${step}\\b`));
    assert.ok((await store.list('runs/nan/dro/checkpoints/')).length > 0, 'no good checkpoint was kept');
  });

  test('bad inputs fail non-retryably with the problem named', async () => {
    const run = (input: TrainChunkInput) => failureOf(train(input));
    const empty = await putTinyInputs(store, tinyExperts(0));
    let f = await run(chunkInput('bad', 2, { data: empty.data }));
    assert.equal(f.type, 'TrainingInputError');
    assert.equal(f.nonRetryable, true);
    assert.match(f.message, /expert set file:.*experts-\w+\.safetensors is empty/);

    const odd = await putTinyInputs(store, tinyExperts(4, 1, 7));
    f = await run(chunkInput('bad', 2, { data: odd.data }));
    assert.equal(f.type, 'TrainingInputError');
    assert.match(f.message, /7x7 images are not divisible by 2/);

    const rgbModel = await putTinyInputs(
      store,
      tinyExperts(4),
      tinyModelBundle({ ...TINY_UNET, in_channels: 3, out_channels: 3 }),
    );
    f = await run(chunkInput('bad', 2, { startModel: rgbModel.startModel }));
    assert.equal(f.type, 'TrainingInputError');
    assert.match(f.message, /images have 4 channels, the model takes 3/);

    const wide = await putTinyInputs(
      store,
      tinyExperts(4),
      tinyModelBundle({ ...TINY_UNET, cross_attention_dim: 16 }),
    );
    f = await run(chunkInput('bad', 2, { startModel: wide.startModel }));
    assert.equal(f.type, 'ModelBundleError');
    assert.match(f.message, /hidden_size 32 differs from unet_config.cross_attention_dim 16/);

    f = await run(chunkInput('bad', 2, { stage: 'dpo' }));
    assert.equal(f.type, 'TrainingInputError');
    assert.match(f.message, /stage 'dpo' trains with method 'dpo', got 'dro'/);
  });

  test('a corrupt checkpoint is a non-retryable DigestMismatchError', async () => {
    const a = await train(chunkInput('corrupt', 2));
    const file = new URL(a.checkpoint.uri).pathname;
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    const f = await failureOf(train(chunkInput('corrupt', 4, { fromCheckpoint: a.checkpoint })));
    assert.equal(f.type, 'DigestMismatchError');
    assert.equal(f.nonRetryable, true);
    assert.match(f.message, /step-0000002/);
  });

  test('the non-retryable list covers every permanent store error', () => {
    for (const t of PERMANENT_STORE_ERROR_TYPES) assert.ok(TRAINING_NON_RETRYABLE_ERROR_TYPES.includes(t), t);
  });
});

describe('trainChunk on Pick-a-Pic pairs (DPO)', () => {
  const rgbUnet = { ...TINY_UNET, in_channels: 3, out_channels: 3 };
  const png = (seed: number, side = 8) => {
    const rng = new Rng(seed);
    const data = new Uint8Array(side * side * 3).map(() => Math.floor(rng.uniform() * 256));
    return encodePng({ width: side, height: side, data });
  };
  const row = (i: number, label0: number, side1 = 8) => ({
    caption: 'a red circle',
    image_0_uid: `u${i}a`,
    image_1_uid: `u${i}b`,
    jpg_0: png(10 * i + 1),
    jpg_1: png(10 * i + 2, side1),
    label_0: label0,
    label_1: 1 - label0,
    user_id: 1,
    ranking_id: i,
  });
  const parquet = async (name: string, rows: ReturnType<typeof row>[]) => {
    const file = path.join(dir, name);
    await writePickapicParquet(file, rows, { minImageSide: 1 });
    return store.put(`inputs/${name}`, fs.readFileSync(file), { kind: 'preferences', producer: 'test' });
  };
  const dpo = (steps: number) =>
    ({ ...tinyDroSettings(steps), method: 'dpo', beta: 2500 }) as unknown as TrainChunkInput['settings'];

  test('trains on winner/loser pairs read from parquet, skipping ties', async () => {
    const model = await putTinyInputs(store, tinyExperts(1), tinyModelBundle(rgbUnet));
    const data = await parquet('pairs.parquet', [row(0, 1), row(1, 0.5), row(2, 0), row(3, 1)]);
    const r = await train({
      runId: 'dpo',
      stage: 'dpo',
      settings: dpo(4),
      startModel: model.startModel,
      data,
      untilStep: 4,
    });
    assert.equal(r.step, 4);
    assert.ok(Number.isFinite(r.lastMetrics?.implicitAccuracy), JSON.stringify(r.lastMetrics));
    const ties = await parquet('ties.parquet', [row(4, 0.5)]);
    const f = await failureOf(
      train({
        runId: 'dpo-ties',
        stage: 'dpo',
        settings: dpo(2),
        startModel: model.startModel,
        data: ties,
        untilStep: 2,
      }),
    );
    assert.match(f.message, /preference set .*ties\.parquet is empty/);
  });

  test('images of different sizes are refused with the row named', async () => {
    const model = await putTinyInputs(store, tinyExperts(1), tinyModelBundle(rgbUnet));
    const data = await parquet('mixed.parquet', [row(0, 1), row(1, 0, 16)]);
    const f = await failureOf(
      train({
        runId: 'dpo-bad',
        stage: 'dpo',
        settings: dpo(2),
        startModel: model.startModel,
        data,
        untilStep: 2,
      }),
    );
    assert.equal(f.type, 'TrainingInputError');
    assert.match(f.message, /mixed\.parquet row 1: image is 16x16, the first pair's is 8x8/);
  });
});

describe('finalizeTraining', () => {
  test('exports the EMA weights of the last checkpoint with a summary of its history', async () => {
    const chunk = await train(chunkInput('final', 4));
    const r = await finalize({
      runId: 'final',
      stage: 'dro',
      ...inputs,
      checkpoint: chunk.checkpoint,
      chunks: [chunk.record],
      totalChunks: 1,
      startedAtMs: 1000,
      finishedAtMs: 4500,
    });
    const ckpt = decodeCheckpoint(await store.get(chunk.checkpoint.uri, chunk.checkpoint.sha256));
    const ema = ckpt.groups.get('ema')!;
    const model = decodeModelBundle(await store.get(r.model.uri, r.model.sha256));
    try {
      let differsFromStart = false;
      const start = decodeModelBundle(await store.get(inputs.startModel.uri));
      for (const name of model.unet.params.names) {
        const got = model.unet.params.get(name).dataSync();
        assert.deepEqual(got, ema.get(name)!.data, name);
        if (!differsFromStart)
          differsFromStart = start.unet.params
            .get(name)
            .dataSync()
            .some((v, i) => v !== got[i]);
      }
      start.unet.dispose();
      start.text.dispose();
      assert.ok(differsFromStart, 'the exported UNet equals the start model');
    } finally {
      model.unet.dispose();
      model.text.dispose();
    }
    const unet = parseSafetensors(await store.get(r.unet.uri, r.unet.sha256));
    assert.equal(unet.metadata.format, 'pt');
    assert.ok(unet.tensors.has('conv_in.weight'));
    const summary = JSON.parse(
      new TextDecoder().decode(await store.get(r.summary.uri, r.summary.sha256)),
    ) as Record<string, unknown>;
    assert.equal(summary.format, SUMMARY_FORMAT);
    assert.equal(summary.steps, 4);
    assert.equal(summary.wallTimeSeconds, 3.5);
    assert.deepEqual(summary.history, (ckpt.state as { history: unknown }).history);
    assert.equal((summary.history as unknown[]).length, 2);
    assert.equal((summary.startModel as { sha256: string }).sha256, inputs.startModel.sha256);
    assert.equal(summary.backend, 'wasm');
  });
});
