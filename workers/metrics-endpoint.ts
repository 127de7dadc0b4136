/**
 * The Prometheus endpoint of `dro worker --metrics` and `dro run --metrics`: one address serves
 * the pipeline's own series and the Temporal SDK's. The SDK's native runtime can only export its
 * metrics on an HTTP listener of its own, so it gets a private loopback port and every scrape of
 * ours fetches that and appends it: operators configure one scrape target per process, and the
 * SDK's listener never faces the network.
 */
import http from 'node:http';
import net from 'node:net';
import { PROMETHEUS_CONTENT_TYPE } from '../infra/metrics';
import { registry } from '../infra/pipeline-metrics';
import { exportSdkMetrics } from './runtime';

/** A metrics address that is malformed or cannot be bound; the message names the setting. */
export class MetricsAddressError extends Error {
  override name = 'MetricsAddressError';
}

export interface HostPort {
  host: string;
  port: number;
}

/** Longest wait for the SDK's own listener before a scrape goes out without its series. */
const SDK_SCRAPE_TIMEOUT_MS = 2000;

const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

const sdkUp = registry.gauge({
  name: 'dro_sdk_metrics_up',
  help: "1 when this scrape includes the Temporal SDK's series, 0 when its runtime is not running (no worker yet, or shut down).",
});

/** `host:port` (IPv6 in brackets); `setting` names the flag or config field in the error. */
export function parseMetricsAddress(value: string, setting: string): HostPort {
  const bad = (why: string): MetricsAddressError =>
    new MetricsAddressError(`${setting} ${JSON.stringify(value)}: ${why}`);
  const match = /^(.+):(\d{1,5})$/.exec(value);
  if (!match)
    throw bad('use host:port, e.g. 127.0.0.1:9464 (this machine only) or 0.0.0.0:9464 (all interfaces)');
  const [, rawHost, rawPort] = match as unknown as [string, string, string];
  const port = Number(rawPort);
  if (port > 65535) throw bad(`port ${port} is out of range (0 to 65535)`);
  const bracketed = /^\[(.*)\]$/.exec(rawHost)?.[1];
  if (bracketed !== undefined) {
    if (!net.isIPv6(bracketed)) throw bad(`[${bracketed}] is not an IPv6 address`);
    return { host: bracketed, port };
  }
  if (net.isIPv6(rawHost)) throw bad('write an IPv6 address in brackets, e.g. [::1]:9464');
  if (!net.isIPv4(rawHost) && !HOST_NAME.test(rawHost))
    throw bad(`${JSON.stringify(rawHost)} is not a host name`);
  return { host: rawHost, port };
}

function bindError(err: NodeJS.ErrnoException, value: string, setting: string): MetricsAddressError {
  const why =
    err.code === 'EADDRINUSE'
      ? 'the address is already in use (another process listens there); choose another port'
      : err.code === 'EADDRNOTAVAIL'
        ? 'the host is not an address of this machine'
        : err.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
            ? 'the host name does not resolve'
            : `cannot listen there (${err.message})`;
  return new MetricsAddressError(`${setting} ${JSON.stringify(value)}: ${why}`);
}

function listen(server: net.Server, host: string, port: number): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

/** A loopback port free now; the SDK's runtime binds it later (a rare race only loses SDK series). */
async function freeLoopbackPort(): Promise<number> {
  const probe = net.createServer();
  const { port } = await listen(probe, '127.0.0.1', 0);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function scrapeSdk(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS) });
    if (!res.ok) return undefined;
    return await res.text();
  } catch {
    // Nothing listens until the runtime is installed, and again after it shut down.
    return undefined;
  }
}

async function metricsText(sdkUrl: string | undefined): Promise<string> {
  const sdk = sdkUrl === undefined ? undefined : await scrapeSdk(sdkUrl);
  sdkUp.set(sdk === undefined ? 0 : 1);
  const own = await registry.scrape();
  if (sdk === undefined || sdk.trim() === '') return own;
  return own + (sdk.endsWith('\n') ? sdk : `${sdk}\n`);
}

export interface MetricsEndpoint {
  /** Where it listens, e.g. `http://127.0.0.1:9464/metrics`. */
  url: string;
  close(): Promise<void>;
}

export interface StartMetricsEndpointOptions {
  /** Include the Temporal SDK's series (call before the runtime is installed). Default: true. */
  sdk?: boolean;
}

/**
 * Listens on `address` (checked and bound before anything else starts, so a typo or a taken port
 * fails at once, naming `setting`) and serves `GET /metrics`.
 */
export async function startMetricsEndpoint(
  address: string,
  setting: string,
  options: StartMetricsEndpointOptions = {},
): Promise<MetricsEndpoint> {
  const { host, port } = parseMetricsAddress(address, setting);
  let sdkUrl: string | undefined;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('metrics are served at /metrics\n');
      return;
    }
    metricsText(sdkUrl).then(
      (body) =>
        res
          .writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE })
          .end(req.method === 'HEAD' ? '' : body),
      (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  // Never what keeps a process alive: `dro run` ends when its run does, whoever scrapes it.
  server.unref();
  server.on('connection', (socket) => socket.unref());
  let bound: net.AddressInfo;
  try {
    bound = await listen(server, host, port);
  } catch (err) {
    throw bindError(err as NodeJS.ErrnoException, address, setting);
  }
  if (options.sdk !== false) {
    try {
      const sdkPort = await freeLoopbackPort();
      exportSdkMetrics(`127.0.0.1:${sdkPort}`);
      sdkUrl = `http://127.0.0.1:${sdkPort}/metrics`;
    } catch (err) {
      server.close();
      throw err;
    }
  }
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${shownHost}:${bound.port}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
