/**
 * The pipeline: base model -> preference set -> reward model -> expert ranking -> SFT warm start ->
 * Diffusion-DRO (-> optional Diffusion-DPO baseline) -> run report.
 *
 * - Base: `model.baseCheckpoint` imported as is, or (built-in world) a corpus and a random initial
 *   model from `prepareWorld`, pretrained by a child training workflow (stage `pretrain`).
 * - SFT starts from the base (its frozen ref is the base); DRO starts from the SFT result (or the
 *   base when SFT is off) and its frozen ref is that start model (DESIGN.md section 1); DPO starts
 *   from the base on the preference pairs.
 * Training runs as child workflows whose ids derive from the run id, so a restarted pipeline finds
 * them. Each stage upserts the `DroStage` search attribute; `pipelineProgress` answers where it is.
 */
import {
  ApplicationFailure,
  executeChild,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { PipelineConfig } from '../config/schemas';
import { NON_RETRYABLE_ERROR_TYPES } from '../config/error-types';
import { TASK_QUEUES } from '../config/task-queues';
import type { TrainingSettings } from '../engine/training/methods';
import type { ArtifactRef } from '../storage/artifact-store';
import {
  PIPELINE_STAGES,
  pipelineProgressQuery,
  type PipelineInput,
  type PipelineResult,
  type PipelineStage,
  type RunReport,
  type StageRecord,
} from './pipeline-types';
import type { TrainingStage, TrainingWorkflowInput, TrainingWorkflowResult } from './training-types';
import { DRO_RUN_ID, DRO_STAGE } from '../config/search-attributes';

type TrainingWorkflowFn = (input: TrainingWorkflowInput) => Promise<TrainingWorkflowResult>;

function activityProxies(config: PipelineConfig) {
  const heartbeatTimeout = `${Math.max(60, Math.ceil(config.workers.heartbeatSeconds * 6))} seconds`;
  const retry = { maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] };
  return {
    compute: proxyActivities<activities.Activities>({
      taskQueue: TASK_QUEUES.gpu,
      startToCloseTimeout: '6 hours',
      heartbeatTimeout,
      retry,
    }),
    io: proxyActivities<activities.Activities>({
      taskQueue: TASK_QUEUES.cpu,
      startToCloseTimeout: '1 hour',
      heartbeatTimeout,
      retry,
    }),
  };
}

/** The child workflow id of a training stage: stable per run, so a restarted pipeline finds it. */
export function trainingWorkflowId(runId: string, stage: TrainingStage): string {
  return `${runId}-train-${stage}`;
}

type CommonTraining = Pick<
  PipelineConfig['sft'],
  | 'steps'
  | 'learningRate'
  | 'weightDecay'
  | 'batchSize'
  | 'gradientAccumulation'
  | 'maxGradNorm'
  | 'promptDropout'
  | 'randomFlip'
  | 'emaDecay'
  | 'checkpointEvery'
>;

function common(seed: number, c: CommonTraining) {
  return {
    seed,
    steps: c.steps,
    learningRate: c.learningRate,
    weightDecay: c.weightDecay,
    batchSize: c.batchSize,
    gradientAccumulation: c.gradientAccumulation,
    maxGradNorm: c.maxGradNorm,
    promptDropout: c.promptDropout,
    randomFlip: c.randomFlip,
    emaDecay: c.emaDecay,
    checkpointEvery: c.checkpointEvery,
  };
}

/** The training settings of each stage, from the config. */
export function trainingSettings(config: PipelineConfig, stage: TrainingStage): TrainingSettings {
  switch (stage) {
    case 'pretrain': {
      const p = config.pretrain;
      return {
        method: 'sft',
        ...common(config.seed, {
          ...p,
          weightDecay: 0.01,
          maxGradNorm: 1,
          // Pretraining images are captioned scenes; a flip would contradict "left of"/"right of".
          randomFlip: false,
        }),
      };
    }
    case 'sft':
      return { method: 'sft', ...common(config.seed, config.sft) };
    case 'dro': {
      const d = config.dro;
      return {
        method: 'dro',
        ...common(config.seed, d),
        margin: d.margin,
        bufferSize: d.bufferSize,
        bufferBatchSize: d.bufferBatchSize,
        bufferSampleSteps: d.bufferSampleSteps,
        bufferUpdateSteps: d.bufferUpdateSteps,
        samplerSteps: d.samplerSteps,
        bufferGuidanceScale: d.bufferGuidanceScale,
      };
    }
    case 'dpo':
      return { method: 'dpo', ...common(config.seed, config.dpo), beta: config.dpo.beta };
  }
}

