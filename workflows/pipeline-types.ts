/**
 * The contract of the pipeline workflow: its input, result, progress query and run report. Only
 * types and definitions, so the CLI, tests and the workflow share them.
 */
import { defineQuery } from '@temporalio/workflow';
import type { PipelineConfig } from '../config/schemas';
import type { RewardModelIdentity } from '../engine/rewards/reward-model';
import type { ArtifactRef } from '../storage/artifact-store';

export interface PipelineInput {
  /** Run id: artifacts live under runs/<runId>/, child workflow ids derive from it. */
  runId: string;
  /** The parsed (defaulted) pipeline config. */
  config: PipelineConfig;
}

/** Stages in the order they run; `pretrain` only without model.baseCheckpoint, `dpo` only when enabled. */
export const PIPELINE_STAGES = [
  'base',
  'pretrain',
  'preferences',
  'reward',
  'ranking',
  'sft',
  'dro',
  'dpo',
  'report',
] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

export interface StageRecord {
  stage: PipelineStage;
  status: 'pending' | 'running' | 'done' | 'skipped';
  /** Workflow time (ms since epoch). */
  startedAtMs?: number;
  finishedAtMs?: number;
  seconds?: number;
  /** Artifacts the stage produced, by role. */
  artifacts?: Record<string, ArtifactRef>;
  /** One line for people, e.g. "128 comparisons", "held-out accuracy 0.81". */
  note?: string;
  /** Child workflow id of training stages. */
  childWorkflowId?: string;
}

export interface PipelineProgress {
  runId: string;
  /** The stage running now, or `done`. */
  stage: PipelineStage | 'done';
  stages: StageRecord[];
}

export const pipelineProgressQuery = defineQuery<PipelineProgress>('pipelineProgress');

/** The final models of a run. */
export interface PipelineModels {
  base: ArtifactRef;
  sft?: ArtifactRef;
  dro: ArtifactRef;
  dpo?: ArtifactRef;
}

export interface PipelineResult {
  runId: string;
  report: ArtifactRef;
  models: PipelineModels;
  /** Training summaries (JSON with the loss history) by stage. */
  summaries: Partial<Record<'pretrain' | 'sft' | 'dro' | 'dpo', ArtifactRef>>;
}

/** The run report artifact's content. */
export interface RunReport {
  format: 'dro-pipeline/run-report@1';
  runId: string;
  name: string;
  seed: number;
  workflowId: string;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  stages: StageRecord[];
  rewardModel: { identity: RewardModelIdentity; accuracy: number | null; accuracyPairs: number };
  expertSet: { k: number; total: number; topScore: number; kthScore: number };
  preferences: { rows: number; comparisons: number; prompts: number; skipped: number };
  models: PipelineModels;
  summaries: PipelineResult['summaries'];
}
