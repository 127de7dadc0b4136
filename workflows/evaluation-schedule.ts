/**
 * What a `dro schedule create --model ... | --latest-of ...` schedule starts at every trigger: an
 * evaluation of fixed models, or of the models of the newest completed run of a config hash. The
 * run is resolved by an activity when the trigger fires (a workflow may not do I/O), so each
 * evaluation follows whatever run completed last. The evaluation itself is `evaluationWorkflow`,
 * as a child, writing under `evaluations/<this workflow's id>/`.
 */
import { ApplicationFailure, executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { LatestRunResult, createLatestRunActivities } from '../activities/latest-run';
import type {
  EvaluationInput,
  EvaluationResult,
  ScheduledEvaluationInput,
  ScheduledEvaluationResult,
} from '../contracts/evaluation';
import { NON_RETRYABLE_ERROR_TYPES } from '../contracts/errors';
import { TASK_QUEUES, WORKFLOW_TASK_TIMEOUT } from '../contracts/task-queues';

type LatestRunActivities = ReturnType<typeof createLatestRunActivities>;
type EvaluationWorkflowFn = (input: EvaluationInput) => Promise<EvaluationResult>;

function inputError(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`scheduled evaluation: ${message}`, 'PipelineBadInput');
}

export async function scheduledEvaluationWorkflow(
  input: ScheduledEvaluationInput,
): Promise<ScheduledEvaluationResult> {
  const fixed = input.models ?? [];
  if (fixed.length > 0 === (input.latestOf !== undefined))
    throw inputError('give either "models" or "latestOf"');
  const queues = input.taskQueues ?? TASK_QUEUES;
  const { resolveLatestRun } = proxyActivities<LatestRunActivities>({
    taskQueue: queues.cpu,
    startToCloseTimeout: '5 minutes',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
  });

  let latest: LatestRunResult | undefined;
  if (input.latestOf !== undefined) latest = await resolveLatestRun({ configHash: input.latestOf });
  const models = latest?.models ?? fixed;
  const id = workflowInfo().workflowId;
  // Scheduled ids end in the fire time (`name-2026-11-30T03:00:00Z`); keys take no ':'.
  const out = `evaluations/${id.replace(/[^A-Za-z0-9._=+@,~-]/g, '_')}`;
  const baseline =
    input.settings.baseline ?? (models.some((m) => m.name === 'base') ? 'base' : models[0]!.name);
  const result = await executeChild<EvaluationWorkflowFn>('evaluationWorkflow', {
    workflowId: `${id}-eval`,
    taskQueue: queues.cpu,
    workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
    args: [
      {
        runId: id,
        out,
        models,
        rewards: latest?.rewards ?? [],
        ...(latest?.trainingPrompts && { trainingPrompts: latest.trainingPrompts }),
        settings: { ...input.settings, baseline },
        ...(input.backend !== undefined && { backend: input.backend }),
        ...(input.heartbeatTimeoutSeconds !== undefined && {
          heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds,
        }),
        taskQueues: queues,
      },
    ],
  });
  return {
    ...result,
    id,
    out,
    models,
    ...(latest && {
      source: { runId: latest.runId, configHash: input.latestOf!, closedAt: latest.closedAt },
    }),
  };
}
