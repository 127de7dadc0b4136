/** GPU detection from nvidia-smi's output and the driver's proc files, with both faked. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  describeAccelerators,
  listAccelerators,
  NVIDIA_SMI_ARGS,
  parseNvidiaSmi,
  type CommandRunner,
} from '../../infra/accelerators';

const SMI_OUTPUT =
  '1, NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15\n0, NVIDIA A100-SXM4-40GB, 40960 MiB, 550.54.15\n';

const runner =
  (result: Partial<ReturnType<CommandRunner>>): CommandRunner =>
  (command, args) => {
    assert.equal(command, 'nvidia-smi');
    assert.deepEqual(args, NVIDIA_SMI_ARGS);
    return { status: 0, stdout: '', stderr: '', ...result };
  };
const notInstalled = runner({
  status: null,
  error: Object.assign(new Error('spawnSync nvidia-smi ENOENT'), { code: 'ENOENT' }),
});

describe('accelerators', () => {
  test('nvidia-smi rows become GPUs in index order, with memory and driver', () => {
    assert.deepEqual(parseNvidiaSmi(SMI_OUTPUT), [
      { index: 0, name: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960, driver: '550.54.15' },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driver: '550.54.15' },
    ]);
    assert.throws(() => parseNvidiaSmi('garbage\n'), /unexpected nvidia-smi line/);
    const list = listAccelerators({ run: runner({ stdout: SMI_OUTPUT }), procDir: '/nonexistent' });
    assert.equal(list.source, 'nvidia-smi');
    assert.equal(
      describeAccelerators(list),
      '0: NVIDIA A100-SXM4-40GB (40960 MiB, driver 550.54.15); 1: NVIDIA H100 80GB HBM3 (81559 MiB, driver 550.54.15) [from nvidia-smi]',
    );
  });

  test('without nvidia-smi the driver proc files are read, in PCI order', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-proc-gpus-'));
    try {
      for (const [bus, model] of [
        ['0000:c1:00.0', 'NVIDIA L4'],
        ['0000:41:00.0', 'NVIDIA H100 PCIe'],
      ] as const) {
        fs.mkdirSync(path.join(dir, bus));
        fs.writeFileSync(path.join(dir, bus, 'information'), `Model: \t\t ${model}\nIRQ:   42\n`);
      }
      const list = listAccelerators({ run: notInstalled, procDir: dir });
      assert.equal(list.source, 'proc');
      assert.deepEqual(list.gpus, [
        { index: 0, name: 'NVIDIA H100 PCIe' },
        { index: 1, name: 'NVIDIA L4' },
      ]);
      assert.match(list.detail, /nvidia-smi not found/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no GPU: the reason names every source tried', () => {
    const none = listAccelerators({ run: notInstalled, procDir: '/nonexistent/gpus' });
    assert.deepEqual(none.gpus, []);
    assert.equal(none.source, 'none');
    assert.equal(describeAccelerators(none), 'no GPU visible (nvidia-smi not found, no /nonexistent/gpus)');
    const broken = listAccelerators({
      run: runner({
        status: 9,
        stderr: 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.\n',
      }),
      procDir: '/nonexistent/gpus',
    });
    assert.match(
      describeAccelerators(broken),
      /nvidia-smi failed: NVIDIA-SMI has failed because it could not communicate/,
    );
  });
});