export async function pipelineWorkflow(input: PipelineInput): Promise<PipelineResult> {
  const { runId, config } = input;
  const { compute, io } = activityProxies(config);
  const backend = config.workers.backend;
  const started = Date.now();
  const records = new Map<PipelineStage, StageRecord>(
    PIPELINE_STAGES.map((stage) => [stage, { stage, status: 'pending' }]),
  );
  let current: PipelineStage | 'done' = 'base';
  setHandler(pipelineProgressQuery, () => ({ runId, stage: current, stages: [...records.values()] }));
  upsertSearchAttributes([{ key: DRO_RUN_ID, value: runId }]);

  const record = (stage: PipelineStage): StageRecord => records.get(stage)!;
  const enter = (stage: PipelineStage): void => {
    current = stage;
    Object.assign(record(stage), { status: 'running', startedAtMs: Date.now() });
    upsertSearchAttributes([{ key: DRO_STAGE, value: stage }]);
  };
  const finish = (stage: PipelineStage, artifacts: Record<string, ArtifactRef>, note?: string): void => {
    const r = record(stage);
    const now = Date.now();
    Object.assign(r, {
      status: 'done',
      finishedAtMs: now,
      seconds: (now - (r.startedAtMs ?? now)) / 1000,
      artifacts,
      ...(note !== undefined ? { note } : {}),
    });
  };
  const skip = (stage: PipelineStage, note: string): void => {
    Object.assign(record(stage), { status: 'skipped', note });
  };
  const train = async (
    stage: TrainingStage,
    startModel: ArtifactRef,
    data: ArtifactRef,
    stepsPerActivity: number,
  ): Promise<TrainingWorkflowResult> => {
    const workflowId = trainingWorkflowId(runId, stage);
    record(stage).childWorkflowId = workflowId;
    const result = await executeChild<TrainingWorkflowFn>('trainingWorkflow', {
      workflowId,
      args: [
        {
          runId,
          stage,
          settings: trainingSettings(config, stage),
          startModel,
          data,
          stepsPerActivity,
          heartbeatTimeoutSeconds: Math.max(60, Math.ceil(config.workers.heartbeatSeconds * 6)),
        },
      ],
    });
    finish(
      stage,
      {
        model: result.model,
        unet: result.unet,
        summary: result.summary,
        lastCheckpoint: result.lastCheckpoint,
      },
      `${result.steps} steps`,
    );
    return result;
  };

  // 1. Base model.
  enter('base');
  let base: ArtifactRef;
  const summaries: PipelineResult['summaries'] = {};
  if (config.model.baseCheckpoint) {
    const imported = await io.importBaseModel({ runId, uri: config.model.baseCheckpoint });
    finish('base', { model: imported.model }, `imported ${imported.source}`);
    skip('pretrain', 'model.baseCheckpoint given');
    base = imported.model;
  } else {
    if (config.data.source !== 'world') {
      throw ApplicationFailure.nonRetryable(
        `data.source '${config.data.source}' needs model.baseCheckpoint: only the built-in world can pretrain its own base model`,
        'PipelineBadInput',
      );
    }
    const world = await compute.prepareWorld({
      runId,
      seed: config.seed,
      unet: config.model.unet,
      resolution: config.model.resolution,
      captionNoise: config.data.captionNoise,
      corpusSize: config.pretrain.corpusSize,
      backend,
    });
    finish(
      'base',
      { corpus: world.corpus, initialModel: world.model },
      `corpus of ${world.corpusSize} images`,
    );
    enter('pretrain');
    const pretrained = await train('pretrain', world.model, world.corpus, config.pretrain.stepsPerActivity);
    summaries.pretrain = pretrained.summary;
    base = pretrained.model;
  }

  // 2. Preferences.
  enter('preferences');
  const prefs =
    config.data.source === 'world'
      ? await compute.simulatePreferences({
          runId,
          seed: config.seed,
          baseModel: base,
          prompts: config.data.prompts,
          steps: config.eval.samplerSteps,
          guidanceScale: config.eval.guidanceScale,
          backend,
        })
      : await io.importPreferences({
          runId,
          source: config.data.source,
          paths: config.data.paths,
          onBadRow: config.data.onBadRow,
        });
  finish(
    'preferences',
    { preferences: prefs.preferences },
    `${prefs.rows} rows, ${prefs.comparisons} comparisons${prefs.skipped ? `, ${prefs.skipped} bad rows skipped` : ''}`,
  );

  // 3. Reward model.
  enter('reward');
  const reward = await compute.trainRewardModel({
    runId,
    seed: config.seed,
    kind: config.ranking.rewardModel,
    preferences: prefs.preferences,
    onnxModel: config.ranking.onnxModel,
    onnxResolution: config.model.resolution,
    backend,
  });
  finish(
    'reward',
    { reward: reward.reward },
    `${reward.identity.name}@${reward.identity.version}` +
      (reward.accuracy !== undefined
        ? `, pairwise accuracy ${reward.accuracy.toFixed(3)} on ${reward.accuracyPairs} held-out pairs`
        : ''),
  );

  // 4. Expert ranking.
  enter('ranking');
  const ranking = await compute.rankExperts({
    runId,
    preferences: prefs.preferences,
    reward: reward.reward,
    topK: config.ranking.topK,
    shardSize: config.ranking.shardSize,
    resolution: config.model.resolution,
    backend,
  });
  finish(
    'ranking',
    { experts: ranking.experts, ranking: ranking.ranking },
    `top ${ranking.k} of ${ranking.total} images (scores ${ranking.topScore.toFixed(3)}..${ranking.kthScore.toFixed(3)})`,
  );

  // 5. SFT warm start (ref = base), 6. DRO (ref = its start model), 7. DPO baseline (from the base).
  let droStart = base;
  let sftModel: ArtifactRef | undefined;
  if (config.sft.enabled) {
    enter('sft');
    const sft = await train('sft', base, ranking.experts, config.sft.stepsPerActivity);
    summaries.sft = sft.summary;
    sftModel = sft.model;
    droStart = sft.model;
  } else skip('sft', 'sft.enabled is false');

  enter('dro');
  const dro = await train('dro', droStart, ranking.experts, config.dro.stepsPerActivity);
  summaries.dro = dro.summary;

  let dpoModel: ArtifactRef | undefined;
  if (config.dpo.enabled) {
    enter('dpo');
    const dpo = await train('dpo', base, prefs.preferences, config.dpo.stepsPerActivity);
    summaries.dpo = dpo.summary;
    dpoModel = dpo.model;
  } else skip('dpo', 'dpo.enabled is false');

  // 8. Report.
  enter('report');
  const models = {
    base,
    ...(sftModel ? { sft: sftModel } : {}),
    dro: dro.model,
    ...(dpoModel ? { dpo: dpoModel } : {}),
  };
  const finishedAt = Date.now();
  const report: RunReport = {
    format: 'dro-pipeline/run-report@1',
    runId,
    name: config.name,
    seed: config.seed,
    workflowId: workflowInfo().workflowId,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    wallSeconds: (finishedAt - started) / 1000,
    stages: [...records.values()].filter((r) => r.stage !== 'report'),
    rewardModel: {
      identity: reward.identity,
      accuracy: reward.accuracy ?? null,
      accuracyPairs: reward.accuracyPairs,
    },
    expertSet: { k: ranking.k, total: ranking.total, topScore: ranking.topScore, kthScore: ranking.kthScore },
    preferences: {
      rows: prefs.rows,
      comparisons: prefs.comparisons,
      prompts: prefs.prompts,
      skipped: prefs.skipped,
    },
    models,
    summaries,
  };
  const reportRef = await io.writeRunReport({ runId, report: report as unknown as Record<string, unknown> });
  finish('report', { report: reportRef });
  current = 'done';
  upsertSearchAttributes([{ key: DRO_STAGE, value: 'done' }]);
  return { runId, report: reportRef, models, summaries };
}
