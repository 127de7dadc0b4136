/**
 * A compute-queue worker running only the training activities, as a separate process that a test
 * can SIGKILL mid-chunk:
 *
 * ```sh
 * TEMPORAL_ADDRESS=127.0.0.1:7233 DRO_TEST_STORE='{"kind":"local","root":"/tmp/store"}' \
 *   node --import tsx test/harness/training-worker.ts
 * ```
 *
 * Env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (default `default`), DRO_TEST_STORE (a storage config
 * as JSON, plus optional `credentials` for S3), DRO_TRAINING_HEARTBEAT_SECONDS (default 1),
 * DRO_TEST_SIGKILL_AFTER_CHECKPOINT (a micro-step: the process SIGKILLs itself the moment the
 * checkpoint of that step is committed to the store, before the activity can heartbeat it; a
 * hard kill inside the SDK's heartbeat throttle window, every time).
 * Prints `ready` on stdout once polling; SIGTERM shuts it down gracefully.
 *
 * Imported as a module it provides the tiny training setup the training tests share.
 */
import { createTrainingActivities } from '../../activities/training';
import { checkpointFileName } from '../../engine/training/checkpoint-selection';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { worldTokenizer } from '../../engine/world/world-text';
import { encodeImageDataset } from '../../engine/io/image-dataset';
import { encodeModelBundle } from '../../engine/io/model-bundle';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET, type UNetConfig } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import type { ImageDataset } from '../../engine/training/datasets';
import type { TrainingSettings } from '../../engine/training/methods';
import { createLogger } from '../../infra/logger';
import {
  openStore,
  sha256Hex,
  type ArtifactRef,
  type ArtifactStore,
  type S3Credentials,
  type StorageConfigInput,
} from '../../storage';
import { connectWorker, createWorker } from '../../workers/create-worker';
import { installRuntime } from '../../workers/runtime';

const PROMPTS = ['a red circle', 'a blue square', 'two green triangles', 'a white ring left of a cross'];

/** A TINY_UNET (8x8x4 latents) with a 2-layer text encoder over the world tokenizer, as a bundle. */
export function tinyModelBundle(unetConfig: UNetConfig = TINY_UNET, seed = 3): Uint8Array {
  const tokenizer = worldTokenizer();
  const text = CLIPTextModel.create(
    demoTextEncoderConfig(tokenizer.vocabSize, 16, 32),
    new Rng(seed + 1),
    false,
  );
  const unet = UNet2DConditionModel.create(unetConfig, new Rng(seed), false);
  try {
    return encodeModelBundle({ unet, text, tokenizer });
  } finally {
    unet.dispose();
    text.dispose();
  }
}

/** `n` random 8x8x4 "expert" images in [-1, 1] with world prompts. */
export function tinyExperts(n: number, seed = 1, side = 8): ImageDataset {
  const rng = new Rng(seed);
  return {
    height: side,
    width: side,
    channels: 4,
    examples: Array.from({ length: n }, (_, i) => ({
      prompt: PROMPTS[i % PROMPTS.length]!,
      image: rng.fillUniform(new Float32Array(side * side * 4), -1, 1),
    })),
  };
}

/** The optimizer settings both tiny methods share: a checkpoint at every update of 2 x batch 2. */
const TINY_COMMON = {
  learningRate: 1e-3,
  weightDecay: 0.01,
  batchSize: 2,
  gradientAccumulation: 2,
  maxGradNorm: 1,
  promptDropout: 0.2,
  randomFlip: true,
  emaDecay: 0.99,
  checkpointEvery: 2,
};

/** DRO with a checkpoint at every optimizer update (2 micro-steps of batch 2). */
export function tinyDroSettings(steps: number, overrides: Partial<TrainingSettings> = {}): TrainingSettings {
  return {
    method: 'dro',
    seed: 7,
    steps,
    ...TINY_COMMON,
    margin: 1e-3,
    bufferSize: 4,
    bufferBatchSize: 2,
    bufferSampleSteps: 2,
    bufferUpdateSteps: 4,
    samplerSteps: 4,
    bufferGuidanceScale: 1,
    ...overrides,
  } as TrainingSettings;
}

/** SFT with a checkpoint at every optimizer update (2 micro-steps of batch 2). */
export function tinySftSettings(steps: number, overrides: Partial<TrainingSettings> = {}): TrainingSettings {
  return {
    method: 'sft',
    seed: 5,
    steps,
    ...TINY_COMMON,
    ...overrides,
  } as TrainingSettings;
}

/**
 * `store` whose put SIGKILLs this process as soon as the checkpoint of micro-step `step` is
 * committed (object and metadata written), before the put returns to the training activity.
 */
function killAfterCheckpoint(store: ArtifactStore, step: number): ArtifactStore {
  const name = `/checkpoints/${checkpointFileName(step)}`;
  const put = store.put.bind(store);
  store.put = async (key, data, options) => {
    const ref = await put(key, data, options);
    if (key.endsWith(name)) {
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => {});
    }
    return ref;
  };
  return store;
}

/** Stores the tiny start model and expert set under `inputs/`. */
export async function putTinyInputs(
  store: ArtifactStore,
  experts: ImageDataset = tinyExperts(6),
  modelBytes: Uint8Array = tinyModelBundle(),
): Promise<{ startModel: ArtifactRef; data: ArtifactRef }> {
  const dataBytes = encodeImageDataset(experts);
  // Keys named by content, so different inputs in one store never replace each other.
  const startModel = await store.put(
    `inputs/model-${sha256Hex(modelBytes).slice(0, 12)}.safetensors`,
    modelBytes,
    {
      kind: 'model',
      producer: 'test',
    },
  );
  const data = await store.put(`inputs/experts-${sha256Hex(dataBytes).slice(0, 12)}.safetensors`, dataBytes, {
    kind: 'expert-set',
    producer: 'test',
  });
  return { startModel, data };
}

async function run(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS;
  const storeJson = process.env.DRO_TEST_STORE;
  if (!address || !storeJson) throw new Error('TEMPORAL_ADDRESS and DRO_TEST_STORE are required');
  const { credentials, ...config } = JSON.parse(storeJson) as StorageConfigInput & {
    credentials?: S3Credentials;
  };
  const log = createLogger({ level: process.env.DRO_LOG_LEVEL ?? 'warn', destination: process.stderr });
  installRuntime({ logger: log });
  const connection = await connectWorker(address);
  let store = openStore(config, credentials ? { credentials, maxAttempts: 1 } : {});
  const killAt = process.env.DRO_TEST_SIGKILL_AFTER_CHECKPOINT;
  if (killAt) store = killAfterCheckpoint(store, Number(killAt));
  try {
    const worker = await createWorker({
      connection,
      namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: TASK_QUEUES.gpu,
      activities: createTrainingActivities({
        store,
        logger: log,
        heartbeatSeconds: Number(process.env.DRO_TRAINING_HEARTBEAT_SECONDS ?? 1),
      }),
      logger: log,
      shutdownGraceTime: '2 seconds',
    });
    const running = worker.run();
    process.stdout.write('ready\n');
    await running;
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  run().catch((err: unknown) => {
    process.stderr.write(
      `training worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
