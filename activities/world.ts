/**
 * The base-model stage: `prepareWorld` renders the built-in world's pretraining corpus and writes a
 * seeded random initial model (UNet + the world's frozen text encoder and tokenizer) for the
 * pretraining child workflow; `importBaseModel` copies a given model bundle into the run instead.
 */
import type { BackendPreference } from '../engine/backend';
import { buildPretrainingCorpus } from '../engine/world/pretraining-corpus';
import { encodeImageDataset } from '../engine/io/image-dataset';
import { decodeModelBundle } from '../engine/io/model-bundle';
import { importDiffusersFolder } from '../engine/latent/latent-model';
import { disposeModel } from '../engine/training/diffusion-model';
import type { UNetConfig, UNetConfigName } from '../engine/models/unet-config';
import {
  encodeInitialWorldModel,
  MIN_WORLD_RESOLUTION,
  worldUNetConfig,
  worldUNetProblem,
} from '../engine/models/world-model';
import type { ArtifactRef } from '../storage/artifact-store';
import { sha256Hex } from '../storage/digest';
import { recordedDigestProblem } from '../storage/verify';
import { activityLogger } from './common';
import { diffusersFolderOf } from './latents';
import {
  type StageDeps,
  type StageOutput,
  badInput,
  stageCall,
  outputKey,
  checkRunId,
  checkPositiveInt,
  finished,
  putArtifact,
  heartbeat,
  stageSeed,
  useBackend,
  readSource,
} from './stage';

export interface PrepareWorldInput extends StageOutput {
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

export interface ImportBaseModelInput extends StageOutput {
  /** URI or path of a model bundle (config `model.baseCheckpoint`). */
  uri: string;
  /** SHA-256 the bundle must have (config `model.baseCheckpointSha256`). */
  sha256?: string;
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
export { MIN_WORLD_RESOLUTION };

function checkedUNetConfig(name: UNetConfigName, resolution: number): UNetConfig {
  const problem = worldUNetProblem(name, resolution);
  if (problem !== undefined) throw badInput(problem);
  return worldUNetConfig(name, resolution);
}

export function createWorldActivities(deps: StageDeps) {
  return {
    /** Writes the pretraining corpus and the initial model; a retry returns what is already written. */
    async prepareWorld(input: PrepareWorldInput): Promise<PrepareWorldResult> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      checkPositiveInt(input.corpusSize, 'corpusSize');
      if (!(input.captionNoise >= 0 && input.captionNoise <= 1))
        throw badInput(`data.captionNoise must be in [0, 1], got ${input.captionNoise}`);
      const unetConfig = checkedUNetConfig(input.unet, input.resolution);
      const corpusKey = outputKey(input, 'base', 'corpus.safetensors');
      const modelKey = outputKey(input, 'base', 'initial-model.safetensors');

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
        const bytes = encodeInitialWorldModel(unetConfig, {
          unet: stageSeed(input.seed, 'unet-init'),
          text: stageSeed(input.seed, 'text-encoder'),
        });
        modelRef = await putArtifact(deps.store, modelKey, bytes, {
          kind: 'model-bundle',
          producer: 'prepareWorld',
          extra: { unet: input.unet, resolution: input.resolution, initial: true },
        });
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
      checkRunId(input.runId);
      if (typeof input.uri !== 'string' || input.uri.trim() === '')
        throw badInput('model.baseCheckpoint must name a model bundle (path, file:// or s3:// URI)');
      const key = outputKey(input, 'base', 'model.safetensors');
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
      const folder = await diffusersFolderOf(input.uri);
      if (folder !== undefined) {
        // A diffusers pipeline folder: a latent model (UNet, VAE, text encoder) in one artifact.
        const imported = await stageCall('model.baseCheckpoint', () => importDiffusersFolder(folder));
        const { sample_size: sampleSize, in_channels: inChannels } = imported.model.unet.config;
        disposeModel(imported.model);
        const ref = await putArtifact(deps.store, key, imported.bytes, {
          kind: 'latent-model',
          producer: 'importBaseModel',
          extra: { source: input.uri, sampleSize, inChannels, imageSize: imported.spec.imageSize },
        });
        log.info({ source: input.uri, uri: ref.uri, sampleSize, inChannels }, 'diffusers folder imported');
        return { model: ref, source: input.uri, sampleSize, inChannels };
      }
      const bytes = await readSource(deps.store, input.uri, 'model.baseCheckpoint');
      const mismatch = recordedDigestProblem(
        'model.baseCheckpoint',
        input.uri,
        sha256Hex(bytes),
        input.sha256,
      );
      if (mismatch) throw badInput(mismatch);
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
