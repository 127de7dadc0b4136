/**
 * A private multi-host network built from Linux network namespaces: a "hub" namespace holding a
 * bridge, and one namespace per host, each joined to the bridge by a veth pair (`eth0` inside the
 * host, `h-<host>` in the hub). Addresses come from 10.231.0.0/24; since every run has its own hub
 * and hosts, parallel runs may use the same addresses without seeing each other. The host's own
 * network namespace is never touched.
 *
 * Links are cut on the hub side (`h-<host>` down): the host keeps its address and routes, and its
 * packets vanish as they would behind a failed switch port, instead of failing at once with
 * "network unreachable". Cutting inside the host would also take the host's own address off its
 * routing table, which breaks the Temporal dev server's connections to itself.
 *
 * Needs root. Namespace names carry the creating process's pid, so a later run removes what a
 * killed run left behind (see {@link sweepStaleNamespaces}).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const PREFIX = 'dronetns-';
const SUBNET_PREFIX = '10.231.0.';

export interface NetnsHost {
  /** Short name used in logs and as the hub-side link `h-<name>`. */
  name: string;
  /** Network namespace name (unique per run). */
  netns: string;
  /** Address on the private network. */
  ip: string;
}

export interface Topology {
  hosts: Record<string, NetnsHost>;
  /** Blackholes the host's link (hub side) until {@link Topology.restore}. */
  cut(host: string): void;
  restore(host: string): void;
  /** Spawns `command` inside the host's namespace, in its own process group. */
  spawnIn(host: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess;
  /** Kills every process left in the namespaces and deletes them. Idempotent, synchronous. */
  teardown(): void;
}

function ip(args: string[], timeoutMs = 10_000): string {
  return execFileSync('ip', args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Why this machine cannot run the namespace tests, or undefined when it can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root or with sudo)';
  const probe = `${PREFIX}probe-${process.pid}`;
  try {
    ip(['netns', 'add', probe]);
    ip(['-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
  } catch (err) {
    return `\`ip netns add\` / bridges are not available: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  } finally {
    try {
      ip(['netns', 'del', probe]);
    } catch {
      // never created
    }
  }
  return undefined;
}

function listNamespaces(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(PREFIX));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killAndDelete(netns: string): void {
  // A namespace outlives `ip netns del` while a process still runs in it; so do its sockets.
  try {
    for (const pid of ip(['netns', 'pids', netns]).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // namespace already gone
  }
  try {
    ip(['netns', 'del', netns]);
  } catch {
    // already gone
  }
}

/** Removes namespaces (and their processes) left by runs whose process no longer exists. */
export function sweepStaleNamespaces(): string[] {
  const swept: string[] = [];
  for (const netns of listNamespaces()) {
    const pid = Number(/^dronetns-(\d+)-/.exec(netns)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) {
      killAndDelete(netns);
      swept.push(netns);
    }
  }
  return swept;
}

/**
 * Creates the hub and `hosts` (name → last address byte), all links up. On any failure what was
 * created is removed before the error is thrown.
 */
export function createTopology(hosts: Record<string, number>): Topology {
  const run = `${PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  const hub = `${run}-hub`;
  const created: string[] = [];
  const byName: Record<string, NetnsHost> = {};

  const teardown = (): void => {
    for (const netns of created.splice(0).reverse()) killAndDelete(netns);
    process.off('exit', teardown);
  };
  // Covers a test process that throws past its `after` hooks; SIGKILL is left to the next sweep.
  process.on('exit', teardown);

  try {
    ip(['netns', 'add', hub]);
    created.push(hub);
    ip(['-n', hub, 'link', 'set', 'lo', 'up']);
    ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', hub, 'link', 'set', 'br0', 'up']);
    for (const [name, octet] of Object.entries(hosts)) {
      if (!/^[a-z0-9]{1,12}$/.test(name)) throw new Error(`host name ${name} must be 1-12 of [a-z0-9]`);
      const netns = `${run}-${name}`;
      ip(['netns', 'add', netns]);
      created.push(netns);
      const address = `${SUBNET_PREFIX}${octet}`;
      ip(['-n', netns, 'link', 'set', 'lo', 'up']);
      ip(['-n', hub, 'link', 'add', `h-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      ip(['-n', hub, 'link', 'set', `h-${name}`, 'master', 'br0']);
      ip(['-n', hub, 'link', 'set', `h-${name}`, 'up']);
      ip(['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
      byName[name] = { name, netns, ip: address };
    }
  } catch (err) {
    teardown();
    throw err;
  }

  const host = (name: string): NetnsHost => {
    const h = byName[name];
    if (!h) throw new Error(`no host ${name}`);
    return h;
  };
  return {
    hosts: byName,
    cut: (name) => void ip(['-n', hub, 'link', 'set', `h-${host(name).name}`, 'down']),
    restore: (name) => void ip(['-n', hub, 'link', 'set', `h-${host(name).name}`, 'up']),
    spawnIn(name, command, args, env) {
      return spawn('ip', ['netns', 'exec', host(name).netns, command, ...args], {
        env,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    },
    teardown,
  };
}
