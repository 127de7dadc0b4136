/**
 * Task-queue backlog as gauges: the SDK's metrics show what a worker does, not what waits for it.
 * On each scrape (at most every few seconds) the server is asked for the approximate backlog of the
 * queues this process serves (DescribeTaskQueue with stats; servers before 1.25 report none).
 */
import type { NativeConnection } from '@temporalio/worker';
import { registry } from '../infra/pipeline-metrics';

/** temporal.api.enums.v1.TaskQueueType (@temporalio/proto is a dev dependency). */
const TASK_QUEUE_TYPE = { workflow: 1, activity: 2 } as const;

export type BacklogKind = keyof typeof TASK_QUEUE_TYPE;

/** A scrape within this long of the previous one reuses its answers. */
const REFRESH_MS = 5000;
const DESCRIBE_TIMEOUT_MS = 2000;

const backlog = registry.gauge<'task_queue' | 'type'>({
  name: 'dro_task_queue_backlog',
  help: 'Approximate tasks waiting in a task queue served by this process, by queue and task type (workflow, activity).',
  labelNames: ['task_queue', 'type'],
});

const backlogAge = registry.gauge<'task_queue' | 'type'>({
  name: 'dro_task_queue_backlog_age_seconds',
  help: 'Age of the oldest task waiting in a task queue served by this process, by queue and task type.',
  labelNames: ['task_queue', 'type'],
});

export interface WatchedQueue {
  taskQueue: string;
  kinds: readonly BacklogKind[];
}

function seconds(d: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  if (!d) return 0;
  return Number(d.seconds ?? 0) + (d.nanos ?? 0) / 1e9;
}

/**
 * Keeps the backlog gauges of `queues` current on scrapes while `connection` is open; returns the
 * function that stops it. A failed call leaves the last values (the scrape itself never fails).
 */
export function watchQueueBacklog(
  connection: NativeConnection,
  namespace: string,
  queues: readonly WatchedQueue[],
): () => void {
  let last = 0;
  return registry.onCollect(async () => {
    if (Date.now() - last < REFRESH_MS) return;
    last = Date.now();
    await Promise.allSettled(
      queues.flatMap(({ taskQueue, kinds }) =>
        kinds.map(async (type) => {
          const described = await connection.withDeadline(Date.now() + DESCRIBE_TIMEOUT_MS, () =>
            connection.workflowService.describeTaskQueue({
              namespace,
              taskQueue: { name: taskQueue },
              taskQueueType: TASK_QUEUE_TYPE[type],
              reportStats: true,
            }),
          );
          const stats = described.stats;
          if (!stats) return;
          const labels = { task_queue: taskQueue, type };
          backlog.set(labels, Number(stats.approximateBacklogCount ?? 0));
          backlogAge.set(labels, seconds(stats.approximateBacklogAge));
        }),
      ),
    );
  });
}
