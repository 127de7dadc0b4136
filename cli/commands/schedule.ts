/** `dro schedule create|list|pause|unpause|trigger|delete`: runs and evaluations on a schedule. */
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { Command } from 'commander';
import { WORKFLOW_TASK_TIMEOUT } from '../../contracts/task-queues';
import { WORKFLOW_TASK_QUEUE } from '../../workers/create-worker';
import type { EvalModelInput, ScheduledEvaluationInput } from '../../contracts/evaluation';
import { scheduledEvaluationWorkflow } from '../../workflows/evaluation-schedule';
import { pipelineWorkflow } from '../../workflows/pipeline';
import { type PipelineInput } from '../../contracts/pipeline';
import { checkRunIdArg } from '../run-ids';
import { configHash, provenance, searchAttributes } from '../provenance';
import { importModelArg } from '../model-args';

import { commonOptions, emit, RunCommandError, withClient, type CommonOptions } from '../command-kit';
import {
  checkConfigHash,
  checkCron,
  parseEvery,
  parseScheduleModels,
  resolveConfigHash,
  newestCompletedRun,
} from './runs';

export function registerScheduleCommands(program: Command): void {
  const common = commonOptions;
  const schedule = program.command('schedule').description('runs on a schedule (Temporal Schedules)');
  common(
    schedule
      .command('create <name>')
      .description(
        'run a config every interval or on a cron spec (cached stages return at once, so a re-run redoes only ' +
          'what changed); with --model or --latest-of, evaluate models instead',
      ),
  )
    .option('--every <interval>', 'e.g. 1d, 6h, 30m')
    .option('--cron <spec>', 'a 5-field cron spec, e.g. "0 3 * * *"')
    .option('--model <name=uri...>', 'evaluate this model bundle at every trigger (repeat for more)')
    .option(
      '--latest-of <configHash>',
      'evaluate the models of the newest completed run of this config hash (or its first digits, as `dro runs list` prints them), looked up at every trigger',
    )
    .action(
      async (
        name: string,
        options: CommonOptions & { every?: string; cron?: string; model?: string[]; latestOf?: string },
      ) => {
        checkRunIdArg(name);
        if ((options.every === undefined) === (options.cron === undefined))
          throw new RunCommandError('schedule create: give exactly one of --every and --cron');
        if (options.model !== undefined && options.latestOf !== undefined)
          throw new RunCommandError('schedule create: give --model or --latest-of, not both');
        const latestArg = options.latestOf === undefined ? undefined : checkConfigHash(options.latestOf);
        const models = options.model === undefined ? undefined : parseScheduleModels(options.model);
        const spec =
          options.every !== undefined
            ? { intervals: [{ every: parseEvery(options.every) }] }
            : { cronExpressions: [checkCron(options.cron!)] };
        const when = options.every ? `every ${options.every}` : `cron "${options.cron}"`;
        await withClient(options, async ({ client, config, store }) => {
          const latestOf =
            latestArg === undefined
              ? undefined
              : await resolveConfigHash(client, '--latest-of', latestArg, config);
          if (models === undefined && latestOf === undefined) {
            const input: PipelineInput = { runId: '', config, provenance: provenance(config) };
            await client.schedule.create({
              scheduleId: name,
              spec,
              policies: { overlap: ScheduleOverlapPolicy.SKIP },
              action: {
                type: 'startWorkflow',
                workflowType: pipelineWorkflow,
                workflowId: name,
                taskQueue: WORKFLOW_TASK_QUEUE,
                workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
                args: [input],
                typedSearchAttributes: searchAttributes(name, config),
              },
            });
            emit(options.json, { schedule: name, spec, configHash: configHash(config) }, () => [
              `Schedule ${name} created: ${when}; runs are named ${name}-<time>.`,
            ]);
            return;
          }
          // Every model must exist before the schedule does: a typo found at 3 a.m. helps nobody.
          const refs: EvalModelInput[] = [];
          for (const m of models ?? []) refs.push(await importModelArg(store, config, m, 'dro schedule'));
          const newest = latestOf === undefined ? undefined : await newestCompletedRun(client, latestOf);
          const input: ScheduledEvaluationInput = {
            ...(refs.length > 0 && { models: refs }),
            ...(latestOf !== undefined && { latestOf }),
            settings: {
              seed: config.seed,
              ...config.eval,
              ...(refs.length > 0 && { baseline: refs[0]!.name }),
            },
            backend: config.workers.backend,
          };
          await client.schedule.create({
            scheduleId: name,
            spec,
            policies: { overlap: ScheduleOverlapPolicy.SKIP },
            action: {
              type: 'startWorkflow',
              workflowType: scheduledEvaluationWorkflow,
              workflowId: name,
              taskQueue: WORKFLOW_TASK_QUEUE,
              workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
              args: [input],
            },
          });
          const what =
            latestOf !== undefined
              ? `evaluates the newest completed run of config ${latestOf.slice(0, 12)}… at every trigger ` +
                `(now: ${newest ?? 'none yet'})`
              : `evaluates ${refs.map((r) => r.name).join(', ')}`;
          emit(
            options.json,
            {
              schedule: name,
              spec,
              ...(latestOf !== undefined && { latestOf, newestNow: newest ?? null }),
              ...(refs.length > 0 && { models: refs }),
            },
            () => [
              `Schedule ${name} created: ${when}; ${what}; evaluations are named ${name}-<time> ` +
                `and written under evaluations/.`,
            ],
          );
        });
      },
    );
  common(schedule.command('list').description('schedules on the cluster')).action(
    async (options: CommonOptions) => {
      await withClient(options, async ({ client }) => {
        const rows: { schedule: string; paused: boolean; next?: string }[] = [];
        for await (const s of client.schedule.list()) {
          rows.push({
            schedule: s.scheduleId,
            paused: s.state.paused,
            next: s.info.nextActionTimes[0]?.toISOString(),
          });
        }
        emit(options.json, rows, () =>
          rows.length === 0
            ? ['no schedules']
            : rows.map(
                (r) => `${r.schedule.padEnd(32)} ${r.paused ? 'paused ' : 'active '} next ${r.next ?? '-'}`,
              ),
        );
      });
    },
  );
  for (const [verb, what] of [
    ['pause', 'pause a schedule'],
    ['unpause', 'unpause a schedule'],
    ['trigger', 'start a run of a schedule now'],
    ['delete', 'delete a schedule (its runs stay)'],
  ] as const) {
    common(schedule.command(`${verb} <name>`).description(what)).action(
      async (name: string, options: CommonOptions) => {
        await withClient(options, async ({ client }) => {
          const handle = client.schedule.getHandle(name);
          try {
            await handle.describe();
          } catch (err) {
            if ((err as Error).name === 'ScheduleNotFoundError')
              throw new RunCommandError(`no schedule ${name} (see \`dro schedule list\`)`);
            throw err;
          }
          if (verb === 'pause') await handle.pause();
          else if (verb === 'unpause') await handle.unpause();
          else if (verb === 'trigger') await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
          else await handle.delete();
          emit(options.json, { schedule: name, done: verb }, () => [`Schedule ${name}: ${verb} done.`]);
        });
      },
    );
  }
}
