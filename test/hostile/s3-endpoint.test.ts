/**
 * An S3 endpoint that does not answer as S3 is refused before `dro run` starts anything: a web
 * page, an error page, a service that does not speak HTTP, TLS asked of a plain-HTTP server. The
 * message names `$.storage.endpoint`, the endpoint and what it answered, with no parser trace,
 * and no server, state directory or artifact is created.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RAW_JS_ERROR, runDroMeasured, snapshot, STACK_FRAME } from './measured-cli';

const TIME_LIMIT_MS = 60_000;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-hostile-s3-'));

describe('dro run refuses an S3 endpoint that is not S3, before it starts', { concurrency: 2 }, () => {
  const servers: net.Server[] = [];
  const listen = async (server: net.Server): Promise<string> => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  };
  let page = '';
  let notFound = '';
  let notHttp = '';
  before(async () => {
    page = await listen(
      http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>welcome</body></html>');
      }),
    );
    notFound = await listen(
      http.createServer((_req, res) => {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no such page');
      }),
    );
    notHttp = await listen(net.createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n')));
  });
  after(() => {
    for (const s of servers) s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const cases: { name: string; endpoint: () => string; expect: RegExp }[] = [
    {
      name: 'a web page',
      endpoint: () => `http://${page}`,
      expect: /answered HTTP 200 but not with a listing of bucket dro-bucket; is it an S3 endpoint\?/,
    },
    {
      name: 'an error page',
      endpoint: () => `http://${notFound}`,
      expect: /answered HTTP 404 \(text\/plain\), which is not an S3 response/,
    },
    {
      name: 'a service that does not speak HTTP',
      endpoint: () => `http://${notHttp}`,
      expect: /answered something that is not HTTP/,
    },
    {
      name: 'https:// to a plain-HTTP server',
      endpoint: () => `https://${page}`,
      expect:
        /did not complete a TLS handshake \(wrong version number\); if it serves plain HTTP, write the endpoint with http:\/\//,
    },
  ];

  cases.forEach((c, i) => {
    test(c.name, async () => {
      const dir = path.join(work, `case-${i}`);
      fs.mkdirSync(dir);
      const endpoint = c.endpoint();
      fs.writeFileSync(
        path.join(dir, 'config.json'),
        JSON.stringify({ storage: { kind: 's3', bucket: 'dro-bucket', endpoint, forcePathStyle: true } }),
      );
      const state = path.join(work, `state-${i}`);
      const before = snapshot(dir);
      process.env.AWS_ACCESS_KEY_ID ??= 'hostile-test';
      process.env.AWS_SECRET_ACCESS_KEY ??= 'hostile-test-secret';
      const r = await runDroMeasured(dir, ['run', '-c', 'config.json'], state, {
        work,
        timeLimitMs: TIME_LIMIT_MS,
      });
      const shown = `output:\n${r.output}`;
      assert.equal(r.code, 1, shown);
      assert.match(
        r.output,
        new RegExp(`\\$\\.storage\\.endpoint: ${endpoint.replace(/[.:/]/g, '\\$&')}`),
        shown,
      );
      assert.match(r.output, c.expect, shown);
      assert.match(r.output, /nothing was started/, shown);
      assert.doesNotMatch(r.output, /^Temporal:/m, `a server was started; ${shown}`);
      assert.doesNotMatch(r.output, STACK_FRAME, `stack trace; ${shown}`);
      assert.doesNotMatch(r.output, RAW_JS_ERROR, `raw JavaScript error; ${shown}`);
      assert.deepEqual(snapshot(dir), before, 'files changed next to the config');
    });
  });
});
