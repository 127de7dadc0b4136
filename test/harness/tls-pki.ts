/**
 * A throwaway PKI made with the `openssl` CLI for the TLS tests: a CA, a server certificate for
 * `temporal.test`, a client certificate, an expired client certificate (issued with `openssl ca`,
 * which accepts a start and end date in the past) and an unrelated second CA with its own client
 * certificate. EC P-256 keys keep generation fast.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const SERVER_NAME = 'temporal.test';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  expiredClientCert: string;
  expiredClientKey: string;
  otherCaCert: string;
  /** A client certificate issued by the other CA. */
  otherClientCert: string;
  otherClientKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '');
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr.trim()}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(dir: string, name: string, cn: string): void {
  openssl(
    dir,
    'req',
    '-x509',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

function issue(dir: string, ca: string, name: string, cn: string, ext: string): void {
  openssl(dir, 'req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '30',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
}

const CLIENT_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';

/** A client certificate valid only in 2020, issued by `ca` through `openssl ca` and its database. */
function issueExpired(dir: string, ca: string, name: string): void {
  openssl(
    dir,
    'req',
    '-new',
    ...EC,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    '/CN=dro-expired',
  );
  const db = path.join(dir, 'ca-db');
  fs.mkdirSync(db, { recursive: true });
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'serial'), `${randomBytes(8).toString('hex')}\n`);
  fs.writeFileSync(
    path.join(db, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `database = ${path.join(db, 'index.txt')}`,
      `new_certs_dir = ${db}`,
      `serial = ${path.join(db, 'serial')}`,
      'default_md = sha256',
      'policy = any',
      'x509_extensions = client_ext',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '[client_ext]',
      ...CLIENT_EXT.trim().split('\n'),
      '',
    ].join('\n'),
  );
  openssl(
    dir,
    'ca',
    '-batch',
    '-config',
    path.join(db, 'ca.cnf'),
    '-cert',
    `${ca}.pem`,
    '-keyfile',
    `${ca}.key`,
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
    '-notext',
    '-in',
    `${name}.csr`,
    '-out',
    `${name}.pem`,
  );
}

/** Creates the PKI in `dir` (which must exist). */
export function makeTestPki(dir: string): TestPki {
  makeCa(dir, 'ca', 'dro test CA');
  makeCa(dir, 'other-ca', 'unrelated test CA');
  issue(
    dir,
    'ca',
    'server',
    SERVER_NAME,
    `subjectAltName=DNS:${SERVER_NAME}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  issue(dir, 'ca', 'client', 'dro-client', CLIENT_EXT);
  issue(dir, 'other-ca', 'other-client', 'dro-other-client', CLIENT_EXT);
  issueExpired(dir, 'ca', 'expired');
  const f = (name: string): string => path.join(dir, name);
  return {
    dir,
    caCert: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    expiredClientCert: f('expired.pem'),
    expiredClientKey: f('expired.key'),
    otherCaCert: f('other-ca.pem'),
    otherClientCert: f('other-client.pem'),
    otherClientKey: f('other-client.key'),
  };
}
