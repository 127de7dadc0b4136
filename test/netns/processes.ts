/**
 * The processes of the namespace test, each started inside a namespace of a {@link Topology}: the
 * Temporal dev server and versitygw on the services host, training workers (the gpu queue) on
 * worker hosts, and the control process (client and cpu queue) on the client host. Their JSON log
 * lines are kept with the time they were written, so stalls are measured from the workers' own
 * clocks (all on this machine).
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { Topology } from './topology';

const ROOT = path.resolve(__dirname, '..', '..');

export interface LogEntry {
  msg: string;
  /** Epoch ms the line was written (pino `time`), else when it arrived. */
  time: number;
  [key: string]: unknown;
}

export class HostProcess {
  readonly logs: LogEntry[] = [];
  private output = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<void>;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    const take = (stream: NodeJS.ReadableStream | null, keepLines: boolean) => {
      if (!stream) return;
      readline.createInterface({ input: stream }).on('line', (line) => {
        if (keepLines) this.output = (this.output + line + '\n').slice(-200_000);
        if (line.startsWith('{')) {
          try {
            const entry = JSON.parse(line) as Partial<LogEntry>;
            if (typeof entry.msg === 'string') {
              this.logs.push({ ...entry, msg: entry.msg, time: entry.time ?? Date.now() });
            }
          } catch {
            // not a log line
          }
        }
        for (const w of this.waiters.splice(0)) w();
      });
    };
    // stdout too: an unread pipe fills up and blocks the writer (the dev server logs there).
    take(child.stderr, true);
    take(child.stdout, false);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last part of stderr, for failure messages. */
  tail(chars = 6000): string {
    return `--- ${this.label} ---\n${this.output.slice(-chars)}`;
  }

  entries(msg: string, since = 0): LogEntry[] {
    return this.logs.filter((l) => l.msg === msg && l.time >= since);
  }

  /** Waits until a log entry matches, rejecting after `timeoutMs` or when the process exits. */
  async waitForLog(match: (entry: LogEntry) => boolean, timeoutMs: number, what: string): Promise<LogEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(match);
      if (found) return found;
      if (!this.running) throw new Error(`${this.label} exited while waiting for ${what}\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`${this.label}: no ${what} within ${timeoutMs / 1000} s\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    const forced = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(forced);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGKILL');
    await this.exited;
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      // Detached: the pid is its group's id, so helpers it started go too.
      process.kill(-this.child.pid!, signal);
    } catch {
      // already gone
    }
  }
}

/** Resolves once `child` prints a line containing `marker` on stdout. */
function waitForStdout(proc: HostProcess, marker: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`${proc.label} did not print ${marker} within ${timeoutMs / 1000} s\n${proc.tail()}`),
        ),
      timeoutMs,
    );
    const lines = readline.createInterface({ input: proc.child.stdout! });
    lines.on('line', (line) => {
      if (line.includes(marker)) {
        clearTimeout(timer);
        lines.close();
        resolve();
      }
    });
    proc.child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${proc.label} exited (${code ?? signal}) before it was ready\n${proc.tail()}`));
    });
  });
}

export interface TemporalOnHost {
  proc: HostProcess;
  address: string;
}

export function startTemporal(
  topo: Topology,
  host: string,
  binary: string,
  dbFile: string,
  port = 7233,
): TemporalOnHost {
  const ip = topo.hosts[host]!.ip;
  const child = topo.spawnIn(
    host,
    binary,
    [
      'server',
      'start-dev',
      '--db-filename',
      dbFile,
      // Not the host's address: temporal 1.5.1 binds its internal services (history, matching)
      // on --ip but dials them on 127.0.0.1, so any --ip but loopback or 0.0.0.0 breaks the
      // server. The namespace has only lo and eth0, so 0.0.0.0 exposes nothing else.
      '--ip',
      '0.0.0.0',
      '--port',
      String(port),
      '--namespace',
      'default',
      '--log-level',
      'warn',
      '--headless',
    ],
    process.env,
  );
  return { proc: new HostProcess('temporal', child), address: `${ip}:${port}` };
}

export interface S3OnHost {
  proc: HostProcess;
  endpoint: string;
}

/** versitygw on `host`; waits until it answers HTTP (checked from inside the namespace). */
export async function startVersitygw(
  topo: Topology,
  host: string,
  binary: string,
  dataDir: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  port = 7070,
): Promise<S3OnHost> {
  const ip = topo.hosts[host]!.ip;
  const endpoint = `http://${ip}:${port}`;
  const child = topo.spawnIn(
    host,
    binary,
    ['--port', `${ip}:${port}`, '--region', 'us-east-1', '--quiet', 'posix', dataDir],
    {
      ...process.env,
      // Through the environment: keeps the secret off the process list.
      ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
      ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    },
  );
  const proc = new HostProcess('versitygw', child);
  // The test process is on another network, so the probe runs on the services host itself.
  const probe = topo.spawnIn(
    host,
    process.execPath,
    [
      '-e',
      `const u=${JSON.stringify(endpoint)};const d=Date.now()+30000;` +
        `(async()=>{for(;;){try{await fetch(u,{signal:AbortSignal.timeout(1000)});process.exit(0)}` +
        `catch{if(Date.now()>d)process.exit(1);await new Promise(r=>setTimeout(r,100))}}})()`,
    ],
    process.env,
  );
  const code = await new Promise<number | null>((resolve) => probe.once('exit', resolve));
  if (code !== 0 || !proc.running) {
    await proc.kill();
    throw new Error(`versitygw did not answer at ${endpoint}\n${proc.tail()}`);
  }
  return { proc, endpoint };
}

