/** Task queues shared by workers and clients; spelled once, here. */
export const TASK_QUEUES = {
  /** Compute activities (training, sampling, scoring): one at a time per worker. */
  gpu: 'dro-gpu',
  /** I/O activities (artifacts, imports, exports). */
  cpu: 'dro-cpu',
} as const;

export type TaskQueue = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

/** The task queues one run's workflows and activities use. */
export interface RunTaskQueues {
  gpu: string;
  cpu: string;
}

/**
 * Task queues private to one run: `dro run` on the embedded server gives each run its own, so the
 * workers of one `dro run` never pick up the work of another run left open in the same history
 * (an interrupted one); that run continues only when resumed. Runs on a shared cluster use
 * TASK_QUEUES, served by `dro worker` processes.
 */
export function privateTaskQueues(runId: string): RunTaskQueues {
  return { gpu: `${TASK_QUEUES.gpu}@${runId}`, cpu: `${TASK_QUEUES.cpu}@${runId}` };
}

export const DEFAULT_NAMESPACE = 'default';

/**
 * Workflow task timeout of every workflow this project starts. A worker that also runs CPU-bound
 * activities in its process (the embedded `dro run`) can hold its event loop for seconds; under the
 * server's default of 10 s such a task expires, is scheduled again and its first completion is
 * refused ("Task not found"), which repeats work and floods the log.
 */
export const WORKFLOW_TASK_TIMEOUT = '1 minute';
