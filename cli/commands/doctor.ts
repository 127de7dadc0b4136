import path from 'node:path';
import type { Command } from 'commander';
import { defaultConfig, loadConfigFile } from '../../config/load';
import { isHostPort, type PipelineConfig } from '../../config/schemas';
import { describeBackends } from '../../engine/backend';
import { TEMPORAL_CLI, VERSITYGW } from '../../infra/binaries';
import { cachedBinaryPath, goVersion, locateBinary, type GoBinarySpec } from '../../infra/go-binary';
import {
  assertNoSecurityWithoutAddress,
  probeTls,
  resolveConnection,
  type TemporalConnection,
} from '../../infra/temporal-connection';
import { waitForTemporal } from '../../infra/temporal-server';
import type { StorageConfig } from '../../storage/config';
import { checkS3Access } from '../../storage/s3-store';
import { stateDir } from '../../infra/paths';
import { gpuChecks } from '../gpu-doctor';
import { localRootProblem, preflight } from '../preflight';
import { escapeControl } from '../terminal-text';

/** One line of the report. `ok: false` on a required item makes `dro doctor` exit non-zero. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** Problems with optional items are shown but do not fail the command. */
  required: boolean;
}

const MIN_NODE = [20, 19];

function nodeCheck(): DoctorCheck {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const ok = major > MIN_NODE[0]! || (major === MIN_NODE[0] && minor >= MIN_NODE[1]!);
  return {
    name: 'node',
    ok,
    required: true,
    detail: `${process.version}${ok ? '' : ` (need >= ${MIN_NODE.join('.')})`}`,
  };
}

function backendCheck(): DoctorCheck {
  const { backends, willRun } = describeBackends();
  const list = backends.map((b) => `${b.available ? '+' : '-'}${b.name}`).join(' ');
  return {
    name: 'tfjs backend',
    ok: willRun !== undefined,
    required: true,
    detail: `${willRun ?? 'none'} will run (${list})`,
  };
}

function binaryCheck(
  label: string,
  spec: GoBinarySpec,
  go: string | undefined,
  required: boolean,
): DoctorCheck {
  try {
    const found = locateBinary(spec);
    if (found) return { name: label, ok: true, required, detail: `${found.path} (${found.source})` };
  } catch (err) {
    return { name: label, ok: false, required, detail: (err as Error).message };
  }
  if (go) {
    return {
      name: label,
      ok: true,
      required,
      detail: `not built yet; will be built on first use into ${cachedBinaryPath(spec)} (${spec.typicalBuild})`,
    };
  }
  return {
    name: label,
    ok: false,
    required,
    detail: `not found and Go is missing: install Go or set ${spec.envVar}`,
  };
}

/** Days a client certificate may have left before the report warns. */
const CERT_WARN_DAYS = 14;

function clientCertCheck(connection: TemporalConnection, now = Date.now()): DoctorCheck[] {
  const cert = connection.tls?.client;
  if (!cert) return [];
  const daysLeft = Math.floor((cert.validTo.getTime() - now) / 86_400_000);
  return [
    {
      name: 'temporal client cert',
      ok: daysLeft >= CERT_WARN_DAYS,
      required: false,
      detail:
        `${cert.path} (${cert.from}): ${cert.subject}, issued by ${cert.issuer}, expires ` +
        `${cert.validTo.toISOString().slice(0, 10)} (${daysLeft} days left)`,
    },
  ];
}

/**
 * The cluster connection: address, TLS, server name, CA, client certificate, API key (whether
 * set, never its value), and a handshake that asks for the namespace.
 */
