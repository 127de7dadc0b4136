/**
 * Providing server binaries: the pinned prebuilt release is tried first and used only when its
 * SHA-256 and `--version` match; any failure (no network, a hung server, a bad checksum, a wrong
 * version) falls through to the build at once. The network is a fake `fetch` here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TEMPORAL_CLI } from '../../infra/binaries';
import {
  cachedBinaryPath,
  ensureBinary,
  type GoBinarySpec,
  type ProvideOptions,
} from '../../infra/go-binary';

let dir: string;
let savedCacheDir: string | undefined;
let good: Uint8Array;
let wrongVersion: Uint8Array;

/** A .tar.gz holding an executable `fake-server` that prints `version`. */
function archive(version: string): Uint8Array {
  const src = fs.mkdtempSync(path.join(dir, 'src-'));
  fs.writeFileSync(
    path.join(src, 'fake-server'),
    `#!/bin/sh\necho "fake-server version ${version} (test)"\n`,
    {
      mode: 0o755,
    },
  );
  const out = path.join(src, 'release.tar.gz');
  const r = spawnSync('tar', ['-czf', out, '-C', src, 'fake-server']);
  assert.equal(r.status, 0, String(r.stderr));
  return fs.readFileSync(out);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let specs = 0;
/** A spec of its own per test, so each starts with nothing cached. */
function spec(pinned: string): GoBinarySpec {
  return {
    name: `fake-server-${++specs}`,
    version: '2.3.4',
    module: 'example.com/fake-server@v2.3.4',
    envVar: 'DRO_FAKE_SERVER_BIN_UNSET',
    typicalBuild: 'a moment',
    download: {
      archiveUrl: (platform, arch) =>
        platform === 'linux'
          ? `https://releases.example/fake-server_2.3.4_${platform}_${arch}.tar.gz`
          : undefined,
      sha256: { 'linux-x64': pinned },
      member: 'fake-server',
    },
  };
}

/** Records the order of download and build; `respond` plays the network. */
function harness(respond: (url: string, init?: RequestInit) => Promise<Response>) {
  const events: string[] = [];
  const lines: string[] = [];
  const options: ProvideOptions = {
    platform: 'linux',
    arch: 'x64',
    log: (line) => lines.push(line),
    fetch: ((url: string, init?: RequestInit) => {
      events.push(`fetch ${url}`);
      return respond(url, init);
    }) as typeof fetch,
    build: (s) => {
      events.push('build');
      return Promise.resolve({ path: `/built/${s.name}`, source: 'built' });
    },
  };
  return { events, lines, options };
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-go-binary-'));
  savedCacheDir = process.env.DRO_CACHE_DIR;
  process.env.DRO_CACHE_DIR = path.join(dir, 'cache');
  good = archive('2.3.4');
  wrongVersion = archive('2.3.5');
});

after(() => {
  if (savedCacheDir === undefined) delete process.env.DRO_CACHE_DIR;
  else process.env.DRO_CACHE_DIR = savedCacheDir;
  fs.rmSync(dir, { recursive: true, force: true });
});

