/**
 * What the cluster commands share: their error, the `-c`/`--json` options, JSON-or-lines output,
 * and a connection to the cluster without workers.
 */
import { type Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { PipelineConfig } from '../config/schemas';
import { type ArtifactStore } from '../storage';
import { loadConfig } from './commands/run';
import { withCluster } from './cluster';

/** Thrown for a command that cannot do what was asked; main prints the message and exits 1. */
export class RunCommandError extends Error {
  override name = 'RunCommandError';
}

export interface CommonOptions {
  config?: string;
  json?: boolean;
}

export function emit(json: boolean | undefined, value: unknown, lines: () => string[]): void {
  if (json) console.log(JSON.stringify(value, null, 2));
  else for (const line of lines()) console.log(line);
}

/** Connects to the cluster without workers and runs `fn` with a client and the store. */
export async function withClient<T>(
  options: CommonOptions,
  fn: (ctx: {
    client: Client;
    store: ArtifactStore;
    config: PipelineConfig;
    uiAddress?: string;
    namespace: string;
  }) => Promise<T>,
): Promise<T> {
  const config = loadConfig(options.config);
  // Status lines of the cluster go to stderr so that --json output stays parseable.
  const result = await withCluster(
    { config, workers: false, out: (line) => process.stderr.write(`${line}\n`) },
    async ({ client, store, namespace }) => ({ value: await fn({ client, store, config, namespace }) }),
  );
  return result.value;
}

/** The options every cluster command takes: its config and `--json`. */
export function commonOptions(cmd: Command): Command {
  return cmd
    .option(
      '-c, --config <file>',
      'config file for the cluster and store (default: the embedded demo config)',
    )
    .option('--json', 'print JSON');
}
