/**
 * The contract of the evaluation workflow and its activities: GenEval accuracy and reward-model win
 * rates of a set of models on one prompt suite. Only types, a query and pure shard planning live
 * here, so the workflow, the activities, the CLI and tests share them.
 *
 * ```ts
 * const result = await client.workflow.execute(evaluationWorkflow, {
 *   taskQueue: WORKFLOW_TASK_QUEUE,
 *   workflowId: `${runId}-eval`,
 *   args: [{ runId, out: `runs/${runId}/eval`, models: [{ name: 'base', model }, { name: 'dro', model: dro }],
 *            rewards: [{ name: 'preference', reward }], settings }],
 * });
 * console.log(result.tables);
 * ```
 *
 * Seeds (documented in engine/eval/seeds.ts; `root` = `settings.seed`, Pg / Pw the GenEval and
 * win-rate prompt counts the plan ends up with):
 * - GenEval image j of prompt p: `genevalSeed(root, p, j, imagesPerPrompt)` = root + p * imagesPerPrompt + j;
 * - win-rate sample i of prompt p: `winrateSeed(root + Pg * imagesPerPrompt, p, i, Pw)`, so the two
 *   schedules never share a seed;
 * - report grid: GenEval image 0 of the first `gridPrompts` GenEval prompts, the same for every model.
 */
import { defineQuery } from '@temporalio/workflow';
import type { RunTaskQueues } from './task-queues';
import type { BackendPreference } from '../engine/backend';
import type { ArtifactRef } from '../storage/artifact-store';
import type { PipelineConfig } from '../config/schemas';

/** A model to evaluate: a model bundle (as trainingWorkflow or importBaseModel writes it). */
export interface EvalModelInput {
  name: string;
  model: ArtifactRef;
}

/** A reward model the win rates are measured under: a descriptor written by trainRewardModel. */
export interface EvalRewardInput {
  name: string;
  reward: ArtifactRef;
}

export interface EvaluationSettings {
  /** Root of every seed of the evaluation (see the module doc). */
  seed: number;
  /** GenEval prompts evaluated (config `eval.genevalPrompts`); fewer when the suite has fewer. */
  genevalPrompts: number;
  /** Images per GenEval prompt (config `eval.imagesPerPrompt`, GenEval uses 4). */
  imagesPerPrompt: number;
  /** Win-rate prompts (config `eval.winratePrompts`): the first ones of the suite's selection. */
  winratePrompts: number;
  /**
   * Images per win-rate prompt; the one with the median preference-reward score is kept and compared
   * under every reward (config `eval.winrateSamples`, paper: 5).
   */
  winrateSamples: number;
  /** DPM-Solver++ steps per image (config `eval.samplerSteps`). */
  samplerSteps: number;
  /** Classifier-free guidance scale (config `eval.guidanceScale`). */
  guidanceScale: number;
  /** Bootstrap resamples of every confidence interval (config `eval.bootstrapSamples`). */
  bootstrapSamples: number;
  /** Images per shard activity. Default 32. */
  shardSize?: number;
  /** Model the GenEval significance marks compare against. Default: the first model. */
  baseline?: string;
  /** GenEval prompts shown in the report's sample grids (image 0 of each). Default 8. */
  gridPrompts?: number;
  /**
   * The built-in suite keeps only the prompts the world's prompt split holds out of training
   * (`data.promptSplit: 'hash'`, docs/world.md), every held-out prompt of each tag, tags taking
   * turns. Default false: prompts drawn from the whole world, training prompts removed.
   */
  heldOutOnly?: boolean;
}

/**
 * The evaluation settings a pipeline run of `config` uses (its baseline is named by the caller): the
 * pipeline's eval stage and `dro eval --like` judge a run's models by the same rules.
 */
export function runEvaluationSettings(config: PipelineConfig): EvaluationSettings {
  return {
    seed: config.seed,
    genevalPrompts: config.eval.genevalPrompts,
    imagesPerPrompt: config.eval.imagesPerPrompt,
    winratePrompts: config.eval.winratePrompts,
    winrateSamples: config.eval.winrateSamples,
    samplerSteps: config.eval.samplerSteps,
    guidanceScale: config.eval.guidanceScale,
    bootstrapSamples: config.eval.bootstrapSamples,
    shardSize: config.eval.shardSize,
    ...(config.data.promptSplit === 'hash' && { heldOutOnly: true }),
  };
}

