/**
 * The connection settings without a server: environment over config, every file checked before
 * anything connects (each refusal naming the variable or config path), the API key never shown,
 * and a config without the new fields unchanged.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { configHash } from '../../cli/provenance';
import { defaultConfig, loadConfigFile, parseConfig } from '../../config/load';
import {
  assertNoSecurityWithoutAddress,
  resolveConnection,
  TemporalConnectionError,
  type ConnectionSources,
} from '../../infra/temporal-connection';
import { makeTestPki, type TestPki } from '../harness/tls-pki';

const ADDRESS = 'temporal.example.internal:7233';
const SECRET = 'sk-unit-test-0123456789abcdef';

describe('Temporal connection settings', () => {
  let dir: string;
  let pki: TestPki;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-tls-unit-'));
    pki = makeTestPki(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Throws a TemporalConnectionError for `setting` whose message names it and matches `pattern`. */
  function refused(sources: ConnectionSources, setting: string, pattern: RegExp): void {
    assert.throws(
      () => resolveConnection(ADDRESS, sources),
      (err: unknown) => {
        assert.ok(err instanceof TemporalConnectionError, String(err));
        assert.equal(err.setting, setting, err.message);
        assert.ok(err.message.includes(setting), err.message);
        assert.match(err.message, pattern);
        return true;
      },
    );
  }

  test('no settings: plain gRPC', () => {
    const c = resolveConnection(ADDRESS, { env: {} });
    assert.equal(c.tls, undefined);
    assert.equal(c.describe(), 'plain gRPC (no TLS), API key: none');
    assert.deepEqual(c.clientOptions(), { address: ADDRESS, tls: false });
  });

  test('the SDK options carry the CA, server name and client pair', () => {
    const c = resolveConnection(ADDRESS, {
      env: {
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
        TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
        TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      },
    });
    const tls = c.workerOptions().tls;
    assert.ok(tls && typeof tls === 'object');
    assert.equal(tls.serverNameOverride, 'temporal.test');
    assert.deepEqual(tls.serverRootCACertificate, fs.readFileSync(pki.caCert));
    assert.deepEqual(tls.clientCertPair?.crt, fs.readFileSync(pki.clientCert));
    assert.equal(
      c.describe(),
      `TLS (server name temporal.test, CA from ${pki.caCert}, client cert ${pki.clientCert}), API key: none`,
    );
    assert.equal(c.tls?.client?.subject, 'CN=dro-client');
  });

  test('the environment wins over the config; relative config paths resolve against cwd', () => {
    const config = {
      serverName: 'from-config.test',
      serverCaCertPath: path.basename(pki.otherCaCert),
      tls: false,
    };
    const fromConfig = resolveConnection(ADDRESS, {
      env: { TEMPORAL_TLS: 'true' },
      config: { serverName: 'from-config.test', serverCaCertPath: path.basename(pki.otherCaCert) },
      cwd: dir,
    });
    assert.equal(fromConfig.tls?.serverName?.from, '$.temporal.serverName');
    assert.equal(fromConfig.tls?.ca?.path, pki.otherCaCert);
    const fromEnv = resolveConnection(ADDRESS, {
      env: {
        TEMPORAL_TLS: 'true',
        TEMPORAL_TLS_SERVER_NAME: 'env.test',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
      },
      config,
      cwd: dir,
    });
    assert.equal(fromEnv.serverName, 'env.test');
    assert.equal(fromEnv.tls?.ca?.from, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  });

  test('an API key turns TLS on, prints as set and is never shown', () => {
    const c = resolveConnection(ADDRESS, { env: { TEMPORAL_API_KEY: SECRET } });
    assert.ok(c.tls);
    assert.equal(c.clientOptions().apiKey, SECRET);
    assert.match(c.describe(), /API key: set \(TEMPORAL_API_KEY\)$/);
    for (const text of [
      c.describe(),
      JSON.stringify({ c }),
      inspect(c, { depth: 5 }),
      String(Object.keys(c)),
    ])
      assert.ok(!text.includes(SECRET), text);
    assert.equal(c.redact(`bad key ${SECRET}`), 'bad key <API key>');
    const plain = resolveConnection(ADDRESS, { env: { TEMPORAL_API_KEY: SECRET, TEMPORAL_TLS: 'false' } });
    assert.equal(plain.tls, undefined);
  });

  test('$.temporal.apiKeyEnv names the variable holding the key', () => {
    const c = resolveConnection(ADDRESS, { env: { MY_KEY: SECRET }, config: { apiKeyEnv: 'MY_KEY' } });
    assert.equal(c.apiKeyFrom, 'MY_KEY');
    refused(
      { env: {}, config: { apiKeyEnv: 'MY_KEY' } },
      '$.temporal.apiKeyEnv',
      /names MY_KEY, which is not set/,
    );
    assert.throws(
      () => parseConfig({ temporal: { apiKeyEnv: 'eyJhbGciOi.JIUzI1NiJ9-secret' } }),
      /never the key itself/,
    );
  });

  test('missing, unreadable and non-PEM files are refused by name', () => {
    refused(
      { env: { TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'nope.pem') } },
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      /cannot read the CA certificate \(no such file\)/,
    );
    refused(
      { env: {}, config: { serverCaCertPath: pki.clientKey } },
      '$.temporal.serverCaCertPath',
      /not a PEM CA certificate/,
    );
    refused(
      {
        env: { TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientCert },
      },
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      /not a PEM private key/,
    );
    refused(
      { env: { TEMPORAL_TLS_SERVER_CA_CERT_PATH: dir } },
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      /not a file/,
    );
  });

  test('a certificate without its key, a key without its certificate, or a key of another certificate', () => {
    refused(
      { env: { TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert } },
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      /client key is not/,
    );
    refused(
      { env: { TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey } },
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      /client certificate is not/,
    );
    refused(
      {
        env: {
          TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
          TEMPORAL_TLS_CLIENT_KEY_PATH: pki.otherClientKey,
        },
      },
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      /is not the private key of the client certificate/,
    );
  });

  test('an expired client certificate is refused', () => {
    refused(
      { env: {}, config: { clientCertPath: pki.expiredClientCert, clientKeyPath: pki.expiredClientKey } },
      '$.temporal.clientCertPath',
      /expired on 2020-02-01/,
    );
  });

  test('contradictions and malformed values', () => {
    refused(
      { env: { TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_NAME: 'x.test' } },
      'TEMPORAL_TLS',
      /turns TLS off but TEMPORAL_TLS_SERVER_NAME is set/,
    );
    refused({ env: { TEMPORAL_TLS: 'yes please' } }, 'TEMPORAL_TLS', /expected true or false/);
  });

  test('TLS settings without an address are refused; TEMPORAL_TLS=false is not a TLS setting', () => {
    assert.throws(
      () =>
        assertNoSecurityWithoutAddress({
          env: {},
          config: { clientCertPath: 'c.pem', clientKeyPath: 'k.pem' },
        }),
      /\$\.temporal\.clientCertPath is set but no cluster address is: set TEMPORAL_ADDRESS/,
    );
    assert.throws(
      () => assertNoSecurityWithoutAddress({ env: { TEMPORAL_API_KEY: SECRET } }),
      (err: unknown) => err instanceof TemporalConnectionError && !err.message.includes(SECRET),
    );
    assertNoSecurityWithoutAddress({ env: { TEMPORAL_TLS: 'false' } });
  });

  test('a config without the connection settings parses and hashes as before', () => {
    const config = defaultConfig();
    assert.deepEqual(Object.keys(config.temporal), [
      'address',
      'namespace',
      'embeddedPort',
      'embeddedUiPort',
    ]);
    const file = path.join(dir, 'tls.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        temporal: { address: ADDRESS, tls: true, serverCaCertPath: pki.caCert, apiKeyEnv: 'K' },
      }),
    );
    // Where and how the run connects never changes what it computes.
    assert.equal(
      configHash(loadConfigFile(file)),
      configHash(parseConfig({ temporal: { address: ADDRESS } })),
    );
  });
});
