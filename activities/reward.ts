/**
 * The reward-model stage (config `ranking.rewardModel`):
 * - `preference`: the learned Bradley-Terry preference model, trained on the run's preference
 *   pairs with a held-out split whose pairwise accuracy is recorded;
 * - `detector`: the world's exact GenEval-style alignment score (no weights);
 * - `onnx`: an exported reward model: one `.onnx` file (image-only contract at the model's
 *   resolution), or a CLIP-style folder (`model.onnx` taking pixel values and CLIP token ids, with
 *   `preprocessor_config.json`, `vocab.json`, `merges.txt` and optionally `tokenizer_config.json`),
 *   the way PickScore- and HPS-like models are exported.
 *
 * The artifact is a small JSON descriptor (`runs/<runId>/reward/reward-model.json`) with the
 * model's identity (name, version, digest), its accuracy on the preference pairs and, for models
 * with weights, a reference to the weights artifact. `loadRewardModel` rebuilds the model from it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import * as path from 'node:path';
import type { BackendPreference } from '../engine/backend';
import { parseSafetensors, serializeSafetensors } from '../engine/io/safetensors';
import {
  ClipOnnxReward,
  DetectorReward,
  checkPreferenceWeights,
  OnnxReward,
  PreferenceModel,
  PREFERENCE_LR,
  defaultPreferenceConfig,
  pairwiseAccuracy,
  preferencePairsFromRows,
  rewardModelIdentity,
  trainPreferenceModel,
  type PreferenceModelConfig,
  type PreferencePair,
  type RewardModel,
  type RewardModelIdentity,
} from '../engine/rewards';
import { Rng } from '../engine/rng';
import type { ArtifactRef } from '../storage/artifact-store';
import { sha256Hex } from '../storage/digest';
import { recordedDigestProblem } from '../storage/verify';
import { activityLogger } from './common';
import { readPreferenceRows } from './preferences';
import {
  badInput,
  checkRef,
  checkRunId,
  encodeJson,
  finished,
  heartbeat,
  permanentFailure,
  putArtifact,
  readArtifact,
  readJsonArtifact,
  readSource,
  outputKey,
  stageCall,
  stageSeed,
  useBackend,
  type StageDeps,
  type StageOutput,
} from './stage';

export const REWARD_DESCRIPTOR_FORMAT = 'dro-pipeline/reward@1';

export type RewardKind = 'preference' | 'detector' | 'onnx';

export interface TrainRewardModelInput extends StageOutput {
  seed: number;
  kind: RewardKind;
  preferences: ArtifactRef;
  /** ONNX model (path or URI) for kind `onnx`. */
  onnxModel?: string;
  /** Image side the ONNX model takes. Default 16. */
  onnxResolution?: number;
  /** Share of the pairs held out for the accuracy check (kind `preference`). Default 0.2. */
  heldOutFraction?: number;
  /** Passes over the training pairs (kind `preference`). Default 12. */
  epochs?: number;
  /** Pretrained starting weights (path or URI) of the preference model (config `ranking.preferenceInit`). */
  preferenceInit?: string;
  /** SHA-256 they must have (config `ranking.preferenceInitSha256`). */
  preferenceInitSha256?: string;
  backend?: BackendPreference;
}

/** What the descriptor artifact holds. */
export interface RewardDescriptor {
  format: typeof REWARD_DESCRIPTOR_FORMAT;
  kind: RewardKind;
  identity: RewardModelIdentity;
  /** Weights (preference model safetensors, or the ONNX file). */
  weights?: ArtifactRef;
  /** The files of a CLIP-style reward folder, by file name (kind `onnx`). */
  clipFiles?: Record<string, ArtifactRef>;
  onnxResolution?: number;
  /** Pairwise accuracy on the held-out pairs (preference) or on all decided pairs (others). */
  accuracy?: number;
  accuracyPairs: number;
  trainPairs: number;
  losses?: number[];
  /** Where the preference model's pretrained starting weights came from, and their SHA-256. */
  init?: { source: string; sha256: string };
}

export interface TrainRewardModelResult {
  reward: ArtifactRef;
  kind: RewardKind;
  identity: RewardModelIdentity;
  /** Held-out pairwise accuracy; undefined when no decided pair was held out. */
  accuracy: number | undefined;
  accuracyPairs: number;
  trainPairs: number;
}

function preferenceModelFromBytes(bytes: Uint8Array, source: string): PreferenceModel {
  const file = parseSafetensors(bytes, source);
  const configText = file.metadata.config;
  if (!configText)
    throw permanentFailure(`${source}: no preference-model config in __metadata__`, 'ModelBundleError');
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) weights.set(name, t.data);
  return new PreferenceModel(JSON.parse(configText) as PreferenceModelConfig, weights);
}

