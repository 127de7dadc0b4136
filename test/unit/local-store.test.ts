import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  ArtifactExistsError,
  ArtifactNotFoundError,
  DigestMismatchError,
  InvalidArtifactUriError,
  LocalArtifactStore,
  openStore,
  storeForUri,
} from '../../storage';
import { parseArtifactUri, validateKey } from '../../storage/uri';
import { chunked, pattern } from '../harness/bytes';

/** SHA-256("abc") from FIPS 180-2, appendix B.1. */
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const options = { kind: 'smoke', producer: 'local-store.test' };

/** Every file below `dir`, hidden ones included, relative to it. */
function allFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

void describe('LocalArtifactStore', () => {
  let tmp: string;
  let store: LocalArtifactStore;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-local-store-'));
    store = new LocalArtifactStore({ root: path.join(tmp, 'artifacts') });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  void test('put/get round trip returns the SHA-256 and a file:// URI under the root', async () => {
    const ref = await store.put('smoke/abc.bin', new TextEncoder().encode('abc'), options);
    assert.equal(ref.sha256, SHA256_ABC);
    assert.equal(ref.size, 3);
    assert.equal(ref.uri, pathToFileURL(path.join(store.root, 'smoke', 'abc.bin')).href);
    assert.ok(ref.uri.startsWith(`${store.baseUri}/`));
    assert.equal(new TextDecoder().decode(await store.get(ref.uri)), 'abc');
    assert.equal(new TextDecoder().decode(await store.get('smoke/abc.bin', SHA256_ABC)), 'abc');
  });

  void test('a committed artifact is written once: same bytes return it, other bytes are refused', async () => {
    const first = await store.put('once/a.bin', new TextEncoder().encode('abc'), options);
    const metaBefore = fs.readFileSync(path.join(store.root, 'once', 'a.bin.meta.json'), 'utf8');
    assert.deepEqual(await store.put('once/a.bin', new TextEncoder().encode('abc'), options), first);
    await assert.rejects(
      store.put('once/a.bin', new TextEncoder().encode('abd'), options),
      (err: unknown) => {
        assert.ok(err instanceof ArtifactExistsError);
        assert.equal(err.uri, first.uri);
        assert.match(err.message, /Refusing to overwrite .*once\/a\.bin/);
        return true;
      },
    );
    await assert.rejects(
      store.put('once/a.bin', chunked(new TextEncoder().encode('xyz'), 1), options),
      ArtifactExistsError,
    );
    assert.equal(new TextDecoder().decode(await store.get(first.uri, first.sha256)), 'abc');
    assert.equal(fs.readFileSync(path.join(store.root, 'once', 'a.bin.meta.json'), 'utf8'), metaBefore);
    const kept = await store.put('once/a.bin', new TextEncoder().encode('other'), {
      ...options,
      ifExists: 'keep',
    });
    assert.deepEqual(kept, first);
    assert.deepEqual(
      allFiles(path.join(store.root, 'once')),
      ['a.bin', 'a.bin.meta.json'],
      'no temporary file is left behind',
    );
  });

  void test('an object left without metadata by an interrupted write is replaced by the next put', async () => {
    fs.mkdirSync(path.join(store.root, 'leftover'), { recursive: true });
    fs.writeFileSync(path.join(store.root, 'leftover', 'x.bin'), 'partial');
    const ref = await store.put('leftover/x.bin', new TextEncoder().encode('complete'), options);
    assert.equal(new TextDecoder().decode(await store.get(ref.uri)), 'complete');
  });

  void test('metadata is stored beside the object and returned by head', async () => {
    const ref = await store.put('meta/x.bin', new Uint8Array([1, 2, 3, 4]), {
      kind: 'checkpoint',
      producer: 'sft',
      inputs: [SHA256_ABC],
      extra: { step: 7 },
    });
    const head = await store.head(ref.uri);
    assert.ok(head);
    assert.deepEqual(head.ref, ref);
    assert.equal(head.metadata.kind, 'checkpoint');
    assert.equal(head.metadata.producer, 'sft');
    assert.deepEqual(head.metadata.inputs, [SHA256_ABC]);
    assert.deepEqual(head.metadata.extra, { step: 7 });
    assert.ok(!Number.isNaN(Date.parse(head.metadata.createdAt)));
    const onDisk = JSON.parse(
      fs.readFileSync(path.join(store.root, 'meta', 'x.bin.meta.json'), 'utf8'),
    ) as Record<string, unknown>;
    assert.equal(onDisk.sha256, ref.sha256);
    assert.equal(onDisk.size, 4);
    assert.equal(await store.exists('meta/x.bin'), true);
    assert.equal(await store.exists('meta/missing.bin'), false);
    assert.equal(await store.head('meta/missing.bin'), undefined);
  });

  void test('streaming put writes every chunk and digests the whole stream', async () => {
    const data = pattern(3 * 1024 * 1024 + 17, 1);
    const ref = await store.put('stream/big.bin', chunked(data, 64 * 1024), options);
    assert.equal(ref.size, data.byteLength);
    assert.equal(ref.sha256, createHash('sha256').update(data).digest('hex'));
    assert.deepEqual(new Uint8Array(await store.get(ref.uri, ref.sha256)), data);
  });

  void test('a flipped byte is detected on read and names the URI', async () => {
    const ref = await store.put('corrupt/flip.bin', pattern(4096, 2), options);
    const file = path.join(store.root, 'corrupt', 'flip.bin');
    const bytes = fs.readFileSync(file);
    bytes[1000] = (bytes[1000] ?? 0) ^ 0x01;
    fs.writeFileSync(file, bytes);
    await assert.rejects(store.get(ref.uri), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.type, 'DigestMismatchError');
      assert.equal(err.uri, ref.uri);
      assert.equal(err.truncated, false);
      assert.match(err.message, new RegExp(ref.uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assert.match(err.message, new RegExp(ref.sha256));
      return true;
    });
  });

  void test('a truncated file is detected on read and reported as truncated', async () => {
    const ref = await store.put('corrupt/short.bin', pattern(4096, 3), options);
    fs.truncateSync(path.join(store.root, 'corrupt', 'short.bin'), 1000);
    await assert.rejects(store.get('corrupt/short.bin'), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.uri, ref.uri);
      assert.equal(err.truncated, true);
      assert.match(err.message, /truncated: read 1000 of 4096 bytes/);
      assert.ok(err.message.includes(ref.uri));
      return true;
    });
  });

  void test('a caller-supplied digest that differs from the content is a mismatch', async () => {
    const ref = await store.put('pinned/a.bin', new TextEncoder().encode('abd'), options);
    await assert.rejects(store.get(ref.uri, SHA256_ABC), DigestMismatchError);
    await assert.rejects(store.get(ref.uri, 'not-hex'), /expectedSha256 .* must be 64 lower-case hex digits/);
  });

  void test('a write that fails midway leaves nothing under the key and no temporary files', async () => {
    const dir = path.join(store.root, 'fail');
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield pattern(100_000, 4);
      yield pattern(100_000, 5);
      throw new Error('source failed');
    }
    await assert.rejects(store.put('fail/new.bin', broken(), options), /source failed/);
    assert.equal(fs.existsSync(path.join(dir, 'new.bin')), false);
    assert.equal(await store.exists('fail/new.bin'), false);
    assert.deepEqual(allFiles(dir), []);

    // A failed overwrite keeps the previous complete artifact.
    const first = await store.put('fail/kept.bin', pattern(1000, 6), options);
    await assert.rejects(store.put('fail/kept.bin', broken(), options), /source failed/);
    assert.deepEqual(new Uint8Array(await store.get('fail/kept.bin')), pattern(1000, 6));
    assert.deepEqual(await store.list('fail/'), ['fail/kept.bin']);
    assert.deepEqual(allFiles(dir), ['kept.bin', 'kept.bin.meta.json']);
    assert.equal((await store.head('fail/kept.bin'))?.ref.sha256, first.sha256);
  });

  void test('an object without metadata (interrupted write) is invisible and unreadable without a digest', async () => {
    fs.mkdirSync(path.join(store.root, 'orphan'), { recursive: true });
    fs.writeFileSync(path.join(store.root, 'orphan', 'o.bin'), 'abc');
    assert.equal(await store.exists('orphan/o.bin'), false);
    assert.deepEqual(await store.list('orphan/'), []);
    await assert.rejects(store.get('orphan/o.bin'), ArtifactNotFoundError);
    // With the digest in hand the bytes can still be verified and read.
    assert.equal(new TextDecoder().decode(await store.get('orphan/o.bin', SHA256_ABC)), 'abc');
  });

  void test('putFile streams a file in, hashing it on the way, under the write-once rule', async () => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src, { recursive: true });
    // Larger than one 4 MiB read, so the file arrives in several chunks.
    const data = pattern(9 * 1024 * 1024 + 5, 21);
    fs.writeFileSync(path.join(src, 'model.safetensors'), data);
    const ref = await store.putFile('files/model.safetensors', path.join(src, 'model.safetensors'), options);
    assert.equal(ref.size, data.byteLength);
    assert.equal(ref.sha256, createHash('sha256').update(data).digest('hex'));
    assert.ok(Buffer.from(await store.get(ref.uri, ref.sha256)).equals(Buffer.from(data)));
    assert.deepEqual(
      await store.putFile('files/model.safetensors', path.join(src, 'model.safetensors'), options),
      ref,
    );
    fs.writeFileSync(path.join(src, 'other.safetensors'), pattern(1000, 22));
    await assert.rejects(
      store.putFile('files/model.safetensors', path.join(src, 'other.safetensors'), options),
      ArtifactExistsError,
    );
    await assert.rejects(
      store.putFile('files/none.bin', path.join(src, 'missing.bin'), options),
      (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT' && /missing\.bin/.test(String(err)),
    );
    assert.deepEqual(allFiles(path.join(store.root, 'files')), [
      'model.safetensors',
      'model.safetensors.meta.json',
    ]);
  });

  void test('getToFile writes the verified bytes and never leaves a partial file under the name', async () => {
    const data = pattern(5 * 1024 * 1024 + 3, 23);
    const ref = await store.put('files/out.bin', data, options);
    const out = path.join(tmp, 'downloads', 'nested', 'out.bin');
    const got = await store.getToFile(ref.uri, out, ref.sha256);
    assert.deepEqual(got, ref);
    assert.ok(fs.readFileSync(out).equals(Buffer.from(data)));

    // Corrupt the stored bytes: the read fails, the earlier download stays as it was and no
    // temporary file is left beside it.
    const stored = path.join(store.root, 'files', 'out.bin');
    const bytes = fs.readFileSync(stored);
    bytes[4_000_000] = (bytes[4_000_000] ?? 0) ^ 0x80;
    fs.writeFileSync(stored, bytes);
    await assert.rejects(store.getToFile('files/out.bin', out), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.uri, ref.uri);
      return true;
    });
    const fresh = path.join(tmp, 'downloads', 'fresh.bin');
    await assert.rejects(store.getToFile('files/out.bin', fresh, ref.sha256), DigestMismatchError);
    assert.equal(fs.existsSync(fresh), false);
    assert.ok(fs.readFileSync(out).equals(Buffer.from(data)));
    assert.deepEqual(allFiles(path.join(tmp, 'downloads')), ['nested/out.bin']);
    await assert.rejects(store.getToFile('files/never.bin', fresh), ArtifactNotFoundError);
  });

  void test('list filters by key prefix, ignores hidden files and sorts', async () => {
    await store.put('list/b', new Uint8Array([1]), options);
    await store.put('list/a/1', new Uint8Array([2]), options);
    await store.put('list/ab', new Uint8Array([3]), options);
    fs.writeFileSync(path.join(store.root, 'list', '.b.tmp-1-abc'), 'partial');
    assert.deepEqual(await store.list('list/'), ['list/a/1', 'list/ab', 'list/b']);
    assert.deepEqual(await store.list('list/a'), ['list/a/1', 'list/ab']);
    assert.deepEqual(await store.list('nothing/'), []);
    await assert.rejects(store.list('../'), InvalidArtifactUriError);
  });

  void test('delete removes the object and its metadata; reading it then fails with ArtifactNotFoundError', async () => {
    const ref = await store.put('del/x', new Uint8Array([9]), options);
    await store.delete(ref.uri);
    assert.equal(await store.exists(ref.uri), false);
    assert.deepEqual(allFiles(path.join(store.root, 'del')), []);
    await assert.rejects(
      store.get(ref.uri),
      (err: unknown) => err instanceof ArtifactNotFoundError && err.uri === ref.uri,
    );
    await store.delete(ref.uri);
  });

  void test('keys and URIs outside the store are rejected with the offending value in the message', async () => {
    for (const bad of [
      '',
      '/abs',
      'a//b',
      'a/',
      '../up',
      'a/../b',
      '.hidden',
      'a/.tmp',
      'x.meta.json',
      'sp ace',
    ]) {
      await assert.rejects(
        store.put(bad, new Uint8Array(1), options),
        (err: unknown) => err instanceof InvalidArtifactUriError && err.message.includes(JSON.stringify(bad)),
        `key ${JSON.stringify(bad)}`,
      );
    }
    await assert.rejects(store.get('file:///elsewhere/x'), /outside this store's root/);
    await assert.rejects(store.get('s3://bucket/x'), /not a file:\/\/ URI/);
    await assert.rejects(store.put('k', new Uint8Array(1), { kind: '', producer: 'p' }), /options\.kind/);
  });

  void test('the default root is <state dir>/artifacts and openStore builds a local store', () => {
    const saved = process.env.DRO_STATE_DIR;
    process.env.DRO_STATE_DIR = path.join(tmp, 'state');
    try {
      assert.equal(new LocalArtifactStore().root, path.join(tmp, 'state', 'artifacts'));
      const opened = openStore({ kind: 'local' });
      assert.ok(opened instanceof LocalArtifactStore);
      assert.equal(opened.root, path.join(tmp, 'state', 'artifacts'));
    } finally {
      if (saved === undefined) delete process.env.DRO_STATE_DIR;
      else process.env.DRO_STATE_DIR = saved;
    }
  });

  void test('storeForUri reads a file:// artifact without knowing the store root', async () => {
    const ref = await store.put('deep/nested/file.bin', new TextEncoder().encode('abc'), options);
    const other = storeForUri(ref.uri);
    assert.equal(new TextDecoder().decode(await other.get(ref.uri, ref.sha256)), 'abc');
    const configured = storeForUri(ref.uri, { kind: 'local', root: store.root });
    assert.equal(configured.baseUri, store.baseUri);
    assert.deepEqual((await configured.head(ref.uri))?.ref, ref);
  });
});

