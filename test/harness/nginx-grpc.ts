/**
 * nginx as a TLS-terminating gRPC proxy in front of a test Temporal server, run from a temporary
 * directory as a single foreground process (its own config, pid file, logs and temp paths), the
 * way a cluster sits behind an ingress. Three listeners on free ports:
 * - `tls`: server TLS only;
 * - `mtls`: TLS that requires a client certificate issued by the test CA;
 * - `apiKey`: server TLS that answers 401 unless `authorization` is `Bearer <apiKey>`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../infra/temporal-server';
import type { TestPki } from './tls-pki';

/** The nginx binary (also in /usr/sbin, which a non-root PATH may lack), or undefined. */
export function findNginx(): string | undefined {
  for (const candidate of [
    'nginx',
    '/usr/sbin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/local/nginx/sbin/nginx',
  ]) {
    const r = spawnSync(candidate, ['-v'], { stdio: 'ignore' });
    if (!r.error && r.status === 0) return candidate;
  }
  return undefined;
}

export interface NginxGrpcProxy {
  /** `127.0.0.1:<port>` of each listener. */
  tls: string;
  mtls: string;
  apiKey: string;
  stop(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startNginxGrpcProxy(options: {
  binary: string;
  dir: string;
  pki: TestPki;
  /** `host:port` of the plain gRPC server behind the proxy. */
  upstream: string;
  apiKey: string;
}): Promise<NginxGrpcProxy> {
  const { dir, pki } = options;
  const temp = path.join(dir, 'nginx-temp');
  fs.mkdirSync(temp, { recursive: true });
  const [tlsPort, mtlsPort, apiKeyPort] = [await freePort(), await freePort(), await freePort()];
  const server = (port: number, extra: string, location = ''): string => `
    server {
      listen 127.0.0.1:${port} ssl http2;
      ssl_certificate ${pki.serverCert};
      ssl_certificate_key ${pki.serverKey};
      ${extra}
      location / {
        ${location}
        grpc_pass grpc://${options.upstream};
      }
    }`;
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `daemon off;
master_process off;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'nginx-error.log')} warn;
events { worker_connections 128; }
http {
  access_log off;
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  client_max_body_size 0;
  grpc_read_timeout 120s;
  grpc_send_timeout 120s;
  ${server(tlsPort, '')}
  ${server(mtlsPort, `ssl_verify_client on;\n      ssl_client_certificate ${pki.caCert};`)}
  ${server(apiKeyPort, '', `if ($http_authorization != "Bearer ${options.apiKey}") { return 401; }`)}
}
`,
  );
  // `-e`: the start-up log goes here too, not to the packaged /var/log/nginx.
  const child: ChildProcess = spawn(
    options.binary,
    ['-p', dir, '-c', conf, '-e', path.join(dir, 'nginx-error.log')],
    {
      stdio: 'ignore',
    },
  );
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async (): Promise<void> => {
    if (exited) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await gone;
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited || Date.now() > deadline) {
      await stop();
      const log = fs.existsSync(path.join(dir, 'nginx-error.log'))
        ? fs.readFileSync(path.join(dir, 'nginx-error.log'), 'utf8')
        : '';
      throw new Error(`nginx did not start: ${log}`);
    }
    const up = await Promise.all([tlsPort, mtlsPort, apiKeyPort].map(listening));
    if (up.every(Boolean)) break;
    await sleep(50);
  }
  return {
    tls: `127.0.0.1:${tlsPort}`,
    mtls: `127.0.0.1:${mtlsPort}`,
    apiKey: `127.0.0.1:${apiKeyPort}`,
    stop,
  };
}
