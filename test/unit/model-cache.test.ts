/** The activities' shared model cache: reuse, one load for concurrent callers, disposal timing. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelCache } from '../../activities/model-cache';
import type { ArtifactRef } from '../../storage/artifact-store';

interface FakeModel {
  sha256: string;
  disposed: boolean;
}

const ref = (c: string): ArtifactRef => ({ uri: `file:///m/${c}`, sha256: c.repeat(64), size: 1 });
const tick = () => new Promise((r) => setImmediate(r));

function fakeCache(options: { fail?: Set<string>; delayMs?: number } = {}) {
  const loads: string[] = [];
  const cache = new ModelCache<FakeModel>({
    load: async (r) => {
      loads.push(r.sha256[0]!);
      await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 0));
      if (options.fail?.has(r.sha256[0]!)) throw new Error(`cannot decode ${r.uri}`);
      return { sha256: r.sha256, disposed: false };
    },
    dispose: (m) => {
      assert.equal(m.disposed, false, 'disposed twice');
      m.disposed = true;
    },
  });
  return { cache, loads };
}

void describe('ModelCache', () => {
  void test('the same model is loaded once and shared', async () => {
    const { cache, loads } = fakeCache();
    const a = await cache.acquire(ref('a'));
    a.release();
    const again = await cache.acquire(ref('a'));
    assert.equal(again.model, a.model);
    assert.deepEqual(loads, ['a']);
    assert.equal(a.model.disposed, false);
  });

  void test('concurrent callers of a new model share one load', async () => {
    const { cache, loads } = fakeCache({ delayMs: 20 });
    const [x, y] = await Promise.all([cache.acquire(ref('b')), cache.acquire(ref('b'))]);
    assert.equal(x.model, y.model);
    assert.deepEqual(loads, ['b']);
  });

  void test('a replaced model is disposed at once when unused, else after its last release', async () => {
    const { cache } = fakeCache();
    const a = await cache.acquire(ref('a'));
    a.release();
    const b = await cache.acquire(ref('b'));
    await tick();
    assert.equal(a.model.disposed, true);

    const b2 = await cache.acquire(ref('b'));
    const c = await cache.acquire(ref('c'));
    await tick();
    assert.equal(b.model.disposed, false, 'still in use twice');
    b.release();
    b.release(); // a second release of the same use changes nothing
    assert.equal(b.model.disposed, false, 'still in use once');
    b2.release();
    assert.equal(b.model.disposed, true);
    assert.equal(c.model.disposed, false);
  });

  void test('a failed load is not kept, and does not dispose anything', async () => {
    const fail = new Set(['x']);
    const { cache, loads } = fakeCache({ fail });
    await assert.rejects(cache.acquire(ref('x')), /cannot decode file:\/\/\/m\/x/);
    fail.clear();
    const x = await cache.acquire(ref('x'));
    assert.equal(x.model.disposed, false);
    assert.deepEqual(loads, ['x', 'x']);
  });

  void test('clear disposes the cached model once it is released', async () => {
    const { cache, loads } = fakeCache();
    const a = await cache.acquire(ref('a'));
    cache.clear();
    assert.equal(a.model.disposed, false);
    a.release();
    assert.equal(a.model.disposed, true);
    await cache.acquire(ref('a'));
    assert.deepEqual(loads, ['a', 'a']);
  });
});
