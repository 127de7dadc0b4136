/**
 * A real S3-compatible server for integration tests: versitygw with its posix backend on
 * 127.0.0.1, a random free port and a temporary data directory, with one bucket created.
 *
 * ```ts
 * const s3 = await startS3Server();
 * try { ... s3.endpoint, s3.credentials, s3.bucket ... } finally { await s3.stop(); }
 * ```
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { VERSITYGW } from '../../infra/binaries';
import { ensureBinary } from '../../infra/go-binary';

export interface S3TestServer {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  port: number;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The posix backend directory: `<dataDir>/<bucket>/<key>` is each object's file. */
  dataDir: string;
  /** A client for the test bucket with path-style addressing and no retries. */
  client: S3Client;
  /** Kills the server and removes its directory. */
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago (nothing listens on it once this returns). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

async function waitForHttp(
  url: string,
  child: ChildProcess,
  log: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`versitygw exited (${child.exitCode ?? child.signalCode}) before answering:\n${log()}`);
    }
    try {
      // Any HTTP answer, even 403 for an unsigned request, means the server is up.
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (Date.now() > deadline)
        throw new Error(`versitygw did not answer at ${url} within ${timeoutMs} ms:\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const binary = (await ensureBinary(VERSITYGW)).path;
  const bucket = options.bucket ?? 'dro-test';
  const region = 'us-east-1';
  const credentials = {
    accessKeyId: 'droTestAccess',
    secretAccessKey: `droTestSecret${randomBytes(8).toString('hex')}`,
  };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-s3-'));
  const dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir);
  let output = '';
  const log = () => output.slice(-4000);

  // A port can be taken between probing and binding; try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const child = spawn(
      binary,
      ['--port', `127.0.0.1:${port}`, '--region', region, '--quiet', 'posix', dataDir],
      {
        // Credentials through the environment keep the secret off the process list.
        env: {
          ...process.env,
          ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
          ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitForHttp(endpoint, child, log, 20_000);
    } catch (err) {
      await stopProcess(child);
      if (attempt < 3 && /address already in use/i.test(output)) continue;
      fs.rmSync(root, { recursive: true, force: true });
      throw err;
    }
    const client = new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });
    // If the test process dies without calling stop(), do not leave the server or its data behind.
    const onExit = () => {
      child.kill('SIGKILL');
      fs.rmSync(root, { recursive: true, force: true });
    };
    process.once('exit', onExit);
    const stop = async () => {
      process.off('exit', onExit);
      client.destroy();
      await stopProcess(child);
      fs.rmSync(root, { recursive: true, force: true });
    };
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      await stop();
      throw err;
    }
    return { endpoint, port, region, bucket, credentials, dataDir, client, stop };
  }
}
