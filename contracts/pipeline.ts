/**
 * The contract of the pipeline workflow: its input, result, progress query and run report. Only
 * types and definitions, so the CLI, tests and the workflow share them.
 */
import { defineQuery } from '@temporalio/workflow';
import type { PipelineConfig } from '../config/schemas';
import type { ExpertProvenance } from '../engine/ranking/expert-provenance';
import type { RewardModelIdentity } from '../engine/rewards/reward-model';
import type { ArtifactRef } from '../storage/artifact-store';
import type { RunTaskQueues } from './task-queues';
import type { StageName } from './stages';

/** Where the run's code and machine came from, recorded in its manifest. */
export interface RunProvenance {
  /** SHA-256 of the result-determining config (config/config-hash.ts). */
  configHash: string;
  packageVersion: string;
  gitCommit: string;
  node: string;
}

export interface PipelineInput {
  /** Run id, equal to the pipeline's workflow id; child workflow ids derive from it. */
  runId: string;
  /** The parsed (defaulted) pipeline config. */
  config: PipelineConfig;
  /** Stages to compute again although cached: `all` (`--no-cache`) or names (`--rerun`). */
  rerun?: 'all' | string[];
  provenance?: RunProvenance;
  /** Task queues of the run's activities and children. Default TASK_QUEUES (shared workers). */
  taskQueues?: RunTaskQueues;
}

export type PipelineStage = StageName;

export interface StageCacheRecord {
  /** The stage's cache key. */
  key: string;
  hit: boolean;
  /** The run that computed the cached outputs. */
  fromRun?: string;
  /** Why a cached entry was not used. */
  rejected?: string;
}

export interface StageRecord {
  stage: PipelineStage;
  status: 'pending' | 'running' | 'done' | 'skipped' | 'failed';
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
  /** Cache lookup of cached stages. */
  cache?: StageCacheRecord;
  /** Small JSON details the stage returned (counts, accuracy, ...). */
  details?: Record<string, unknown>;
}

export interface PipelineProgress {
  runId: string;
  /** The first stage running now, `pending` between stages, or `done`. */
  stage: PipelineStage | 'pending' | 'done';
  /** Every stage running now. */
  running?: PipelineStage[];
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
  /** This execution's id: names its folder `runs/<runId>/executions/<execution>/`. */
  execution: string;
  report: ArtifactRef;
  /** report.md and report.html beside report.json. */
  reportFiles: { markdown: ArtifactRef; html: ArtifactRef };
  manifest: ArtifactRef;
  stages: StageRecord[];
  /** The GenEval and win-rate tables as text, when the evaluation ran. */
  tables?: string;
  models: PipelineModels;
  /** Training summaries (JSON with the loss history) by stage. */
  summaries: Partial<Record<'pretrain' | 'sft' | 'dro' | 'dpo', ArtifactRef>>;
}

/** The run report artifact's content. */
export interface RunReport {
  format: 'dro-pipeline/run-report@2';
  runId: string;
  name: string;
  seed: number;
  config: PipelineConfig;
  configHash: string | null;
  workflowId: string;
  execution: string;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  stages: StageRecord[];
  rewardModel: { identity: RewardModelIdentity; accuracy: number | null; accuracyPairs: number };
  expertSet: {
    k: number;
    total: number;
    topScore: number;
    kthScore: number;
    /** Experts and GenEval verdicts per generator, with a generator pool (`data.generators`). */
    provenance?: ExpertProvenance;
  };
  preferences: {
    rows: number;
    comparisons: number;
    prompts: number;
    skipped: number;
    /** Images per generator, with a generator pool. */
    generators?: Record<string, number>;
  };
  models: PipelineModels;
  summaries: PipelineResult['summaries'];
  /** The evaluation's artifacts, when it ran. */
  evaluation?: { evaluation: ArtifactRef; samples: ArtifactRef };
  /** The GenEval and win-rate tables as text, when the evaluation ran. */
  tables?: string;
}

/** What an auditor reads: `runs/<runId>/executions/<execution>/manifest.json`, one per execution. */
export interface RunManifest {
  format: 'dro-pipeline/run-manifest@1';
  runId: string;
  name: string;
  status: 'completed' | 'failed';
  error?: { stage: string; message: string };
  workflowId: string;
  execution: string;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  /** The normalized (defaulted) config. */
  config: PipelineConfig;
  provenance: RunProvenance | null;
  seeds: { root: number };
  stages: StageRecord[];
  /** Every artifact the run's stages produced or reused. */
  artifacts: (ArtifactRef & { stage: string; role: string })[];
  metrics: Record<string, number | null>;
}
