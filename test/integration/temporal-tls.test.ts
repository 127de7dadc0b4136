/**
 * TLS, mutual TLS and API keys against a real TLS endpoint: the test Temporal server behind nginx
 * as a TLS-terminating gRPC proxy, with a throwaway PKI made by `openssl`. What works (a client,
 * a worker and `dro` commands through TLS and mutual TLS, a valid API key) and what is refused,
 * each refusal naming the setting to fix: an unknown CA, a wrong server name, an expired client
 * certificate (before anything connects), a missing or foreign client certificate, a rejected
 * API key (whose value is never printed), TLS settings without a cluster address.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { TemporalConnectionError } from '../../infra/temporal-connection';
import { resolveTemporal } from '../../infra/temporal-server';
import { connectWorker } from '../../workers/create-worker';
import { findNginx, startNginxGrpcProxy, type NginxGrpcProxy } from '../harness/nginx-grpc';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { makeTestPki, SERVER_NAME, type TestPki } from '../harness/tls-pki';

const ROOT = path.join(__dirname, '..', '..');
const NGINX = findNginx();
const API_KEY = 'dro-test-key-5f0c1d2e';
const WRONG_KEY = 'dro-wrong-key-77aa19';

/** Runs the CLI without blocking the event loop (the proxy and server live in this process). */
function dro(
  env: NodeJS.ProcessEnv,
  cwd: string,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), ...args], {
      cwd,
      env: { ...process.env, DRO_LOG_LEVEL: 'error', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe(
  'Temporal over TLS, mutual TLS and an API key',
  { timeout: 180_000, skip: NGINX ? false : 'nginx not found (CI installs it: apt-get install nginx)' },
  () => {
    let dir: string;
    let pki: TestPki;
    let temporal: TemporalHarness;
    let proxy: NginxGrpcProxy;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-tls-'));
      pki = makeTestPki(dir);
      temporal = await startTemporalHarness();
      proxy = await startNginxGrpcProxy({
        binary: NGINX!,
        dir,
        pki,
        upstream: temporal.address,
        apiKey: API_KEY,
      });
    });
    after(async () => {
      await proxy?.stop();
      await temporal?.teardown();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Server TLS to `address`: the test CA and the certificate's name. */
    const tlsEnv = (address: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      ...extra,
    });
    const withClientCert = (address: string): NodeJS.ProcessEnv =>
      tlsEnv(address, {
        TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      });

    /** Rejects with a TemporalConnectionError whose setting is `setting` and whose message names it. */
    async function refused(env: NodeJS.ProcessEnv, setting: string, pattern: RegExp): Promise<string> {
      let message = '';
      await assert.rejects(resolveTemporal({ env, checkTimeoutMs: 10_000 }), (err: unknown) => {
        assert.ok(err instanceof TemporalConnectionError, String(err));
        assert.equal(err.setting, setting, err.message);
        assert.ok(err.message.includes(setting), err.message);
        assert.match(err.message, pattern);
        message = err.message;
        return true;
      });
      return message;
    }

    test('server TLS: the namespace answers to a client and a worker connects', async () => {
      const cluster = await resolveTemporal({ env: tlsEnv(proxy.tls), checkTimeoutMs: 10_000 });
      assert.equal(cluster.source, 'external');
      assert.match(
        cluster.connection.describe(),
        /^TLS \(server name temporal\.test, CA from \S+ca\.pem\), API key: none$/,
      );
      const client = await Connection.connect(cluster.connection.clientOptions());
      try {
        const ns = await client.workflowService.describeNamespace({ namespace: temporal.namespace });
        assert.equal(ns.namespaceInfo?.name, temporal.namespace);
      } finally {
        await client.close();
      }
      const worker = await connectWorker(cluster.connection);
      await worker.close();
    });

    test('`dro runs list` and `dro doctor` work through TLS', async () => {
      const env = { ...tlsEnv(proxy.tls), DRO_STATE_DIR: path.join(dir, 'state') };
      const [list, doctor] = await Promise.all([
        dro(env, dir, 'runs', 'list', '--json'),
        dro(env, dir, 'doctor'),
      ]);
      assert.equal(list.status, 0, list.stderr);
      assert.ok(Array.isArray(JSON.parse(list.stdout)), list.stdout);
      assert.match(list.stderr, /external cluster; TLS \(server name temporal\.test/);
      assert.match(
        doctor.stdout,
        /ok +temporal +TEMPORAL_ADDRESS=127\.0\.0\.1:\d+ \(namespace default; TLS \(server name temporal\.test, CA from \S+\), API key: none\): answers over TLSv1\.[23]\/h2/,
        doctor.stdout,
      );
    });

    test('mutual TLS: a client certificate issued by the CA connects a client and a worker', async () => {
      const cluster = await resolveTemporal({ env: withClientCert(proxy.mtls), checkTimeoutMs: 10_000 });
      assert.match(cluster.connection.describe(), /client cert \S+client\.pem\)/);
      const worker = await connectWorker(cluster.connection);
      await worker.close();
      // The same settings from a config file, its paths relative to the working directory.
      const config = path.join(dir, 'mtls.json');
      fs.writeFileSync(
        config,
        JSON.stringify({
          temporal: {
            address: proxy.mtls,
            serverName: SERVER_NAME,
            serverCaCertPath: path.basename(pki.caCert),
            clientCertPath: path.basename(pki.clientCert),
            clientKeyPath: path.basename(pki.clientKey),
          },
        }),
      );
      const doctor = await dro({ TEMPORAL_ADDRESS: '' }, dir, 'doctor', '--config', config);
      assert.match(
        doctor.stdout,
        /ok +temporal +temporal\.address=.*client cert \S+client\.pem\).*answers over TLS/,
        doctor.stdout,
      );
      assert.match(
        doctor.stdout,
        /temporal client cert +\S+client\.pem \(\$\.temporal\.clientCertPath\): CN=dro-client, issued by CN=dro test CA, expires \d{4}-\d\d-\d\d/,
      );
    });

    test('an unknown CA names TEMPORAL_TLS_SERVER_CA_CERT_PATH', async () => {
      await refused(
        tlsEnv(proxy.tls, { TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCaCert }),
        'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
        /not signed by the CA in TEMPORAL_TLS_SERVER_CA_CERT_PATH=\S+other-ca\.pem/,
      );
    });

    test('a wrong server name names TEMPORAL_TLS_SERVER_NAME', async () => {
      await refused(
        tlsEnv(proxy.tls, { TEMPORAL_TLS_SERVER_NAME: 'wrong.test' }),
        'TEMPORAL_TLS_SERVER_NAME',
        /\[DNS:temporal\.test\].* is not for "wrong\.test"/,
      );
    });

    test('an expired client certificate is refused before anything connects', async () => {
      let connections = 0;
      const server = net.createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      try {
        await refused(
          tlsEnv(`127.0.0.1:${port}`, {
            TEMPORAL_TLS_CLIENT_CERT_PATH: pki.expiredClientCert,
            TEMPORAL_TLS_CLIENT_KEY_PATH: pki.expiredClientKey,
          }),
          'TEMPORAL_TLS_CLIENT_CERT_PATH',
          /expired on 2020-02-01/,
        );
        assert.equal(connections, 0);
      } finally {
        server.close();
      }
    });

    test('mutual TLS without a client certificate, or with a foreign one, names the certificate setting', async () => {
      await refused(tlsEnv(proxy.mtls), 'TEMPORAL_TLS_CLIENT_CERT_PATH', /requires a client certificate/);
      await refused(
        tlsEnv(proxy.mtls, {
          TEMPORAL_TLS_CLIENT_CERT_PATH: pki.otherClientCert,
          TEMPORAL_TLS_CLIENT_KEY_PATH: pki.otherClientKey,
        }),
        'TEMPORAL_TLS_CLIENT_CERT_PATH',
        /refused the client certificate .*CN=dro-other-client/,
      );
    });

    test('an API key: the right one connects; a rejected one is named, never printed', async () => {
      const cluster = await resolveTemporal({
        env: tlsEnv(proxy.apiKey, { TEMPORAL_API_KEY: API_KEY }),
        checkTimeoutMs: 10_000,
      });
      assert.match(cluster.connection.describe(), /API key: set \(TEMPORAL_API_KEY\)$/);
      assert.ok(!JSON.stringify(cluster).includes(API_KEY));
      const worker = await connectWorker(cluster.connection);
      await worker.close();

      const message = await refused(
        tlsEnv(proxy.apiKey, { TEMPORAL_API_KEY: WRONG_KEY }),
        'TEMPORAL_API_KEY',
        /rejected the API key from TEMPORAL_API_KEY/,
      );
      assert.ok(!message.includes(WRONG_KEY));
      const cli = await dro(
        { ...tlsEnv(proxy.apiKey, { TEMPORAL_API_KEY: WRONG_KEY }), DRO_STATE_DIR: path.join(dir, 'state') },
        dir,
        'runs',
        'list',
      );
      assert.notEqual(cli.status, 0);
      assert.match(cli.stderr, /rejected the API key from TEMPORAL_API_KEY/);
      assert.ok(!`${cli.stdout}${cli.stderr}`.includes(WRONG_KEY), cli.stderr);
    });

    test('a plain client at a TLS endpoint is told to turn TLS on', async () => {
      await assert.rejects(
        resolveTemporal({ env: { TEMPORAL_ADDRESS: proxy.tls }, checkTimeoutMs: 1500 }),
        /the server there speaks TLS: set TEMPORAL_TLS=true/,
      );
    });

    test('TLS settings without a cluster address are refused before any server starts', async () => {
      await assert.rejects(
        resolveTemporal({
          env: { TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert },
          devServer: { dbFile: path.join(dir, 'never', 'temporal.db') },
        }),
        (err: unknown) =>
          err instanceof TemporalConnectionError &&
          /TEMPORAL_TLS_SERVER_CA_CERT_PATH is set but no cluster address is/.test(err.message),
      );
      assert.equal(fs.existsSync(path.join(dir, 'never')), false);
    });
  },
);
