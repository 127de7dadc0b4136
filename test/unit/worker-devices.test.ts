/** `dro worker --device N` / `--devices all` with an injected GPU list and fake child processes. */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { defaultConfig } from '../../config/load';
import type { AcceleratorList } from '../../infra/accelerators';
import {
  childArgs,
  pinToDevice,
  placeWorker,
  planPlacement,
  runPerDevice,
  WorkerDeviceError,
} from '../../cli/worker-devices';

const TWO: AcceleratorList = {
  gpus: [
    { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driver: '580.65.06' },
    { index: 1, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driver: '580.65.06' },
  ],
  source: 'nvidia-smi',
  detail: 'nvidia-smi',
};
const NONE: AcceleratorList = {
  gpus: [],
  source: 'none',
  detail: 'nvidia-smi not found, no /proc/driver/nvidia/gpus',
};

class FakeChild extends EventEmitter {
  exitCode: number | null = null;
  readonly signals: string[] = [];
  kill(signal: NodeJS.Signals): boolean {
    this.signals.push(signal);
    return true;
  }
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.exitCode = code;
    this.emit('exit', code, signal);
  }
}

describe('worker GPU placement', () => {
  test('--device and --devices are checked against the GPUs present', () => {
    const two = () => TWO;
    assert.deepEqual(planPlacement({ queue: 'gpu' }, two), { kind: 'unpinned' });
    assert.deepEqual(planPlacement({ queue: 'gpu', device: '1' }, two), { kind: 'one', index: 1 });
    assert.deepEqual(planPlacement({ queue: 'gpu', devices: 'all' }, two), { kind: 'each', indexes: [0, 1] });
    assert.deepEqual(planPlacement({ queue: 'gpu', devices: '1,0' }, two), { kind: 'each', indexes: [1, 0] });
    assert.throws(
      () => planPlacement({ queue: 'gpu', device: '0' }, () => NONE),
      (err: Error) =>
        err instanceof WorkerDeviceError &&
        err.message.startsWith('--device 0: no GPU visible (nvidia-smi not found'),
    );
    assert.throws(
      () => planPlacement({ queue: 'gpu', device: '2' }, two),
      /^WorkerDeviceError: --device 2: no GPU 2 here; this machine shows 2 \(0: NVIDIA H100/,
    );
    assert.throws(
      () => planPlacement({ queue: 'gpu', devices: 'all' }, () => NONE),
      /--devices all: no GPU visible/,
    );
    assert.throws(() => planPlacement({ queue: 'gpu', devices: '0,3' }, two), /--devices 0,3: no GPU 3 here/);
    assert.throws(
      () => planPlacement({ queue: 'gpu', device: 'first' }, two),
      /--device "first": use a GPU index/,
    );
    assert.throws(
      () => planPlacement({ queue: 'gpu', device: '0', devices: 'all' }, two),
      /exclude each other/,
    );
    assert.throws(() => planPlacement({ queue: 'cpu', device: '0' }, two), /--device applies to --queue gpu/);
  });

  test('a pinned worker sees one GPU, in nvidia-smi numbering, and samples on it', () => {
    const env: NodeJS.ProcessEnv = {};
    pinToDevice(1, defaultConfig(), env);
    assert.deepEqual(env, {
      CUDA_VISIBLE_DEVICES: '1',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      DRO_INFERENCE_RUNTIME: 'onnx-cuda',
    });
    const onCpu = defaultConfig();
    onCpu.workers.inferenceRuntime = 'onnx';
    assert.throws(
      () => pinToDevice(0, onCpu, {}),
      /--device 0: workers.inferenceRuntime 'onnx' does not run on a GPU/,
    );
    assert.throws(
      () => pinToDevice(0, defaultConfig(), { DRO_INFERENCE_RUNTIME: 'tfjs' }),
      /DRO_INFERENCE_RUNTIME 'tfjs' on TF.js backend 'auto' does not run on a GPU/,
    );
  });

  test('a GPU runtime that cannot load stops the worker before it connects, naming what was tried', async () => {
    const config = defaultConfig();
    const env: NodeJS.ProcessEnv = { DRO_GPU_BACKEND: '/nonexistent/gpu-backend' };
    await assert.rejects(
      placeWorker({ queue: 'gpu', device: '0' }, { accelerators: () => TWO, config, env }),
      (err: Error) =>
        /the worker cannot start: workers.inferenceRuntime: --device 0 \(selects 'onnx-cuda' for workers.inferenceRuntime 'auto'\): .*GPU runtime not built: no manifest.json in DRO_GPU_BACKEND=\/nonexistent\/gpu-backend .*Available: onnx/.test(
          err.message,
        ),
    );
    // Unpinned and on the CPU path, nothing is asked of the GPU.
    assert.equal(
      await placeWorker({ queue: 'gpu' }, { accelerators: () => NONE, config, env: {} }),
      undefined,
    );
    assert.equal(
      await placeWorker({ queue: 'cpu' }, { accelerators: () => NONE, config, env: {} }),
      undefined,
    );
  });

  test('children get the parent arguments with one --device each', () => {
    assert.deepEqual(childArgs(['worker', '--queue', 'gpu', '--devices', 'all', '-c', 'x.json'], 1), [
      'worker',
      '--queue',
      'gpu',
      '-c',
      'x.json',
      '--device',
      '1',
    ]);
    assert.deepEqual(childArgs(['worker', '--devices=all', '--queue', 'gpu'], 0), [
      'worker',
      '--queue',
      'gpu',
      '--device',
      '0',
    ]);
  });

  test('each child serves metrics on its own port: the given one plus its place', () => {
    const args = ['worker', '--queue', 'gpu', '--devices', 'all', '--metrics', '0.0.0.0:9464'];
    assert.deepEqual(childArgs(args, 0, 0).slice(3, 5), ['--metrics', '0.0.0.0:9464']);
    assert.deepEqual(childArgs(args, 2, 1).slice(3, 5), ['--metrics', '0.0.0.0:9465']);
    assert.ok(
      childArgs(['worker', '--metrics=[::1]:9000', '--devices', '0,3'], 3, 1).includes(
        '--metrics=[::1]:9001',
      ),
    );
  });

  test('--devices starts one worker per GPU, forwards signals and ends with their status', async () => {
    const children: FakeChild[] = [];
    const spawned: string[][] = [];
    const signals = new EventEmitter();
    const lines: string[] = [];
    const done = runPerDevice([0, 1], {
      spawn: (command, args) => {
        spawned.push([command, ...args]);
        const child = new FakeChild();
        children.push(child);
        return child as unknown as ChildProcess;
      },
      self: { command: 'node', args: ['bin/dro.cjs'] },
      args: ['worker', '--queue', 'gpu', '--devices', 'all'],
      env: {},
      signals: signals as unknown as NodeJS.Process,
      log: (line) => lines.push(line),
    });
    assert.deepEqual(spawned, [
      ['node', 'bin/dro.cjs', 'worker', '--queue', 'gpu', '--device', '0'],
      ['node', 'bin/dro.cjs', 'worker', '--queue', 'gpu', '--device', '1'],
    ]);
    signals.emit('SIGTERM');
    assert.deepEqual(
      children.map((c) => c.signals),
      [['SIGTERM'], ['SIGTERM']],
    );
    children[0]!.exit(0);
    children[1]!.exit(1);
    assert.equal(await done, 1);
    assert.deepEqual(lines, ['worker on GPU 1 exited with status 1']);
    assert.equal(signals.listenerCount('SIGTERM'), 0, 'the handlers are removed once all exited');
  });
});
