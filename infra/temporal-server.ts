/**
 * Where the pipeline's Temporal cluster comes from, and the embedded dev server.
 *
 * Resolution order (see {@link resolveTemporal}):
 *   1. `TEMPORAL_ADDRESS` set: that cluster, which must answer within a few seconds, over TLS, mutual
 *      TLS and with an API key as TEMPORAL_TLS* / TEMPORAL_API_KEY say (`./temporal-connection.ts`).
 *   2. A dev server already started by `dro server` on the same state directory.
 *   3. An embedded `temporal server start-dev` on `<stateDir>/temporal.db`, with the binary from
 *      `DRO_TEMPORAL_BIN`, `PATH`, the cache `~/.cache/dro-pipeline/bin/temporal-1.5.1`, else the
 *      official release archive (checksum and version verified) or, failing that, built with
 *      `go install` (see `infra/go-binary.ts`).
 *
 * ```ts
 * const temporal = await resolveTemporal();
 * console.log(temporal.address, temporal.uiAddress);
 * await temporal.stop();
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { DEFAULT_NAMESPACE } from '../contracts/task-queues';
import { DRO_SEARCH_ATTRIBUTE_KEYS } from '../contracts/search-attributes';
import { TEMPORAL_CLI } from './binaries';
import { databaseOwner, lockDatabase, type DbLockOwner } from './db-lock';
import { ensureBinary, type ResolvedBinary } from './go-binary';
import { stateDir } from './paths';
import {
  assertNoSecurityWithoutAddress,
  explainRpcError,
  plainConnection,
  probeTls,
  resolveConnection,
  speaksTls,
  type TemporalConnection,
  TemporalConnectionError,
  type TemporalSecurityConfig,
} from './temporal-connection';

export { TEMPORAL_CLI };

/** Search attribute types as the dev server's `--search-attribute` flag spells them. */
export type SearchAttributeKind = 'Text' | 'Keyword' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

/** Custom search attributes the pipeline sets on its workflows (names are API: keep them stable). */
export const DRO_SEARCH_ATTRIBUTES: Readonly<Record<string, SearchAttributeKind>> = Object.fromEntries(
  DRO_SEARCH_ATTRIBUTE_KEYS.map((key) => [key.name, 'Keyword' as const]),
);

// Values of temporal.api.enums.v1.IndexedValueType.
const INDEXED_VALUE_TYPE: Record<SearchAttributeKind, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/** The configured cluster cannot be reached, or the dev server did not come up. */
export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
  constructor(
    message: string,
    /** The last low-level failure, e.g. `connection refused or timed out`. */
    readonly reason?: string,
  ) {
    super(message);
  }
}

export interface DevServerOptions {
  /** Path of the `temporal` binary. Default: resolved with {@link resolveTemporalBinary}. */
  binary?: string;
  /** SQLite file holding all workflow history. Default: `<stateDir>/temporal.db`. */
  dbFile?: string;
  /** Interface to bind. Default: `127.0.0.1`. */
  ip?: string;
  /** Front-end gRPC port. Default: 7233 when free, else a free port; 0 always picks a free port. */
  port?: number;
  /** Web UI port. Default: gRPC port + 1000 when free, else a free port; 0 picks a free port. */
  uiPort?: number;
  /** Run without the Web UI. Default: false. */
  headless?: boolean;
  /** Namespace created at launch. Default: `default`. */
  namespace?: string;
  /** How long a start may take before it counts as failed. Default: 60 s (cold SQLite file, busy disk). */
  startTimeoutMs?: number;
  /** Server stdout/stderr. Default: `<dbFile>.log`. */
  logFile?: string;
  /** Custom search attributes to register. Default: {@link DRO_SEARCH_ATTRIBUTES}. */
  searchAttributes?: Readonly<Record<string, SearchAttributeKind>>;
  /** Progress lines for people (binary build, start). Default: stderr. */
  log?: (line: string) => void;
}

export interface DevServer {
  /** gRPC address, `host:port`. */
  readonly address: string;
  /** Web UI URL, undefined when headless. */
  readonly uiAddress: string | undefined;
  readonly namespace: string;
  readonly dbFile: string;
  readonly logFile: string;
  readonly binary: string;
  /** Process id of the server's supervisor (leader of its process group), undefined while stopped. */
  readonly pid: number | undefined;
  /** Milliseconds the last start took until the namespace answered. */
  readonly startupMs: number;
  /** Settles when the current server process exits, whoever stopped it. */
  readonly exited: Promise<void>;
  /** Stops the server gracefully (SIGTERM), killing its process group if it lingers. Idempotent. */
  stop(): Promise<void>;
  /** Stops and starts again on the same ports and database file. */
  restart(): Promise<void>;
}

