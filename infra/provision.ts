/**
 * Makes sure the server binaries the tests need are cached: each missing one is downloaded where a
 * verified prebuilt release is pinned, else built, missing ones in parallel (each `go install` is
 * mostly single-threaded link work). Runs before `npm test`.
 */
import { spawn } from 'node:child_process';
import { TEMPORAL_CLI, VERSITYGW } from './binaries';
import { ensureBinary, locateBinary, type GoBinarySpec } from './go-binary';

function provisionInChild(spec: GoBinarySpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--one', spec.name], {
      stdio: 'inherit',
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`building ${spec.name} failed (exit ${code})`)),
    );
  });
}

async function run(): Promise<void> {
  const specs = [TEMPORAL_CLI, VERSITYGW];
  const one = process.argv.indexOf('--one');
  if (one >= 0) {
    const spec = specs.find((s) => s.name === process.argv[one + 1]);
    if (!spec) throw new Error(`unknown binary ${process.argv[one + 1]}`);
    await ensureBinary(spec);
    return;
  }
  const missing = specs.filter((s) => !locateBinary(s));
  for (const s of specs) {
    const found = locateBinary(s);
    if (found) console.error(`${s.name}: ${found.path} (${found.source})`);
  }
  await Promise.all(missing.map(provisionInChild));
}

run().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