async function temporalChecks(
  go: string | undefined,
  config: PipelineConfig['temporal'],
): Promise<DoctorCheck[]> {
  const env = process.env;
  const fail = (detail: string): DoctorCheck[] => [{ name: 'temporal', ok: false, required: true, detail }];
  const address = env.TEMPORAL_ADDRESS || config.address;
  if (!address) {
    try {
      assertNoSecurityWithoutAddress({ env, config });
    } catch (err) {
      return fail((err as Error).message);
    }
    return [binaryCheck('temporal', TEMPORAL_CLI, go, true)];
  }
  const namespace = env.TEMPORAL_NAMESPACE || config.namespace;
  const from = env.TEMPORAL_ADDRESS ? 'TEMPORAL_ADDRESS' : 'temporal.address';
  if (!isHostPort(address)) {
    return fail(
      `${from} ${JSON.stringify(address)} is malformed: expected host:port, e.g. temporal.example.internal:7233`,
    );
  }
  let connection: TemporalConnection;
  try {
    connection = resolveConnection(address, { env, config });
  } catch (err) {
    return fail(`${from}=${address}: ${(err as Error).message}`);
  }
  const where = `${from}=${address} (namespace ${namespace}; ${connection.describe()})`;
  try {
    let handshake = 'plain gRPC';
    if (connection.tls) {
      const probe = await probeTls(connection);
      handshake =
        'transient' in probe
          ? `TLS handshake not confirmed (${probe.transient})`
          : `${probe.protocol}${probe.alpn ? `/${probe.alpn}` : ''} with ${probe.serverSubject}`;
    }
    await waitForTemporal(connection, namespace, 5000);
    return [
      { name: 'temporal', ok: true, required: true, detail: `${where}: answers over ${handshake}` },
      ...clientCertCheck(connection),
    ];
  } catch (err) {
    return [
      { name: 'temporal', ok: false, required: true, detail: `${where}: ${(err as Error).message}` },
      ...clientCertCheck(connection),
    ];
  }
}

async function storageCheck(storage: StorageConfig): Promise<DoctorCheck> {
  if (storage.kind === 'local') {
    const root = storage.root ?? path.join(stateDir(), 'artifacts');
    const problem = await localRootProblem(root);
    return {
      name: 'artifact store',
      ok: problem === undefined,
      required: true,
      detail: problem === undefined ? `local filesystem (${storage.root ?? root})` : problem,
    };
  }
  const where = `s3://${storage.bucket}/${storage.prefix} at ${storage.endpoint ?? 'AWS S3'}`;
  const r = await checkS3Access(storage);
  const ok = r.reachable && r.bucketExists && r.canWrite;
  return {
    name: 'artifact store',
    ok,
    required: true,
    detail: ok
      ? `${where}: reachable, bucket exists, writable`
      : `${where}: ${r.error?.message ?? 'not writable'}`,
  };
}

/** The pre-flight checks of the config (its files, Temporal's limits, memory), as one line. */
async function configCheck(config: PipelineConfig, configFile: string | undefined): Promise<DoctorCheck> {
  // The artifact root has its own line.
  const problems = (await preflight(config)).filter((p) => !p.message.startsWith('artifact root:'));
  const name = configFile ?? 'the default config';
  return {
    name: 'config',
    ok: problems.length === 0,
    required: true,
    detail:
      problems.length === 0
        ? `${name}: its files and this machine's memory fit`
        : `${name}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
  };
}

export async function runDoctor(configFile?: string): Promise<DoctorCheck[]> {
  const go = goVersion();
  const config = configFile ? loadConfigFile(configFile) : defaultConfig();
  return [
    nodeCheck(),
    await configCheck(config, configFile),
    backendCheck(),
    ...gpuChecks(config),
    ...(await temporalChecks(go, config.temporal)),
    await storageCheck(config.storage),
    {
      name: 'go',
      ok: go !== undefined,
      required: false,
      detail: go ?? 'not installed (needed only to build missing server binaries)',
    },
    binaryCheck('s3 test server', VERSITYGW, go, false),
  ];
}

/** `dro doctor [--config file]`: what will run on this machine. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('report Node, the TF.js backend, Temporal, the artifact store and the Go toolchain')
    .option('-c, --config <file>', 'config whose storage and Temporal settings to check')
    .action(async (options: { config?: string }) => {
      const checks = await runDoctor(options.config);
      const width = Math.max(...checks.map((c) => c.name.length));
      for (const c of checks) {
        const mark = c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn';
        console.log(`${mark}  ${c.name.padEnd(width)}  ${escapeControl(c.detail, false)}`);
      }
      if (checks.some((c) => c.required && !c.ok)) process.exitCode = 1;
    });
}
