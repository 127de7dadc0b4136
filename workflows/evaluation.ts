/**
 * The evaluation workflow: GenEval accuracy and reward-model win rates of a set of models.
 *
 * `planEvaluation` (I/O queue) checks the inputs and writes the plan (suite, seeds); the workflow
 * cuts the image slots into shards with the pure `planShards` and runs them as `evaluateShard`
 * activities on the compute queue, `parallelShards` at a time, so every compute worker takes
 * some; `summarizeEvaluation` then writes the results. Every step returns what an earlier
 * execution under the same `out` committed, so a restarted evaluation recomputes no finished
 * shard. Only artifact references pass through here.
 */
import { ApplicationFailure, proxyActivities, setHandler } from '@temporalio/workflow';
import { SHARD_ATTEMPTS, retryPolicy, surfacePermanent } from './failures';
import type { EvaluationActivities } from '../activities/evaluation';
import { NON_RETRYABLE_ERROR_TYPES } from '../contracts/errors';
import { TASK_QUEUES } from '../contracts/task-queues';
import type { ArtifactRef } from '../storage/artifact-store';
import {
  DEFAULT_EVAL_SHARD_SIZE,
  evaluationProgressQuery,
  planShards,
  type EvaluationInput,
  type EvaluationProgress,
  type EvaluationResult,
} from '../contracts/evaluation';

const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 120;
const DEFAULT_PARALLEL_SHARDS = 8;

/** Failure types no retry can fix; a bad suite file is one more besides the shared list. */
const EVAL_NON_RETRYABLE = [...NON_RETRYABLE_ERROR_TYPES, 'EvalSuiteError'];

function inputError(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`evaluation: ${message}`, 'PipelineBadInput');
}

/** A permanent activity failure becomes this workflow's own failure of the same type. */
function surface(err: unknown): unknown {
  return surfacePermanent(err, 'evaluation', EVAL_NON_RETRYABLE);
}

export async function evaluationWorkflow(input: EvaluationInput): Promise<EvaluationResult> {
  if (!Array.isArray(input.models) || input.models.length === 0)
    throw inputError('field "models" must name at least one model');
  const parallel = input.parallelShards ?? DEFAULT_PARALLEL_SHARDS;
  if (!Number.isInteger(parallel) || parallel < 1)
    throw inputError(`field "parallelShards" must be a positive integer, got ${parallel}`);
  const retry = retryPolicy(SHARD_ATTEMPTS, EVAL_NON_RETRYABLE);
  const { planEvaluation } = proxyActivities<EvaluationActivities>({
    taskQueue: input.taskQueues?.cpu ?? TASK_QUEUES.cpu,
    startToCloseTimeout: '1 hour',
    retry,
  });
  const { evaluateShard, summarizeEvaluation } = proxyActivities<EvaluationActivities>({
    taskQueue: input.taskQueues?.gpu ?? TASK_QUEUES.gpu,
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS} seconds`,
    retry,
  });

  const progress: EvaluationProgress = { phase: 'planning', shardsTotal: 0, shardsDone: 0, shardsReused: 0 };
  setHandler(evaluationProgressQuery, () => ({ ...progress }));

  const { runId, out, backend } = input;
  let plan;
  try {
    plan = await planEvaluation({
      runId,
      out,
      models: input.models,
      rewards: input.rewards ?? [],
      ...(input.suite && { suite: input.suite }),
      ...(input.trainingPrompts && { trainingPrompts: input.trainingPrompts }),
      settings: input.settings,
    });
  } catch (err) {
    throw surface(err);
  }
  let shards;
  try {
    shards = planShards({
      models: input.models.map((m) => m.name),
      genevalPrompts: plan.genevalPrompts,
      imagesPerPrompt: input.settings.imagesPerPrompt,
      winratePrompts: plan.winratePrompts,
      winrateSamples: input.settings.winrateSamples,
      genevalRoot: plan.genevalRoot,
      winrateRoot: plan.winrateRoot,
      shardSize: input.settings.shardSize ?? DEFAULT_EVAL_SHARD_SIZE,
      gridPrompts: plan.gridPrompts,
    });
  } catch (err) {
    // Thrown here, a RangeError would only fail the workflow task, again and again.
    throw inputError((err as Error).message);
  }
  progress.phase = 'generating';
  progress.shardsTotal = shards.length;

  // A pool of `parallel` lanes; after the first failure no lane starts another shard.
  const refs: ArtifactRef[] = new Array<ArtifactRef>(shards.length);
  let next = 0;
  let computed = 0;
  let failure: unknown;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < shards.length) {
      const s = shards[next++]!;
      try {
        const r = await evaluateShard({
          runId,
          out,
          plan: plan.plan,
          shard: s.shard,
          model: s.model,
          jobs: s.jobs,
          ...(backend !== undefined && { backend }),
        });
        refs[s.shard] = r.shard;
        if (r.computed) computed++;
        else progress.shardsReused++;
        progress.shardsDone++;
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, shards.length) }, lane));
  if (failure !== undefined) throw surface(failure);

  progress.phase = 'summarizing';
  let summary;
  try {
    summary = await summarizeEvaluation({ runId, out, plan: plan.plan, shards: refs });
  } catch (err) {
    throw surface(err);
  }
  progress.phase = 'done';
  return {
    ...summary,
    shards: { total: shards.length, computed, reused: shards.length - computed },
  };
}
