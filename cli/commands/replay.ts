/**
 * `dro replay`: replays the histories of the cluster's recent runs against this checkout's workflow
 * code, the check to run before new workers are deployed. A workflow change that would make a
 * running (or resumable) run take another path than its history records fails here, by name,
 * instead of failing that run's next workflow task in production.
 */
import type { Command } from 'commander';
import { Worker } from '@temporalio/worker';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import { workflowBundle } from '../../workers/create-worker';
import { installRuntime } from '../../workers/runtime';
import { loadConfig } from './run';
import { withCluster } from '../cluster';

/** Every workflow type the pipeline runs: what a new worker version must be able to continue. */
export const REPLAYED_TYPES = [
  'pipelineWorkflow',
  'trainingWorkflow',
  'evaluationWorkflow',
  'scheduledEvaluationWorkflow',
  'smokeWorkflow',
] as const;

export class ReplayCommandError extends Error {
  override name = 'ReplayCommandError';
}

/** The visibility query of the histories to replay. */
export function replayQuery(since: string | undefined): string {
  const clauses = [`(${REPLAYED_TYPES.map((t) => `WorkflowType = '${t}'`).join(' OR ')})`];
  if (since !== undefined) {
    const t = Date.parse(since);
    if (Number.isNaN(t))
      throw new ReplayCommandError(`--since ${since}: not a date (e.g. 2026-11-30 or an ISO time)`);
    clauses.push(`StartTime >= '${new Date(t).toISOString()}'`);
  }
  return clauses.join(' AND ');
}

export interface ReplayOutcome {
  workflowId: string;
  runId: string;
  type: string;
  ok: boolean;
  error?: string;
}

export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      "replay recent runs' histories against this code's workflows (run before deploying new workers)",
    )
    .option('--since <date>', 'runs started at or after this date (default: every run listed)')
    .option('--limit <n>', 'histories replayed at most, newest first', '100')
    .option('-c, --config <file>', 'config for the cluster (default: the embedded demo config)')
    .option('--json', 'print JSON')
    .action(async (options: { since?: string; limit: string; config?: string; json?: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new ReplayCommandError(`--limit ${options.limit}: give a positive integer`);
      const query = replayQuery(options.since);
      const config = loadConfig(options.config);
      const outcomes = await withCluster(
        { config, workers: false, out: (line) => process.stderr.write(`${line}\n`) },
        async ({ client }) => {
          const found: { workflowId: string; runId: string; type: string }[] = [];
          for await (const w of client.workflow.list({ query })) {
            found.push({ workflowId: w.workflowId, runId: w.runId, type: w.type });
            if (found.length >= limit) break;
          }
          installRuntime();
          const bundle = await workflowBundle();
          async function* histories(): AsyncIterable<HistoryAndWorkflowId> {
            for (const f of found)
              yield {
                workflowId: f.workflowId,
                history: await client.workflow.getHandle(f.workflowId, f.runId).fetchHistory(),
              };
          }
          const results: ReplayOutcome[] = [];
          let i = 0;
          for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, histories())) {
            const f = found[i++]!;
            results.push({
              workflowId: r.workflowId,
              runId: f.runId,
              type: f.type,
              ok: r.error === undefined,
              ...(r.error && { error: r.error.message }),
            });
          }
          return { value: results };
        },
      );
      const results = outcomes.value;
      const failed = results.filter((r) => !r.ok);
      if (options.json) console.log(JSON.stringify(results, null, 2));
      else {
        for (const r of results)
          console.log(
            `${r.ok ? 'ok    ' : 'FAILED'} ${r.type.padEnd(28)} ${r.workflowId}${r.error ? `: ${r.error}` : ''}`,
          );
        console.log(
          `${results.length} histories replayed against this code, ${failed.length} failed` +
            (failed.length > 0 ? ': do not deploy these workers while such runs may continue' : ''),
        );
      }
      if (failed.length > 0) process.exitCode = 1;
    });
}
