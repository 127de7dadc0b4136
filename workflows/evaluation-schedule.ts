/**
 * What a `dro schedule create --model ... | --latest-of ...` schedule starts at every trigger: an
 * evaluation of fixed models, or of the models of the newest completed run of a config hash. The
 * run is resolved by an activity when the trigger fires (a workflow may not do I/O), so each
 * evaluation follows whatever run completed last. The evaluation itself is `evaluationWorkflow`,
 * as a child, writing under `evaluations/<this workflow's id>/`, and then its report, the same pages
 * `dro eval` writes, under `report/` there.
 */
import {
  ApplicationFailure,
  executeChild,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { createEvaluationReportActivities } from '../activities/evaluation-report';
import type { LatestRunResult, createLatestRunActivities } from '../activities/latest-run';
import type {
  EvaluationInput,
  EvaluationResult,
  ScheduledEvaluationInput,
  ScheduledEvaluationResult,
} from '../contracts/evaluation';
import { LOOKUP_ATTEMPTS, retryPolicy } from './failures';
import { TASK_QUEUES, WORKFLOW_TASK_TIMEOUT } from '../contracts/task-queues';

type LatestRunActivities = ReturnType<typeof createLatestRunActivities>;
type ReportActivities = ReturnType<typeof createEvaluationReportActivities>;

/** Marks executions that write the report, so histories recorded before it still replay. */
export const REPORT_PATCH = 'scheduled-evaluation-report';
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
  const ioOptions = {
    taskQueue: queues.cpu,
    startToCloseTimeout: '5 minutes',
    retry: retryPolicy(LOOKUP_ATTEMPTS),
  };
  const { resolveLatestRun } = proxyActivities<LatestRunActivities>(ioOptions);
  const { writeEvaluationReport } = proxyActivities<ReportActivities>(ioOptions);

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
  const report = patched(REPORT_PATCH)
    ? await writeEvaluationReport({
        id,
        out,
        evaluation: result.evaluation,
        samples: result.samples,
        models,
        config: { eval: input.settings },
        ...(latest && { like: latest.runId }),
      })
    : undefined;
  return {
    ...result,
    id,
    out,
    models,
    ...(latest && {
      source: { runId: latest.runId, configHash: input.latestOf!, closedAt: latest.closedAt },
    }),
    ...(report && { report: { html: report.html, markdown: report.markdown } }),
  };
}