/**
 * The model a run's GenEval significance marks compare against: the first of `eval.baselines` the
 * run evaluates, else the base model.
 */
export function evaluationBaseline(baselines: readonly string[], models: readonly string[]): string {
  return baselines.find((b) => models.includes(b)) ?? 'base';
}

export interface EvaluationInput {
  runId: string;
  /** Key prefix of every artifact of this evaluation (plan, shards, results, samples, evaluation.json). */
  out: string;
  /** Models in report order, e.g. base, sft, dro, dpo; names are unique. */
  models: EvalModelInput[];
  /**
   * Reward models for the win rates. The built-in world's detector score is always added as reward
   * `detector` (every evaluated model draws 3-channel pixel images), so the name is reserved. The
   * first reward is the preference reward (the run's reward model) whose median image per model and
   * prompt is kept for every reward; without one, the detector score chooses.
   */
  rewards: EvalRewardInput[];
  /** A GenEval `evaluation_metadata.jsonl` artifact. Default: the built-in world's suite. */
  suite?: ArtifactRef;
  /** The preference set (Pick-a-Pic parquet): its captions are removed from the suite and counted. */
  trainingPrompts?: ArtifactRef;
  settings: EvaluationSettings;
  backend?: BackendPreference;
  /** Heartbeat timeout of the shard activities, in seconds. Default 120. */
  heartbeatTimeoutSeconds?: number;
  /** Shard activities in flight at once. Default 8. */
  parallelShards?: number;
  /** Task queues of its activities. Default TASK_QUEUES. */
  taskQueues?: RunTaskQueues;
}

export interface EvaluationResult {
  /** evaluation.json (an `EvaluationDocument`). */
  evaluation: ArtifactRef;
  /** Per model, GenEval-shaped results.jsonl (one judged image per line). */
  results: Record<string, ArtifactRef>;
  /** samples.json (an `EvaluationSamples`): the report grid's PNGs, base64, same prompts and seeds for every model. */
  samples: ArtifactRef;
  /** GenEval and win-rate tables as aligned text (formatRunTables), for `dro run` to print. */
  tables: string;
  /** Shards of this evaluation: computed now, or found committed by an earlier execution or by content. */
  shards: { total: number; computed: number; reused: number };
}

/** Progress for `dro run` / `dro eval` while the evaluation runs. */
export interface EvaluationProgress {
  phase: 'planning' | 'generating' | 'summarizing' | 'done';
  shardsTotal: number;
  shardsDone: number;
  /** Shards found committed (not recomputed). */
  shardsReused: number;
}

export const evaluationProgressQuery = defineQuery<EvaluationProgress>('evaluationProgress');

/** One image slot of a shard: GenEval image `index` of prompt `prompt`, or win-rate sample `index`. */
export interface EvalJob {
  kind: 'geneval' | 'winrate';
  /** Prompt index within its list (GenEval prompts or win-rate prompts). */
  prompt: number;
  /** Image index within the prompt (GenEval j, or win-rate sample i). */
  index: number;
  seed: number;
  /** The report grid shows this image: its PNG is kept. */
  grid?: true;
}

export interface EvalShard {
  shard: number;
  /** Model name; a shard never mixes models, so it loads one model. */
  model: string;
  jobs: EvalJob[];
}

// ----- activities -----

export interface PlanEvaluationInput {
  runId: string;
  out: string;
  models: EvalModelInput[];
  rewards: EvalRewardInput[];
  suite?: ArtifactRef;
  trainingPrompts?: ArtifactRef;
  settings: EvaluationSettings;
}

export interface PlanEvaluationResult {
  /** plan.json: models, rewards, settings, seeds, the suite's prompts and its exclusion counts. */
  plan: ArtifactRef;
  /** Prompt counts and seed roots the shards are planned with (`planShards`). */
  genevalPrompts: number;
  winratePrompts: number;
  gridPrompts: number;
  genevalRoot: number;
  winrateRoot: number;
  /** Reward names, `detector` included. */
  rewards: string[];
}

export interface EvaluateShardInput {
  runId: string;
  out: string;
  plan: ArtifactRef;
  shard: number;
  model: string;
  jobs: EvalJob[];
  backend?: BackendPreference;
}

export interface EvaluateShardResult {
  /** `${out}/shards/<n>.json`. */
  shard: ArtifactRef;
  /**
   * False when an earlier attempt or execution had committed it, or when another evaluation had
   * computed the same slots of the same model under the same protocol (reused by content key,
   * docs/evaluation.md).
   */
  computed: boolean;
  images: number;
}

