/**
 * The GPU runtime's selection without a GPU: session options carry the thread count and the CUDA
 * provider, 'onnx-cuda' that cannot load is an error naming why (never a CPU run), and the pre-flight
 * and `dro doctor` say what they found.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os, { availableParallelism } from 'node:os';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { defaultConfig } from '../../config/load';
import { PipelineConfig } from '../../config/schemas';
import { deviceProblems } from '../../cli/device-check';
import { gpuChecks } from '../../cli/gpu-doctor';
import { initBackend } from '../../engine/backend';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { gpuRuntimeStatus, type GpuBackendRead } from '../../engine/onnx/gpu-backend';
import {
  inferenceThreads,
  InferenceRuntimeError,
  resolveInferenceRuntime,
  setDefaultInferenceThreads,
  type OrtModule,
} from '../../engine/onnx/runtime';
import { sessionOptions } from '../../engine/onnx/session-options';
import { OnnxUNet } from '../../engine/onnx/unet-session';
import { Rng } from '../../engine/rng';
import type { AcceleratorList } from '../../infra/accelerators';

const NONE: AcceleratorList = {
  gpus: [],
  source: 'none',
  detail: 'nvidia-smi not found, no /proc/driver/nvidia/gpus',
};
const ONE: AcceleratorList = {
  gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driver: '580.65.06' }],
  source: 'nvidia-smi',
  detail: 'nvidia-smi',
};
const BUILT: GpuBackendRead = {
  ok: true,
  dir: '/cache/gpu-backend/1.30.0',
  manifest: {
    format: 1,
    ortVersion: '1.30.0',
    cudaMajor: 13,
    packageDir: '/cache/gpu-backend/1.30.0/node_modules/onnxruntime-node',
    libDir: '/cache/gpu-backend/1.30.0/lib',
    wheels: [],
  },
};
const notBuilt = { DRO_GPU_BACKEND: '/nonexistent/gpu-backend' };

describe('GPU runtime and threads', () => {
  afterEach(() => setDefaultInferenceThreads(undefined, {}));

  test('session options carry the threads and, for the GPU, the CUDA provider before the CPU one', () => {
    assert.equal(sessionOptions({ threads: 3 }).intraOpNumThreads, 3);
    assert.equal(sessionOptions({ threads: 3 }).executionProviders, undefined);
    assert.deepEqual(sessionOptions({ threads: 2, cuda: { deviceId: 0 } }).executionProviders, [
      { name: 'cuda', deviceId: 0 },
      'cpu',
    ]);
  });

  test('workers.threads reaches the UNet session; DRO_INFERENCE_THREADS and callers still win', async () => {
    await initBackend('cpu');
    const config = PipelineConfig.parse({ workers: { threads: 3 } });
    const env: NodeJS.ProcessEnv = {};
    setDefaultInferenceThreads(config.workers.threads, env);
    assert.equal(env.TF_NUM_INTRAOP_THREADS, '3', 'the native TensorFlow backend gets it too');
    assert.equal(inferenceThreads(undefined, {}), 3);
    assert.equal(inferenceThreads(undefined, { DRO_INFERENCE_THREADS: '2' }), 2);
    const seen: unknown[] = [];
    const ort = {
      InferenceSession: {
        create: (_bytes: Uint8Array, options: unknown) => {
          seen.push(options);
          return Promise.resolve({ release: () => Promise.resolve() });
        },
      },
    } as unknown as OrtModule;
    const unet = UNet2DConditionModel.create(TINY_UNET, new Rng(1), false);
    try {
      const previous = process.env.DRO_INFERENCE_THREADS;
      delete process.env.DRO_INFERENCE_THREADS;
      try {
        const session = await OnnxUNet.create(unet, { ort });
        assert.equal(session.threads, 3);
        await OnnxUNet.create(unet, { ort, threads: 1, cuda: { deviceId: 0 } });
      } finally {
        if (previous !== undefined) process.env.DRO_INFERENCE_THREADS = previous;
      }
      const [cpu, gpu] = seen as { intraOpNumThreads: number; executionProviders?: unknown[] }[];
      assert.equal(cpu!.intraOpNumThreads, 3);
      assert.equal(cpu!.executionProviders, undefined);
      assert.equal(gpu!.intraOpNumThreads, 1);
      assert.deepEqual(gpu!.executionProviders, [{ name: 'cuda', deviceId: 0 }, 'cpu']);
    } finally {
      unet.params.dispose();
    }
    setDefaultInferenceThreads(undefined, {});
    assert.equal(inferenceThreads(undefined, {}), availableParallelism());
    assert.equal(tf.getBackend(), 'cpu');
  });

  test('a config without workers.threads parses as before (its hash is unchanged)', () => {
    assert.equal('threads' in defaultConfig().workers, false);
    assert.throws(() => PipelineConfig.parse({ workers: { threads: 0 } }));
  });

  test("'onnx-cuda' without a GPU or a build is an error that names what was tried", async () => {
    const status = gpuRuntimeStatus({
      env: notBuilt,
      accelerators: NONE,
      ortVersion: '1.30.0',
      platform: 'linux/x64',
    });
    assert.equal(status.ok, false);
    assert.match(status.problems[0]!, /^no GPU visible \(nvidia-smi not found/);
    assert.match(
      status.problems[1]!,
      /GPU runtime not built: no manifest.json in DRO_GPU_BACKEND=\/nonexistent\/gpu-backend \(run tools\/gpu-backend\/build.sh\)/,
    );
    let loaded = false;
    await assert.rejects(
      resolveInferenceRuntime('onnx-cuda', {
        env: {},
        gpuStatus: () => status,
        loadOrt: () => {
          loaded = true;
          return Promise.reject(new Error('not reached'));
        },
      }),
      (err: Error) =>
        err instanceof InferenceRuntimeError &&
        /requested inference runtime 'onnx-cuda' is not available: no GPU visible .*; available: onnx \(CPU\), tfjs/.test(
          err.message,
        ),
    );
    assert.equal(loaded, false, 'nothing is loaded for a runtime known not to work');
  });

  test('a built runtime also needs LD_LIBRARY_PATH to name its libraries', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-gpu-runtime-'));
    try {
      const packageDir = path.join(dir, 'node_modules', 'onnxruntime-node');
      const bin = path.join(packageDir, 'bin', 'napi-v6', 'linux', 'x64');
      fs.mkdirSync(bin, { recursive: true });
      for (const f of ['onnxruntime_binding.node', 'libonnxruntime.so.1', 'libonnxruntime_providers_cuda.so'])
        fs.writeFileSync(path.join(bin, f), '');
      const manifest = {
        format: 1,
        ortVersion: '1.30.0',
        cudaMajor: 13,
        packageDir,
        libDir: path.join(dir, 'lib'),
        wheels: [],
      };
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
      const status = (env: NodeJS.ProcessEnv, ortVersion = '1.30.0') =>
        gpuRuntimeStatus({
          env: { DRO_GPU_BACKEND: dir, ...env },
          accelerators: ONE,
          ortVersion,
          platform: 'linux/x64',
        });
      const without = status({ LD_LIBRARY_PATH: '/usr/lib' });
      assert.equal(without.ok, false);
      assert.match(
        without.problems.join(),
        new RegExp(`LD_LIBRARY_PATH does not name ${manifest.libDir}.*source ${dir}/env.sh`),
      );
      assert.equal(status({ LD_LIBRARY_PATH: `/usr/lib:${manifest.libDir}` }).ok, true);
      assert.match(
        status({}, '1.31.0').problems.join(),
        /holds ONNX Runtime 1.30.0 but onnxruntime-node is 1.31.0/,
      );
      fs.rmSync(path.join(bin, 'libonnxruntime_providers_cuda.so'));
      assert.match(status({}).problems.join(), /incomplete: no libonnxruntime_providers_cuda.so/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the pre-flight refuses a GPU the config asks for and cannot have', () => {
    const config = PipelineConfig.parse({
      workers: { inferenceRuntime: 'onnx-cuda', backend: 'tensorflow-gpu' },
    });
    const found = deviceProblems(config, {
      env: notBuilt,
      accelerators: () => NONE,
      tfBackends: () => ({
        backends: [
          { name: 'tensorflow-gpu', available: false, detail: '@tensorflow/tfjs-node-gpu not installed' },
          { name: 'wasm', available: true, detail: '' },
          { name: 'cpu', available: true, detail: '' },
        ],
        willRun: 'wasm',
      }),
    });
    assert.deepEqual(
      found.map((p) => p.field),
      ['workers.inferenceRuntime', 'workers.backend'],
    );
    assert.match(found[0]!.message, /^'onnx-cuda': the CUDA execution provider cannot load: no GPU visible/);
    assert.match(
      found[1]!.message,
      /^'tensorflow-gpu' cannot run: @tensorflow\/tfjs-node-gpu not installed; no GPU visible .*Available: wasm, cpu$/,
    );
    assert.deepEqual(
      deviceProblems(defaultConfig(), { env: {}, accelerators: () => assert.fail('no GPU asked for') }),
      [],
    );
  });

  test('doctor: no GPU means the CPU path; a built runtime is probed with its library path', () => {
    const [gpus, runtime] = gpuChecks(defaultConfig(), { env: notBuilt, accelerators: () => NONE });
    assert.equal(
      gpus!.detail,
      'none: no GPU visible (nvidia-smi not found, no /proc/driver/nvidia/gpus); the CPU path runs (ONNX Runtime and TF.js on the CPU)',
    );
    assert.equal(runtime!.ok, true, 'not selected, so not a failure');
    assert.match(runtime!.detail, /^not built: .*; not selected/);

    const selected = PipelineConfig.parse({ workers: { inferenceRuntime: 'onnx-cuda' } });
    const probes: NodeJS.ProcessEnv[] = [];
    const checks = (ok: boolean, probeOk: boolean) =>
      gpuChecks(selected, {
        env: { LD_LIBRARY_PATH: '/usr/lib' },
        accelerators: () => ONE,
        status: (a) => ({
          ok,
          accelerators: a,
          backend: BUILT,
          problems: ok ? [] : ['LD_LIBRARY_PATH does not name /cache/gpu-backend/1.30.0/lib'],
        }),
        probe: (_dir, env) => {
          probes.push(env);
          return probeOk
            ? { ok: true, detail: 'CUDA execution provider ran on device 0 (ONNX Runtime 1.30.0)' }
            : {
                ok: false,
                detail:
                  'the CUDA execution provider does not load: libcuda.so.1: cannot open shared object file',
              };
        },
      })[1]!;
    const good = checks(true, true);
    assert.equal(good.ok, true);
    assert.equal(good.required, true);
    assert.match(
      good.detail,
      /built in \/cache\/gpu-backend\/1.30.0 \(ONNX Runtime 1.30.0, CUDA 13\); CUDA execution provider ran on device 0/,
    );
    assert.equal(probes[0]!.LD_LIBRARY_PATH, '/cache/gpu-backend/1.30.0/lib:/usr/lib');
    const shell = checks(false, true);
    assert.equal(shell.ok, false);
    assert.match(shell.detail, /but not in this shell: LD_LIBRARY_PATH does not name/);
    const broken = checks(true, false);
    assert.equal(broken.ok, false);
    assert.match(
      broken.detail,
      /libcuda.so.1: cannot open shared object file; selected by workers.inferenceRuntime "onnx-cuda"$/,
    );
  });
});
