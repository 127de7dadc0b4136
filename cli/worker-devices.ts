/**
 * GPU placement of `dro worker`: `--device N` pins the process to one GPU (CUDA_VISIBLE_DEVICES,
 * so every CUDA library in it sees that GPU as device 0), `--devices all` starts one pinned worker
 * process per visible GPU and waits for them. Without a GPU, or for one that is not there, the flags
 * are refused with what was looked for, so a worker meant for a GPU never runs on the CPU unnoticed.
 */
import { spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { defaultConfig, loadConfigFile } from '../config/load';
import type { PipelineConfig } from '../config/schemas';
import { readGpuBackend, withLibDir } from '../engine/onnx/gpu-backend';
import {
  describeAccelerator,
  describeAccelerators,
  listAccelerators,
  type AcceleratorList,
} from '../infra/accelerators';
import { deviceProblems, type DeviceCheckDeps } from './device-check';

/** The flags are malformed or cannot be honoured on this machine. */
export class WorkerDeviceError extends Error {
  override name = 'WorkerDeviceError';
}

export interface DeviceFlags {
  queue: 'gpu' | 'cpu';
  device?: string;
  devices?: string;
}

export type WorkerPlacement =
  { kind: 'unpinned' } | { kind: 'one'; index: number } | { kind: 'each'; indexes: number[] };

function parseIndex(text: string, flag: string): number {
  if (!/^\d{1,3}$/.test(text.trim()))
    throw new WorkerDeviceError(
      `${flag} ${JSON.stringify(text)}: use a GPU index (0, 1, ...) as nvidia-smi lists them`,
    );
  return Number(text.trim());
}

function checkPresent(index: number, flag: string, list: AcceleratorList): void {
  if (list.gpus.length === 0)
    throw new WorkerDeviceError(
      `${flag}: ${describeAccelerators(list)}; without a GPU start the worker without ${flag.split(' ')[0]} (it runs on the CPU)`,
    );
  if (!list.gpus.some((g) => g.index === index))
    throw new WorkerDeviceError(
      `${flag}: no GPU ${index} here; this machine shows ${list.gpus.length} ` +
        `(${list.gpus.map(describeAccelerator).join('; ')})`,
    );
}

/** Which GPUs the flags name, checked against the ones `accelerators` lists. */
export function planPlacement(flags: DeviceFlags, accelerators: () => AcceleratorList): WorkerPlacement {
  if (flags.device === undefined && flags.devices === undefined) return { kind: 'unpinned' };
  if (flags.device !== undefined && flags.devices !== undefined)
    throw new WorkerDeviceError('--device and --devices exclude each other: name one GPU or the set');
  if (flags.queue !== 'gpu')
    throw new WorkerDeviceError(
      `${flags.device !== undefined ? '--device' : '--devices'} applies to --queue gpu (the cpu queue runs no model)`,
    );
  const list = accelerators();
  if (flags.device !== undefined) {
    const index = parseIndex(flags.device, '--device');
    checkPresent(index, `--device ${index}`, list);
    return { kind: 'one', index };
  }
  const which = flags.devices!.trim();
  if (which === 'all') {
    if (list.gpus.length === 0)
      throw new WorkerDeviceError(
        `--devices all: ${describeAccelerators(list)}; without a GPU start one worker without --devices`,
      );
    return { kind: 'each', indexes: list.gpus.map((g) => g.index) };
  }
  const indexes = which.split(',').map((part) => parseIndex(part, '--devices'));
  if (new Set(indexes).size !== indexes.length)
    throw new WorkerDeviceError(`--devices ${which}: a GPU is named twice`);
  for (const index of indexes) checkPresent(index, `--devices ${which}`, list);
  return { kind: 'each', indexes };
}

/**
 * Pins this process to GPU `index` and picks the GPU runtime for sampling unless the config or
 * the environment chose a runtime that uses the pinned GPU; returns who selected it, if this did.
 * CUDA numbers devices fastest first by
 * default; PCI bus order makes its numbering the one nvidia-smi shows, which `--device` speaks.
 */
export function pinToDevice(
  index: number,
  config: PipelineConfig,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const fromEnv = env.DRO_INFERENCE_RUNTIME || undefined;
  const runtime = fromEnv ?? config.workers.inferenceRuntime;
  const backend = env.DRO_TF_BACKEND || config.workers.backend;
  if (runtime === 'auto') env.DRO_INFERENCE_RUNTIME = 'onnx-cuda';
  else if (runtime === 'onnx' || (runtime === 'tfjs' && backend !== 'tensorflow-gpu'))
    throw new WorkerDeviceError(
      `--device ${index}: ${fromEnv ? 'DRO_INFERENCE_RUNTIME' : 'workers.inferenceRuntime'} '${runtime}'` +
        `${runtime === 'tfjs' ? ` on TF.js backend '${backend}'` : ''} does not run on a GPU; ` +
        `use 'onnx-cuda' (or 'auto') to sample on GPU ${index}, or start the worker without --device`,
    );
  env.CUDA_VISIBLE_DEVICES = String(index);
  env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID';
  return runtime === 'auto'
    ? `--device ${index} (selects 'onnx-cuda' for workers.inferenceRuntime 'auto')`
    : undefined;
}

/** Fails with every device problem of `config` (a GPU runtime that cannot load), before connecting. */
export function assertDevicesUsable(config: PipelineConfig, deps: DeviceCheckDeps = {}): void {
  const problems = deviceProblems(config, deps);
  if (problems.length > 0)
    throw new WorkerDeviceError(
      `the worker cannot start: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
    );
}

/**
 * The child's arguments: the parent's, with the device set replaced by one `--device`. The
 * `ordinal`-th child serves metrics on the given port plus `ordinal`, since one port cannot serve
 * several processes.
 */
export function childArgs(args: readonly string[], index: number, ordinal = 0): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--devices') i++;
    else if (arg.startsWith('--devices=')) continue;
    else if (arg === '--metrics' && i + 1 < args.length) out.push(arg, shiftPort(args[++i]!, ordinal));
    else if (arg.startsWith('--metrics='))
      out.push(`--metrics=${shiftPort(arg.slice('--metrics='.length), ordinal)}`);
    else out.push(arg);
  }
  return [...out, '--device', String(index)];
}

/** `host:port` with the port moved up by `by`; anything else unchanged, for the child to refuse. */
function shiftPort(address: string, by: number): string {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m || by === 0) return address;
  return `${m[1]}:${Number(m[2]) + by}`;
}

export interface FanOutDeps {
  spawn?: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
  /** The command that starts this CLI again: node, its flags and the script. */
  self?: { command: string; args: string[] };
  /** This process's arguments after the script (`worker --queue gpu --devices all ...`). */
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  log?: (line: string) => void;
}

/**
 * Starts one worker per GPU in `indexes` and resolves, once every one has exited, to the first
 * failing exit status (0 when all stopped cleanly). SIGINT and SIGTERM are passed on, so each
 * worker stops the way it would alone (after the checkpoint its activity is writing).
 */
export function runPerDevice(indexes: readonly number[], deps: FanOutDeps = {}): Promise<number> {
  const spawn = deps.spawn ?? spawnChild;
  const self = deps.self ?? { command: process.execPath, args: [...process.execArgv, process.argv[1]!] };
  const args = deps.args ?? process.argv.slice(2);
  const env = { ...(deps.env ?? process.env) };
  const signals = deps.signals ?? process;
  const log = deps.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // The children start with the loader path already set, which a running process cannot change.
  const backend = readGpuBackend(env);
  if (backend.ok) env.LD_LIBRARY_PATH = withLibDir(env.LD_LIBRARY_PATH, backend.manifest.libDir);
  const children = indexes.map((index, ordinal) => ({
    index,
    child: spawn(self.command, [...self.args, ...childArgs(args, index, ordinal)], { stdio: 'inherit', env }),
  }));
  const forward = (signal: NodeJS.Signals) => () => {
    for (const { child } of children) if (child.exitCode === null) child.kill(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  signals.on('SIGINT', onInt);
  signals.on('SIGTERM', onTerm);
  let status = 0;
  return Promise.all(
    children.map(
      ({ index, child }) =>
        new Promise<void>((resolve) => {
          let settled = false;
          const done = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
            // A child that fails to start may report both 'error' and 'exit'.
            if (settled) return;
            settled = true;
            const exit = error ? 1 : (code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
            if (exit !== 0) {
              log(
                `worker on GPU ${index} ${error ? `could not start: ${error.message}` : `exited with ${signal ?? `status ${code}`}`}`,
              );
              if (status === 0) status = exit;
            }
            resolve();
          };
          child.once('exit', (code, signal) => done(code, signal));
          child.once('error', (err) => done(null, null, err));
        }),
    ),
  ).then(() => {
    signals.off('SIGINT', onInt);
    signals.off('SIGTERM', onTerm);
    return status;
  });
}

export interface PlaceWorkerDeps extends FanOutDeps {
  accelerators?: () => AcceleratorList;
  /** The worker's config; default: the file `--config` or DRO_CONFIG names, else the defaults. */
  config?: PipelineConfig;
  configFile?: string;
}

/**
 * The device part of `dro worker`, run before it connects: resolves to an exit status when the
 * workers ran as child processes (`--devices`), or to undefined when this process is the worker,
 * pinned or not, and may go on.
 */
export async function placeWorker(
  flags: DeviceFlags,
  deps: PlaceWorkerDeps = {},
): Promise<number | undefined> {
  const env = deps.env ?? process.env;
  let list: AcceleratorList | undefined;
  const accelerators = (): AcceleratorList => (list ??= (deps.accelerators ?? listAccelerators)());
  const placement = planPlacement(flags, accelerators);
  if (flags.queue !== 'gpu') return undefined;
  const file = deps.configFile ?? env.DRO_CONFIG;
  const config = deps.config ?? (file ? loadConfigFile(file) : defaultConfig());
  const checkDeps = { env, accelerators } satisfies DeviceCheckDeps;
  if (placement.kind === 'unpinned') {
    assertDevicesUsable(config, checkDeps);
    return undefined;
  }
  if (placement.kind === 'one') {
    const runtimeSource = pinToDevice(placement.index, config, env);
    assertDevicesUsable(config, { ...checkDeps, ...(runtimeSource && { runtimeSource }) });
    return undefined;
  }
  // Checked once here with the environment the children get, so a problem is told once, not per GPU.
  const childEnv = { ...env };
  const backend = readGpuBackend(childEnv);
  if (backend.ok) childEnv.LD_LIBRARY_PATH = withLibDir(childEnv.LD_LIBRARY_PATH, backend.manifest.libDir);
  const selected = pinToDevice(placement.indexes[0]!, config, childEnv) !== undefined;
  const runtimeSource = selected
    ? `--devices ${flags.devices} (selects 'onnx-cuda' for workers.inferenceRuntime 'auto')`
    : undefined;
  assertDevicesUsable(config, { ...checkDeps, env: childEnv, ...(runtimeSource && { runtimeSource }) });
  return runPerDevice(placement.indexes, deps);
}
