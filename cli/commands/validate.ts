import type { Command } from 'commander';
import { ConfigError, loadConfigFile } from '../../config/load';

/** `dro validate <file>`: prints every problem with its JSON path; exit 1 when there is any. */
export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('check a pipeline config file and print every problem with its JSON path')
    .argument('<file>', 'config file (JSON)')
    .option('--print', 'print the config with every default filled in')
    .action((file: string, options: { print?: boolean }) => {
      try {
        const config = loadConfigFile(file);
        if (options.print) console.log(JSON.stringify(config, null, 2));
        console.log(`${file}: valid`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(`${file}: ${err.problems.length} problem(s)`);
        for (const p of err.problems) console.error(`  ${p.path}: ${p.message}`);
        process.exitCode = 1;
      }
    });
}
