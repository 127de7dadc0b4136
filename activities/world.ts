/**
 * The base-model stage: `prepareWorld` renders the built-in world's pretraining corpus and writes a
 * seeded random initial model (UNet + the world's frozen text encoder and tokenizer) for the
 * pretraining child workflow; `importBaseModel` copies a given model bundle into the run instead.
 *
 * Also home of what every stage activity of the pipeline shares: artifact keys under
 * `runs/<runId>/<stage>/`, reading user-given sources (file paths, file:// and s3:// URIs),
 * heartbeats, seeds derived from the run's root seed, and the mapping of permanent engine errors
 * to non-retryable failures with stable types.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { initBackend, type BackendPreference } from '../engine/backend';
import { buildPretrainingCorpus } from '../engine/data/pretraining-corpus';
import { worldTokenizer } from '../engine/data/world-text';
import { encodeImageDataset } from '../engine/io/image-dataset';
import { decodeModelBundle, encodeModelBundle } from '../engine/io/model-bundle';
import { CLIPTextModel, demoTextEncoderConfig } from '../engine/models/text-encoder';
import { UNet2DConditionModel } from '../engine/models/unet';
import { UNET_CONFIGS, validateUNetConfig, type UNetConfigName } from '../engine/models/unet-config';
import { Rng } from '../engine/rng';
import type { Logger } from '../infra/logger';
import { storeForUri } from '../storage';
import type { ArtifactMetadata, ArtifactRef, ArtifactStore, PutOptions } from '../storage/artifact-store';
import { isPermanent, StoreError } from '../storage/errors';
import { isUri, parseArtifactUri } from '../storage/uri';
import { activityLogger, keySegment, storeCall } from './common';

// ---- shared by the stage activities -------------------------------------------------------------

export interface StageDeps {
  store: ArtifactStore;
  logger: Logger;
}

/** Stable failure types of the pipeline's stage activities (engine error names pass through as is). */
export const PIPELINE_ERRORS = {
  /** The activity input or the config value it came from cannot work. */
  badInput: 'PipelineBadInput',
  /** A user-given file, folder or URI does not exist or cannot be read. */
  sourceNotFound: 'PipelineSourceNotFound',
} as const;

/** Engine errors that retrying cannot fix: their class name becomes the failure type. */
const PERMANENT_ENGINE_ERRORS = new Set([
  'TrainingInputError',
  'ModelBundleError',
  'SafetensorsError',
  'NonFiniteTensorError',
  'PickapicRowError',
  'PickapicFileError',
  'FolderImportError',
  'ExpertRankingError',
  'ShardStoreError',
  'OnnxContractError',
  'UnknownPromptError',
  'UnscorableImageError',
  'ImageDecodeError',
  'ImageTooSmallError',
  'TokenizerError',
  'RangeError',
]);

/** A non-retryable failure with a stable type. */
export function permanentFailure(message: string, type: string, cause?: Error): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true, ...(cause ? { cause } : {}) });
}

export function badInput(message: string): ApplicationFailure {
  return permanentFailure(message, PIPELINE_ERRORS.badInput);
}

/**
 * Runs a stage body: permanent store and engine errors become non-retryable failures (type =
 * error class), anything else stays retryable.
 */
export async function stageCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    if (err instanceof StoreError && isPermanent(err)) {
      throw permanentFailure(`${what}: ${err.message}`, err.type, err);
    }
    if (err instanceof Error && PERMANENT_ENGINE_ERRORS.has(err.name)) {
      throw permanentFailure(`${what}: ${err.message}`, err.name, err);
    }
    throw err;
  }
}

/** `runs/<runId>/<stage>/<name>`: where a stage writes its artifacts. */
export function runKey(runId: string, stage: string, name: string): string {
  return `runs/${keySegment(runId)}/${stage}/${name}`;
}

export function checkRunId(runId: unknown): string {
  if (typeof runId !== 'string' || runId.trim() === '')
    throw badInput('field "runId" must be a non-empty string');
  return runId;
}

