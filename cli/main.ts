/**
 * The `dro` command.
 *
 *   dro doctor              what will run here: Node, TF.js backend, Temporal, S3, Go
 *   dro validate <file>     check a config; every problem with its JSON path
 *   dro run [--config f]    run the pipeline on an embedded or existing Temporal cluster
 *   dro server              the embedded Temporal dev server in the foreground
 */
import { Command } from 'commander';
import { registerDoctorCommand } from './commands/doctor';
import { registerRunCommand, registerServerCommand } from './commands/run';
import { registerValidateCommand } from './commands/validate';

export function buildProgram(): Command {
  const program = new Command('dro')
    .description('Diffusion-DRO preference alignment as a durable Temporal pipeline')
    .showHelpAfterError();
  registerDoctorCommand(program);
  registerValidateCommand(program);
  registerRunCommand(program);
  registerServerCommand(program);
  return program;
}

/** Runs the command line; resolves to the process exit code. */
export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  }
}