void describe('ensureBinary', () => {
  void test('a verified download is used and cached; nothing is built', async () => {
    const s = spec(sha256(good));
    const { events, lines, options } = harness(() => Promise.resolve(new Response(good)));
    const got = await ensureBinary(s, options);
    assert.deepEqual(events, [`fetch https://releases.example/fake-server_2.3.4_linux_x64.tar.gz`]);
    assert.deepEqual(got, { path: cachedBinaryPath(s), source: 'downloaded' });
    assert.match(spawnSync(got.path, ['--version'], { encoding: 'utf8' }).stdout, /version 2\.3\.4/);
    assert.match(lines.at(-1)!, /sha256 and version verified/);
    // The next call finds it in the cache.
    assert.deepEqual(await ensureBinary(s, options), { path: cachedBinaryPath(s), source: 'cache' });
    assert.equal(events.length, 1);
  });

  void test('an archive whose checksum does not match is rejected, then the binary is built', async () => {
    const s = spec(sha256(good));
    const tampered = Uint8Array.from(good);
    tampered[tampered.length - 10]! ^= 0xff;
    const { events, lines, options } = harness(() => Promise.resolve(new Response(tampered)));
    const got = await ensureBinary(s, options);
    assert.deepEqual(events, [`fetch https://releases.example/fake-server_2.3.4_linux_x64.tar.gz`, 'build']);
    assert.equal(got.source, 'built');
    assert.ok(
      lines.some((l) => l.includes(`its sha256 is ${sha256(tampered)}, the pinned one ${sha256(good)}`)),
    );
    assert.equal(fs.existsSync(cachedBinaryPath(s)), false);
  });

  void test('a binary whose --version names another version is rejected', async () => {
    const s = spec(sha256(wrongVersion));
    const { events, lines, options } = harness(() => Promise.resolve(new Response(wrongVersion)));
    assert.equal((await ensureBinary(s, options)).source, 'built');
    assert.equal(events.at(-1), 'build');
    assert.ok(lines.some((l) => /`--version` says .*2\.3\.5.*not 2\.3\.4/.test(l)));
    assert.equal(fs.existsSync(cachedBinaryPath(s)), false);
  });

  void test('without a network the download fails at once and the build follows', async () => {
    const s = spec(sha256(good));
    const { events, lines, options } = harness(() =>
      Promise.reject(new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } })),
    );
    const started = Date.now();
    assert.equal((await ensureBinary(s, options)).source, 'built');
    assert.ok(Date.now() - started < 1000);
    assert.equal(events.length, 2);
    assert.match(lines.join('\n'), /Download failed after .* s \(fetch failed: ENOTFOUND\); building/);
  });

  void test('a server that never answers is given up on after the connect timeout', async () => {
    const s = spec(sha256(good));
    const { events, lines, options } = harness(
      (_url, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason as Error));
        }),
    );
    const started = Date.now();
    assert.equal((await ensureBinary(s, { ...options, connectTimeoutMs: 300 })).source, 'built');
    const ms = Date.now() - started;
    assert.ok(ms >= 250 && ms < 3000, `${ms} ms`);
    assert.deepEqual(events.at(-1), 'build');
    assert.match(lines.join('\n'), /no answer within 0\.3 s/);
  });

  void test('HTTP errors and platforms without a pinned release fall through to the build', async () => {
    const s = spec(sha256(good));
    const notFound = harness(() => Promise.resolve(new Response('no', { status: 404 })));
    assert.equal((await ensureBinary(s, notFound.options)).source, 'built');
    assert.match(notFound.lines.join('\n'), /HTTP 404/);
    const mac = harness(() => Promise.resolve(new Response(good)));
    assert.equal(
      (await ensureBinary(spec(sha256(good)), { ...mac.options, platform: 'darwin' })).source,
      'built',
    );
    assert.deepEqual(mac.events, ['build']);
  });

  void test('a build says it is still running while `go install` is silent', async () => {
    const fakeGo = fs.mkdtempSync(path.join(dir, 'go-'));
    fs.writeFileSync(
      path.join(fakeGo, 'go'),
      '#!/bin/sh\n' +
        'if [ "$1" = version ]; then echo "go version go1.99 fake/test"; exit 0; fi\n' +
        'sleep 1\n' +
        'printf "#!/bin/sh\\necho built\\n" > "$GOBIN/fake-server"; chmod +x "$GOBIN/fake-server"\n',
      { mode: 0o755 },
    );
    const savedPath = process.env.PATH;
    process.env.PATH = `${fakeGo}${path.delimiter}${savedPath ?? ''}`;
    try {
      const s = spec(sha256(good));
      const lines: string[] = [];
      const got = await ensureBinary(s, {
        platform: 'linux',
        arch: 'x64',
        log: (line) => lines.push(line),
        fetch: (() => Promise.reject(new TypeError('fetch failed'))) as typeof fetch,
        progressSeconds: 0.25,
      });
      assert.deepEqual(got, { path: cachedBinaryPath(s), source: 'built' });
      assert.match(lines[0]!, /^Downloading /);
      assert.match(lines[1]!, /^Download failed/);
      assert.match(
        lines[2]!,
        /^Building fake-server-\d+ 2\.3\.4 with `go install example\.com\/fake-server@v2\.3\.4` \(go version go1\.99 fake\/test\)/,
      );
      assert.ok(
        lines.filter((l) => /still building fake-server-\d+: \d+ s so far \(usually a moment\)/.test(l))
          .length >= 2,
        lines.join('\n'),
      );
      assert.match(lines.at(-1)!, /^Built fake-server-\d+ in \d+ s ->/);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  void test('the Temporal CLI names a pinned release archive for the common platforms', () => {
    const release = TEMPORAL_CLI.download!;
    for (const key of ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']) {
      const [platform, arch] = key.split('-') as [string, string];
      assert.match(release.sha256[key] ?? '', /^[0-9a-f]{64}$/);
      assert.match(
        release.archiveUrl(platform, arch) ?? '',
        /^https:\/\/github\.com\/temporalio\/cli\/releases\/download\/v1\.5\.1\/temporal_cli_1\.5\.1_(linux|darwin)_(amd64|arm64)\.tar\.gz$/,
      );
    }
    assert.equal(release.archiveUrl('win32', 'x64'), undefined);
  });
});
