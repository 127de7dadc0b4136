/**
 * Training activities (compute queue): `trainChunk` runs SFT, Diffusion-DRO or Diffusion-DPO from
 * the newest checkpoint to a given micro-step, writing a checkpoint artifact every
 * `settings.checkpointEvery` micro-steps and heartbeating it; `finalizeTraining` turns the last
 * checkpoint into the exported model (EMA UNet), a diffusers UNet file and a JSON summary.
 *
 * Every attempt (a retry after a killed worker or a lost heartbeat, or a re-run of the chunk)
 * continues from the newest committed checkpoint of the chunk: the artifact store is scanned for
 * checkpoints of these inputs between the input (or heartbeated) checkpoint and `untilStep`, so a
 * checkpoint whose heartbeat never reached the server (the SDK throttles heartbeats; a SIGKILL
 * right after a commit loses the last one) is still found. No more than `checkpointEvery`
 * micro-steps are redone, and because a checkpoint holds the complete training state (weights,
 * optimizer, EMA, RNG states, data order) the result is bit-identical to an uninterrupted run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { currentBackend, initBackend } from '../engine/backend';
import { ImageDecodeError } from '../engine/data/image-codec';
import { PickapicFileError, PickapicRowError } from '../engine/data/pickapic';
import { readPreferencePairs } from '../engine/data/preference-pairs';
import { decodeImageDataset } from '../engine/io/image-dataset';
import { ModelBundleError, streamDiffusersUnet } from '../engine/io/model-bundle';
import { DiffusersFolderError } from '../engine/io/diffusers-pipeline';
import { decodeAnyModel, diffusersFolderFiles, encodeAnyModel } from '../engine/latent/latent-model';
import { isLatentSet } from '../engine/latent/latent-data';
import { NonFiniteTensorError, SafetensorsError } from '../engine/io/safetensors';
import { decodeCheckpoint } from '../engine/training/checkpoint';
import {
  checkpointFileName,
  checkpointStepOf,
  resumeCandidates,
  staleCheckpoints,
} from '../engine/training/checkpoint-selection';
import { validateImageDataset, validatePreferenceDataset } from '../engine/training/datasets';
import { disposeModel, type DiffusionModel } from '../engine/training/diffusion-model';
import { NonFiniteTrainingError, TrainingInputError } from '../engine/training/errors';
import { formatDuration, StepRateWindow } from '../engine/training/eta';
import { checkModelFits } from '../engine/training/model-fit';
import { Trainer, type MetricRow, type TrainerInit } from '../engine/training/trainer';
import type { Logger } from '../infra/logger';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import { ArtifactNotFoundError, DigestMismatchError } from '../storage/errors';
import type {
  ChunkRecord,
  FinalizeTrainingInput,
  FinalizeTrainingResult,
  TrainChunkHeartbeat,
  TrainChunkInput,
  TrainChunkResult,
  TrainingStage,
} from '../contracts/training';
import { STAGE_METHOD } from '../contracts/training';
import { trainingProgressRecorder } from '../infra/pipeline-metrics';
import { activityLogger, keySegment, storeCall } from './common';
import { ModelCache, type HeldModel } from './model-cache';
import { latentTrainingData } from './latents';

export interface TrainingDeps {
  store: ArtifactStore;
  logger: Logger;
  /** Longest gap between progress heartbeats and progress log lines, in seconds. Default 5. */
  heartbeatSeconds?: number;
}

export const SUMMARY_FORMAT = 'dro-pipeline/training-summary@1';

/** Checkpoints kept per stage unless the workflow says otherwise. */
export const DEFAULT_KEEP_CHECKPOINTS = 3;

/** Where a stage's artifacts live: `out` from the stage cache, else runs/<runId>/<stage>/. */
export function stagePrefix(runId: string, stage: TrainingStage, out?: string): string {
  return out ?? `runs/${keySegment(runId)}/${stage}`;
}

export function checkpointKey(runId: string, stage: TrainingStage, step: number, out?: string): string {
  return `${stagePrefix(runId, stage, out)}/checkpoints/${checkpointFileName(step)}`;
}

