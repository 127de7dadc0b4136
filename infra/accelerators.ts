/**
 * The NVIDIA GPUs this machine shows: `nvidia-smi` when it is installed, else the driver's
 * /proc/driver/nvidia/gpus (present whenever the kernel module is loaded, even without the
 * user-space tools), else none. Both sources are injectable so the parsing is tested without a GPU.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Accelerator {
  /** The index nvidia-smi shows, which CUDA uses too under CUDA_DEVICE_ORDER=PCI_BUS_ID. */
  index: number;
  name: string;
  memoryMiB?: number;
  driver?: string;
}

export interface AcceleratorList {
  gpus: Accelerator[];
  source: 'nvidia-smi' | 'proc' | 'none';
  /** How the list was found, or why it is empty (each source tried and what it said). */
  detail: string;
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be started (ENOENT: not installed). */
  error?: NodeJS.ErrnoException;
}

export type CommandRunner = (command: string, args: readonly string[]) => CommandResult;

export interface DetectDeps {
  run?: CommandRunner;
  /** Default /proc/driver/nvidia/gpus. */
  procDir?: string;
}

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,name,memory.total,driver_version',
  '--format=csv,noheader',
] as const;

export const PROC_GPUS_DIR = '/proc/driver/nvidia/gpus';

const runCommand: CommandRunner = (command, args) => {
  // A wedged driver can make nvidia-smi hang; doctor and worker start must not.
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 15_000 });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    ...(r.error && { error: r.error as NodeJS.ErrnoException }),
  };
};

/** Rows of `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader`. */
export function parseNvidiaSmi(stdout: string): Accelerator[] {
  const gpus: Accelerator[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(',').map((f) => f.trim());
    // GPU names contain no commas, but a future field might: index first, driver last.
    if (fields.length < 4) throw new Error(`unexpected nvidia-smi line ${JSON.stringify(line)}`);
    const index = Number(fields[0]);
    if (!Number.isInteger(index) || index < 0)
      throw new Error(`unexpected GPU index in nvidia-smi line ${JSON.stringify(line)}`);
    const memory = /^(\d+)\s*MiB$/i.exec(fields[fields.length - 2]!);
    gpus.push({
      index,
      name: fields.slice(1, -2).join(', '),
      ...(memory && { memoryMiB: Number(memory[1]) }),
      driver: fields[fields.length - 1]!,
    });
  }
  return gpus.sort((a, b) => a.index - b.index);
}

/** GPUs from the driver's proc files: one directory per PCI address, each with an `information` file. */
export function readProcGpus(dir: string): Accelerator[] | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir).sort();
  } catch {
    return undefined;
  }
  // Directory names are PCI addresses, so sorted order is PCI bus order, the order nvidia-smi uses.
  return entries.map((entry, index) => {
    let name = `GPU at ${entry}`;
    try {
      const info = fs.readFileSync(path.join(dir, entry, 'information'), 'utf8');
      const model = /^Model:\s*(.+)$/m.exec(info);
      if (model) name = model[1]!.trim();
    } catch {
      // An unreadable information file still proves a GPU is there.
    }
    return { index, name };
  });
}

/** Lists the visible GPUs; never throws. */
export function listAccelerators(deps: DetectDeps = {}): AcceleratorList {
  const run = deps.run ?? runCommand;
  const procDir = deps.procDir ?? PROC_GPUS_DIR;
  const tried: string[] = [];
  const smi = run('nvidia-smi', NVIDIA_SMI_ARGS);
  if (smi.error?.code === 'ENOENT') tried.push('nvidia-smi not found');
  else if (smi.error) tried.push(`nvidia-smi could not run: ${smi.error.message}`);
  else if (smi.status !== 0)
    tried.push(`nvidia-smi failed: ${firstLine(smi.stderr || smi.stdout) || `exit status ${smi.status}`}`);
  else {
    try {
      const gpus = parseNvidiaSmi(smi.stdout);
      if (gpus.length > 0) return { gpus, source: 'nvidia-smi', detail: 'nvidia-smi' };
      tried.push('nvidia-smi lists no GPU');
    } catch (err) {
      tried.push(`nvidia-smi: ${(err as Error).message}`);
    }
  }
  const proc = readProcGpus(procDir);
  if (proc && proc.length > 0)
    return { gpus: proc, source: 'proc', detail: `${procDir} (${tried.join('; ')})` };
  tried.push(proc ? `${procDir} is empty` : `no ${procDir}`);
  return { gpus: [], source: 'none', detail: tried.join(', ') };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]!.trim();
}

/** "0: NVIDIA H100 80GB HBM3 (81559 MiB, driver 550.54.15)". */
export function describeAccelerator(gpu: Accelerator): string {
  const extra = [
    ...(gpu.memoryMiB !== undefined ? [`${gpu.memoryMiB} MiB`] : []),
    ...(gpu.driver !== undefined ? [`driver ${gpu.driver}`] : []),
  ];
  return `${gpu.index}: ${gpu.name}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** One line for messages: the GPUs, or "no GPU visible (why)". */
export function describeAccelerators(list: AcceleratorList): string {
  if (list.gpus.length === 0) return `no GPU visible (${list.detail})`;
  return `${list.gpus.map(describeAccelerator).join('; ')} [from ${list.detail}]`;
}