export function checkPositiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw badInput(`field "${field}" must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

export function checkRef(ref: unknown, field: string): ArtifactRef {
  const r = ref as Partial<ArtifactRef> | undefined;
  if (!r || typeof r.uri !== 'string' || typeof r.sha256 !== 'string' || typeof r.size !== 'number')
    throw badInput(`field "${field}" must be an artifact reference {uri, sha256, size}`);
  return r as ArtifactRef;
}

/** The committed artifact under `key`, if an earlier attempt finished it. */
export async function finished(
  store: ArtifactStore,
  key: string,
): Promise<{ ref: ArtifactRef; metadata: ArtifactMetadata } | undefined> {
  return storeCall(() => store.head(key));
}

export async function putArtifact(
  store: ArtifactStore,
  key: string,
  bytes: Uint8Array,
  options: PutOptions,
): Promise<ArtifactRef> {
  const ref = await storeCall(() => store.put(key, bytes, options));
  return { uri: ref.uri, sha256: ref.sha256, size: ref.size };
}

/** Reads and verifies an artifact of the run's store. */
export async function readArtifact(store: ArtifactStore, ref: ArtifactRef): Promise<Uint8Array> {
  return storeCall(() => store.get(ref.uri, ref.sha256));
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

/** Sends a heartbeat with `details` (throttled by the SDK) when running inside an activity. */
export function heartbeat(details: unknown): void {
  Context.current().heartbeat(details);
}

/** A 32-bit seed for one use (`label`) of the run's root seed, so stages draw independent streams. */
export function stageSeed(rootSeed: number, label: string): number {
  return createHash('sha256').update(`${rootSeed}:${label}`).digest().readUInt32LE(0);
}

export async function useBackend(backend: BackendPreference | undefined): Promise<void> {
  await initBackend(backend ?? 'auto');
}

/**
 * Reads a user-given source: a plain path or file:// URI (a file without a store companion is
 * fine), an artifact of the run's store, or an s3:// object written by the artifact store.
 * `field` names the config field in errors.
 */
export async function readSource(store: ArtifactStore, source: string, field: string): Promise<Uint8Array> {
  if (source.startsWith(`${store.baseUri}/`)) return storeCall(() => store.get(source));
  let file: string | undefined;
  if (!isUri(source)) file = path.resolve(source);
  else {
    const parsed = await stageCall(field, () => Promise.resolve(parseArtifactUri(source)));
    if (parsed.scheme === 'file') file = parsed.path;
  }
  if (file !== undefined) {
    try {
      return new Uint8Array(await fs.readFile(file));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EACCES')
        throw permanentFailure(
          `${field}: cannot read ${source} (${code === 'ENOENT' ? 'no such file' : code})`,
          PIPELINE_ERRORS.sourceNotFound,
        );
      throw err;
    }
  }
  return stageCall(field, () => storeForUri(source).get(source));
}

// ---- the base-model stage -----------------------------------------------------------------------

export interface PrepareWorldInput {
  runId: string;
  /** The run's root seed. */
  seed: number;
  /** UNet configuration name (config `model.unet`); the world needs 3 input channels. */
  unet: UNetConfigName;
  /** Image side in pixels (config `model.resolution`). */
  resolution: number;
  /** Share of wrong or partial captions (config `data.captionNoise`). */
  captionNoise: number;
  /** Captioned images in the corpus (config `pretrain.corpusSize`). */
  corpusSize: number;
  backend?: BackendPreference;
}

export interface PrepareWorldResult {
  /** Image dataset with noisy captions, the pretraining data. */
  corpus: ArtifactRef;
  /** Initial model bundle: random UNet, the world's text encoder and tokenizer. */
  model: ArtifactRef;
  corpusSize: number;
  /** Captions by kind (exact, partial, wrong). */
  captionKinds: Record<string, number>;
}

export interface ImportBaseModelInput {
  runId: string;
  /** URI or path of a model bundle (config `model.baseCheckpoint`). */
  uri: string;
  backend?: BackendPreference;
}

export interface ImportBaseModelResult {
  model: ArtifactRef;
  /** Where it came from. */
  source: string;
  sampleSize: number;
  inChannels: number;
}

/** Smallest side at which the world's detector (and so the judge and the rewards) work. */
export const MIN_WORLD_RESOLUTION = 16;

function worldUNetConfig(name: UNetConfigName, resolution: number) {
  const base = UNET_CONFIGS[name];
  if (base === undefined) throw badInput(`model.unet: unknown UNet configuration '${String(name)}'`);
  if (base.in_channels !== 3)
    throw badInput(
      `model.unet '${name}' takes ${base.in_channels}-channel latents; the built-in world trains in RGB pixel ` +
        `space: use 'demo' (or give model.baseCheckpoint)`,
    );
  if (!Number.isInteger(resolution) || resolution < MIN_WORLD_RESOLUTION)
    throw badInput(
      `model.resolution ${resolution}: the built-in world needs at least ${MIN_WORLD_RESOLUTION} px (its detector judges shapes at that size)`,
    );
  const factor = 2 ** (base.block_out_channels.length - 1);
  if (resolution % factor !== 0)
    throw badInput(`model.resolution ${resolution} must be divisible by ${factor} for model.unet '${name}'`);
  const config = { ...base, sample_size: resolution };
  validateUNetConfig(config);
  return config;
}

export function createWorldActivities(deps: StageDeps) {
  return {
    /** Writes the pretraining corpus and the initial model; a retry returns what is already written. */
    async prepareWorld(input: PrepareWorldInput): Promise<PrepareWorldResult> {
      const log = activityLogger(deps.logger);
      const runId = checkRunId(input.runId);
      checkPositiveInt(input.corpusSize, 'corpusSize');
      if (!(input.captionNoise >= 0 && input.captionNoise <= 1))
        throw badInput(`data.captionNoise must be in [0, 1], got ${input.captionNoise}`);
      const unetConfig = worldUNetConfig(input.unet, input.resolution);
      const corpusKey = runKey(runId, 'base', 'corpus.safetensors');
      const modelKey = runKey(runId, 'base', 'initial-model.safetensors');

      let corpusDone = await finished(deps.store, corpusKey);
      const modelDone = await finished(deps.store, modelKey);
      if (corpusDone && modelDone) {
        log.info({ corpus: corpusDone.ref.uri, model: modelDone.ref.uri }, 'world already prepared');
        return {
          corpus: corpusDone.ref,
          model: modelDone.ref,
          corpusSize: Number(corpusDone.metadata.extra?.size ?? input.corpusSize),
          captionKinds: (corpusDone.metadata.extra?.captionKinds ?? {}) as Record<string, number>,
        };
      }
      await useBackend(input.backend);
      let corpusRef = corpusDone?.ref;
      let captionKinds = (corpusDone?.metadata.extra?.captionKinds ?? {}) as Record<string, number>;
      if (!corpusRef) {
        const started = Date.now();
        const corpus = buildPretrainingCorpus({
          seed: stageSeed(input.seed, 'corpus'),
          size: input.corpusSize,
          resolution: input.resolution,
          captionNoise: input.captionNoise,
        });
        captionKinds = {};
        for (const k of corpus.kinds) captionKinds[k] = (captionKinds[k] ?? 0) + 1;
        heartbeat({ phase: 'corpus rendered', images: corpus.examples.length });
        corpusRef = await putArtifact(
          deps.store,
          corpusKey,
          encodeImageDataset(corpus, { caption_noise: String(input.captionNoise) }),
          {
            kind: 'image-dataset',
            producer: 'prepareWorld',
            extra: { size: corpus.examples.length, captionKinds, resolution: input.resolution },
          },
        );
        log.info(
          { uri: corpusRef.uri, images: corpus.examples.length, captionKinds, ms: Date.now() - started },
          'pretraining corpus written',
        );
        corpusDone = undefined;
      }
      let modelRef = modelDone?.ref;
      if (!modelRef) {
        const tokenizer = worldTokenizer();
        const unet = UNet2DConditionModel.create(
          unetConfig,
          new Rng(stageSeed(input.seed, 'unet-init')),
          false,
        );
        const text = CLIPTextModel.create(
          demoTextEncoderConfig(
            tokenizer.vocabSize,
            tokenizer.config.maxLength,
            unetConfig.cross_attention_dim,
          ),
          new Rng(stageSeed(input.seed, 'text-encoder')),
          false,
        );
        try {
          modelRef = await putArtifact(deps.store, modelKey, encodeModelBundle({ unet, text, tokenizer }), {
            kind: 'model-bundle',
            producer: 'prepareWorld',
            extra: { unet: input.unet, resolution: input.resolution, initial: true },
          });
        } finally {
          unet.dispose();
          text.dispose();
        }
        log.info(
          { uri: modelRef.uri, unet: input.unet, resolution: input.resolution },
          'initial model written',
        );
      }
      return { corpus: corpusRef, model: modelRef, corpusSize: input.corpusSize, captionKinds };
    },

    /** Validates a given model bundle and copies it into the run as its base model. */
    async importBaseModel(input: ImportBaseModelInput): Promise<ImportBaseModelResult> {
      const log = activityLogger(deps.logger);
      const runId = checkRunId(input.runId);
      if (typeof input.uri !== 'string' || input.uri.trim() === '')
        throw badInput('model.baseCheckpoint must name a model bundle (path, file:// or s3:// URI)');
      const key = runKey(runId, 'base', 'model.safetensors');
      const done = await finished(deps.store, key);
      if (done) {
        log.info({ uri: done.ref.uri }, 'base model already imported');
        return {
          model: done.ref,
          source: String(done.metadata.extra?.source ?? input.uri),
          sampleSize: Number(done.metadata.extra?.sampleSize),
          inChannels: Number(done.metadata.extra?.inChannels),
        };
      }
      await useBackend(input.backend);
      const bytes = await readSource(deps.store, input.uri, 'model.baseCheckpoint');
      const model = await stageCall('model.baseCheckpoint', () =>
        Promise.resolve(decodeModelBundle(bytes, input.uri)),
      );
      const { sample_size: sampleSize, in_channels: inChannels } = model.unet.config;
      model.unet.dispose();
      model.text.dispose();
      const ref = await putArtifact(deps.store, key, bytes, {
        kind: 'model-bundle',
        producer: 'importBaseModel',
        extra: { source: input.uri, sampleSize, inChannels },
      });
      log.info({ source: input.uri, uri: ref.uri, sampleSize, inChannels }, 'base model imported');
      return { model: ref, source: input.uri, sampleSize, inChannels };
    },
  };
}
