/** Worker process for workflows and I/O activities (task queue `dro-cpu`). */
import { TASK_QUEUES } from '../contracts/task-queues';
import { logger } from '../infra/logger';
import { runStandaloneWorker } from './create-worker';

async function run(): Promise<void> {
  await runStandaloneWorker(TASK_QUEUES.cpu);
}

run().catch((err: unknown) => {
  logger().error({ err }, 'cpu worker failed');
  process.exit(1);
});