export interface SummarizeEvaluationInput {
  runId: string;
  out: string;
  plan: ArtifactRef;
  /** Every shard, in shard order. */
  shards: ArtifactRef[];
}

export type SummarizeEvaluationResult = Omit<EvaluationResult, 'shards'>;

// ----- scheduled evaluations (workflows/evaluation-schedule.ts) -----

export interface ScheduledEvaluationInput {
  /** Models given when the schedule was created (`--model NAME=URI`, imported into the store). */
  models?: EvalModelInput[];
  /** Evaluate the newest completed run of this config hash instead (`--latest-of`). */
  latestOf?: string;
  /** Evaluation settings; `baseline` defaults to `base` for a run's models, else the first model. */
  settings: EvaluationSettings;
  backend?: BackendPreference;
  heartbeatTimeoutSeconds?: number;
  taskQueues?: RunTaskQueues;
}

export interface ScheduledEvaluationResult extends EvaluationResult {
  /** This evaluation's id (the schedule's name and the time it fired). */
  id: string;
  /** Key prefix of its artifacts. */
  out: string;
  models: EvalModelInput[];
  /** The run whose models were evaluated (`--latest-of` only). */
  source?: { runId: string; configHash: string; closedAt: string };
  /** Its report under `<out>/report/`, the same pages `dro eval` writes. Absent in older executions. */
  report?: { html: ArtifactRef; markdown: ArtifactRef };
}

// ----- planning -----

export const DEFAULT_EVAL_SHARD_SIZE = 32;
export const DEFAULT_GRID_PROMPTS = 8;

export interface ShardPlanInput {
  models: readonly string[];
  genevalPrompts: number;
  imagesPerPrompt: number;
  winratePrompts: number;
  winrateSamples: number;
  genevalRoot: number;
  winrateRoot: number;
  /** Images per shard. */
  shardSize: number;
  /** GenEval prompts whose image 0 the report grid shows. */
  gridPrompts: number;
}

/**
 * Every shard of an evaluation, numbered from 0: per model (in order) its GenEval images
 * (prompt-major), then its win-rate images (sample-major, the seed order), cut into slices of
 * `shardSize`. With fewer than two models there are no win-rate images. Pure and deterministic,
 * so a restarted workflow plans the same shards and finds the committed ones.
 */
export function planShards(p: ShardPlanInput): EvalShard[] {
  const positive = (v: number, name: string, zero = false): void => {
    if (!Number.isInteger(v) || v < (zero ? 0 : 1))
      throw new RangeError(`${name} must be a ${zero ? 'non-negative' : 'positive'} integer, got ${v}`);
  };
  positive(p.genevalPrompts, 'genevalPrompts');
  positive(p.imagesPerPrompt, 'imagesPerPrompt');
  positive(p.winratePrompts, 'winratePrompts');
  positive(p.winrateSamples, 'winrateSamples');
  positive(p.shardSize, 'shardSize');
  positive(p.gridPrompts, 'gridPrompts', true);
  positive(p.genevalRoot, 'genevalRoot', true);
  positive(p.winrateRoot, 'winrateRoot', true);
  const perModel: EvalJob[] = [];
  for (let prompt = 0; prompt < p.genevalPrompts; prompt++)
    for (let j = 0; j < p.imagesPerPrompt; j++)
      perModel.push({
        kind: 'geneval',
        prompt,
        index: j,
        // genevalSeed and winrateSeed of engine/eval/seeds.ts (workflow code imports no engine
        // module; a unit test holds the two equal).
        seed: p.genevalRoot + prompt * p.imagesPerPrompt + j,
        ...(j === 0 && prompt < p.gridPrompts ? { grid: true as const } : {}),
      });
  if (p.models.length >= 2)
    for (let i = 0; i < p.winrateSamples; i++)
      for (let prompt = 0; prompt < p.winratePrompts; prompt++)
        perModel.push({
          kind: 'winrate',
          prompt,
          index: i,
          seed: p.winrateRoot + prompt + i * p.winratePrompts,
        });
  const shards: EvalShard[] = [];
  for (const model of p.models)
    for (let start = 0; start < perModel.length; start += p.shardSize)
      shards.push({ shard: shards.length, model, jobs: perModel.slice(start, start + p.shardSize) });
  return shards;
}
