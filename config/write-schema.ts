/**
 * Regenerates config/schema.json from the zod schema so editors can autocomplete configs.
 * `--check` exits non-zero when the checked-in file is stale (CI runs it that way).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipelineJsonSchema } from './json-schema';

function run(): void {
  const target = path.join(__dirname, 'schema.json');
  const text = JSON.stringify(pipelineJsonSchema(), null, 2) + '\n';
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (current !== text) {
      console.error(`${target} is stale: run \`npm run schema\` and commit the result`);
      process.exit(1);
    }
    console.log(`${target} is up to date`);
    return;
  }
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, target);
  console.log(`wrote ${target}`);
}

run();
