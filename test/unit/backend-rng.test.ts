import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { Rng } from '../../engine/rng';

describe('seeded RNG', () => {
  before(async () => {
    await initBackend('cpu');
  });

  test('same seed, same stream; different seed, different stream', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    assert.deepEqual(
      sa,
      Array.from({ length: 8 }, () => b.nextUint32()),
    );
    assert.notDeepEqual(
      sa,
      Array.from({ length: 8 }, () => c.nextUint32()),
    );
    assert.ok(sa.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32));
  });

  test('state survives JSON and resumes mid-stream, including a pending normal', () => {
    const a = new Rng(7);
    a.normal(); // leaves the second Box-Muller value pending
    const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<Rng['state']>;
    const b = Rng.fromState(saved);
    const fromA = [a.normal(), a.uniform(), a.int(0, 10), a.normal()];
    const fromB = [b.normal(), b.uniform(), b.int(0, 10), b.normal()];
    assert.deepEqual(fromB, fromA);
    assert.throws(() => Rng.fromState({ s: [0, 0, 0, 0], spare: null }), /all zero/);
    assert.throws(
      () => Rng.fromState({ s: [1, 2, 3, -1] as [number, number, number, number], spare: null }),
      /unsigned/,
    );
  });

  test('distributions: uniform in [0,1), ints in range and covering it, normal moments', () => {
    const r = new Rng(1);
    const n = 20000;
    let sum = 0;
    let sq = 0;
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      assert.ok(u >= 0 && u < 1);
      counts[r.int(3, 8) - 3]!++;
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    assert.ok(Math.abs(sum / n) < 0.03, `normal mean ${sum / n}`);
    assert.ok(Math.abs(sq / n - 1) < 0.04, `normal variance ${sq / n}`);
    for (const c of counts) assert.ok(Math.abs(c / n - 0.2) < 0.02, `int bucket share ${c / n}`);
    assert.throws(() => r.int(5, 5), /min < maxExclusive/);
  });

  test('normalTensor draws from the generator, reproducibly', () => {
    const t1 = new Rng(3).normalTensor([2, 3]);
    const t2 = new Rng(3).normalTensor([2, 3]);
    const ref = new Rng(3);
    assert.deepEqual(t1.shape, [2, 3]);
    assert.deepEqual(Array.from(t1.dataSync()), Array.from(t2.dataSync()));
    assert.equal(t1.dataSync()[0], Math.fround(ref.normal()));
    tf.dispose([t1, t2]);
  });
});