/** Finds, downloads or builds the `temporal` binary (env var, PATH, cache, release, `go install`). */
export function resolveTemporalBinary(log: (line: string) => void = defaultLog): Promise<ResolvedBinary> {
  return ensureBinary(TEMPORAL_CLI, { log });
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A TCP port nobody listens on right now. */
export async function freePort(ip = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function portIsFree(port: number, ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, ip, () => srv.close(() => resolve(true)));
  });
}

export async function choosePort(
  requested: number | undefined,
  preferred: number,
  ip: string,
  setting = 'temporal.embeddedPort',
): Promise<number> {
  if (requested !== undefined && requested !== 0) {
    // Another server on the port would answer the readiness check in this one's place.
    if (!(await portIsFree(requested, ip))) {
      throw new TemporalUnavailableError(
        `cannot start the Temporal dev server: ${ip}:${requested} is already in use (another \`dro run\` or ` +
          `\`dro server\`?); stop it, or set ${setting} to 0 to pick a free port`,
      );
    }
    return requested;
  }
  if (requested === undefined && (await portIsFree(preferred, ip))) return preferred;
  return freePort(ip);
}

async function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TemporalUnavailableError(`Temporal address "${address}" is not of the form host:port`);
  }
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

function asConnection(target: string | TemporalConnection): TemporalConnection {
  return typeof target === 'string' ? plainConnection(target) : target;
}

/**
 * Resolves when `target` (an address for plain gRPC, or a resolved connection) serves
 * `namespace`; throws after `timeoutMs` with the last failure. Each attempt is bounded so that a
 * silent address fails in time. A refusal that no retry can fix (TLS, certificates, API key)
 * throws {@link TemporalConnectionError} at once, naming the setting.
 */
export async function waitForTemporal(
  target: string | TemporalConnection,
  namespace: string,
  timeoutMs: number,
  /** Why the server can no longer answer (it exited), checked between attempts. */
  deathReason: () => string | undefined = () => undefined,
): Promise<void> {
  const conn = asConnection(target);
  const { address } = conn;
  const { host, port } = splitAddress(address);
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  let tcpAnswered = false;
  for (;;) {
    const dead = deathReason();
    if (dead) throw new TemporalUnavailableError(dead);
    const left = deadline - Date.now();
    if (left <= 0) break;
    // A plain TCP probe first: the gRPC client backs off for a second after a refused connect.
    if (await tcpAnswers(host, port, Math.min(left, 1000))) {
      tcpAnswered = true;
      // The SDK retries a refused handshake until its deadline and then says only that; this says why.
      const probe = conn.tls ? await probeTls(conn, Math.max(500, Math.min(left, 5000))) : undefined;
      if (probe && 'transient' in probe) {
        lastError = probe.transient;
      } else {
        // Lazy, so that a failed attempt's channel is still closed below and cannot keep the process alive.
        const connection = Connection.lazy({
          ...conn.clientOptions(),
          connectTimeout: Math.max(500, Math.min(left, 5000)),
        });
        try {
          await connection.ensureConnected();
          await connection.workflowService.describeNamespace({ namespace });
          return;
        } catch (err) {
          const refused = explainRpcError(conn, err);
          if (refused) throw refused;
          lastError = conn.redact(err instanceof Error ? err.message : String(err));
        } finally {
          await connection.close();
        }
      }
    } else {
      lastError = 'connection refused or timed out';
    }
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
  }
  if (tcpAnswered && !conn.tls && (await speaksTls(address))) {
    lastError = `${lastError}; the server there speaks TLS: set TEMPORAL_TLS=true (or $.temporal.tls)`;
  }
  throw new TemporalUnavailableError(
    `Temporal at ${address} did not answer within ${seconds(timeoutMs)} (${lastError})`,
    lastError,
  );
}

