import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ArtifactExistsError,
  ArtifactNotFoundError,
  BucketNotFoundError,
  DigestMismatchError,
  isPermanent,
  mapS3Error,
  openStore,
  PERMANENT_STORE_ERROR_TYPES,
  S3ArtifactStore,
  StorageConfig,
  StoreAccessDeniedError,
  StoreUnreachableError,
  storeForUri,
} from '../../storage';
import { digestingStream, digestStream } from '../../storage/digest';

const where = { endpoint: 'http://127.0.0.1:9', bucket: 'bkt' };

void describe('StorageConfig', () => {
  void test('fills explicit defaults for S3 and leaves the local root to the state dir', () => {
    assert.deepEqual(StorageConfig.parse({ kind: 's3', bucket: 'my-bucket' }), {
      kind: 's3',
      bucket: 'my-bucket',
      prefix: '',
      forcePathStyle: false,
      partSizeMiB: 8,
    });
    assert.deepEqual(StorageConfig.parse({ kind: 'local' }), { kind: 'local' });
  });

  void test('rejects unknown keys and bad values, naming the field', () => {
    const cases: [unknown, string][] = [
      [{ kind: 'local', rooot: '/x' }, 'rooot'],
      [{ kind: 's3', bucket: 'Bad_Bucket' }, 'bucket'],
      [{ kind: 's3', bucket: 'ok-bucket', prefix: '/runs' }, 'prefix'],
      [{ kind: 's3', bucket: 'ok-bucket', prefix: 'runs/' }, 'prefix'],
      [{ kind: 's3', bucket: 'ok-bucket', partSizeMiB: 4 }, 'partSizeMiB'],
      [{ kind: 's3', bucket: 'ok-bucket', endpoint: 'not a url' }, 'endpoint'],
      [{ kind: 'gcs', bucket: 'ok-bucket' }, 'kind'],
    ];
    for (const [input, field] of cases) {
      const result = StorageConfig.safeParse(input);
      assert.equal(result.success, false, JSON.stringify(input));
      const named = result.error?.issues.some(
        (i) => i.path.includes(field) || ('keys' in i && (i.keys as string[]).includes(field)),
      );
      assert.ok(named, `${JSON.stringify(input)} -> ${JSON.stringify(result.error?.issues)}`);
    }
  });

  void test('openStore and storeForUri pick the S3 store with the configured prefix and settings', () => {
    const config = {
      kind: 's3' as const,
      bucket: 'my-bucket',
      prefix: 'runs',
      endpoint: 'http://127.0.0.1:9000',
    };
    const store = openStore(config);
    assert.ok(store instanceof S3ArtifactStore);
    assert.equal(store.baseUri, 's3://my-bucket/runs');
    assert.equal(store.keyOf('s3://my-bucket/runs/a/b'), 'a/b');
    assert.throws(() => store.keyOf('s3://my-bucket/other/a'), /outside this store s3:\/\/my-bucket\/runs/);
    assert.throws(() => store.keyOf('s3://other-bucket/runs/a'), /outside this store/);
    const reader = storeForUri('s3://my-bucket/runs/a/b', config);
    assert.ok(reader instanceof S3ArtifactStore);
    assert.equal(reader.endpoint, 'http://127.0.0.1:9000');
    assert.equal(reader.baseUri, 's3://my-bucket');
    store.destroy();
    reader.destroy();
  });
});

void describe('store errors', () => {
  void test('isPermanent separates errors a retry cannot fix from transient ones', () => {
    assert.equal(
      isPermanent(new DigestMismatchError('s3://b/k', 'a'.repeat(64), 'b'.repeat(64), 1, 2)),
      true,
    );
    assert.equal(isPermanent(new ArtifactNotFoundError('s3://b/k')), true);
    assert.equal(isPermanent(new BucketNotFoundError('bkt', 'http://e')), true);
    assert.equal(isPermanent(new StoreAccessDeniedError('http://e', 'bkt', 'AccessDenied')), true);
    assert.equal(isPermanent(new StoreUnreachableError('http://e', 'ECONNREFUSED')), false);
    assert.equal(isPermanent(new Error('socket hang up')), false);
    assert.equal(isPermanent(new ArtifactExistsError('file:///a/k', 'a'.repeat(64), 'b'.repeat(64))), true);
    assert.deepEqual([...PERMANENT_STORE_ERROR_TYPES].sort(), [
      'ArtifactExistsError',
      'ArtifactNotFoundError',
      'BucketNotFoundError',
      'DigestMismatchError',
      'InvalidArtifactUriError',
      'StoreAccessDeniedError',
    ]);
  });

  void test('DigestMismatchError says whether the object looks truncated', () => {
    const short = new DigestMismatchError('file:///a/k', 'a'.repeat(64), 'b'.repeat(64), 10, 20);
    assert.equal(short.truncated, true);
    assert.match(
      short.message,
      /file:\/\/\/a\/k.*expected sha256 a{64}, got b{64}.*looks truncated: read 10 of 20 bytes/,
    );
    const changed = new DigestMismatchError('file:///a/k', 'a'.repeat(64), 'b'.repeat(64), 20, 20);
    assert.equal(changed.truncated, false);
    assert.match(changed.message, /size matches/);
    assert.match(new DigestMismatchError('u', 'a', 'b', 5).message, /written size is unknown/);
  });

  void test('mapS3Error maps SDK-shaped errors to the store error classes', () => {
    const refused = Object.assign(
      new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]),
      {
        code: undefined,
      },
    );
    const unreachable = mapS3Error(refused, where);
    assert.ok(unreachable instanceof StoreUnreachableError);
    assert.match(unreachable.message, /127\.0\.0\.1:9.*ECONNREFUSED/);

    const noBucket = mapS3Error(Object.assign(new Error('gone'), { name: 'NoSuchBucket' }), where);
    assert.ok(noBucket instanceof BucketNotFoundError);
    assert.match(noBucket.message, /"bkt"/);

    for (const name of ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied']) {
      const denied = mapS3Error(
        Object.assign(new Error('no'), { name, $metadata: { httpStatusCode: 403 } }),
        where,
      );
      assert.ok(denied instanceof StoreAccessDeniedError, name);
      assert.match(denied.message, new RegExp(name));
    }
    const bare403 = mapS3Error(
      Object.assign(new Error('UnknownError'), { $metadata: { httpStatusCode: 403 } }),
      where,
    );
    assert.ok(bare403 instanceof StoreAccessDeniedError);

    const other = Object.assign(new Error('InternalError'), {
      name: 'InternalError',
      $metadata: { httpStatusCode: 500 },
    });
    assert.equal(mapS3Error(other, where), other);
  });
});

void describe('digest helpers', () => {
  void test('the streaming digest matches FIPS 180-2 test vectors', async () => {
    async function* parts(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('abcdbcdecdefdefgefghfghighij');
      yield new TextEncoder().encode('hijkijkljklmklmnlmnomnopnopq');
    }
    // FIPS 180-2 appendix B.2.
    const expected = '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1';
    assert.deepEqual(await digestStream(parts()), { sha256: expected, size: 56 });
    const tap = digestingStream(parts());
    assert.throws(() => tap.digest(), /before the stream was fully consumed/);
    let seen = 0;
    for await (const chunk of tap.stream) seen += chunk.byteLength;
    assert.equal(seen, 56);
    assert.deepEqual(tap.digest(), { sha256: expected, size: 56 });
  });
});
