/**
 * The contract between the training workflow, its activities and the workflows that start it as a
 * child. Only types and two constants live here, so workflows and activities can both import it.
 *
 * ```ts
 * const result = await executeChild(trainingWorkflow, {
 *   args: [{ runId, stage: 'dro', settings, startModel, data, stepsPerActivity: 1280 }],
 * });
 * ```
 */
import { defineQuery } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from './errors';
import type { RunTaskQueues } from './task-queues';
import type { BackendPreference } from '../engine/backend';
import type { TrainingSettings } from '../engine/training/methods';
import type { MetricRow } from '../engine/training/trainer';
import type { ArtifactRef } from '../storage/artifact-store';

/** 'pretrain' trains with method 'sft'; the others with the method of the same name. */
export type TrainingStage = 'pretrain' | 'sft' | 'dro' | 'dpo';

/** How one trainChunk call went; the summary lists them so a reader sees every resume point. */
export interface ChunkRecord {
  /** Micro-step the chunk's final attempt started from. */
  fromStep: number;
  /** Micro-step it reached. */
  toStep: number;
  /** Temporal attempt number of the call that completed (1 = no retry). */
  attempt: number;
  /**
   * Where that attempt's state came from: a fresh start, the input checkpoint, a checkpoint
   * heartbeated by a failed attempt, or (`store`) a newer committed checkpoint of the chunk found in
   * the artifact store (one an earlier attempt wrote but had not yet heartbeated, for example
   * because its process was killed within the SDK's heartbeat throttle window).
   */
  restoredFrom: 'fresh' | 'input' | 'heartbeat' | 'store';
  /** The checkpoint restored (absent for a fresh start); its `step` equals `fromStep`. */
  restoredCheckpoint?: { uri: string; sha256: string; step: number };
  /** Wall-clock seconds of the attempt. */
  seconds: number;
  /** TF.js backend that ran it. */
  backend: string;
}

/** Where a continued run picks up: a checkpoint at an optimizer-update boundary. */
export interface TrainingResumePoint {
  checkpoint: ArtifactRef;
  step: number;
  /** Chunks of earlier runs of this workflow (set by continue-as-new; users leave it out). */
  chunks?: ChunkRecord[];
  /** Chunks run before, including any dropped from `chunks` (set by continue-as-new). */
  totalChunks?: number;
  /** Workflow time (ms since epoch) the training started (set by continue-as-new). */
  startedAtMs?: number;
}

export interface TrainingWorkflowInput {
  /** Pipeline run id: artifact keys live under runs/<runId>/<stage>/. */
  runId: string;
  stage: TrainingStage;
  /** Key prefix of the stage's outputs and checkpoints; default runs/<runId>/<stage>. */
  out?: string;
  /** Task queues of its activities. Default TASK_QUEUES. */
  taskQueues?: RunTaskQueues;
  /** TF.js backend of its activities (config `workers.backend`). Default `auto`. */
  backend?: BackendPreference;
  /** Seconds between heartbeats of its chunks (config `workers.heartbeatSeconds`). Default 5. */
  heartbeatSeconds?: number;
  settings: TrainingSettings;
  /** Model bundle; phi starts here and the frozen ref IS this model. */
  startModel: ArtifactRef;
  /** Image dataset (pretrain/sft/dro) or Pick-a-Pic parquet (dpo). */
  data: ArtifactRef;
  /** Micro-steps per activity call; a multiple of settings.gradientAccumulation. */
  stepsPerActivity: number;
  /** Continue-as-new and user resumes. */
  resume?: TrainingResumePoint;
  /** Seconds without a heartbeat before a chunk counts as lost and is retried elsewhere. Default 30. */
  heartbeatTimeoutSeconds?: number;
  /** Chunks one workflow run executes before continuing as new. Default 100. */
  chunksPerRun?: number;
  /** Newest checkpoints kept per stage; older ones are deleted as training goes on (0 keeps all). Default 3. */
  keepCheckpoints?: number;
}

export interface TrainingWorkflowResult {
  stage: TrainingStage;
  steps: number;
  /** Model bundle whose UNet holds the EMA weights (what is exported). */
  model: ArtifactRef;
  /** Diffusers-named UNet safetensors of the EMA weights. */
  unet: ArtifactRef;
  /** JSON: settings, history (loss curve), steps, wall time, backend, start model/data digests. */
  summary: ArtifactRef;
  lastCheckpoint: ArtifactRef;
}

export interface TrainingProgress {
  stage: TrainingStage;
  step: number;
  totalSteps: number;
  lastMetrics: MetricRow | undefined;
  checkpoint?: ArtifactRef;
}

export const trainingProgressQuery = defineQuery<TrainingProgress>('trainingProgress');

/** Input of the trainChunk activity: run from the newest checkpoint up to `untilStep`. */
export interface TrainChunkInput {
  runId: string;
  stage: TrainingStage;
  /** TF.js backend (config `workers.backend`). Default `auto`. */
  backend?: BackendPreference;
  /** Seconds between heartbeats. Default: the worker's (5). */
  heartbeatSeconds?: number;
  /** Key prefix of the stage's outputs (the stage cache's); default runs/<runId>/<stage>. */
  out?: string;
  settings: TrainingSettings;
  startModel: ArtifactRef;
  data: ArtifactRef;
  /** State to continue from; absent for the first chunk of a fresh run. */
  fromCheckpoint?: ArtifactRef;
  /** An update boundary, or settings.steps. */
  untilStep: number;
  /** Newest checkpoints kept for the stage (0 keeps all). Default 3. */
  keepCheckpoints?: number;
}

export interface TrainChunkResult {
  /** Checkpoint at `step`. */
  checkpoint: ArtifactRef;
  step: number;
  lastMetrics: MetricRow | undefined;
  record: ChunkRecord;
}

/** What trainChunk heartbeats; a retried attempt resumes from `checkpoint`. */
export interface TrainChunkHeartbeat {
  step: number;
  checkpoint?: ArtifactRef;
  checkpointStep?: number;
  loss?: number;
  imagesPerSecond?: number;
}

export interface FinalizeTrainingInput {
  runId: string;
  stage: TrainingStage;
  /** TF.js backend (config `workers.backend`). Default `auto`. */
  backend?: BackendPreference;
  /** Key prefix of the stage's outputs (the stage cache's); default runs/<runId>/<stage>. */
  out?: string;
  startModel: ArtifactRef;
  data: ArtifactRef;
  checkpoint: ArtifactRef;
  chunks: ChunkRecord[];
  /** Chunks run in all, including any dropped from `chunks` to keep payloads small. */
  totalChunks: number;
  /** Workflow time (ms) the training started and ended, for the summary's wall time. */
  startedAtMs: number;
  finishedAtMs: number;
}

export interface FinalizeTrainingResult {
  model: ArtifactRef;
  unet: ArtifactRef;
  summary: ArtifactRef;
}

/** Failure types no retry can fix. */
export const TRAINING_NON_RETRYABLE_ERROR_TYPES: readonly string[] = NON_RETRYABLE_ERROR_TYPES;

/** The training method each stage runs. */
export const STAGE_METHOD: Record<TrainingStage, TrainingSettings['method']> = {
  pretrain: 'sft',
  sft: 'sft',
  dro: 'dro',
  dpo: 'dpo',
};