/** A gpu-queue training worker (`test/harness/training-worker.ts`) on `host`, once polling. */
export async function startTrainingWorker(
  topo: Topology,
  host: string,
  env: { TEMPORAL_ADDRESS: string; DRO_TEST_STORE: string },
): Promise<HostProcess> {
  const child = topo.spawnIn(
    host,
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'test', 'harness', 'training-worker.ts')],
    {
      ...process.env,
      ...env,
      DRO_TF_BACKEND: 'wasm',
      DRO_TRAINING_HEARTBEAT_SECONDS: '1',
      // Progress, checkpoints and chunk starts are what the stalls are measured from.
      DRO_LOG_LEVEL: 'info',
      NODE_NO_WARNINGS: '1',
    },
  );
  child.stdin?.end();
  const proc = new HostProcess(`worker@${host}`, child);
  await waitForStdout(proc, 'ready', 180_000);
  return proc;
}

/** The control process (client and cpu-queue worker) on `host`, with its line protocol. */
export class Control {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;

  private constructor(readonly proc: HostProcess) {
    let onReady: () => void = () => {};
    this.ready = new Promise((resolve) => (onReady = resolve));
    readline.createInterface({ input: proc.child.stdout! }).on('line', (line) => {
      let msg: { id?: number; ok?: boolean; value?: unknown; error?: string; ready?: boolean };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.ready) onReady();
      const waiter = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!waiter) return;
      this.pending.delete(msg.id!);
      if (msg.ok) waiter.resolve(msg.value);
      else waiter.reject(new Error(msg.error));
    });
    proc.child.once('exit', (code, signal) => {
      const err = new Error(`control exited (${code ?? signal})\n${proc.tail()}`);
      for (const w of this.pending.values()) w.reject(err);
      this.pending.clear();
    });
  }

  static async start(
    topo: Topology,
    host: string,
    env: { TEMPORAL_ADDRESS: string; DRO_TEST_STORE: string },
  ): Promise<Control> {
    const child = topo.spawnIn(
      host,
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'control.ts')],
      { ...process.env, ...env, DRO_TF_BACKEND: 'wasm', NODE_NO_WARNINGS: '1' },
    );
    const control = new Control(new HostProcess('control', child));
    const exited = control.proc.exited.then(() => {
      throw new Error(`control exited before it was ready\n${control.proc.tail()}`);
    });
    exited.catch(() => undefined);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`control not ready in 180 s\n${control.proc.tail()}`)),
        180_000,
      ).unref(),
    );
    await Promise.race([control.ready, exited, timeout]);
    return control;
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (!this.proc.running) return reject(new Error(`control is not running\n${this.proc.tail()}`));
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** Closes stdin so the worker shuts down gracefully; kills it if that takes too long. */
  async stop(): Promise<void> {
    this.proc.child.stdin?.end();
    const forced = setTimeout(() => void this.proc.kill(), 10_000);
    await this.proc.exited;
    clearTimeout(forced);
  }
}