/** Adds the missing custom search attributes; an attribute registered with another type is an error. */
export async function registerSearchAttributes(
  target: string | TemporalConnection,
  namespace: string,
  attributes: Readonly<Record<string, SearchAttributeKind>> = DRO_SEARCH_ATTRIBUTES,
): Promise<void> {
  const conn = asConnection(target);
  const { address } = conn;
  const names = Object.keys(attributes).join(', ');
  const connection = Connection.lazy({ ...conn.clientOptions(), connectTimeout: 5000 });
  try {
    await connection.ensureConnected();
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const known: Record<string, number> = { ...existing.customAttributes, ...existing.systemAttributes };
    const missing: Record<string, number> = {};
    for (const [name, kind] of Object.entries(attributes)) {
      const want = INDEXED_VALUE_TYPE[kind];
      const have = known[name];
      if (have === undefined) missing[name] = want;
      else if (have !== want) {
        const haveKind = Object.entries(INDEXED_VALUE_TYPE).find(([, v]) => v === have)?.[0] ?? String(have);
        throw new TemporalUnavailableError(
          `search attribute ${name} is registered on ${address} as ${haveKind}, but the pipeline needs ${kind}`,
        );
      }
    }
    if (Object.keys(missing).length > 0) {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    }
  } catch (err) {
    if (err instanceof TemporalUnavailableError) throw err;
    throw new TemporalUnavailableError(
      `could not register the search attributes ${names} in namespace ${namespace} on ${address}: ` +
        `${conn.redact(err instanceof Error ? err.message : String(err))}. Register them once with ` +
        `\`temporal operator search-attribute create --name <name> --type Keyword\`.`,
    );
  } finally {
    await connection.close();
  }
}

// Every live server's process group, killed on exit so that no server outlives its owner.
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/*
 * The server runs under a small shell that holds a pipe from this process: when this process
 * dies, even by SIGKILL, the pipe closes, `read` returns and the shell stops the server. Closing
 * the pipe is also the graceful stop. The shell exits with the server, so a failed start shows.
 */
const SUPERVISOR = [
  'exec 3<&0',
  'bin="$1"; shift',
  '"$bin" "$@" </dev/null & srv=$!',
  '(read -r _ <&3; kill -TERM "$srv" 2>/dev/null) & watch=$!',
  'wait "$srv"; status=$?',
  'kill "$watch" 2>/dev/null',
  'exit "$status"',
].join('\n');

/** Whether `promise` settles within `ms`, without a timer that keeps the process alive afterwards. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function tail(file: string, lines = 20): string {
  try {
    const all = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    const last = all.slice(-lines);
    // A Go panic's reason sits above its stack trace, which alone fills the tail.
    const panic = all.find((l) => l.startsWith('panic:'));
    return [...(panic !== undefined && !last.includes(panic) ? [panic, '...'] : []), ...last].join('\n');
  } catch {
    return '';
  }
}

function databaseInUse(dbFile: string, owner: DbLockOwner): TemporalUnavailableError {
  const where = owner.address ? ` (its server at ${owner.address})` : '';
  return new TemporalUnavailableError(
    `cannot start the Temporal dev server on ${dbFile}: process ${owner.pid}${where} runs one on ` +
      `that database, and two servers on one database break each other's workflows. Wait for it to ` +
      `finish, run \`dro server\` in another terminal so that every \`dro run\` shares one server, or give ` +
      `this command another DRO_STATE_DIR`,
  );
}

/** Starts `temporal server start-dev` and resolves once its namespace answers. */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const log = options.log ?? defaultLog;
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const dbFile = path.resolve(options.dbFile ?? path.join(stateDir(), 'temporal.db'));
  const logFile = path.resolve(options.logFile ?? `${dbFile}.log`);
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const binary = options.binary ?? (await resolveTemporalBinary(log)).path;
  // Before the ports: a run on this database holds the default port too, and its lock says more.
  const owner = databaseOwner(dbFile);
  if (owner) throw databaseInUse(dbFile, owner);
  const port = await choosePort(options.port, 7233, ip);
  const uiPort = options.headless
    ? undefined
    : await choosePort(options.uiPort, port + 1000, ip, 'temporal.embeddedUiPort');
  const address = `${ip}:${port}`;
  const uiAddress = uiPort === undefined ? undefined : `http://${ip}:${uiPort}`;
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  fs.mkdirSync(path.dirname(logFile), { recursive: true });

  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    ip,
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]),
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitInfo: string | undefined;
  let startupMs = 0;
  let unlock: (() => void) | undefined;

  const launch = async (): Promise<void> => {
    const lock = lockDatabase(dbFile, address);
    if (lock.heldBy) throw databaseInUse(dbFile, lock.heldBy);
    unlock = lock.release;
    const out = fs.openSync(logFile, 'a');
    const started = Date.now();
    exitInfo = undefined;
    const proc = spawn('sh', ['-c', SUPERVISOR, 'temporal-supervisor', binary, ...args], {
      detached: true,
      stdio: ['pipe', out, out],
    });
    fs.closeSync(out);
    child = proc;
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = `exit ${code ?? signal}`;
        if (proc.pid !== undefined) liveGroups.delete(proc.pid);
        resolve();
      });
      proc.once('error', (err) => {
        exitInfo = err.message;
        resolve();
      });
    });
    if (proc.pid !== undefined) liveGroups.add(proc.pid);
    installExitHook();
    try {
      await waitForTemporal(address, namespace, startTimeoutMs, () =>
        exitInfo === undefined
          ? undefined
          : `Temporal dev server (${binary}) stopped during start-up (${exitInfo}); log ${logFile}:\n${tail(logFile)}`,
      );
      await registerSearchAttributes(address, namespace, options.searchAttributes ?? DRO_SEARCH_ATTRIBUTES);
    } catch (err) {
      const stillRunning = exitInfo === undefined;
      await stop();
      if (err instanceof TemporalUnavailableError && stillRunning) {
        throw new TemporalUnavailableError(`${err.message}; log ${logFile}:\n${tail(logFile)}`, err.reason);
      }
      throw err;
    }
    startupMs = Date.now() - started;
  };

  const stop = async (): Promise<void> => {
    try {
      await stopProcess();
    } finally {
      unlock?.();
      unlock = undefined;
    }
  };

  const stopProcess = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.pid === undefined) return;
    child = undefined;
    if (exitInfo === undefined) {
      proc.stdin?.end();
      const graceful = await settlesWithin(exited, 10_000);
      if (!graceful) {
        killGroup(proc.pid, 'SIGKILL');
        await exited;
      }
    }
    // The supervisor waits for the server, but a grandchild could linger: clear the group.
    killGroup(proc.pid, 'SIGKILL');
    liveGroups.delete(proc.pid);
  };

  await launch();
  return {
    address,
    uiAddress,
    namespace,
    dbFile,
    logFile,
    binary,
    get pid() {
      return child?.pid;
    },
    get startupMs() {
      return startupMs;
    },
    get exited() {
      return exited;
    },
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
  };
}

