/**
 * The inference runtime a worker uses by default comes from its config, and 'auto' keeps sampling on
 * TF.js when TF.js runs on a GPU (onnxruntime-node here is CPU-only).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { resolveInferenceRuntime, setDefaultInferenceRuntime } from '../../engine/onnx/runtime';

describe('inference runtime defaults', () => {
  afterEach(() => setDefaultInferenceRuntime('auto'));

  test("a worker's configured runtime applies when a caller names none", async () => {
    setDefaultInferenceRuntime('tfjs');
    const choice = await resolveInferenceRuntime(undefined, { env: {} });
    assert.equal(choice.runtime, 'tfjs');
    assert.equal(choice.explicit, true);
    // A caller's own request still wins over the worker default.
    assert.equal((await resolveInferenceRuntime('onnx', { env: {} })).runtime, 'onnx');
  });

  test("'auto' picks TF.js on the tensorflow-gpu backend and ONNX on CPU backends", async () => {
    const gpu = await resolveInferenceRuntime('auto', { env: {}, backend: 'tensorflow-gpu' });
    assert.equal(gpu.runtime, 'tfjs');
    assert.match(gpu.reason, /GPU/);
    const cpu = await resolveInferenceRuntime('auto', { env: {}, backend: 'wasm' });
    assert.equal(cpu.runtime, 'onnx');
  });

  test('a malformed worker setting is refused with its name', () => {
    assert.throws(() => setDefaultInferenceRuntime('fast' as never), /workers\.inferenceRuntime/);
  });
});
