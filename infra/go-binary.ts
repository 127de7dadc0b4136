import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { binDir } from './paths';

/** A server binary that can be built from the Go module proxy when not found. */
export interface GoBinarySpec {
  /** Name on PATH, e.g. `temporal`. */
  name: string;
  /** Pinned version, part of the cached file name. */
  version: string;
  /** `go install` target, e.g. `github.com/temporalio/cli/cmd/temporal@v1.5.1`. */
  module: string;
  /** Environment variable naming an explicit binary, e.g. `DRO_TEMPORAL_BIN`. */
  envVar: string;
  /** Typical cold build time shown to the user, e.g. `3-8 minutes`. */
  typicalBuild: string;
}

export type BinarySource = 'env' | 'path' | 'cache' | 'built';

export interface ResolvedBinary {
  path: string;
  source: BinarySource;
}

export class BinaryUnavailableError extends Error {
  override name = 'BinaryUnavailableError';
}

/** Where the pinned build of `spec` is cached. */
export function cachedBinaryPath(spec: GoBinarySpec): string {
  return path.join(binDir(), `${spec.name}-${spec.version}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** The Go toolchain's version string, or undefined when `go` is not installed. */
export function goVersion(): string | undefined {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Finds the binary without building it: env var, PATH, then the cache. */
export function locateBinary(spec: GoBinarySpec): ResolvedBinary | undefined {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new BinaryUnavailableError(`${spec.envVar}=${fromEnv} is not an executable file`);
    }
    return { path: fromEnv, source: 'env' };
  }
  const onPath = findOnPath(spec.name);
  if (onPath) return { path: onPath, source: 'path' };
  const cached = cachedBinaryPath(spec);
  if (isExecutable(cached)) return { path: cached, source: 'cache' };
  return undefined;
}

/**
 * Finds the binary, building and caching it with `go install` when absent. Progress goes to
 * `log` because a cold build takes minutes and silence looks like a hang.
 */
export function ensureBinary(
  spec: GoBinarySpec,
  log: (line: string) => void = console.error,
): ResolvedBinary {
  const found = locateBinary(spec);
  if (found) return found;
  const go = goVersion();
  if (!go) {
    throw new BinaryUnavailableError(
      `${spec.name} was not found (checked $${spec.envVar}, PATH and ${cachedBinaryPath(spec)}) and cannot ` +
        `be built because Go is not installed. Install Go 1.22 or newer (https://go.dev/dl/ or ` +
        `\`apt-get install golang\`), or set ${spec.envVar} to an existing ${spec.name} binary.`,
    );
  }
  const target = cachedBinaryPath(spec);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const buildDir = fs.mkdtempSync(path.join(path.dirname(target), `.${spec.name}-build-`));
  log(
    `Building ${spec.name} ${spec.version} with \`go install ${spec.module}\` (${go}); ` +
      `this usually takes ${spec.typicalBuild} the first time and is cached at ${target}.`,
  );
  const started = Date.now();
  const r = spawnSync('go', ['install', spec.module], {
    env: {
      ...process.env,
      GOBIN: buildDir,
      GOFLAGS: [process.env.GOFLAGS, '-buildvcs=false'].filter(Boolean).join(' '),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const built = path.join(buildDir, path.basename(spec.module.split('@')[0] ?? spec.name));
  if (r.status !== 0 || !isExecutable(built)) {
    fs.rmSync(buildDir, { recursive: true, force: true });
    throw new BinaryUnavailableError(`go install ${spec.module} failed (exit ${r.status ?? r.signal})`);
  }
  // Rename into place so a concurrent reader never sees a partial binary.
  fs.renameSync(built, target);
  fs.rmSync(buildDir, { recursive: true, force: true });
  log(`Built ${spec.name} in ${((Date.now() - started) / 1000).toFixed(0)} s -> ${target}`);
  return { path: target, source: 'built' };
}