/**
 * Deletes all but the `keep` newest checkpoints of a stage. More than one is kept so that a retry
 * still has an older one when the newest does not verify, and so that the checkpoint its last
 * delivered heartbeat named (which may trail the newest) usually still exists.
 */
export async function pruneCheckpoints(
  store: ArtifactStore,
  runId: string,
  stage: TrainingStage,
  keep: number,
  out?: string,
): Promise<string[]> {
  if (keep <= 0) return [];
  const prefix = `${stagePrefix(runId, stage, out)}/checkpoints/`;
  const stale = staleCheckpoints(await store.list(prefix), keep);
  for (const key of stale) await store.delete(key);
  return stale;
}

function nonRetryable(message: string, type: string, details: unknown[] = []): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true, details });
}

/** Engine errors that no retry can fix become non-retryable failures carrying their `type`. */
function toFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  if (err instanceof NonFiniteTrainingError)
    return nonRetryable(err.message, err.type, [{ step: err.step, what: err.what }]);
  if (err instanceof TrainingInputError || err instanceof ModelBundleError)
    return nonRetryable(err.message, err.type);
  if (err instanceof DiffusersFolderError) return nonRetryable(err.message, 'ModelBundleError');
  return err;
}

/** Runs a decode step, turning malformed-content errors into `wrap(message)`. */
async function decoding<T>(fn: () => T | Promise<T>, wrap: (message: string) => Error): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (
      err instanceof SafetensorsError ||
      err instanceof NonFiniteTensorError ||
      err instanceof PickapicFileError ||
      err instanceof PickapicRowError ||
      err instanceof ImageDecodeError ||
      err instanceof SyntaxError
    ) {
      throw wrap(err.message);
    }
    throw err;
  }
}

/**
 * The decoded start model and data of the last call, kept so consecutive chunks do not reload
 * them. The start model is never trained in place (the trainer clones it), so sharing is safe.
 */
class InputCache {
  private readonly models = new ModelCache<DiffusionModel>({
    load: (ref) => this.loadModel(ref),
    dispose: disposeModel,
  });
  private loaded?: { key: string; data: TrainerInit['data'] };

  constructor(private readonly store: ArtifactStore) {}

  acquireModel(ref: ArtifactRef): Promise<HeldModel<DiffusionModel>> {
    return this.models.acquire(ref);
  }

  private async loadModel(ref: ArtifactRef): Promise<DiffusionModel> {
    const bytes = await storeCall(() => this.store.get(ref.uri, ref.sha256));
    const model = await decoding(
      () => decodeAnyModel(bytes, ref.uri),
      (m) => new ModelBundleError(m),
    );
    try {
      checkModelFits(model, ref.uri);
    } catch (err) {
      disposeModel(model);
      throw err;
    }
    return model;
  }

  /**
   * The stage's training data; for a latent model the data encoded into its latents (once per
   * VAE, data and flip setting, see ./latents).
   */
  async loadData(
    stage: TrainingStage,
    ref: ArtifactRef,
    model?: DiffusionModel,
    randomFlip = false,
    log?: Logger,
  ): Promise<TrainerInit['data']> {
    const kind = stage === 'dpo' ? 'pairs' : 'images';
    const latent = model?.latent;
    const key = latent
      ? `${kind}:${ref.sha256}:latent:${latent.vaeSha256}:${randomFlip}`
      : `${kind}:${ref.sha256}`;
    if (this.loaded?.key === key) return this.loaded.data;
    if (latent) {
      const got = await decoding(
        () => latentTrainingData(this.store, log!, model!, kind, ref, randomFlip),
        (m) => new TrainingInputError(`${ref.uri}: ${m}`),
      );
      this.loaded = { key, data: got.data };
      return got.data;
    }
    const bytes = await storeCall(() => this.store.get(ref.uri, ref.sha256));
    const toInput = (m: string) => new TrainingInputError(`${ref.uri}: ${m}`);
    const data: TrainerInit['data'] =
      kind === 'pairs'
        ? { pairs: await decoding(() => readPreferencePairs(bytes, ref.uri), toInput) }
        : { images: await decoding(() => decodeImageDataset(bytes, ref.uri), toInput) };
    this.loaded = { key, data };
    return data;
  }
}

