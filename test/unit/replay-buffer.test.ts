import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Rng } from '../../engine/rng';
import { ReplayBuffer, type Trajectory } from '../../engine/training/replay-buffer';

const shapes = { latent: [2, 2, 1] as [number, number, number], cond: [1, 2] as [number, number] };
const fill = (n: number, v: number) => new Float32Array(n).fill(v);

/** Trajectory k, step s: xt = 100k + s, eps = -(100k + s), t = 1000 - 50s - k. */
function trajectory(k: number, steps = 5): Trajectory {
  return {
    exampleIndex: k,
    cond: fill(2, k + 0.5),
    x0: fill(4, k + 0.25),
    steps: Array.from({ length: steps }, (_, s) => ({
      t: 1000 - 50 * s - k,
      xt: fill(4, 100 * k + s),
      eps: fill(4, -(100 * k + s)),
    })),
  };
}

before(async () => {
  await tf.setBackend('cpu');
});

describe('replay buffer', () => {
  test('every sampled example keeps t, latent, prediction, condition and expert of one trajectory step together', () => {
    const buffer = new ReplayBuffer(4, shapes);
    buffer.push([0, 1, 2, 3].map((k) => trajectory(k)));
    const batch = buffer.sample(64, new Rng(7));
    const xt = batch.xt.dataSync();
    const eps = batch.eps.dataSync();
    const x0 = batch.x0.dataSync();
    const cond = batch.cond.dataSync();
    const seen = new Set<string>();
    batch.picks.forEach(([i, s], b) => {
      const k = buffer.trajectories[i]!.exampleIndex;
      seen.add(`${k}:${s}`);
      assert.equal(batch.t[b], 1000 - 50 * s - k);
      assert.equal(xt[b * 4], 100 * k + s);
      assert.equal(eps[b * 4 + 3], -(100 * k + s));
      assert.equal(x0[b * 4], k + 0.25);
      assert.equal(cond[b * 2 + 1], k + 0.5);
      assert.equal(batch.exampleIndex[b], k);
    });
    // Uniform draws over 4 trajectories x 5 steps reach most pairs in 64 draws.
    assert.ok(seen.size >= 12, `only ${seen.size} distinct (trajectory, step) pairs drawn`);
  });

  test('keeps the newest trajectories up to capacity', () => {
    const buffer = new ReplayBuffer(3, shapes);
    buffer.push([trajectory(0), trajectory(1)]);
    buffer.push([trajectory(2), trajectory(3)]);
    assert.deepEqual(
      buffer.trajectories.map((t) => t.exampleIndex),
      [1, 2, 3],
    );
  });

  test('the same Rng state draws the same batch', () => {
    const buffer = new ReplayBuffer(4, shapes);
    buffer.push([0, 1, 2].map((k) => trajectory(k)));
    const rng = new Rng(3);
    const saved = rng.state();
    const a = buffer.sample(8, rng).picks;
    const b = buffer.sample(8, Rng.fromState(saved)).picks;
    assert.deepEqual(a, b);
  });

  test('rejects trajectories of the wrong shape and sampling when empty', () => {
    const buffer = new ReplayBuffer(2, shapes);
    assert.throws(() => buffer.sample(1, new Rng(0)), /empty/);
    const bad = trajectory(9);
    bad.steps[2]!.xt = fill(3, 0);
    assert.throws(() => buffer.push([bad]), /example 9, t=/);
  });

  test('without replacement a batch that fits holds each trajectory once; with replacement it need not', () => {
    const buffer = new ReplayBuffer(4, shapes);
    buffer.push([0, 1, 2, 3].map((k) => trajectory(k)));
    const rng = new Rng(11);
    let repeats = 0;
    for (let draw = 0; draw < 50; draw++) {
      const exact = buffer.sample(4, rng, 'without-replacement');
      assert.deepEqual([...exact.exampleIndex].sort(), [0, 1, 2, 3]);
      const free = buffer.sample(4, rng);
      if (new Set(free.exampleIndex).size < 4) repeats += 1;
      tf.dispose([exact.cond, exact.x0, exact.xt, exact.eps, free.cond, free.x0, free.xt, free.eps]);
    }
    // Four independent draws of four are all distinct with probability 3/32.
    assert.ok(repeats > 25, `only ${repeats} of 50 batches drawn with replacement repeated a trajectory`);
  });

  test('without replacement a batch larger than the buffer takes whole permutations in turn', () => {
    const buffer = new ReplayBuffer(4, shapes);
    buffer.push([0, 1, 2, 3].map((k) => trajectory(k)));
    const batch = buffer.sample(6, new Rng(3), 'without-replacement');
    assert.deepEqual([...batch.exampleIndex.slice(0, 4)].sort(), [0, 1, 2, 3]);
    assert.equal(new Set(batch.exampleIndex.slice(4)).size, 2);
    tf.dispose([batch.cond, batch.x0, batch.xt, batch.eps]);
  });
});
