/**
 * The `dro` command.
 *
 *   dro doctor              what will run here: Node, TF.js backend, Temporal, S3, Go
 *   dro validate <file>     check a config and the files it names; every problem with its JSON path
 *   dro run [--config f]    run the pipeline on an embedded or existing Temporal cluster
 *   dro server              the embedded Temporal dev server in the foreground
 *   dro status|cancel|resume <runId>, dro runs list|show|verify, dro schedule ..., dro worker
 *   dro eval --model NAME=URI ...    dro study export|import <runId>
 *   dro replay              replay recent runs' histories against this code before deploying it
 */
import { Command } from 'commander';
import type * as DoctorCommand from './commands/doctor';
import type * as RunCommand from './commands/run';
import type * as RunsCommand from './commands/runs';
import type * as ScheduleCommand from './commands/schedule';
import type * as WorkerCommand from './commands/worker';
import type * as EvalCommand from './commands/eval';
import type * as StudyCommand from './commands/study';
import type * as ReplayCommand from './commands/replay';
import type * as ValidateCommand from './commands/validate';
import { escapeControl, formatErrorChain } from './terminal-text';

/* eslint-disable @typescript-eslint/no-require-imports -- commands load on demand: `dro validate`
   starts without the workers, TF.js and the AWS SDK that `dro run` and `dro doctor` need. */
const registerValidate = (program: Command) =>
  (require('./commands/validate') as typeof ValidateCommand).registerValidateCommand(program);
const registerDoctor = (program: Command) =>
  (require('./commands/doctor') as typeof DoctorCommand).registerDoctorCommand(program);

/** Commands that stand alone. */
const STANDALONE: Record<string, (program: Command) => void> = {
  validate: registerValidate,
  doctor: registerDoctor,
};

/** The whole program, or only `command` when it is one that stands alone (a faster start). */
export function buildProgram(command?: string): Command {
  const program = new Command('dro')
    .description('Diffusion-DRO preference alignment as a durable Temporal pipeline')
    .showHelpAfterError()
    // Commander echoes unknown commands and options back: escape what the user typed.
    .configureOutput({ outputError: (text, write) => write(escapeControl(text)) });
  const standalone = command === undefined ? undefined : STANDALONE[command];
  if (standalone) {
    standalone(program);
    return program;
  }
  registerDoctor(program);
  registerValidate(program);
  const run = require('./commands/run') as typeof RunCommand;
  run.registerRunCommand(program);
  run.registerServerCommand(program);
  (require('./commands/runs') as typeof RunsCommand).registerRunsCommands(program);
  (require('./commands/schedule') as typeof ScheduleCommand).registerScheduleCommands(program);
  (require('./commands/worker') as typeof WorkerCommand).registerWorkerCommand(program);
  (require('./commands/eval') as typeof EvalCommand).registerEvalCommands(program);
  (require('./commands/study') as typeof StudyCommand).registerStudyCommands(program);
  (require('./commands/replay') as typeof ReplayCommand).registerReplayCommand(program);
  return program;
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** Runs the command line; resolves to the process exit code. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram(argv[2]).parseAsync(argv);
  } catch (err) {
    // The cause chain carries the message that names the problem (an activity's own error sits
    // under Temporal's WorkflowFailedError and ActivityFailure); stacks stay out of the user's way.
    console.error(formatErrorChain(err));
    if (process.env.DRO_LOG_LEVEL === 'debug' && err instanceof Error && err.stack) console.error(err.stack);
    process.exitCode = 1;
  }
}