/** Where the pipeline's workflows run. */
export interface ResolvedTemporal {
  address: string;
  namespace: string;
  /** How to connect to `address` (TLS, API key); plain for the dev servers. */
  connection: TemporalConnection;
  /** Web UI URL when known. */
  uiAddress: string | undefined;
  /** `external`: TEMPORAL_ADDRESS; `shared`: a running `dro server`; `embedded`: started here. */
  source: 'external' | 'shared' | 'embedded';
  /** The embedded server when this call started one. */
  server: DevServer | undefined;
  /** Stops what this call started (nothing for external and shared clusters). */
  stop(): Promise<void>;
}

export interface ResolveTemporalOptions {
  /** Environment to read TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_UI_ADDRESS from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Cluster address from the run config (`temporal.address`); TEMPORAL_ADDRESS wins. Default: none. */
  address?: string;
  /** Namespace from the run config; TEMPORAL_NAMESPACE wins. Default: `default`. */
  namespace?: string;
  /** TLS and API key settings from the run config (`temporal.tls`, ...); TEMPORAL_TLS* and TEMPORAL_API_KEY win. */
  security?: TemporalSecurityConfig;
  /** How long an external cluster may take to answer. Default: 5 s. */
  checkTimeoutMs?: number;
  /** Options for the embedded dev server. */
  devServer?: DevServerOptions;
  log?: (line: string) => void;
  /**
   * The argument that needs a cluster which outlives this process (`--submit`): with it, no
   * embedded dev server is started; without TEMPORAL_ADDRESS, temporal.address or a running
   * `dro server`, TemporalUnavailableError names the argument and nothing is written.
   */
  requireCluster?: string;
}

/** Record of a running `dro server`, next to its database, so that `dro run` can share it. */
interface ServerRecord {
  pid: number;
  address: string;
  uiAddress: string | undefined;
  namespace: string;
}

export function serverRecordPath(dbFile: string): string {
  return `${dbFile}.server.json`;
}

/** Notes a foreground server for other commands on the same state directory. Returns a remover. */
export function publishServer(server: DevServer): () => void {
  const file = serverRecordPath(server.dbFile);
  const record: ServerRecord = {
    pid: process.pid,
    address: server.address,
    uiAddress: server.uiAddress,
    namespace: server.namespace,
  };
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(record));
  fs.renameSync(tmp, file);
  return () => fs.rmSync(file, { force: true });
}

function readServerRecord(dbFile: string): ServerRecord | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(serverRecordPath(dbFile), 'utf8')) as ServerRecord;
    process.kill(record.pid, 0);
    return record;
  } catch {
    return undefined;
  }
}

/**
 * The cluster a standalone worker should join: TEMPORAL_ADDRESS, else a running `dro server` on
 * this state directory. Never starts a server. Connection settings are checked here, before
 * anything connects.
 */