/**
 * The pretrained starting weights `ranking.preferenceInit` names, checked against the expected
 * SHA-256 and against the model configuration the stage trains.
 */
async function preferenceInitWeights(
  deps: StageDeps,
  source: string,
  expectedSha256: string | undefined,
  config: PreferenceModelConfig,
): Promise<{ weights: Map<string, Float32Array>; sha256: string }> {
  const bytes = await readSource(deps.store, source, 'ranking.preferenceInit');
  const sha256 = sha256Hex(bytes);
  const mismatch = recordedDigestProblem('ranking.preferenceInit', source, sha256, expectedSha256);
  if (mismatch) throw badInput(mismatch);
  const weights = await stageCall('ranking.preferenceInit', () =>
    Promise.resolve(checkPreferenceWeights(parseSafetensors(bytes, source), source, config)),
  );
  return { weights, sha256 };
}

/** The files a CLIP-style reward folder holds; the tokenizer config is optional. */
const CLIP_REWARD_FILES = ['model.onnx', 'preprocessor_config.json', 'vocab.json', 'merges.txt'] as const;
const CLIP_REWARD_OPTIONAL = ['tokenizer_config.json'] as const;

/** A local folder (path or file:// URI) holding a CLIP-style reward model, or undefined. */
async function clipRewardFolder(source: string): Promise<string | undefined> {
  const dir = source.startsWith('file://') ? new URL(source).pathname : source;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) return undefined;
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) return undefined;
  if (!(await ClipOnnxReward.isClipRewardFolder(dir)))
    throw badInput(
      `ranking.onnxModel: ${dir} is a folder without preprocessor_config.json (not a CLIP reward folder)`,
    );
  return dir;
}

