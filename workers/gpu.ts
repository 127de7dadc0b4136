/** Worker process for compute activities (task queue `dro-gpu`), one activity at a time by default. */
import { TASK_QUEUES } from '../contracts/task-queues';
import { logger } from '../infra/logger';
import { runStandaloneWorker } from './create-worker';

async function run(): Promise<void> {
  await runStandaloneWorker(TASK_QUEUES.gpu);
}

run().catch((err: unknown) => {
  logger().error({ err }, 'gpu worker failed');
  process.exit(1);
});