export function findRunningTemporal(
  env: NodeJS.ProcessEnv = process.env,
  security: TemporalSecurityConfig = {},
): {
  address: string;
  namespace: string;
  connection: TemporalConnection;
} {
  const namespace = env.TEMPORAL_NAMESPACE || DEFAULT_NAMESPACE;
  const fromEnv = env.TEMPORAL_ADDRESS?.trim();
  if (fromEnv)
    return { address: fromEnv, namespace, connection: resolveConnection(fromEnv, { env, config: security }) };
  assertNoSecurityWithoutAddress({ env, config: security });
  const dbFile = path.join(stateDir(), 'temporal.db');
  const record = readServerRecord(dbFile);
  if (record)
    return {
      address: record.address,
      namespace: env.TEMPORAL_NAMESPACE || record.namespace,
      connection: plainConnection(record.address),
    };
  throw new TemporalUnavailableError(
    `no Temporal cluster to join: TEMPORAL_ADDRESS is not set and no \`dro server\` is running for ${dbFile}. ` +
      `Start one with \`dro server\` or set TEMPORAL_ADDRESS.`,
  );
}

/** Picks the cluster as described at the top of this file. */
export async function resolveTemporal(options: ResolveTemporalOptions = {}): Promise<ResolvedTemporal> {
  const env = options.env ?? process.env;
  const namespace =
    env.TEMPORAL_NAMESPACE || options.namespace || options.devServer?.namespace || DEFAULT_NAMESPACE;
  const fromEnv = env.TEMPORAL_ADDRESS?.trim();
  const external = fromEnv || options.address?.trim();
  const sources = { env, config: options.security ?? {} };
  if (external) {
    const origin = fromEnv ? 'TEMPORAL_ADDRESS' : 'temporal.address';
    const timeoutMs = options.checkTimeoutMs ?? 5000;
    const connection = resolveConnection(external, sources);
    try {
      await waitForTemporal(connection, namespace, timeoutMs);
    } catch (err) {
      if (err instanceof TemporalConnectionError) {
        const where = err.message.includes(external) ? '' : `${origin}=${external}: `;
        throw new TemporalConnectionError(
          `${options.requireCluster ? `${options.requireCluster}: ` : ''}${where}${err.message}`,
          err.setting,
        );
      }
      const why = err instanceof TemporalUnavailableError && err.reason ? err.reason : String(err);
      throw new TemporalUnavailableError(
        `${options.requireCluster ? `${options.requireCluster}: ` : ''}${origin}=${external}: no Temporal server answered there within ${seconds(timeoutMs)} ` +
          `(${why}). Start that cluster, correct ${origin}` +
          (options.requireCluster
            ? '; nothing was started.'
            : ', or unset it to use the embedded dev server.'),
      );
    }
    await registerSearchAttributes(connection, namespace, options.devServer?.searchAttributes);
    return {
      address: external,
      namespace,
      connection,
      uiAddress: env.TEMPORAL_UI_ADDRESS || undefined,
      source: 'external',
      server: undefined,
      stop: async () => {},
    };
  }

  assertNoSecurityWithoutAddress(sources);
  const dbFile = path.resolve(options.devServer?.dbFile ?? path.join(stateDir(), 'temporal.db'));
  const record = readServerRecord(dbFile);
  if (record) {
    try {
      await waitForTemporal(record.address, record.namespace, options.checkTimeoutMs ?? 5000);
      return {
        ...record,
        connection: plainConnection(record.address),
        source: 'shared',
        server: undefined,
        stop: async () => {},
      };
    } catch {
      // A stale record: the server is gone; start our own below.
    }
  }
  if (options.requireCluster !== undefined)
    throw new TemporalUnavailableError(
      `${options.requireCluster}: no Temporal cluster to submit to: ${record ? `the \`dro server\` recorded in ${serverRecordPath(dbFile)} does not answer` : `no \`dro server\` runs on ${path.dirname(dbFile)}`} ` +
        'and neither TEMPORAL_ADDRESS nor temporal.address is set. Start `dro server` and `dro worker --queue gpu` / ' +
        '`--queue cpu`, or point TEMPORAL_ADDRESS at a cluster with workers; nothing was started.',
    );
  const server = await startDevServer({
    ...options.devServer,
    dbFile,
    namespace,
    log: options.devServer?.log ?? options.log,
  });
  return {
    address: server.address,
    namespace,
    connection: plainConnection(server.address),
    uiAddress: server.uiAddress,
    source: 'embedded',
    server,
    stop: () => server.stop(),
  };
}
