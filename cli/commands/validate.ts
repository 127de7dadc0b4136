import type { Command } from 'commander';
import { ConfigError, loadConfigFile, type ConfigProblem } from '../../config/load';
import { preflight } from '../preflight';
import { escapeControl } from '../terminal-text';

/**
 * Every problem of one config file: the schema's (types, bounds, cross-field rules), then, when
 * those pass, the pre-flight checks of its files and of this machine.
 */
export async function validateConfigFile(
  file: string,
): Promise<{ problems: ConfigProblem[]; config?: unknown }> {
  let config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { problems: err.problems };
  }
  return { problems: await preflight(config), config };
}

/** `dro validate <file>`: prints every problem with its JSON path; exit 1 when there is any. */
export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description(
      'check a pipeline config file and the files it names; print every problem with its JSON path',
    )
    .argument('<file>', 'config file (JSON)')
    .option('--print', 'print the config with every default filled in')
    .action(async (file: string, options: { print?: boolean }) => {
      const name = escapeControl(file, false);
      const { problems, config } = await validateConfigFile(file);
      if (problems.length === 0) {
        if (options.print) console.log(JSON.stringify(config, null, 2));
        console.log(`${name}: valid`);
        return;
      }
      console.error(`${name}: ${problems.length} problem(s)`);
      for (const p of problems)
        console.error(`  ${escapeControl(p.path, false)}: ${escapeControl(p.message, false)}`);
      process.exitCode = 1;
    });
}