/** Writes stored CLIP reward files into a fresh temporary folder and loads the model from it. */
async function loadClipFiles(
  deps: StageDeps,
  files: Record<string, ArtifactRef>,
  name: string,
  version: string | undefined,
): Promise<{ model: ClipOnnxReward; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dro-clip-reward-'));
  try {
    for (const [file, ref] of Object.entries(files)) {
      if (path.basename(file) !== file)
        throw badInput(`reward file name ${JSON.stringify(file)} is not a plain name`);
      await fs.writeFile(path.join(dir, file), await readArtifact(deps.store, ref));
    }
    const model = await stageCall('ranking.onnxModel', () =>
      ClipOnnxReward.load(dir, { name, ...(version !== undefined && { version }) }),
    );
    return { model, dir };
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function withTempFile<T>(
  bytes: Uint8Array,
  name: string,
  use: (file: string) => Promise<T>,
): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dro-reward-'));
  try {
    const file = path.join(dir, name);
    await fs.writeFile(file, bytes);
    return await use(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Rebuilds the reward model a descriptor artifact describes; the caller disposes it (see `dispose`). */
export async function loadRewardModel(
  deps: StageDeps,
  ref: ArtifactRef,
): Promise<{ model: RewardModel; descriptor: RewardDescriptor; dispose: () => Promise<void> }> {
  const descriptor = await readJsonArtifact<RewardDescriptor>(deps.store, ref);
  if (descriptor.format !== REWARD_DESCRIPTOR_FORMAT)
    throw permanentFailure(`${ref.uri} is not a reward-model descriptor`, 'PipelineBadInput');
  if (descriptor.kind === 'detector')
    return { model: new DetectorReward(), descriptor, dispose: async () => {} };
  if (descriptor.clipFiles) {
    const { model, dir } = await loadClipFiles(
      deps,
      descriptor.clipFiles,
      descriptor.identity.name,
      descriptor.identity.version,
    );
    return { model, descriptor, dispose: () => fs.rm(dir, { recursive: true, force: true }) };
  }
  if (!descriptor.weights)
    throw permanentFailure(`${ref.uri}: reward model has no weights`, 'PipelineBadInput');
  const bytes = await readArtifact(deps.store, descriptor.weights);
  if (descriptor.kind === 'preference') {
    const model = await stageCall('reward model', () =>
      Promise.resolve(preferenceModelFromBytes(bytes, descriptor.weights!.uri)),
    );
    return { model, descriptor, dispose: () => Promise.resolve(model.dispose()) };
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dro-onnx-'));
  const file = path.join(dir, 'model.onnx');
  await fs.writeFile(file, bytes);
  const model = await stageCall('ranking.onnxModel', () =>
    OnnxReward.load({
      file,
      name: descriptor.identity.name,
      version: descriptor.identity.version,
      resolution: descriptor.onnxResolution ?? 16,
    }),
  );
  return { model, descriptor, dispose: () => fs.rm(dir, { recursive: true, force: true }) };
}

/** Deterministic split: a seeded shuffle, the first `fraction` held out. */
function split(pairs: readonly PreferencePair[], fraction: number, seed: number) {
  const order = pairs.map((_, i) => i);
  new Rng(seed).shuffle(order);
  const held = pairs.length >= 5 ? Math.max(1, Math.round(pairs.length * fraction)) : 0;
  return {
    train: order.slice(held).map((i) => pairs[i]!),
    heldOut: order.slice(0, held).map((i) => pairs[i]!),
  };
}

export function createRewardActivities(deps: StageDeps) {
  return {
    /** Trains (or sets up) the reward model and writes its descriptor; a retry returns the written one. */
    async trainRewardModel(input: TrainRewardModelInput): Promise<TrainRewardModelResult> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      checkRef(input.preferences, 'preferences');
      if (!['preference', 'detector', 'onnx'].includes(input.kind))
        throw badInput(
          `ranking.rewardModel must be preference, detector or onnx, got ${JSON.stringify(input.kind)}`,
        );
      const fraction = input.heldOutFraction ?? 0.2;
      if (!(fraction >= 0 && fraction < 1))
        throw badInput(`heldOutFraction must be in [0, 1), got ${fraction}`);
      if (input.kind === 'onnx' && !input.onnxModel)
        throw badInput("ranking.rewardModel 'onnx' needs ranking.onnxModel");
      const key = outputKey(input, 'reward', 'reward-model.json');
      const done = await finished(deps.store, key);
      if (done) {
        const d = await readJsonArtifact<RewardDescriptor>(deps.store, done.ref);
        log.info({ uri: done.ref.uri }, 'reward model already written');
        return {
          reward: done.ref,
          kind: d.kind,
          identity: d.identity,
          accuracy: d.accuracy,
          accuracyPairs: d.accuracyPairs,
          trainPairs: d.trainPairs,
        };
      }
      await useBackend(input.backend);
      const rows = await readPreferenceRows(deps, input.preferences, 'decode');
      const pairs = await stageCall('preference set', () =>
        Promise.resolve(preferencePairsFromRows(rows.filter((r) => r.image_0_uid !== r.image_1_uid))),
      );
      const decided = pairs.filter((p) => p.label0 !== 0.5);
      heartbeat({ phase: 'pairs loaded', pairs: pairs.length, decided: decided.length });

      let descriptor: RewardDescriptor;
      if (input.kind === 'preference') {
        if (decided.length < 4)
          throw permanentFailure(
            `ranking.rewardModel 'preference' needs preference pairs with a winner; the preference set has ` +
              `${decided.length} (a caption folder has none): use 'detector' or 'onnx'`,
            'PipelineBadInput',
          );
        const { train, heldOut } = split(pairs, fraction, stageSeed(input.seed, 'reward-split'));
        const config = defaultPreferenceConfig();
        const init = input.preferenceInit
          ? await preferenceInitWeights(deps, input.preferenceInit, input.preferenceInitSha256, config)
          : undefined;
        const result = await stageCall('reward model', () =>
          trainPreferenceModel(train, config, {
            seed: stageSeed(input.seed, 'reward-init'),
            epochs: input.epochs ?? 12,
            lr: init ? PREFERENCE_LR.fineTune : PREFERENCE_LR.scratch,
            ...(init && { init: init.weights }),
            onEpoch: (e) => {
              const progress = { phase: 'training', epoch: e.epoch + 1, loss: e.loss, seconds: e.seconds };
              heartbeat(progress);
              log.debug(progress, 'reward model epoch');
            },
          }),
        );
        try {
          const acc = heldOut.length
            ? await pairwiseAccuracy(result.model, heldOut)
            : { accuracy: NaN, pairs: 0 };
          const trainAcc = await pairwiseAccuracy(result.model, train);
          const identity = rewardModelIdentity(result.model);
          const weights = await putArtifact(
            deps.store,
            outputKey(input, 'reward', 'preference-model.safetensors'),
            serializeSafetensors(
              new Map(
                [...result.model.weights()].map(([n, d]) => [
                  n,
                  { shape: result.model.params.get(n)!.shape, data: d },
                ]),
              ),
              { metadata: { config: JSON.stringify(result.model.config) } },
            ),
            {
              kind: 'reward-weights',
              producer: 'trainRewardModel',
              inputs: [input.preferences.sha256],
              extra: { identity },
            },
          );
          descriptor = {
            format: REWARD_DESCRIPTOR_FORMAT,
            kind: 'preference',
            identity,
            weights,
            ...(Number.isFinite(acc.accuracy) ? { accuracy: acc.accuracy } : {}),
            accuracyPairs: acc.pairs,
            trainPairs: train.length,
            losses: result.losses,
            ...(init && { init: { source: input.preferenceInit!, sha256: init.sha256 } }),
          };
          log.info(
            {
              heldOutAccuracy: acc.accuracy,
              heldOutPairs: acc.pairs,
              trainAccuracy: trainAcc.accuracy,
              trainPairs: train.length,
            },
            'preference model trained',
          );
        } finally {
          result.model.dispose();
        }
      } else {
        let weights: ArtifactRef | undefined;
        let clipFiles: Record<string, ArtifactRef> | undefined;
        let model: RewardModel;
        let cleanup = async (): Promise<void> => {};
        const clipDir = input.kind === 'onnx' ? await clipRewardFolder(input.onnxModel!) : undefined;
        if (input.kind === 'detector') model = new DetectorReward();
        else if (clipDir !== undefined) {
          clipFiles = {};
          for (const file of [...CLIP_REWARD_FILES, ...CLIP_REWARD_OPTIONAL]) {
            const full = path.join(clipDir, file);
            const present = await fs.stat(full).then(
              (s) => s.isFile(),
              () => false,
            );
            if (!present) {
              if ((CLIP_REWARD_OPTIONAL as readonly string[]).includes(file)) continue;
              throw badInput(
                `ranking.onnxModel: ${full} is missing (a CLIP reward folder needs ${CLIP_REWARD_FILES.join(', ')})`,
              );
            }
            clipFiles[file] = await putArtifact(
              deps.store,
              outputKey(input, 'reward', `clip/${file}`),
              await fs.readFile(full),
              {
                kind: 'reward-weights',
                producer: 'trainRewardModel',
                extra: { source: input.onnxModel },
              },
            );
          }
          // The model is loaded from the stored copies, as every later stage will load it.
          const loaded = await loadClipFiles(
            deps,
            clipFiles,
            `onnx-clip:${path.basename(clipDir)}`,
            undefined,
          );
          model = loaded.model;
          cleanup = () => fs.rm(loaded.dir, { recursive: true, force: true });
        } else {
          const bytes = await readSource(deps.store, input.onnxModel!, 'ranking.onnxModel');
          weights = await putArtifact(deps.store, outputKey(input, 'reward', 'model.onnx'), bytes, {
            kind: 'reward-weights',
            producer: 'trainRewardModel',
            extra: { source: input.onnxModel },
          });
          const loaded = await withTempFile(bytes, 'model.onnx', (file) =>
            stageCall('ranking.onnxModel', () =>
              OnnxReward.load({
                file,
                resolution: input.onnxResolution ?? 16,
                name: `onnx:${path.basename(input.onnxModel!).replace(/\.onnx$/i, '')}`,
              }),
            ),
          );
          model = loaded;
        }
        // The world's detector cannot read captions outside the world's templates: no accuracy then.
        const acc = await pairwiseAccuracy(model, decided)
          .catch(() => ({ accuracy: NaN, pairs: 0 }))
          .finally(cleanup);
        descriptor = {
          format: REWARD_DESCRIPTOR_FORMAT,
          kind: input.kind,
          identity: rewardModelIdentity(model),
          ...(weights ? { weights } : {}),
          ...(clipFiles ? { clipFiles } : {}),
          ...(input.kind === 'onnx' && !clipFiles ? { onnxResolution: input.onnxResolution ?? 16 } : {}),
          ...(Number.isFinite(acc.accuracy) ? { accuracy: acc.accuracy } : {}),
          accuracyPairs: acc.pairs,
          trainPairs: 0,
        };
      }
      const ref = await putArtifact(deps.store, key, encodeJson(descriptor), {
        kind: 'reward-model',
        producer: 'trainRewardModel',
        inputs: [input.preferences.sha256],
        extra: {
          identity: descriptor.identity,
          accuracy: descriptor.accuracy,
          accuracyPairs: descriptor.accuracyPairs,
        },
      });
      log.info(
        { uri: ref.uri, identity: descriptor.identity, accuracy: descriptor.accuracy },
        'reward model written',
      );
      return {
        reward: ref,
        kind: descriptor.kind,
        identity: descriptor.identity,
        accuracy: descriptor.accuracy,
        accuracyPairs: descriptor.accuracyPairs,
        trainPairs: descriptor.trainPairs,
      };
    },
  };
}
