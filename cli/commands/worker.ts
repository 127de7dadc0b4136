/** `dro worker`: one task queue's worker as its own process, optionally one per GPU. */
import type { Command } from 'commander';
import { TASK_QUEUES } from '../../contracts/task-queues';
import { logger as rootLogger } from '../../infra/logger';
import { runStandaloneWorker } from '../../workers/create-worker';
import { placeWorker } from '../worker-devices';

import { RunCommandError } from '../command-kit';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      "run one task queue's worker as its own process (joins TEMPORAL_ADDRESS, temporal.address or a running `dro server`)",
    )
    .requiredOption('--queue <queue>', 'gpu (compute activities) or cpu (I/O activities and workflows)')
    .option('--concurrency <n>', 'activities run at once (default: workers.gpuConcurrency / cpuConcurrency)')
    .option('-c, --config <file>', 'config file for the cluster and store')
    .option('--device <n>', 'pin the worker to GPU n as nvidia-smi lists it (sets CUDA_VISIBLE_DEVICES)')
    .option('--devices <which>', "'all' or a list such as 0,2: one worker process per GPU")
    .option(
      '--metrics <host:port>',
      'serve Prometheus metrics at /metrics there (default: workers.metricsAddress)',
    )
    .action(async (options: { queue: string; concurrency?: string; config?: string; metrics?: string }) => {
      if (options.queue !== 'gpu' && options.queue !== 'cpu')
        throw new RunCommandError(`--queue ${JSON.stringify(options.queue)}: use gpu or cpu`);
      let concurrency: number | undefined;
      if (options.concurrency !== undefined) {
        concurrency = Number(options.concurrency);
        if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
          throw new RunCommandError(`--concurrency ${options.concurrency}: use a whole number from 1 to 64`);
      }
      const { device, devices } = options as { device?: string; devices?: string };
      const { queue, config: configFile } = options;
      const children = await placeWorker({ queue, device, devices }, configFile ? { configFile } : {});
      if (children !== undefined) {
        process.exitCode = children;
        return;
      }
      await runStandaloneWorker(TASK_QUEUES[options.queue], {
        ...(options.config !== undefined && { configFile: options.config }),
        ...(concurrency !== undefined && { concurrency }),
        ...(options.metrics !== undefined && { metricsAddress: options.metrics }),
        onMetrics: (url) => console.log(`metrics at ${url}`),
        onStarted: (address) =>
          console.log(
            `worker for ${TASK_QUEUES[options.queue as 'gpu' | 'cpu']} started on ${address}; SIGTERM stops it after a checkpoint`,
          ),
      });
      rootLogger().info('worker exited');
    });
}
