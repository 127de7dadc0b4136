/**
 * The server binaries the pipeline and its tests run (Temporal's dev server, an S3 gateway): found
 * on the machine, else downloaded as the project's official prebuilt release where one is pinned
 * (checksum and `--version` verified), else built from source with `go install`.
 *
 * The download is tried first because it takes seconds where a build takes minutes; it waits only
 * a few seconds for the server to answer, so without a network it fails fast and the build follows.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { binDir } from './paths';

/** A prebuilt release of a binary: a `.tar.gz` per platform, each pinned by its SHA-256. */
export interface BinaryDownload {
  /** The archive for a Node `process.platform` / `process.arch` pair; undefined when none is published. */
  archiveUrl(platform: string, arch: string): string | undefined;
  /** SHA-256 of each archive by `<platform>-<arch>`; an archive without a pinned digest is never used. */
  sha256: Readonly<Record<string, string>>;
  /** Path of the binary inside the archive. */
  member: string;
}

/** A server binary that can be downloaded or built from the Go module proxy when not found. */
export interface GoBinarySpec {
  /** Name on PATH, e.g. `temporal`. */
  name: string;
  /** Pinned version, part of the cached file name; a downloaded binary's `--version` must name it. */
  version: string;
  /** `go install` target, e.g. `github.com/temporalio/cli/cmd/temporal@v1.5.1`. */
  module: string;
  /** Environment variable naming an explicit binary, e.g. `DRO_TEMPORAL_BIN`. */
  envVar: string;
  /** Typical cold build time shown to the user, e.g. `3-8 minutes`. */
  typicalBuild: string;
  /** The official prebuilt release, tried before a build. */
  download?: BinaryDownload;
}

export type BinarySource = 'env' | 'path' | 'cache' | 'downloaded' | 'built';

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

/** Finds the binary without downloading or building it: env var, PATH, then the cache. */
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

export interface ProvideOptions {
  /** Progress lines for people: a download or build takes long enough that silence looks like a hang. */
  log?: (line: string) => void;
  /** The HTTP client of the download. Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** How long the download waits for the server's answer. Default: 4000 ms. */
  connectTimeoutMs?: number;
  /** Longest the whole download may take. Default: 300 s. */
  downloadTimeoutMs?: number;
  /** Default: `process.platform` / `process.arch`. */
  platform?: string;
  arch?: string;
  /** Builds from source. Default: {@link buildWithGo}. */
  build?: (spec: GoBinarySpec, log: (line: string) => void) => Promise<ResolvedBinary>;
  /** Seconds between "still building" lines. Default: 30. */
  progressSeconds?: number;
}

/**
 * Finds the binary; when absent, downloads the pinned prebuilt release, and when that is not
 * possible (no network, no release for this platform, a checksum or version that does not match),
 * builds it with `go install`. Either way it is cached for every later call.
 */
export async function ensureBinary(
  spec: GoBinarySpec,
  options: ProvideOptions = {},
): Promise<ResolvedBinary> {
  const found = locateBinary(spec);
  if (found) return found;
  const log = options.log ?? ((line: string) => console.error(line));
  const downloaded = await downloadBinary(spec, { ...options, log });
  if (downloaded) return downloaded;
  return (options.build ?? ((s, l) => buildWithGo(s, l, options.progressSeconds)))(spec, log);
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const MB = 1e6;

/** Reads `url` whole, giving up when the server has not answered within `connectTimeoutMs`. */
async function fetchArchive(
  url: string,
  options: ProvideOptions & { log: (line: string) => void },
): Promise<Uint8Array> {
  const connectMs = options.connectTimeoutMs ?? 4000;
  const totalMs = options.downloadTimeoutMs ?? 300_000;
  const controller = new AbortController();
  const connect = setTimeout(
    () => controller.abort(new Error(`no answer within ${(connectMs / 1000).toFixed(1)} s`)),
    connectMs,
  );
  const overall = setTimeout(
    () => controller.abort(new Error(`not complete within ${totalMs / 1000} s`)),
    totalMs,
  );
  try {
    const response = await (options.fetch ?? fetch)(url, { signal: controller.signal, redirect: 'follow' });
    clearTimeout(connect);
    if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
    const total = Number(response.headers.get('content-length')) || undefined;
    const chunks: Uint8Array[] = [];
    let received = 0;
    let lastReport = Date.now();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      received += chunk.byteLength;
      if (Date.now() - lastReport >= 5000) {
        lastReport = Date.now();
        options.log(
          `  ${(received / MB).toFixed(1)}${total ? ` of ${(total / MB).toFixed(1)}` : ''} MB downloaded`,
        );
      }
    }
    return Buffer.concat(chunks);
  } finally {
    clearTimeout(connect);
    clearTimeout(overall);
  }
}

function reasonOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return [e.message ?? String(err), cause].filter(Boolean).join(': ');
}