void describe('artifact URIs', () => {
  void test('parses file and s3 URIs', () => {
    assert.deepEqual(parseArtifactUri('file:///tmp/a%20b/c'), { scheme: 'file', path: '/tmp/a b/c' });
    assert.deepEqual(parseArtifactUri('s3://my-bucket/runs/r1/x.bin'), {
      scheme: 's3',
      bucket: 'my-bucket',
      key: 'runs/r1/x.bin',
    });
    assert.deepEqual(parseArtifactUri('s3://my-bucket'), { scheme: 's3', bucket: 'my-bucket', key: '' });
  });

  void test('rejects malformed URIs with an error naming the URI and the reason', () => {
    const cases: [string, RegExp][] = [
      ['http://host/x', /unsupported scheme http/],
      ['relative/path', /not a URI/],
      ['file://server/share/x', /not host server/],
      ['file:relative', /must be absolute/],
      ['file:///tmp/x?y=1', /query or fragment/],
      ['s3://Bad_Bucket/x', /not a valid S3 bucket name/],
      ['s3://ab/x', /not a valid S3 bucket name/],
      ['s3://bucket//x', /empty path segment/],
      ['s3://bucket/a/../b', /must use only/],
    ];
    for (const [uri, reason] of cases) {
      assert.throws(
        () => parseArtifactUri(uri),
        (err: unknown) =>
          err instanceof InvalidArtifactUriError &&
          err.type === 'InvalidArtifactUriError' &&
          err.message.includes(JSON.stringify(uri)) &&
          reason.test(err.message),
        uri,
      );
    }
    assert.throws(() => validateKey('x'.repeat(1025)), /longer than 1024 bytes/);
  });
});
