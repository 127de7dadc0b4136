/**
 * How this process talks to the Temporal cluster: TLS, mutual TLS and an API key on top of the
 * address. The settings have the Temporal CLI's environment names, so a shell set up for
 * `temporal` works unchanged; each one wins over its field in the config's `temporal` section:
 *
 * | environment                        | config                      |
 * | ---------------------------------- | --------------------------- |
 * | `TEMPORAL_TLS` (true/false)        | `$.temporal.tls`            |
 * | `TEMPORAL_TLS_SERVER_NAME`         | `$.temporal.serverName`     |
 * | `TEMPORAL_TLS_SERVER_CA_CERT_PATH` | `$.temporal.serverCaCertPath` |
 * | `TEMPORAL_TLS_CLIENT_CERT_PATH`    | `$.temporal.clientCertPath` |
 * | `TEMPORAL_TLS_CLIENT_KEY_PATH`     | `$.temporal.clientKeyPath`  |
 * | `TEMPORAL_API_KEY` (the key)       | `$.temporal.apiKeyEnv` (the name of a variable holding it) |
 *
 * Every file is read and checked here, before anything connects, so that a wrong path, a key of
 * another certificate or an expired certificate is refused by name instead of surfacing as a
 * gRPC retry loop. {@link probeTls} and {@link explainRpcError} turn what the server refuses
 * into the setting to fix. The API key never leaves {@link TemporalConnection}: it is not
 * enumerable, prints as `API key: set` and is cut out of every message built here.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { inspect } from 'node:util';
import type { ConnectionOptions } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { TemporalConfig } from '../config/schemas';

/** The settings this module reads, by field: environment variable and config path. */
export const CONNECTION_SETTINGS = {
  address: { env: 'TEMPORAL_ADDRESS', config: '$.temporal.address' },
  tls: { env: 'TEMPORAL_TLS', config: '$.temporal.tls' },
  serverName: { env: 'TEMPORAL_TLS_SERVER_NAME', config: '$.temporal.serverName' },
  serverCaCertPath: { env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', config: '$.temporal.serverCaCertPath' },
  clientCertPath: { env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', config: '$.temporal.clientCertPath' },
  clientKeyPath: { env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', config: '$.temporal.clientKeyPath' },
  apiKey: { env: 'TEMPORAL_API_KEY', config: '$.temporal.apiKeyEnv' },
} as const;

type SettingName = keyof typeof CONNECTION_SETTINGS;

/** The config fields of the connection (the `temporal` section, all optional). */
export type TemporalSecurityConfig = Partial<
  Pick<
    TemporalConfig,
    'tls' | 'serverName' | 'serverCaCertPath' | 'clientCertPath' | 'clientKeyPath' | 'apiKeyEnv'
  >
>;

export interface ConnectionSources {
  /** Environment with the TEMPORAL_* variables. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** The config's `temporal` section; the environment wins field by field. */
  config?: TemporalSecurityConfig;
  /** Directory that relative paths of the config resolve against. Default: process.cwd(). */
  cwd?: string;
}

/** A connection setting that cannot work; `setting` names the variable or config path to fix. */
export class TemporalConnectionError extends Error {
  override name = 'TemporalConnectionError';
  constructor(
    message: string,
    /** The environment variable or config path to fix, e.g. `TEMPORAL_TLS_SERVER_NAME`. */
    readonly setting: string,
  ) {
    super(message);
  }
}

/** A value and where it came from (an environment variable or a config path). */
interface Sourced<T> {
  value: T;
  from: string;
}

/** Both places a setting can be given, for a message that asks for it. */
function bothNames(name: SettingName): string {
  const s = CONNECTION_SETTINGS[name];
  return `${s.env} (or ${s.config})`;
}

interface RawSettings {
  tls?: Sourced<boolean>;
  serverName?: Sourced<string>;
  serverCaCertPath?: Sourced<string>;
  clientCertPath?: Sourced<string>;
  clientKeyPath?: Sourced<string>;
  apiKey?: Sourced<string>;
}

function parseBoolean(text: string, from: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw new TemporalConnectionError(`${from}=${JSON.stringify(text)}: expected true or false`, from);
}

/** Environment over config, field by field; empty variables count as unset, as TEMPORAL_ADDRESS does. */
function readSettings(sources: ConnectionSources): RawSettings {
  const env = sources.env ?? process.env;
  const config = sources.config ?? {};
  const cwd = sources.cwd ?? process.cwd();
  const out: RawSettings = {};
  const fromEnv = (name: SettingName): Sourced<string> | undefined => {
    const key = CONNECTION_SETTINGS[name].env;
    const value = env[key]?.trim();
    return value ? { value, from: key } : undefined;
  };
  const tlsEnv = fromEnv('tls');
  if (tlsEnv) out.tls = { value: parseBoolean(tlsEnv.value, tlsEnv.from), from: tlsEnv.from };
  else if (config.tls !== undefined) out.tls = { value: config.tls, from: CONNECTION_SETTINGS.tls.config };
  for (const name of ['serverName', 'serverCaCertPath', 'clientCertPath', 'clientKeyPath'] as const) {
    const e = fromEnv(name);
    const c = config[name];
    // Relative paths of a config mean the same file wherever the config is used from the same directory.
    const value = e ? e.value : c && name !== 'serverName' ? path.resolve(cwd, c) : c;
    if (value) out[name] = { value, from: e ? e.from : CONNECTION_SETTINGS[name].config };
  }
  const key = env[CONNECTION_SETTINGS.apiKey.env];
  if (key) out.apiKey = { value: key, from: CONNECTION_SETTINGS.apiKey.env };
  else if (config.apiKeyEnv) {
    const named = env[config.apiKeyEnv];
    if (!named)
      throw new TemporalConnectionError(
        `${CONNECTION_SETTINGS.apiKey.config} names ${config.apiKeyEnv}, which is not set in the environment: ` +
          `export the API key as ${config.apiKeyEnv} or ${CONNECTION_SETTINGS.apiKey.env}`,
        CONNECTION_SETTINGS.apiKey.config,
      );
    out.apiKey = { value: named, from: config.apiKeyEnv };
  }
  return out;
}

/** The first setting that secures a connection, which the embedded dev server cannot honour. */
function firstSecuritySetting(raw: RawSettings): string | undefined {
  if (raw.tls?.value) return raw.tls.from;
  return (raw.serverName ?? raw.serverCaCertPath ?? raw.clientCertPath ?? raw.clientKeyPath ?? raw.apiKey)
    ?.from;
}

/**
 * Refuses TLS or API key settings when no cluster address is set: the embedded dev server speaks
 * plain gRPC on 127.0.0.1, and silently dropping them would hide a missing TEMPORAL_ADDRESS.
 */
export function assertNoSecurityWithoutAddress(sources: ConnectionSources): void {
  const from = firstSecuritySetting(readSettings(sources));
  if (from === undefined) return;
  throw new TemporalConnectionError(
    `${from} is set but no cluster address is: set ${bothNames('address')} to the cluster it is for, ` +
      `or unset ${from} to use the embedded dev server (plain gRPC on 127.0.0.1)`,
    from,
  );
}

/** A client certificate as the report shows it. */
export interface ClientCertificateInfo {
  path: string;
  from: string;
  subject: string;
  issuer: string;
  validFrom: Date;
  validTo: Date;
}

interface TlsSettings {
  serverName?: Sourced<string>;
  ca?: { path: string; from: string; pem: Buffer };
  client?: ClientCertificateInfo & { crt: Buffer; key: Buffer; keyPath: string; keyFrom: string };
}

function readPem(setting: Sourced<string>, what: string): Buffer {
  let data: Buffer;
  try {
    const stat = fs.statSync(setting.value);
    if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    data = fs.readFileSync(setting.value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'not a file'
            : (code ?? (err as Error).message);
    throw new TemporalConnectionError(
      `${setting.from}=${setting.value}: cannot read the ${what} (${why})`,
      setting.from,
    );
  }
  return data;
}

function notPem(setting: Sourced<string>, what: string, detail: string): TemporalConnectionError {
  return new TemporalConnectionError(
    `${setting.from}=${setting.value}: not a PEM ${what} (${detail})`,
    setting.from,
  );
}

function readCertificate(setting: Sourced<string>, what: string): { pem: Buffer; cert: X509Certificate } {
  const pem = readPem(setting, what);
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----'))
    throw notPem(setting, what, 'no -----BEGIN CERTIFICATE----- block');
  try {
    return { pem, cert: new X509Certificate(pem) };
  } catch (err) {
    throw notPem(setting, what, (err as Error).message);
  }
}

function readPrivateKey(setting: Sourced<string>): { pem: Buffer; key: KeyObject } {
  const pem = readPem(setting, 'client key');
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1')))
    throw notPem(setting, 'private key', 'no -----BEGIN ... PRIVATE KEY----- block');
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch (err) {
    const message = (err as Error).message;
    throw notPem(
      setting,
      'private key',
      /passphrase/i.test(message) ? 'it is encrypted; the connection needs an unencrypted key' : message,
    );
  }
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

function readTls(raw: RawSettings, now: Date): TlsSettings {
  const out: TlsSettings = {};
  if (raw.serverName) out.serverName = raw.serverName;
  if (raw.serverCaCertPath) {
    const { pem } = readCertificate(raw.serverCaCertPath, 'CA certificate');
    out.ca = { path: raw.serverCaCertPath.value, from: raw.serverCaCertPath.from, pem };
  }
  const { clientCertPath: certPath, clientKeyPath: keyPath } = raw;
  if (certPath && !keyPath)
    throw new TemporalConnectionError(
      `${certPath.from} is set but the client key is not: set ${bothNames('clientKeyPath')} to its private key`,
      CONNECTION_SETTINGS.clientKeyPath.env,
    );
  if (keyPath && !certPath)
    throw new TemporalConnectionError(
      `${keyPath.from} is set but the client certificate is not: set ${bothNames('clientCertPath')} too`,
      CONNECTION_SETTINGS.clientCertPath.env,
    );
  if (certPath && keyPath) {
    const { pem: crt, cert } = readCertificate(certPath, 'client certificate');
    const { pem: key, key: keyObject } = readPrivateKey(keyPath);
    if (!cert.checkPrivateKey(keyObject))
      throw new TemporalConnectionError(
        `${keyPath.from}=${keyPath.value} is not the private key of the client certificate ` +
          `${certPath.from}=${certPath.value} (${oneLine(cert.subject)}): point both at the same pair`,
        keyPath.from,
      );
    const validFrom = new Date(cert.validFrom);
    const validTo = new Date(cert.validTo);
    if (validTo.getTime() < now.getTime())
      throw new TemporalConnectionError(
        `${certPath.from}=${certPath.value}: the client certificate (${oneLine(cert.subject)}) expired on ` +
          `${day(validTo)}: renew it; nothing was sent to the server`,
        certPath.from,
      );
    if (validFrom.getTime() > now.getTime())
      throw new TemporalConnectionError(
        `${certPath.from}=${certPath.value}: the client certificate (${oneLine(cert.subject)}) is not valid ` +
          `before ${validFrom.toISOString()}: check this machine's clock or the certificate`,
        certPath.from,
      );
    out.client = {
      path: certPath.value,
      from: certPath.from,
      keyPath: keyPath.value,
      keyFrom: keyPath.from,
      subject: oneLine(cert.subject),
      issuer: oneLine(cert.issuer),
      validFrom,
      validTo,
      crt,
      key,
    };
  }
  return out;
}

/**
 * A resolved connection: what `Connection.connect` and `NativeConnection.connect` take, and how
 * to print it. The API key lives in a private field: JSON, `inspect` and logs never see it.
 */
export class TemporalConnection {
  readonly #apiKey: string | undefined;

  constructor(
    readonly address: string,
    /** Undefined for plain gRPC. */
    readonly tls: Readonly<TlsSettings> | undefined,
    apiKey?: Sourced<string>,
  ) {
    this.#apiKey = apiKey?.value;
    this.apiKeyFrom = apiKey?.from;
  }

  /** The variable the API key came from; undefined without one. */
  readonly apiKeyFrom: string | undefined;

  /** The server name TLS checks the server's certificate against. */
  get serverName(): string | undefined {
    if (!this.tls) return undefined;
    return this.tls.serverName?.value ?? hostOf(this.address);
  }

  /** Options of `@temporalio/client`'s `Connection.connect` / `Connection.lazy`. */
  clientOptions(): ConnectionOptions {
    return {
      address: this.address,
      tls: this.sdkTls() ?? false,
      ...(this.#apiKey !== undefined && { apiKey: this.#apiKey }),
    };
  }

  /** Options of `@temporalio/worker`'s `NativeConnection.connect`. */
  workerOptions(): NativeConnectionOptions {
    return {
      address: this.address,
      tls: this.sdkTls() ?? false,
      ...(this.#apiKey !== undefined && { apiKey: this.#apiKey }),
    };
  }

  private sdkTls(): Exclude<ConnectionOptions['tls'], boolean | null | undefined> | undefined {
    if (!this.tls) return undefined;
    return {
      ...(this.tls.serverName && { serverNameOverride: this.tls.serverName.value }),
      ...(this.tls.ca && { serverRootCACertificate: this.tls.ca.pem }),
      ...(this.tls.client && { clientCertPair: { crt: this.tls.client.crt, key: this.tls.client.key } }),
    };
  }

  /** `TLS (server name x, CA from <path>, client cert <path>), API key: set`; never the key. */
  describe(): string {
    const parts: string[] = [];
    if (!this.tls) parts.push('plain gRPC (no TLS)');
    else {
      const details = [
        `server name ${this.serverName}`,
        this.tls.ca ? `CA from ${this.tls.ca.path}` : 'system CAs',
        ...(this.tls.client ? [`client cert ${this.tls.client.path}`] : []),
      ];
      parts.push(`TLS (${details.join(', ')})`);
    }
    parts.push(`API key: ${this.#apiKey === undefined ? 'none' : `set (${this.apiKeyFrom})`}`);
    return parts.join(', ');
  }

  /** Cuts the API key out of a text that may echo it (a server's error details). */
  redact(text: string): string {
    return this.#apiKey ? text.split(this.#apiKey).join('<API key>') : text;
  }

  toJSON(): string {
    return this.describe();
  }

  [inspect.custom](): string {
    return `TemporalConnection(${this.address}, ${this.describe()})`;
  }
}

/** The host of `host:port` or `[v6]:port`. */
export function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return (i > 0 ? address.slice(0, i) : address).replace(/^\[|\]$/g, '');
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** A plain connection (the embedded dev server, a `dro server`). */
export function plainConnection(address: string): TemporalConnection {
  return new TemporalConnection(address, undefined);
}

/**
 * The connection to `address` with the settings of `sources`, every file read and checked.
 * TLS is on when TEMPORAL_TLS says so or, as with the Temporal CLI, when any TLS setting or an
 * API key is given; TEMPORAL_TLS=false with a certificate setting is a contradiction.
 */
export function resolveConnection(
  address: string,
  sources: ConnectionSources = {},
  now: Date = new Date(),
): TemporalConnection {
  const raw = readSettings(sources);
  const tlsSetting =
    raw.serverName?.from ?? raw.serverCaCertPath?.from ?? raw.clientCertPath?.from ?? raw.clientKeyPath?.from;
  if (raw.tls && !raw.tls.value && tlsSetting)
    throw new TemporalConnectionError(
      `${raw.tls.from} turns TLS off but ${tlsSetting} is set: set ${raw.tls.from} to true or unset ${tlsSetting}`,
      raw.tls.from,
    );
  const useTls = raw.tls ? raw.tls.value : tlsSetting !== undefined || raw.apiKey !== undefined;
  return new TemporalConnection(address, useTls ? readTls(raw, now) : undefined, raw.apiKey);
}

/** A connection setting the user may have to change: where it was set, or where to set it. */
function settingName(
  conn: TemporalConnection,
  name: 'serverName' | 'serverCaCertPath' | 'clientCertPath' | 'tls',
): string {
  const from =
    name === 'serverName'
      ? conn.tls?.serverName?.from
      : name === 'serverCaCertPath'
        ? conn.tls?.ca?.from
        : name === 'clientCertPath'
          ? conn.tls?.client?.from
          : undefined;
  return from ?? bothNames(name);
}

// Verification failures of the server's chain that a CA setting fixes.
const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/** The result of a TLS handshake that worked. */
export interface TlsHandshake {
  /** E.g. `TLSv1.3`. */
  protocol: string;
  /** Negotiated ALPN protocol (`h2` for gRPC), or none. */
  alpn: string | undefined;
  /** Subject of the server's certificate. */
  serverSubject: string;
}

/** A failure worth another try (nothing listens yet, the connection dropped). */
export interface TransientFailure {
  transient: string;
}

function serverCertText(cert: tls.PeerCertificate): string {
  const cn = cert.subject?.CN;
  const names = cert.subjectaltname ? ` [${cert.subjectaltname}]` : '';
  return `${cn ? `CN=${String(cn)}` : 'no CN'}${names}, issued by ${cert.issuer?.CN ? `CN=${String(cert.issuer.CN)}` : 'an unnamed CA'}`;
}

/** What a TLS alert from the server means for the client certificate. */
function clientCertRefused(conn: TemporalConnection, alert: string): TemporalConnectionError {
  const client = conn.tls?.client;
  if (!client)
    return new TemporalConnectionError(
      `${conn.address} requires a client certificate (mutual TLS; the server answered ${alert}): ` +
        `set ${bothNames('clientCertPath')} and ${bothNames('clientKeyPath')}`,
      CONNECTION_SETTINGS.clientCertPath.env,
    );
  return new TemporalConnectionError(
    `${conn.address} refused the client certificate ${client.from}=${client.path} (${client.subject}, ` +
      `issued by ${client.issuer}; the server answered ${alert}): use a certificate issued by a CA the server trusts`,
    client.from,
  );
}

/**
 * Opens one TLS connection the way the SDK would and names the setting behind a refusal: an
 * unknown CA, a wrong server name, a server without TLS, a missing or refused client certificate.
 * Resolves with the handshake or a transient failure; throws {@link TemporalConnectionError}.
 */
export async function probeTls(
  conn: TemporalConnection,
  timeoutMs = 5000,
): Promise<TlsHandshake | TransientFailure> {
  const settings = conn.tls;
  if (!settings) throw new Error('probeTls needs a TLS connection');
  const host = hostOf(conn.address);
  const name = conn.serverName ?? host;
  return new Promise((resolve, reject) => {
    let handshake: TlsHandshake | undefined;
    let settled = false;
    const finish = (value: TlsHandshake | TransientFailure | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const socket = tls.connect({
      host,
      port: portOf(conn.address),
      ...(!net.isIP(name) && { servername: name }),
      ...(settings.ca && { ca: settings.ca.pem }),
      ...(settings.client && { cert: settings.client.crt, key: settings.client.key }),
      ALPNProtocols: ['h2'],
      // Checked below, so that the message can say which setting is wrong.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(
      () => finish(handshake ?? { transient: `no TLS handshake within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const authError = socket.authorizationError as unknown as (Error & { code?: string }) | string | null;
      const code = typeof authError === 'string' ? authError : (authError?.code ?? authError?.message);
      // Node checks the name itself when a server name is sent; an IP address is checked here.
      const mismatch =
        code === 'ERR_TLS_CERT_ALTNAME_INVALID' || (!code && tls.checkServerIdentity(name, peer));
      if (mismatch) {
        const from = conn.tls?.serverName?.from;
        return finish(
          new TemporalConnectionError(
            `TLS to ${conn.address}: the server's certificate (${serverCertText(peer)}) is not for ` +
              `${JSON.stringify(name)}${from ? ` (${from})` : ' (the address host)'}: set ` +
              `${settingName(conn, 'serverName')} to a name the certificate holds`,
            from ?? CONNECTION_SETTINGS.serverName.env,
          ),
        );
      }
      if (code) {
        const peerText = peer && Object.keys(peer).length > 0 ? serverCertText(peer) : 'no certificate';
        const ca = conn.tls?.ca;
        if (UNKNOWN_CA.has(code))
          return finish(
            new TemporalConnectionError(
              `TLS to ${conn.address}: the server's certificate (${peerText}) is not signed by ` +
                (ca ? `the CA in ${ca.from}=${ca.path}` : 'a CA this machine trusts') +
                ` (${code}): set ${settingName(conn, 'serverCaCertPath')} to the CA that issued it`,
              ca?.from ?? CONNECTION_SETTINGS.serverCaCertPath.env,
            ),
          );
        return finish(
          new TemporalConnectionError(
            `TLS to ${conn.address}: the server's certificate (${peerText}) is not valid (${code})` +
              (code === 'CERT_HAS_EXPIRED' ? ': the server must renew it' : ''),
            ca?.from ?? CONNECTION_SETTINGS.serverCaCertPath.env,
          ),
        );
      }
      handshake = {
        protocol: socket.getProtocol() ?? 'TLS',
        alpn: socket.alpnProtocol || undefined,
        serverSubject: serverCertText(peer),
      };
      // A TLS 1.3 server checks the client certificate after the handshake completed on this side:
      // its verdict is the first thing it sends, so wait for its first bytes (HTTP/2 settings).
      socket.write(HTTP2_PREFACE);
      socket.on('data', () => finish(handshake!));
      socket.once('end', () => finish(handshake!));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      const alert = /ALERT_([A-Z_]+)$/.exec(code)?.[1];
      if (alert && /CERTIFICATE|HANDSHAKE_FAILURE|UNKNOWN_CA|ACCESS_DENIED/.test(alert))
        return finish(clientCertRefused(conn, `${alert.toLowerCase().replace(/_/g, ' ')}`));
      if (
        code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
        /wrong version number|packet length too long/i.test(err.message)
      )
        return finish(
          new TemporalConnectionError(
            `${conn.address} does not speak TLS (its reply is no TLS handshake): set ${bothNames('tls')} to false and unset ` +
              'the certificate settings, or point TEMPORAL_ADDRESS at the TLS endpoint',
            CONNECTION_SETTINGS.tls.env,
          ),
        );
      if (handshake) return finish(handshake);
      if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE'].includes(code))
        return finish({ transient: `${code} during the TLS handshake` });
      finish(
        new TemporalConnectionError(
          `TLS handshake with ${conn.address} failed (${code || err.message}): check ${bothNames('tls')} and ` +
            'the certificate settings',
          CONNECTION_SETTINGS.tls.env,
        ),
      );
    });
  });
}

// The HTTP/2 client preface and an empty SETTINGS frame: what a gRPC client sends first.
const HTTP2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

/** Whether `address` completes a TLS handshake (for a hint when a plain connection fails). */
export async function speaksTls(address: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const host = hostOf(address);
    const socket = tls.connect({
      host,
      port: portOf(address),
      ...(!net.isIP(host) && { servername: host }),
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
    });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_INTERNAL = 13;

type Refusal = 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'HTTP 400';

function refusalError(conn: TemporalConnection, refusal: Refusal, details: string): TemporalConnectionError {
  // A TLS proxy (nginx) that requires a client certificate completes the handshake and answers 400.
  if (refusal === 'HTTP 400') return clientCertRefused(conn, `HTTP 400 after the handshake: ${details}`);
  if (conn.apiKeyFrom)
    return new TemporalConnectionError(
      `${conn.address} rejected the API key from ${conn.apiKeyFrom} (${refusal}: ${details}): ` +
        `set ${conn.apiKeyFrom} to a valid key for this cluster and namespace`,
      conn.apiKeyFrom,
    );
  return new TemporalConnectionError(
    `${conn.address} refused the call (${refusal}: ${details}): it needs credentials; set ` +
      `${bothNames('apiKey')}, or a client certificate with ${bothNames('clientCertPath')}`,
    CONNECTION_SETTINGS.apiKey.env,
  );
}

/**
 * The setting to fix behind a call the server refused: a rejected API key, credentials the server
 * wants, or a TLS proxy refusing the client certificate. Undefined for a failure that is not about
 * the connection's settings (the server is down, the namespace is missing).
 */
export function explainRpcError(conn: TemporalConnection, err: unknown): TemporalConnectionError | undefined {
  // The SDK wraps a failed first call ("Failed to connect to Temporal server"): find the gRPC status.
  let grpcError: unknown = err;
  for (let depth = 0; depth < 5 && grpcError instanceof Error; depth++) {
    if (typeof (grpcError as { code?: unknown }).code === 'number') break;
    grpcError = grpcError.cause;
  }
  if (!(grpcError instanceof Error)) return undefined;
  const code = (grpcError as { code?: unknown }).code;
  const details = conn.redact(String((grpcError as { details?: unknown }).details ?? grpcError.message));
  if (code === GRPC_UNAUTHENTICATED) return refusalError(conn, 'UNAUTHENTICATED', details);
  if (code === GRPC_PERMISSION_DENIED) return refusalError(conn, 'PERMISSION_DENIED', details);
  if (conn.tls && code === GRPC_INTERNAL && /HTTP status code 400/.test(details))
    return refusalError(conn, 'HTTP 400', details);
  return undefined;
}

/**
 * The setting to fix behind a failed `NativeConnection.connect`, whose errors are text from the
 * native client: a refused TLS handshake (probed again here), a rejected API key or a proxy's
 * refusal. Undefined when the failure is not about the settings.
 */
export async function explainConnectFailure(
  conn: TemporalConnection,
  err: unknown,
): Promise<TemporalConnectionError | undefined> {
  const fromStatus = explainRpcError(conn, err);
  if (fromStatus) return fromStatus;
  if (conn.tls) {
    const probe = await probeTls(conn).catch((refused: unknown) => refused);
    if (probe instanceof TemporalConnectionError) return probe;
  }
  const text = conn.redact(err instanceof Error ? err.message : String(err));
  if (/unauthenticated|\b401\b/i.test(text)) return refusalError(conn, 'UNAUTHENTICATED', text);
  if (/permission ?denied|\b403\b/i.test(text)) return refusalError(conn, 'PERMISSION_DENIED', text);
  if (conn.tls && /\b400\b/.test(text)) return refusalError(conn, 'HTTP 400', text);
  return undefined;
}
