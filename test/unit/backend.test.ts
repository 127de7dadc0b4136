import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BackendUnavailableError, describeBackends, initBackend } from '../../engine/backend';

describe('backend selection', () => {
  const saved = process.env.DRO_TF_BACKEND;
  after(() => {
    if (saved === undefined) delete process.env.DRO_TF_BACKEND;
    else process.env.DRO_TF_BACKEND = saved;
  });

  test('explicit wasm and cpu work and are reported', async () => {
    delete process.env.DRO_TF_BACKEND;
    const wasm = await initBackend('wasm');
    assert.equal(wasm.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    const cpu = await initBackend('cpu');
    assert.deepEqual(cpu, { name: 'cpu', reason: 'requested explicitly' });
    assert.equal(tf.getBackend(), 'cpu');
  });

  test('auto picks the first available backend, explaining skipped ones', async () => {
    delete process.env.DRO_TF_BACKEND;
    const { backends, willRun } = describeBackends();
    assert.deepEqual(
      backends.map((b) => b.name),
      ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
    );
    // 'auto' keeps an earlier choice unless asked to reselect.
    assert.equal((await initBackend('auto')).name, 'cpu');
    const choice = await initBackend('auto', { reselect: true });
    assert.equal(choice.name, willRun);
    if (choice.name === 'wasm')
      assert.match(choice.reason, /skipped tensorflow-gpu: @tensorflow\/tfjs-node-gpu not loadable/);
    await initBackend('cpu');
  });

  test('DRO_TF_BACKEND overrides the argument; bad values fail clearly', async () => {
    process.env.DRO_TF_BACKEND = 'cpu';
    const c = await initBackend('wasm');
    assert.equal(c.name, 'cpu');
    assert.equal(describeBackends().willRun, 'cpu');
    process.env.DRO_TF_BACKEND = 'webgl';
    await assert.rejects(
      initBackend(),
      (e: Error) => e instanceof BackendUnavailableError && /DRO_TF_BACKEND.*'webgl'/.test(e.message),
    );
    delete process.env.DRO_TF_BACKEND;
  });

  test('a missing native backend requested explicitly is an error, not a silent fallback', async (t) => {
    if (describeBackends().backends.find((b) => b.name === 'tensorflow')!.available) {
      t.skip('tfjs-node is installed here');
      return;
    }
    await assert.rejects(initBackend('tensorflow'), /@tensorflow\/tfjs-node not loadable/);
    await initBackend('cpu');
  });
});
