/**
 * Reading an artifact's stream into one verified array: sized by the stored size, hashed as it
 * arrives, and a mismatch reported with what was actually read.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { DigestMismatchError } from '../../storage';
import { readVerified } from '../../storage/verify';
import { chunked, pattern } from '../harness/bytes';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const uri = 'file:///store/a.bin';

void describe('readVerified', () => {
  void test('fills one array of the expected size from many chunks', async () => {
    const data = pattern(1_000_003, 1);
    const bytes = await readVerified(uri, chunked(data, 65_536), {
      sha256: sha256(data),
      size: data.byteLength,
    });
    assert.equal(bytes.buffer.byteLength, data.byteLength);
    assert.deepEqual(bytes, data);
  });

  void test('uses the size hint when the stored size is unknown, and collects chunks without either', async () => {
    const data = pattern(300_000, 2);
    assert.deepEqual(
      await readVerified(uri, chunked(data, 7_000), { sha256: sha256(data) }, data.byteLength),
      data,
    );
    assert.deepEqual(await readVerified(uri, chunked(data, 7_000), { sha256: sha256(data) }), data);
    // A wrong hint only costs a copy.
    assert.deepEqual(await readVerified(uri, chunked(data, 7_000), { sha256: sha256(data) }, 1000), data);
    assert.deepEqual(await readVerified(uri, [], { sha256: sha256(new Uint8Array(0)) }), new Uint8Array(0));
  });

  void test('reports truncated, longer and changed content with the sizes read', async () => {
    const data = pattern(50_000, 3);
    const expected = { sha256: sha256(data), size: data.byteLength };
    await assert.rejects(
      readVerified(uri, chunked(data.subarray(0, 1000), 100), expected),
      (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError);
        assert.equal(err.truncated, true);
        assert.equal(err.actualSize, 1000);
        return true;
      },
    );
    const longer = new Uint8Array(data.byteLength + 10);
    longer.set(data);
    await assert.rejects(readVerified(uri, chunked(longer, 4096), expected), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.actualSize, longer.byteLength);
      assert.match(err.message, /more than the 50000 written/);
      return true;
    });
    const changed = Uint8Array.from(data);
    changed[49_999] = (changed[49_999] ?? 0) ^ 1;
    await assert.rejects(readVerified(uri, [changed], expected), /the size matches \(50000 bytes\)/);
  });
});