function validateChunkInput(input: TrainChunkInput): void {
  const s = input.settings;
  const expected = STAGE_METHOD[input.stage];
  if (expected === undefined) throw new TrainingInputError(`unknown training stage '${input.stage}'`);
  if (s.method !== expected) {
    throw new TrainingInputError(
      `stage '${input.stage}' trains with method '${expected}', got '${s.method}'`,
    );
  }
  if (!Number.isInteger(input.untilStep) || input.untilStep <= 0 || input.untilStep > s.steps) {
    throw new TrainingInputError(`untilStep ${input.untilStep} must be an integer in [1, ${s.steps}]`);
  }
}

/** The checkpoint a failed earlier attempt of this call heartbeated, if any. */
function heartbeatedCheckpoint(details: unknown): { ref: ArtifactRef; step: number } | undefined {
  const d = details as Partial<TrainChunkHeartbeat> | undefined;
  const ref = d?.checkpoint;
  if (!ref || typeof ref.uri !== 'string' || typeof ref.sha256 !== 'string') return undefined;
  return { ref, step: typeof d.checkpointStep === 'number' ? d.checkpointStep : -1 };
}

/**
 * The heartbeated checkpoint, or, when pruning has already removed it (the server can hold a
 * heartbeat that trails the newest checkpoint), the newest checkpoint of the stage up to `maxStep`.
 * Every checkpoint of a stage lies on the same deterministic trajectory, so either resumes exactly.
 */
export async function resumableCheckpoint(
  store: ArtifactStore,
  input: TrainChunkInput,
  named: { ref: ArtifactRef; step: number },
): Promise<{ ref: ArtifactRef; step: number }> {
  if (await store.exists(named.ref.uri)) return named;
  const prefix = `${stagePrefix(input.runId, input.stage, input.out)}/checkpoints/`;
  for (const { key, step } of resumeCandidates(await store.list(prefix), input.untilStep, named.step)) {
    const head = await store.head(key);
    if (head) return { ref: head.ref, step };
  }
  return named;
}

/** A checkpoint a chunk can start from. */
export interface ResumeOption {
  ref: ArtifactRef;
  step: number;
  source: Exclude<ChunkRecord['restoredFrom'], 'fresh'>;
}

/**
 * The committed checkpoints of this chunk's stage and inputs in the store that lie after
 * `afterStep` and at or before `input.untilStep`, newest first. Only committed artifacts are listed
 * (the stores list an object only once its metadata is written after the complete bytes, so a
 * half-written checkpoint is never a candidate); each one's metadata must name this start model
 * and data. The caller still verifies the bytes against the digest and the settings on restore.
 */
export async function storedCheckpoints(
  store: ArtifactStore,
  input: Pick<TrainChunkInput, 'runId' | 'stage' | 'out' | 'startModel' | 'data' | 'untilStep'>,
  afterStep: number,
): Promise<ResumeOption[]> {
  const prefix = `${stagePrefix(input.runId, input.stage, input.out)}/checkpoints/`;
  const out: ResumeOption[] = [];
  for (const { key, step } of resumeCandidates(await store.list(prefix), input.untilStep, afterStep + 1)) {
    const head = await store.head(key);
    if (!head || head.metadata.kind !== 'checkpoint') continue;
    const { inputs } = head.metadata;
    if (!inputs.includes(input.startModel.sha256) || !inputs.includes(input.data.sha256)) continue;
    out.push({ ref: head.ref, step, source: 'store' });
  }
  return out;
}

/**
 * Whether a checkpoint found by scanning the store is unusable because of its content (corrupt,
 * deleted meanwhile, written with other settings), so the next older one should be tried; store
 * outages and other errors are not, they fail the attempt to be retried.
 */
function unusableCheckpoint(err: unknown): boolean {
  if (err instanceof TrainingInputError || err instanceof DigestMismatchError) return true;
  if (err instanceof ArtifactNotFoundError) return true;
  return (
    err instanceof ApplicationFailure &&
    (err.type === 'DigestMismatchError' || err.type === 'ArtifactNotFoundError')
  );
}

