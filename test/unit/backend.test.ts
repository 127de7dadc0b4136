import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  BackendUnavailableError,
  NATIVE_PATH_ENV,
  describeBackends,
  initBackend,
} from '../../engine/backend';

/**
 * A stand-in for a tfjs-node package built outside node_modules: it registers a 'tensorflow' backend
 * running the cpu kernels, and registers one kernel twice, which makes tfjs warn unless muted.
 */
function fakeNativePackage(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dro-fake-tfjs-node-'));
  mkdirSync(path.join(dir, 'dist'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fake', main: 'dist/index.js' }));
  const core = JSON.stringify(require.resolve('@tensorflow/tfjs-core'));
  const cpu = JSON.stringify(require.resolve('@tensorflow/tfjs-backend-cpu'));
  writeFileSync(
    path.join(dir, 'dist', 'index.js'),
    `const tf = require(${core});
const { MathBackendCPU } = require(${cpu});
tf.registerBackend('tensorflow', () => new MathBackendCPU(), 3);
tf.copyRegisteredKernels('cpu', 'tensorflow');
tf.registerKernel(tf.getKernel('Add', 'cpu'));
globalThis.droFakeNativeLoads = (globalThis.droFakeNativeLoads ?? 0) + 1;
`,
  );
  return dir;
}

function removeFakeNative(): void {
  for (const k of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(k.kernelName, 'tensorflow');
  if (tf.findBackendFactory('tensorflow') !== null) tf.removeBackend('tensorflow');
}

describe('backend selection', () => {
  const saved = process.env.DRO_TF_BACKEND;
  const savedPath = process.env[NATIVE_PATH_ENV];
  delete process.env[NATIVE_PATH_ENV];
  after(() => {
    if (saved === undefined) delete process.env.DRO_TF_BACKEND;
    else process.env.DRO_TF_BACKEND = saved;
    if (savedPath === undefined) delete process.env[NATIVE_PATH_ENV];
    else process.env[NATIVE_PATH_ENV] = savedPath;
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
    await assert.rejects(initBackend('tensorflow'), (e: Error) => {
      assert.ok(e instanceof BackendUnavailableError);
      // Names what was asked for, why it failed, and what would work instead.
      assert.match(
        e.message,
        /^requested backend 'tensorflow' is unavailable: @tensorflow\/tfjs-node not loadable/,
      );
      const available = describeBackends()
        .backends.filter((b) => b.available)
        .map((b) => b.name);
      assert.ok(available.includes('wasm') && available.includes('cpu'));
      assert.match(e.message, new RegExp(`; available: ${available.join(', ')}$`));
      return true;
    });
    // The failed request left the earlier backend in place rather than switching silently.
    await initBackend('cpu');
    process.env.DRO_TF_BACKEND = 'tensorflow';
    await assert.rejects(
      initBackend('wasm'),
      /DRO_TF_BACKEND backend 'tensorflow' is unavailable: .*available: .*wasm/,
    );
    delete process.env.DRO_TF_BACKEND;
    assert.equal(tf.getBackend(), 'cpu');
  });

  test(`${NATIVE_PATH_ENV} loads tfjs-node from a directory outside node_modules`, async () => {
    delete process.env.DRO_TF_BACKEND;
    const dir = fakeNativePackage();
    process.env[NATIVE_PATH_ENV] = dir;
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
    try {
      const status = describeBackends().backends.find((b) => b.name === 'tensorflow')!;
      assert.equal(status.available, true);
      assert.match(status.detail, new RegExp(`from ${NATIVE_PATH_ENV}=${dir}`));
      const choice = await initBackend('tensorflow');
      assert.equal(choice.name, 'tensorflow');
      assert.equal(tf.getBackend(), 'tensorflow');
      assert.equal((globalThis as { droFakeNativeLoads?: number }).droFakeNativeLoads, 1);
      assert.deepEqual(Array.from(await tf.add(tf.tensor1d([1, 2]), 1).data()), [2, 3]);
      // Its duplicate kernel registration was not reported, and warnings are on again afterwards.
      assert.deepEqual(
        warnings.filter((w) => /already registered/.test(w)),
        [],
      );
      assert.equal(tf.env().getBool('PROD'), false);
    } finally {
      console.warn = warn;
      await initBackend('cpu');
      removeFakeNative();
      delete process.env[NATIVE_PATH_ENV];
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`a bad ${NATIVE_PATH_ENV} is named in the error`, async () => {
    delete process.env.DRO_TF_BACKEND;
    process.env[NATIVE_PATH_ENV] = path.join(tmpdir(), 'dro-no-such-tfjs-node');
    try {
      const status = describeBackends().backends.find((b) => b.name === 'tensorflow')!;
      assert.equal(status.available, false);
      await assert.rejects(
        initBackend('tensorflow'),
        /'tensorflow' is unavailable: @tensorflow\/tfjs-node from DRO_TFJS_NODE_PATH=\S*dro-no-such-tfjs-node: no package there \(run tools\/native-backend\/build\.sh\); available: wasm, cpu/,
      );
      process.env[NATIVE_PATH_ENV] = 'relative/dir';
      await assert.rejects(
        initBackend('tensorflow'),
        /DRO_TFJS_NODE_PATH=relative\/dir: not an absolute path/,
      );
      // 'auto' skips it with the reason and goes on to the next backend.
      const auto = await initBackend('auto', { reselect: true });
      assert.notEqual(auto.name, 'tensorflow');
      assert.match(auto.reason, /tensorflow: @tensorflow\/tfjs-node from DRO_TFJS_NODE_PATH=relative\/dir/);
    } finally {
      delete process.env[NATIVE_PATH_ENV];
      await initBackend('cpu');
    }
  });
});
