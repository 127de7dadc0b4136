/**
 * The ONNX Runtime GPU runtime assembled by tools/gpu-backend/build.sh from PyPI wheels: a copy of
 * onnxruntime-node whose libonnxruntime and CUDA execution provider come from the onnxruntime-gpu
 * wheel of the same version, and the NVIDIA libraries the provider links against.
 *
 * ONNX Runtime looks for its provider libraries next to the libonnxruntime it runs from, so the GPU
 * runtime must be loaded from that copy, never from node_modules; the provider's own dependencies
 * (cuBLAS, cuDNN, ...) are found through LD_LIBRARY_PATH, which the dynamic loader reads only when a
 * process starts, hence a check here instead of setting it at run time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeAccelerators, listAccelerators, type AcceleratorList } from '../../infra/accelerators';

/** A directory holding a built GPU runtime (its manifest.json); default: the cache's for this ORT. */
export const GPU_BACKEND_ENV = 'DRO_GPU_BACKEND';
export const GPU_MANIFEST_FILE = 'manifest.json';
export const GPU_BUILD_SCRIPT = 'tools/gpu-backend/build.sh';

export interface GpuBackendManifest {
  format: 1;
  /** ONNX Runtime version of the onnxruntime-node copy and of the onnxruntime-gpu wheel. */
  ortVersion: string;
  cudaMajor: number;
  /** Absolute directory of the onnxruntime-node copy (load it with import()). */
  packageDir: string;
  /** Absolute directory of the NVIDIA libraries, which LD_LIBRARY_PATH must name. */
  libDir: string;
  wheels: { name: string; version: string; file: string; sha256: string }[];
}

/** onnxruntime-node's version in node_modules, which the GPU runtime must match. */
export function installedOrtVersion(): string {
  const file = require.resolve('onnxruntime-node/package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

/** Where build.sh puts the runtime for `ortVersion` unless told otherwise. */
export function defaultGpuBackendDir(ortVersion: string, env: NodeJS.ProcessEnv = process.env): string {
  const cache =
    env.DRO_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'dro-pipeline');
  return path.join(cache, 'gpu-backend', ortVersion);
}

export type GpuBackendRead =
  { ok: true; dir: string; manifest: GpuBackendManifest } | { ok: false; dir: string; problem: string };

/** Reads and checks the manifest of the runtime `DRO_GPU_BACKEND` or the default directory names. */
export function readGpuBackend(
  env: NodeJS.ProcessEnv = process.env,
  ortVersion: string = installedOrtVersion(),
): GpuBackendRead {
  const fromEnv = env[GPU_BACKEND_ENV];
  const dir = fromEnv ? path.resolve(fromEnv) : defaultGpuBackendDir(ortVersion, env);
  const where = fromEnv ? `${GPU_BACKEND_ENV}=${fromEnv}` : dir;
  const fail = (problem: string): GpuBackendRead => ({ ok: false, dir, problem });
  let manifest: GpuBackendManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, GPU_MANIFEST_FILE), 'utf8')) as GpuBackendManifest;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return fail(
      missing
        ? `not built: no ${GPU_MANIFEST_FILE} in ${where} (run ${GPU_BUILD_SCRIPT})`
        : `${where}/${GPU_MANIFEST_FILE} is unreadable: ${(err as Error).message}`,
    );
  }
  if (manifest.format !== 1 || typeof manifest.packageDir !== 'string' || typeof manifest.libDir !== 'string')
    return fail(`${where}/${GPU_MANIFEST_FILE} is not a manifest build.sh wrote`);
  if (manifest.ortVersion !== ortVersion)
    return fail(
      `${where} holds ONNX Runtime ${manifest.ortVersion} but onnxruntime-node is ${ortVersion} (rerun ${GPU_BUILD_SCRIPT})`,
    );
  const binDir = gpuBinDir(manifest);
  for (const file of [
    'onnxruntime_binding.node',
    'libonnxruntime.so.1',
    'libonnxruntime_providers_cuda.so',
  ]) {
    if (!fs.existsSync(path.join(binDir, file)))
      return fail(`${where} is incomplete: no ${file} in ${binDir} (rerun ${GPU_BUILD_SCRIPT} --force)`);
  }
  return { ok: true, dir, manifest };
}

/** The folder of the copy's native files: binding, libonnxruntime and the providers side by side. */
export function gpuBinDir(manifest: GpuBackendManifest): string {
  return path.join(manifest.packageDir, 'bin', 'napi-v6', 'linux', 'x64');
}

export interface GpuRuntimeStatus {
  ok: boolean;
  accelerators: AcceleratorList;
  backend: GpuBackendRead;
  /** What stands in the way, each naming what was tried; empty when `ok`. */
  problems: string[];
}

export interface GpuStatusDeps {
  env?: NodeJS.ProcessEnv;
  accelerators?: AcceleratorList;
  ortVersion?: string;
  platform?: string;
}

/**
 * Whether the CUDA execution provider can load here, short of loading it: a GPU is visible, the
 * runtime is built for this onnxruntime-node, and LD_LIBRARY_PATH names its NVIDIA libraries.
 */
export function gpuRuntimeStatus(deps: GpuStatusDeps = {}): GpuRuntimeStatus {
  const env = deps.env ?? process.env;
  const accelerators = deps.accelerators ?? listAccelerators();
  const platform = deps.platform ?? `${process.platform}/${process.arch}`;
  const backend = readGpuBackend(env, deps.ortVersion ?? installedOrtVersion());
  const problems: string[] = [];
  if (platform !== 'linux/x64')
    problems.push(`the GPU runtime is built for linux/x64 only, this is ${platform}`);
  if (accelerators.gpus.length === 0) problems.push(describeAccelerators(accelerators));
  if (!backend.ok) problems.push(`GPU runtime ${backend.problem}`);
  else if (!ldPathHas(env, backend.manifest.libDir))
    problems.push(
      `LD_LIBRARY_PATH does not name ${backend.manifest.libDir}, where the CUDA provider's libraries are ` +
        `(run: source ${path.join(backend.dir, 'env.sh')}, then start the command again)`,
    );
  return { ok: problems.length === 0, accelerators, backend, problems };
}

/** LD_LIBRARY_PATH with `dir` first, unless it is already on it. */
export function withLibDir(current: string | undefined, dir: string): string {
  const entries = (current ?? '').split(':').filter((e) => e !== '');
  return entries.includes(dir) ? entries.join(':') : [dir, ...entries].join(':');
}

function ldPathHas(env: NodeJS.ProcessEnv, dir: string): boolean {
  const want = path.resolve(dir);
  return (env.LD_LIBRARY_PATH ?? '').split(':').some((entry) => entry !== '' && path.resolve(entry) === want);
}