export function createTrainingActivities(deps: TrainingDeps) {
  const { store } = deps;
  const heartbeatSeconds = deps.heartbeatSeconds ?? 5;
  const cache = new InputCache(store);

  /** Reads a checkpoint (digest-verified) and checks it was trained from these inputs. */
  async function readCheckpoint(ref: ArtifactRef, input: TrainChunkInput): Promise<Uint8Array> {
    const bytes = await storeCall(() => store.get(ref.uri, ref.sha256));
    const head = await storeCall(() => store.head(ref.uri));
    const meta = head?.metadata;
    if (meta && meta.kind !== 'checkpoint') {
      throw new TrainingInputError(`${ref.uri} is a '${meta.kind}' artifact, not a training checkpoint`);
    }
    for (const [what, want] of [
      ['start model', input.startModel.sha256],
      ['data', input.data.sha256],
    ] as const) {
      if (meta && !meta.inputs.includes(want)) {
        throw new TrainingInputError(
          `${ref.uri} was not trained from this ${what} (sha256 ${want}); resume with the same inputs`,
        );
      }
    }
    return bytes;
  }

  return {
    /**
     * The newest checkpoint a stage already wrote under its output prefix for these inputs (an
     * earlier execution that was interrupted), so a restarted training continues instead of
     * starting over. Undefined when there is none.
     */
    async findCheckpoint(
      input: Pick<TrainChunkInput, 'runId' | 'stage' | 'out' | 'startModel' | 'data'> & { maxStep: number },
    ): Promise<{ checkpoint: ArtifactRef; step: number } | undefined> {
      Context.current().heartbeat({ phase: 'looking for checkpoints' });
      const prefix = `${stagePrefix(input.runId, input.stage, input.out)}/checkpoints/`;
      const keys = await storeCall(() => store.list(prefix));
      for (const { key, step } of resumeCandidates(keys, input.maxStep)) {
        const head = await storeCall(() => store.head(key));
        if (!head || head.metadata.kind !== 'checkpoint') continue;
        if (
          !head.metadata.inputs.includes(input.startModel.sha256) ||
          !head.metadata.inputs.includes(input.data.sha256)
        )
          continue;
        activityLogger(deps.logger).info(
          { stage: input.stage, step, uri: head.ref.uri },
          'continuing from an earlier checkpoint',
        );
        return { checkpoint: head.ref, step };
      }
      return undefined;
    },

    /**
     * Trains from the newest checkpoint (a newer committed one of this chunk in the store, else
     * the one a failed attempt heartbeated, else `fromCheckpoint`, else a fresh start) to
     * `untilStep`. Cancellation stops at the next optimizer update, checkpoints there and reports
     * the cancellation.
     */
    async trainChunk(input: TrainChunkInput): Promise<TrainChunkResult> {
      const ctx = Context.current();
      const started = performance.now();
      // Several heartbeats per timeout, so one slow update does not make the attempt look lost.
      const timeoutMs = ctx.info.heartbeatTimeoutMs;
      const heartbeatMs = Math.min(
        (input.heartbeatSeconds ?? heartbeatSeconds) * 1000,
        timeoutMs ? timeoutMs / 3 : Infinity,
      );
      const log = activityLogger(deps.logger).child({ trainingRun: input.runId, stage: input.stage });
      let trainer: Trainer | undefined;
      let release: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      try {
        validateChunkInput(input);
        const named = heartbeatedCheckpoint(ctx.info.heartbeatDetails);
        const fromHeartbeat = named && (await storeCall(() => resumableCheckpoint(store, input, named)));
        // Heartbeat from the first moment (loading can take longer than the timeout on a cold
        // worker), repeating the checkpoint an earlier attempt named so a further retry keeps it.
        const beat: TrainChunkHeartbeat = fromHeartbeat
          ? { step: fromHeartbeat.step, checkpoint: fromHeartbeat.ref, checkpointStep: fromHeartbeat.step }
          : { step: 0 };
        ctx.heartbeat(beat);
        timer = setInterval(() => ctx.heartbeat(beat), heartbeatMs);
        const base: ResumeOption | undefined = fromHeartbeat
          ? { ...fromHeartbeat, source: 'heartbeat' }
          : input.fromCheckpoint
            ? {
                ref: input.fromCheckpoint,
                step: checkpointStepOf(input.fromCheckpoint.uri) ?? -1,
                source: 'input',
              }
            : undefined;
        // Checkpoints an earlier attempt committed after the one named (its last heartbeat may
        // never have reached the server). An input checkpoint whose key does not tell its step is
        // used as it is: which stored checkpoints are newer cannot be told.
        const stored =
          base && base.step < 0
            ? []
            : await storeCall(() => storedCheckpoints(store, input, base?.step ?? 0));
        const backend = (await initBackend(input.backend ?? 'auto')).name;
        const held = await cache.acquireModel(input.startModel);
        release = held.release;
        const data = await cache.loadData(
          input.stage,
          input.data,
          held.model,
          input.settings.randomFlip,
          log,
        );
        const what = `${input.stage === 'dpo' ? 'preference set' : input.stage === 'dro' ? 'expert set' : 'image set'} ${input.data.uri}`;
        // Latent sets are checked by the training method against the UNet.
        if (data.pairs && !isLatentSet(data.pairs))
          validatePreferenceDataset(data.pairs, held.model.unet.config, what);
        if (data.images && !isLatentSet(data.images))
          validateImageDataset(data.images, held.model.unet.config, what);
        const init: TrainerInit = { settings: input.settings, ...held.model, data };

        const restore = async (ref: ArtifactRef): Promise<Trainer> => {
          const bytes = await readCheckpoint(ref, input);
          return decoding(
            () => Trainer.restore(init, bytes, ref.uri),
            (m) => new TrainingInputError(m),
          );
        };
        let resumed: ResumeOption | undefined;
        for (const option of stored) {
          try {
            trainer = await restore(option.ref);
            resumed = option;
            break;
          } catch (err) {
            if (!unusableCheckpoint(err)) throw err;
            log.warn(
              {
                step: option.step,
                uri: option.ref.uri,
                error: err instanceof Error ? err.message : String(err),
              },
              'stored checkpoint not usable; trying an older one',
            );
          }
        }
        if (!trainer && base) {
          trainer = await restore(base.ref);
          resumed = base;
        }
        const t = trainer ?? Trainer.create(init);
        trainer = t;
        const restoredFrom: ChunkRecord['restoredFrom'] = resumed?.source ?? 'fresh';
        const fromStep = t.step;
        const restoredCheckpoint = resumed && {
          uri: resumed.ref.uri,
          sha256: resumed.ref.sha256,
          step: fromStep,
        };
        let last = resumed ? { ref: resumed.ref, step: fromStep } : undefined;
        Object.assign(beat, { step: fromStep, checkpoint: last?.ref, checkpointStep: last?.step });
        ctx.heartbeat(beat);
        log.info(
          {
            fromStep,
            untilStep: input.untilStep,
            restoredFrom,
            checkpoint: resumed?.ref.uri,
            backend,
          },
          'training chunk started',
        );
        let lastLog = 0;
        // Steps per second over the last minute; the ETA is to the end of the whole training.
        const rate = new StepRateWindow(60_000);
        const recordMetrics = trainingProgressRecorder(input.stage, fromStep);

        const save = async (bytes: Uint8Array, step: number): Promise<void> => {
          const ref = await storeCall(() =>
            store.put(checkpointKey(input.runId, input.stage, step, input.out), bytes, {
              // A retried attempt rewrites a step an earlier attempt saved; both lie on the same
              // deterministic trajectory, so the one already there is kept.
              ifExists: 'keep',
              kind: 'checkpoint',
              producer: `train-${input.stage}`,
              inputs: [input.startModel.sha256, input.data.sha256],
              extra: { runId: input.runId, stage: input.stage, method: input.settings.method, step },
            }),
          );
          last = { ref, step };
          Object.assign(beat, { step, checkpoint: ref, checkpointStep: step });
          ctx.heartbeat(beat);
          log.info({ step, uri: ref.uri, sha256: ref.sha256, size: ref.size }, 'checkpoint written');
          const pruned = await storeCall(() =>
            pruneCheckpoints(
              store,
              input.runId,
              input.stage,
              input.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS,
              input.out,
            ),
          );
          if (pruned.length > 0) log.debug({ pruned }, 'old checkpoints deleted');
        };

        await t.run(input.untilStep, {
          onProgress: (p) => {
            Object.assign(beat, { step: p.step, loss: p.metrics?.loss, imagesPerSecond: p.imagesPerSecond });
            ctx.heartbeat(beat);
            recordMetrics({ step: p.step, imagesPerSecond: p.imagesPerSecond, loss: p.metrics?.loss });
            rate.record(p.step, performance.now());
            if (performance.now() - lastLog >= heartbeatMs) {
              lastLog = performance.now();
              const eta = rate.estimate(p.totalSteps);
              log.info(
                {
                  step: p.step,
                  totalSteps: p.totalSteps,
                  loss: p.metrics?.loss,
                  imagesPerSecond: Number(p.imagesPerSecond.toFixed(2)),
                  ...(eta && {
                    stepsPerSecond: Number(eta.stepsPerSecond.toPrecision(3)),
                    etaSeconds: Math.round(eta.remainingSeconds),
                    eta: formatDuration(eta.remainingSeconds),
                  }),
                },
                'training progress',
              );
            }
          },
          onCheckpoint: save,
          shouldStop: () => ctx.cancellationSignal.aborted,
        });
        if (last?.step !== t.step) await save(t.checkpoint(), t.step);
        const done = last!;
        if (ctx.cancellationSignal.aborted && t.step < input.untilStep) {
          log.info(
            { step: t.step, checkpoint: done.ref.uri },
            'training chunk cancelled at an update boundary',
          );
          throw new CancelledFailure(`training stopped at micro-step ${t.step}`, [
            { checkpoint: done.ref, step: done.step },
          ]);
        }
        const seconds = (performance.now() - started) / 1000;
        const record: ChunkRecord = {
          fromStep,
          toStep: t.step,
          attempt: ctx.info.attempt,
          restoredFrom,
          ...(restoredCheckpoint && { restoredCheckpoint }),
          seconds: Number(seconds.toFixed(3)),
          backend,
        };
        log.info({ ...record }, 'training chunk finished');
        return { checkpoint: done.ref, step: t.step, lastMetrics: t.history.at(-1), record };
      } catch (err) {
        throw toFailure(err);
      } finally {
        if (timer) clearInterval(timer);
        trainer?.dispose();
        release?.();
      }
    },

    /** Writes the EMA model bundle, the diffusers UNet and the summary from the last checkpoint. */
    async finalizeTraining(input: FinalizeTrainingInput): Promise<FinalizeTrainingResult> {
      const log = activityLogger(deps.logger).child({ trainingRun: input.runId, stage: input.stage });
      const beat = (phase: string): void => Context.current().heartbeat({ phase });
      beat('started');
      const finalPrefix = stagePrefix(input.runId, input.stage, input.out);
      const already = await storeCall(() =>
        Promise.all(
          ['model.safetensors', 'unet/diffusion_pytorch_model.safetensors', 'summary.json'].map((name) =>
            store.head(`${finalPrefix}/${name}`),
          ),
        ),
      );
      // The summary is written last and records wall times, so a finished finalize (an earlier
      // execution of the same stage) is returned as it is rather than written again.
      if (already.every((h) => h !== undefined)) {
        const [model, unet, summary] = already.map((h) => h!.ref) as [ArtifactRef, ArtifactRef, ArtifactRef];
        log.info({ model: model.uri }, 'training already finalized');
        return { model, unet, summary };
      }
      let release: (() => void) | undefined;
      const ema = new Map<string, tf.Tensor>();
      try {
        await initBackend(input.backend ?? 'auto');
        const held = await cache.acquireModel(input.startModel);
        release = held.release;
        const { model } = held;
        const bytes = await storeCall(() => store.get(input.checkpoint.uri, input.checkpoint.sha256));
        const contents = await decoding(
          () => decodeCheckpoint(bytes, input.checkpoint.uri),
          (m) => new TrainingInputError(m),
        );
        const group = contents.groups.get('ema');
        if (!group) throw new TrainingInputError(`${input.checkpoint.uri} holds no EMA weights`);
        for (const name of model.unet.params.names) {
          const want = model.unet.params.get(name);
          const t = group.get(name);
          if (!t || t.data.length !== want.size) {
            throw new TrainingInputError(
              `${input.checkpoint.uri}: EMA tensor '${name}' is missing or does not fit the start model`,
            );
          }
          ema.set(name, tf.tensor(t.data, want.shape, 'float32'));
        }
        const state = contents.state as { step: number; settings: unknown; history: MetricRow[] };
        const prefix = stagePrefix(input.runId, input.stage, input.out);
        const inputs = [input.startModel.sha256, input.data.sha256, input.checkpoint.sha256];
        const producer = `finalize-${input.stage}`;
        const extra = { runId: input.runId, stage: input.stage, step: state.step };
        beat('writing the model');
        const modelRef = await storeCall(() =>
          store.put(`${prefix}/model.safetensors`, encodeAnyModel(model, ema), {
            kind: 'model',
            producer,
            inputs,
            extra,
          }),
        );
        beat('writing the diffusers UNet');
        const unetRef = await storeCall(() =>
          store.put(`${prefix}/unet/diffusion_pytorch_model.safetensors`, streamDiffusersUnet(model, ema), {
            kind: 'diffusers-unet',
            producer,
            inputs,
            extra,
          }),
        );
        // A latent model is also written as a diffusers folder: the trained (EMA) UNet with the
        // start model's other components, loadable by diffusers' from_pretrained.
        let diffusers: { prefix: string; files: Record<string, ArtifactRef> } | undefined;
        if (model.latent) {
          beat('writing the diffusers folder');
          diffusers = { prefix: `${prefix}/diffusers`, files: {} };
          for (const [rel, data] of diffusersFolderFiles(model, ema)) {
            const ref = await storeCall(() =>
              store.put(`${prefix}/diffusers/${rel}`, data, {
                kind: 'diffusers-file',
                producer,
                inputs,
                extra: { ...extra, file: rel },
              }),
            );
            diffusers.files[rel] = { uri: ref.uri, sha256: ref.sha256, size: ref.size };
          }
        }
        const summary = {
          format: SUMMARY_FORMAT,
          ...(diffusers ? { diffusers } : {}),
          runId: input.runId,
          stage: input.stage,
          settings: state.settings,
          steps: state.step,
          history: state.history,
          lastMetrics: state.history.at(-1) ?? null,
          wallTimeSeconds: (input.finishedAtMs - input.startedAtMs) / 1000,
          computeSeconds: Number(input.chunks.reduce((a, c) => a + c.seconds, 0).toFixed(3)),
          backend: [...new Set(input.chunks.map((c) => c.backend))].join(',') || currentBackend()?.name,
          startModel: { uri: input.startModel.uri, sha256: input.startModel.sha256 },
          data: { uri: input.data.uri, sha256: input.data.sha256 },
          checkpoint: { uri: input.checkpoint.uri, sha256: input.checkpoint.sha256 },
          model: modelRef,
          unet: unetRef,
          totalChunks: input.totalChunks,
          chunks: input.chunks,
        };
        beat('writing the summary');
        const summaryRef = await storeCall(() =>
          store.put(
            `${prefix}/summary.json`,
            new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n'),
            {
              kind: 'training-summary',
              producer,
              inputs,
              extra,
            },
          ),
        );
        log.info(
          { steps: state.step, model: modelRef.uri, unet: unetRef.sha256, summary: summaryRef.uri },
          'training finalized',
        );
        return { model: modelRef, unet: unetRef, summary: summaryRef };
      } catch (err) {
        throw toFailure(err);
      } finally {
        tf.dispose([...ema.values()]);
        release?.();
      }
    },
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
