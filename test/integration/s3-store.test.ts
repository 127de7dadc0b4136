/**
 * The S3 store against a real S3-compatible server (versitygw, posix backend).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  ArtifactExistsError,
  BucketNotFoundError,
  DigestMismatchError,
  isPermanent,
  openStore,
  S3ArtifactStore,
  StoreAccessDeniedError,
  StoreUnreachableError,
  checkS3Access,
  storeForUri,
} from '../../storage';
import type { S3StoreOptions } from '../../storage';
import type { S3TestServer } from '../harness/s3-server';
import { freePort, startS3Server } from '../harness/s3-server';
import { chunked, pattern } from '../harness/bytes';

const MiB = 1024 * 1024;
const options = { kind: 'smoke', producer: 's3-store.test' };

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

void describe('S3ArtifactStore against versitygw', () => {
  let s3: S3TestServer;
  let store: S3ArtifactStore;
  let base: S3StoreOptions;
  const opened: S3ArtifactStore[] = [];
  const make = (overrides: Partial<S3StoreOptions>) => {
    const s = new S3ArtifactStore({ ...base, ...overrides });
    opened.push(s);
    return s;
  };

  before(async () => {
    s3 = await startS3Server();
    base = {
      bucket: s3.bucket,
      prefix: 'it',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.credentials,
      partSizeMiB: 5,
      // Fail fast: refused connections are not retried.
      maxAttempts: 1,
      connectionTimeoutMs: 2000,
    };
    store = make({});
  });
  after(async () => {
    for (const s of opened) s.destroy();
    await s3?.stop();
  });

  void test('a streamed put larger than the part size is a completed multipart upload that reads back verified', async () => {
    const data = pattern(11 * MiB + 123, 1);
    const ref = await store.put('runs/r1/big.bin', chunked(data, 256 * 1024), options);
    assert.equal(ref.uri, `s3://${s3.bucket}/it/runs/r1/big.bin`);
    assert.equal(ref.size, data.byteLength);
    assert.equal(ref.sha256, sha256(data));
    const head = await s3.client.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: 'it/runs/r1/big.bin' }),
    );
    // Multipart ETags end in -<number of parts>: 11 MiB in 5 MiB parts is 3 parts.
    assert.match(head.ETag ?? '', /-3"?$/);
    assert.equal(head.ContentLength, data.byteLength);
    const back = await store.get(ref.uri, ref.sha256);
    assert.equal(back.byteLength, data.byteLength);
    assert.ok(Buffer.from(back).equals(Buffer.from(data)));
  });

  void test('an in-memory put larger than the part size also round-trips', async () => {
    const data = pattern(6 * MiB, 2);
    const ref = await store.put('runs/r1/mem.bin', data, options);
    assert.equal(ref.sha256, sha256(data));
    assert.ok(Buffer.from(await store.get('runs/r1/mem.bin')).equals(Buffer.from(data)));
  });

  void test('metadata is stored in the companion and on the object; head, exists and list see it', async () => {
    const ref = await store.put('runs/r2/ckpt', new TextEncoder().encode('abc'), {
      kind: 'checkpoint',
      producer: 'sft',
      inputs: ['ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
      extra: { step: 3 },
    });
    const head = await store.head(ref.uri);
    assert.ok(head);
    assert.deepEqual(head.ref, ref);
    assert.equal(head.metadata.kind, 'checkpoint');
    assert.equal(head.metadata.producer, 'sft');
    assert.deepEqual(head.metadata.inputs, [
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    ]);
    assert.deepEqual(head.metadata.extra, { step: 3 });
    const object = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'it/runs/r2/ckpt' }));
    assert.equal(object.Metadata?.['dro-kind'], 'checkpoint');
    assert.equal(object.Metadata?.['dro-sha256'], ref.sha256);
    const companion = await s3.client.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: 'it/runs/r2/ckpt.meta.json' }),
    );
    assert.ok((companion.ContentLength ?? 0) > 0);
    assert.equal(await store.exists('runs/r2/ckpt'), true);
    assert.equal(await store.exists('runs/r2/none'), false);
    assert.deepEqual(await store.list('runs/r2/'), ['runs/r2/ckpt']);
    await store.delete('runs/r2/ckpt');
    assert.equal(await store.exists('runs/r2/ckpt'), false);
    assert.deepEqual(await store.list('runs/r2/'), []);
  });

  void test('a body overwritten behind the store is detected on read, naming the s3:// URI', async () => {
    const data = pattern(64 * 1024, 3);
    const ref = await store.put('corrupt/flip.bin', data, options);
    const flipped = Uint8Array.from(data);
    flipped[100] = (flipped[100] ?? 0) ^ 0xff;
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'it/corrupt/flip.bin', Body: flipped }),
    );
    await assert.rejects(store.get(ref.uri), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.uri, `s3://${s3.bucket}/it/corrupt/flip.bin`);
      assert.ok(err.message.includes(err.uri));
      assert.equal(err.truncated, false);
      assert.ok(isPermanent(err));
      return true;
    });
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'it/corrupt/flip.bin', Body: data.subarray(0, 1000) }),
    );
    await assert.rejects(store.get(ref.uri, ref.sha256), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.truncated, true);
      assert.match(err.message, /truncated: read 1000 of 65536 bytes/);
      return true;
    });
  });

  void test('a committed object is written once: same bytes return it, other bytes are refused', async () => {
    const data = pattern(4096, 11);
    const first = await store.put('once/a.bin', data, options);
    assert.deepEqual(await store.put('once/a.bin', data, options), first);
    const other = pattern(4096, 12);
    await assert.rejects(store.put('once/a.bin', other, options), (err: unknown) => {
      assert.ok(err instanceof ArtifactExistsError);
      assert.equal(err.uri, `s3://${s3.bucket}/it/once/a.bin`);
      assert.ok(isPermanent(err));
      return true;
    });
    await assert.rejects(store.put('once/a.bin', chunked(other, 1000), options), ArtifactExistsError);
    assert.equal(sha256(await store.get(first.uri)), first.sha256);
    // A raw conditional PUT shows the server itself enforces If-None-Match on the committed key.
    await assert.rejects(
      s3.client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: 'it/once/a.bin', Body: other, IfNoneMatch: '*' }),
      ),
      (err: unknown) =>
        (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412,
    );
  });

  void test('the server verifies the SHA-256 sent with a put', async () => {
    const data = pattern(1024, 5);
    await assert.rejects(
      s3.client.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: 'it/checksum/bad.bin',
          Body: data,
          ChecksumSHA256: Buffer.from(sha256(pattern(1024, 6)), 'hex').toString('base64'),
        }),
      ),
    );
    const ref = await store.put('checksum/good.bin', data, options);
    const head = await s3.client.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: 'it/checksum/good.bin', ChecksumMode: 'ENABLED' }),
    );
    assert.equal(head.ChecksumSHA256, Buffer.from(ref.sha256, 'hex').toString('base64'));
  });

  void test('an upload that fails midway leaves no object and no pending multipart upload', async () => {
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield pattern(6 * MiB, 4);
      await new Promise((r) => setTimeout(r, 200));
      throw new Error('producer crashed');
    }
    await assert.rejects(store.put('fail/partial.bin', broken(), options), /producer crashed/);
    await assert.rejects(
      s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'it/fail/partial.bin' })),
      (err: unknown) => (err as { name?: string }).name === 'NotFound',
    );
    const uploads = await s3.client.send(
      new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: 'it/fail/' }),
    );
    assert.deepEqual(uploads.Uploads ?? [], []);
    assert.equal(await store.exists('fail/partial.bin'), false);
    assert.deepEqual(await store.list('fail/'), []);
    assert.equal(fs.existsSync(path.join(s3.dataDir, s3.bucket, 'it', 'fail', 'partial.bin')), false);
  });

  void test('putFile is a multipart upload with a SHA-256 per part; getToFile verifies while streaming', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-s3-files-'));
    try {
      const data = pattern(12 * MiB, 31);
      const file = path.join(src, 'model.safetensors');
      fs.writeFileSync(file, data);
      const ref = await store.putFile('files/model.safetensors', file, options);
      assert.equal(ref.size, data.byteLength);
      assert.equal(ref.sha256, sha256(data));
      const head = await s3.client.send(
        new HeadObjectCommand({
          Bucket: s3.bucket,
          Key: 'it/files/model.safetensors',
          ChecksumMode: 'ENABLED',
        }),
      );
      // 12 MiB in 5 MiB parts is 3 parts, and the server checked a SHA-256 for each of them.
      assert.match(head.ETag ?? '', /-3"?$/);
      assert.match(head.ChecksumSHA256 ?? '', /-3$/);

      const out = path.join(src, 'down', 'model.safetensors');
      assert.deepEqual(await store.getToFile(ref.uri, out, ref.sha256), ref);
      assert.ok(fs.readFileSync(out).equals(Buffer.from(data)));
      assert.ok(Buffer.from(await store.get(ref.uri)).equals(Buffer.from(data)));

      // Write once: the same file returns the committed artifact, other bytes are refused.
      assert.deepEqual(await store.putFile('files/model.safetensors', file, options), ref);
      const other = path.join(src, 'other.safetensors');
      const otherData = Uint8Array.from(data);
      otherData[7 * MiB] = (otherData[7 * MiB] ?? 0) ^ 1;
      fs.writeFileSync(other, otherData);
      await assert.rejects(store.putFile('files/model.safetensors', other, options), (err: unknown) => {
        assert.ok(err instanceof ArtifactExistsError);
        assert.equal(err.newSha256, sha256(otherData));
        return true;
      });
      assert.equal(sha256(await store.get(ref.uri)), ref.sha256);

      // The object replaced behind the store (same size, one byte changed) is caught on read, and
      // getToFile leaves neither the file nor a temporary file behind.
      await s3.client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: 'it/files/model.safetensors', Body: otherData }),
      );
      const fresh = path.join(src, 'down', 'fresh.safetensors');
      for (const read of [() => store.get(ref.uri), () => store.getToFile(ref.uri, fresh)]) {
        await assert.rejects(read(), (err: unknown) => {
          assert.ok(err instanceof DigestMismatchError);
          assert.equal(err.uri, ref.uri);
          assert.match(err.message, /the size matches/);
          return true;
        });
      }
      assert.deepEqual(fs.readdirSync(path.join(src, 'down')), ['model.safetensors']);
      assert.deepEqual(
        (await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: 'it/files/' })))
          .Uploads ?? [],
        [],
      );
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
  });

  void test('a multipart upload never replaces an object another writer completed while it ran', async () => {
    const mine = pattern(11 * MiB, 41);
    const theirs = pattern(11 * MiB, 42);
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((r) => (open = r));
      let started!: () => void;
      const begun = new Promise<void>((r) => (started = r));
      async function* body(data: Uint8Array): AsyncGenerator<Uint8Array> {
        started();
        yield data.subarray(0, 6 * MiB);
        await opened;
        yield data.subarray(6 * MiB);
      }
      return { open, begun, body };
    };
    const a = gate();
    const b = gate();
    const first = store.put('race/x.bin', a.body(theirs), options);
    const second = store.put('race/x.bin', b.body(mine), options);
    // Both writers found the key free and are uploading; the first completes and commits.
    await Promise.all([a.begun, b.begun]);
    a.open();
    const committed = await first;
    b.open();
    await assert.rejects(second, (err: unknown) => {
      assert.ok(err instanceof ArtifactExistsError, String(err));
      assert.equal(err.existingSha256, committed.sha256);
      return true;
    });
    // The committed reference still reads back: the late upload did not overwrite its object.
    assert.ok(Buffer.from(await store.get(committed.uri, committed.sha256)).equals(Buffer.from(theirs)));
  });

  void test('an object left without a companion is replaced by a streamed put', async () => {
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'it/leftover/x.bin', Body: pattern(1000, 51) }),
    );
    const quick = make({ commitWaitMs: 200 });
    const data = pattern(6 * MiB, 52);
    const ref = await quick.put('leftover/x.bin', chunked(data, 512 * 1024), options);
    assert.equal(ref.sha256, sha256(data));
    assert.ok(Buffer.from(await quick.get(ref.uri)).equals(Buffer.from(data)));
  });

  void test('a refused endpoint is StoreUnreachableError naming the endpoint, and it fails fast', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const closed = make({ endpoint });
    const started = Date.now();
    for (const op of [
      () => closed.get('x'),
      () => closed.put('x', new Uint8Array(1), options),
      () => closed.list(''),
    ]) {
      await assert.rejects(op(), (err: unknown) => {
        assert.ok(err instanceof StoreUnreachableError, String(err));
        assert.equal(err.endpoint, endpoint);
        assert.ok(err.message.includes(endpoint));
        assert.equal(isPermanent(err), false);
        return true;
      });
    }
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  void test('a missing bucket is BucketNotFoundError naming the bucket', async () => {
    const missing = make({ bucket: 'no-such-bucket' });
    for (const op of [
      () => missing.get('x'),
      () => missing.head('x'),
      () => missing.put('x', new Uint8Array(1), options),
    ]) {
      await assert.rejects(op(), (err: unknown) => {
        assert.ok(err instanceof BucketNotFoundError, String(err));
        assert.equal(err.bucket, 'no-such-bucket');
        assert.ok(err.message.includes('"no-such-bucket"'));
        assert.ok(isPermanent(err));
        return true;
      });
    }
  });

  void test('wrong credentials are StoreAccessDeniedError naming endpoint and bucket but not the secret', async () => {
    const wrongSecret = 'wrong-secret-value-123';
    for (const credentials of [
      { accessKeyId: s3.credentials.accessKeyId, secretAccessKey: wrongSecret },
      { accessKeyId: 'unknown-key', secretAccessKey: wrongSecret },
    ]) {
      const denied = make({ credentials });
      for (const op of [() => denied.get('x'), () => denied.put('x', new Uint8Array(1), options)]) {
        await assert.rejects(op(), (err: unknown) => {
          assert.ok(err instanceof StoreAccessDeniedError, String(err));
          assert.ok(err.message.includes(s3.endpoint));
          assert.ok(err.message.includes(s3.bucket));
          assert.ok(!err.message.includes(wrongSecret));
          assert.ok(isPermanent(err));
          return true;
        });
      }
    }
  });

  void test('checkS3Access reports a healthy store, a refused endpoint, a missing bucket and wrong credentials', async () => {
    const ok = await checkS3Access(base);
    assert.deepEqual(ok, {
      endpoint: s3.endpoint,
      bucket: s3.bucket,
      reachable: true,
      bucketExists: true,
      canWrite: true,
    });
    // The probe object is removed again.
    assert.deepEqual(
      (await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? [],
      [],
    );
    assert.deepEqual(
      fs.readdirSync(path.join(s3.dataDir, s3.bucket, 'it')).filter((n) => n.startsWith('.dro')),
      [],
    );

    const refused = await checkS3Access({ ...base, endpoint: `http://127.0.0.1:${await freePort()}` });
    assert.equal(refused.reachable, false);
    assert.equal(refused.bucketExists, false);
    assert.equal(refused.canWrite, false);
    assert.equal(refused.error?.type, 'StoreUnreachableError');

    const missing = await checkS3Access({ ...base, bucket: 'no-such-bucket' });
    assert.equal(missing.reachable, true);
    assert.equal(missing.bucketExists, false);
    assert.equal(missing.canWrite, false);
    assert.equal(missing.error?.type, 'BucketNotFoundError');
    assert.match(missing.error?.message ?? '', /no-such-bucket/);

    const denied = await checkS3Access({
      ...base,
      credentials: { accessKeyId: 'unknown-key', secretAccessKey: 'x' },
    });
    assert.equal(denied.reachable, true);
    assert.equal(denied.canWrite, false);
    assert.equal(denied.error?.type, 'StoreAccessDeniedError');
  });

  void test('openStore and storeForUri address the same S3 objects', async () => {
    const overrides = { credentials: s3.credentials, maxAttempts: 1 };
    const config = {
      kind: 's3' as const,
      bucket: s3.bucket,
      prefix: 'via-config',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      partSizeMiB: 5,
    };
    const viaConfig = openStore(config, overrides) as S3ArtifactStore;
    opened.push(viaConfig);
    const ref = await viaConfig.put('a/b.txt', new TextEncoder().encode('abc'), options);
    assert.equal(ref.uri, `s3://${s3.bucket}/via-config/a/b.txt`);
    const reader = storeForUri(ref.uri, config, overrides) as S3ArtifactStore;
    opened.push(reader);
    assert.equal(new TextDecoder().decode(await reader.get(ref.uri, ref.sha256)), 'abc');
    assert.deepEqual((await reader.head(ref.uri))?.ref, ref);
  });
});
