/** Task queues shared by workers and clients; spelled once, here. */
export const TASK_QUEUES = {
  /** Compute activities (training, sampling, scoring): one at a time per worker. */
  gpu: 'dro-gpu',
  /** I/O activities (artifacts, imports, exports). */
  cpu: 'dro-cpu',
} as const;

export type TaskQueue = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

export const DEFAULT_NAMESPACE = 'default';