/**
 * The pinned prebuilt release of `spec` for this platform, verified (archive SHA-256, then the
 * binary's `--version`) and cached; undefined, with a line saying why, when it cannot be had.
 */
export async function downloadBinary(
  spec: GoBinarySpec,
  options: ProvideOptions & { log: (line: string) => void },
): Promise<ResolvedBinary | undefined> {
  const release = spec.download;
  if (release === undefined) return undefined;
  const { log } = options;
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const url = release.archiveUrl(platform, arch);
  const pinned = release.sha256[`${platform}-${arch}`];
  if (url === undefined || pinned === undefined) {
    log(`No pinned prebuilt ${spec.name} ${spec.version} for ${platform}-${arch}; building it from source.`);
    return undefined;
  }
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  log(`Downloading ${spec.name} ${spec.version} from ${url}`);
  let archive: Uint8Array;
  try {
    archive = await fetchArchive(url, options);
  } catch (err) {
    log(
      `Download failed after ${seconds()} s (${reasonOf(err)}); building ${spec.name} from source instead.`,
    );
    return undefined;
  }
  const actual = sha256Hex(archive);
  if (actual !== pinned) {
    log(
      `Rejected the downloaded ${spec.name} archive: its sha256 is ${actual}, the pinned one ${pinned}; ` +
        `building from source instead.`,
    );
    return undefined;
  }
  const target = cachedBinaryPath(spec);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const work = fs.mkdtempSync(path.join(path.dirname(target), `.${spec.name}-download-`));
  try {
    const file = path.join(work, 'archive.tar.gz');
    fs.writeFileSync(file, archive);
    const untar = spawnSync('tar', ['-xzf', file, '-C', work, release.member], { encoding: 'utf8' });
    const binary = path.join(work, release.member);
    if (untar.status !== 0 || !fs.existsSync(binary)) {
      log(
        `The ${spec.name} archive did not unpack (${untar.stderr.trim() || `tar exit ${untar.status}`}); building from source instead.`,
      );
      return undefined;
    }
    fs.chmodSync(binary, 0o755);
    const version = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 15_000 });
    const said = `${version.stdout ?? ''}${version.stderr ?? ''}`.trim();
    if (version.status !== 0 || !new RegExp(`\\b${spec.version.replace(/\./g, '\\.')}\\b`).test(said)) {
      log(
        `Rejected the downloaded ${spec.name}: \`--version\` says ${JSON.stringify(said.slice(0, 200))}, ` +
          `not ${spec.version}; building from source instead.`,
      );
      return undefined;
    }
    // Renamed into place so a concurrent reader never sees a partial binary.
    fs.renameSync(binary, target);
    log(
      `Downloaded ${spec.name} ${spec.version} (${(archive.byteLength / MB).toFixed(1)} MB, sha256 and version ` +
        `verified) in ${seconds()} s -> ${target}`,
    );
    return { path: target, source: 'downloaded' };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * Builds and caches the binary with `go install`, printing how long it has been running every
 * `progressSeconds`, because `go install` itself prints nothing until it is done.
 */
export async function buildWithGo(
  spec: GoBinarySpec,
  log: (line: string) => void = (line) => console.error(line),
  progressSeconds = 30,
): Promise<ResolvedBinary> {
  const go = goVersion();
  if (!go) {
    throw new BinaryUnavailableError(
      `${spec.name} was not found (checked $${spec.envVar}, PATH and ${cachedBinaryPath(spec)})` +
        `${spec.download ? ', could not be downloaded,' : ''} and cannot be built because Go is not installed. ` +
        `Install Go 1.22 or newer (https://go.dev/dl/ or \`apt-get install golang\`), or set ${spec.envVar} ` +
        `to an existing ${spec.name} binary.`,
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
  const child = spawn('go', ['install', spec.module], {
    env: {
      ...process.env,
      GOBIN: buildDir,
      GOFLAGS: [process.env.GOFLAGS, '-buildvcs=false'].filter(Boolean).join(' '),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const ticker = setInterval(
    () =>
      log(
        `  still building ${spec.name}: ${formatElapsed(Date.now() - started)} so far (usually ${spec.typicalBuild})`,
      ),
    progressSeconds * 1000,
  );
  const exit = await new Promise<string | number>((resolve) => {
    child.once('error', (err) => resolve(err.message));
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  }).finally(() => clearInterval(ticker));
  const built = path.join(buildDir, path.basename(spec.module.split('@')[0] ?? spec.name));
  if (exit !== 0 || !isExecutable(built)) {
    fs.rmSync(buildDir, { recursive: true, force: true });
    throw new BinaryUnavailableError(`go install ${spec.module} failed (exit ${exit})`);
  }
  // Rename into place so a concurrent reader never sees a partial binary.
  fs.renameSync(built, target);
  fs.rmSync(buildDir, { recursive: true, force: true });
  log(`Built ${spec.name} in ${formatElapsed(Date.now() - started)} -> ${target}`);
  return { path: target, source: 'built' };
}
