/**
 * The engine's wasm Identity shares its input's buffer: clones must still behave as independent
 * tensors (values, disposal, variables reassigned after cloning) and gradients must not change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import '../../engine/ops';

describe('wasm Identity without a copy', () => {
  let previous = '';
  before(async () => {
    previous = tf.getBackend();
    await initBackend('wasm', { reselect: true });
  });
  after(async () => {
    if (previous) await tf.setBackend(previous);
  });

  test('a clone shares the buffer and outlives its source', () => {
    const a = tf.tensor([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const b = tf.clone(a);
    assert.equal(tf.memory().numDataBuffers, buffers, 'the clone allocated a buffer');
    a.dispose();
    assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3]);
    b.dispose();
  });

  test("a variable's clone keeps the old values after assign", () => {
    const v = tf.variable(tf.tensor([1, 2]));
    const c = v.clone();
    v.assign(tf.tensor([5, 6]));
    assert.deepEqual(Array.from(c.dataSync()), [1, 2]);
    assert.deepEqual(Array.from(v.dataSync()), [5, 6]);
    tf.dispose([c, v]);
  });

  test('gradients through taped ops are those of the cpu backend', async () => {
    const f = (x: tf.Tensor) => tf.sum(tf.mul(tf.sigmoid(tf.mul(x, x)), tf.exp(x)));
    const values = [0.5, -1.25, 2, 0.1];
    const onWasm = tf.grad(f)(tf.tensor(values)).dataSync();
    await tf.setBackend('cpu');
    const onCpu = tf.grad(f)(tf.tensor(values)).dataSync();
    await tf.setBackend('wasm');
    Array.from(onWasm).forEach((g, i) => assert.ok(Math.abs(g - onCpu[i]!) < 1e-5 * Math.abs(onCpu[i]!)));
  });

  test('no tensors or buffers are left after a taped step', () => {
    const before = tf.memory();
    const x = tf.tidy(() => tf.variable(tf.tensor([0.5, -1, 2])));
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.mul(x, 3))), [x]);
      tf.dispose([value, ...Object.values(grads)]);
    }
    x.dispose();
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numDataBuffers, before.numDataBuffers);
  });
});
