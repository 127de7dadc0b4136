/**
 * Proof that the GPU runtime's CUDA execution provider loads and computes: a one-node graph run on
 * the CUDA provider alone, with the CPU fallback disabled so that a provider that silently declines
 * the node fails here. Run in a child process (tools/gpu-backend/smoke.ts): a process keeps the
 * first onnxruntime it loads, and a failed CUDA initialization can take the process down with it.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeOnnxModel } from '../io/onnx-writer';
import type { OrtModule } from './runtime';

/** Loads onnxruntime-node from `packageDir` and runs x + 1 on CUDA device `deviceId`; throws why not. */
export async function probeCudaProvider(packageDir: string, deviceId = 0): Promise<string> {
  const entry = pathToFileURL(path.join(packageDir, 'dist', 'index.js')).href;
  const loaded = (await import(entry)) as { default?: OrtModule } & OrtModule;
  const ort = loaded.default ?? loaded;
  const model = encodeOnnxModel({
    name: 'cuda_probe',
    nodes: [{ opType: 'Add', inputs: ['x', 'one'], outputs: ['y'] }],
    inputs: [{ name: 'x', dtype: 'float32', shape: [4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [4] }],
    initializers: [{ name: 'one', dtype: 'float32', dims: [], data: Float32Array.of(1) }],
  });
  const session = await ort.InferenceSession.create(model, {
    executionProviders: [{ name: 'cuda', deviceId }],
    extra: { session: { disable_cpu_ep_fallback: '1' } },
  });
  try {
    const x = new ort.Tensor('float32', Float32Array.of(0, 1, 2, 3), [4]);
    const y = (await session.run({ x })).y!.data as Float32Array;
    if (![1, 2, 3, 4].every((v, i) => y[i] === v)) throw new Error(`x + 1 gave [${[...y].join(', ')}]`);
  } finally {
    await session.release();
  }
  return `CUDA execution provider ran on device ${deviceId} (ONNX Runtime ${ort.env.versions.common})`;
}

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** Runs the probe in a child process with `env` (which must name the NVIDIA libraries). */
export function probeInChild(packageDir: string, env: NodeJS.ProcessEnv = process.env): ProbeResult {
  const script = path.join(__dirname, '..', '..', 'tools', 'gpu-backend', 'smoke.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, packageDir], {
    encoding: 'utf8',
    env,
    timeout: 120_000,
  });
  // eslint-disable-next-line no-control-regex -- ONNX Runtime colours its log lines
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.replace(/\x1b\[[0-9;]*m/g, '');
  const out = text.trim().split('\n').filter(Boolean);
  if (r.status === 0) return { ok: true, detail: out.at(-1) ?? 'loaded' };
  // The thrown message says only "Failed to load shared library"; ONNX Runtime's log names the library.
  const library = /Failed to load library (\S+) with error: (.+)$/m.exec(text);
  const last = out.at(-1);
  const why =
    r.error?.message ??
    (library
      ? `${path.basename(library[1]!)}: ${library[2]!.trim()}`
      : (last ?? `exit ${r.status ?? r.signal}`));
  return { ok: false, detail: `the CUDA execution provider does not load: ${why}` };
}
