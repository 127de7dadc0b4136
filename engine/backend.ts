/**
 * TF.js backend selection for the engine.
 *
 * Order of preference: native TensorFlow with CUDA, native TensorFlow on CPU, WebAssembly (XNNPACK,
 * SIMD when the runtime supports it), then the pure-JS cpu backend. The native bindings are optional
 * dependencies and are often absent, so they are loaded inside try/catch. `DRO_TF_BACKEND` overrides
 * the choice. `DRO_TFJS_NODE_PATH` names a `@tensorflow/tfjs-node` package directory built outside
 * node_modules (tools/native-backend/build.sh), used instead of the installed one. Everything else in
 * the engine talks to `@tensorflow/tfjs-core` only.
 */
import * as tf from '@tensorflow/tfjs-core';
// Autodiff needs the gradient registry, which tfjs-core does not load by default.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { logger } from '../infra/logger';

export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export type BackendPreference = BackendName | 'auto';

export interface BackendChoice {
  /** Our name for the backend (the TF.js registry calls both native variants 'tensorflow'). */
  name: BackendName;
  /** Why this backend was chosen, including why better ones were skipped. */
  reason: string;
}

export interface BackendStatus {
  name: BackendName;
  available: boolean;
  detail: string;
}

/** Thrown when an explicitly requested backend cannot be started. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

const NATIVE_PACKAGES: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

/** Environment variable naming a tfjs-node package directory to load instead of the installed one. */
export const NATIVE_PATH_ENV = 'DRO_TFJS_NODE_PATH';

interface NativeSource {
  /** What to load: a package name, or the absolute entry file of a package directory. */
  specifier: string;
  /** How the source is named in messages. */
  label: string;
}

/** Where the native backend `name` comes from: `DRO_TFJS_NODE_PATH` for the CPU build, else node_modules. */
function nativeSource(name: 'tensorflow-gpu' | 'tensorflow'): NativeSource | { error: string } {
  const dir = process.env[NATIVE_PATH_ENV];
  if (name === 'tensorflow-gpu' || dir === undefined || dir === '') {
    return { specifier: NATIVE_PACKAGES[name], label: NATIVE_PACKAGES[name] };
  }
  const label = `${NATIVE_PACKAGES[name]} from ${NATIVE_PATH_ENV}=${dir}`;
  if (!path.isAbsolute(dir)) return { error: `${label}: not an absolute path` };
  try {
    return { specifier: require.resolve(dir), label };
  } catch {
    return { error: `${label}: no package there (run tools/native-backend/build.sh)` };
  }
}

let current: BackendChoice | undefined;
let wasmPathsSet = false;

function backendRegistryName(name: BackendName): string {
  return name === 'tensorflow-gpu' ? 'tensorflow' : name;
}

/** Directory holding the wasm binaries shipped inside @tensorflow/tfjs-backend-wasm. */
export function wasmBinaryDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
}

function parsePreference(value: string | undefined, source: string): BackendPreference | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) {
    return value as BackendPreference;
  }
  throw new BackendUnavailableError(
    `${source}: unknown backend '${value}' (expected one of auto, ${BACKEND_NAMES.join(', ')})`,
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

async function tryNative(name: 'tensorflow-gpu' | 'tensorflow'): Promise<string | undefined> {
  const source = nativeSource(name);
  if ('error' in source) return source.error;
  // A package built outside node_modules brings its own copy of tfjs, whose kernels land in the same
  // global registry as ours and warn once per kernel; PROD mutes that while it loads.
  const prod = tf.env().getBool('PROD');
  if (source.specifier !== NATIVE_PACKAGES[name]) tf.env().set('PROD', true);
  try {
    // A non-literal specifier keeps type-checking and bundling independent of the optional package.
    const specifier: string = path.isAbsolute(source.specifier)
      ? pathToFileURL(source.specifier).href
      : source.specifier;
    await import(specifier);
  } catch (err) {
    return `${source.label} not loadable: ${errorText(err)}`;
  } finally {
    tf.env().set('PROD', prod);
  }
  if (!(await tf.setBackend('tensorflow')))
    return `${source.label} loaded but the 'tensorflow' backend failed`;
  return undefined;
}

async function tryWasm(): Promise<string | undefined> {
  try {
    const dir = wasmBinaryDir();
    for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) {
      if (!existsSync(path.join(dir, file))) return `missing ${file} in ${dir}`;
    }
    // With a directory prefix the backend picks the SIMD binary when the runtime supports it (3x faster
    // convolutions in Node 20) and the plain one otherwise; Node runs it single-threaded either way.
    if (!wasmPathsSet) {
      setWasmPaths(dir + path.sep);
      wasmPathsSet = true;
    }
    if (!(await tf.setBackend('wasm'))) return 'wasm backend failed to initialize';
    return undefined;
  } catch (err) {
    return `wasm backend failed: ${errorText(err)}`;
  }
}

async function tryBackend(name: BackendName): Promise<string | undefined> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow':
      return tryNative(name);
    case 'wasm':
      return tryWasm();
    case 'cpu':
      return (await tf.setBackend('cpu')) ? undefined : 'cpu backend failed to initialize';
  }
}

export interface InitBackendOptions {
  /** Walk the preference order again even if a backend was already chosen (default false). */
  reselect?: boolean;
}

/**
 * Selects and initializes the TF.js backend. An explicit preference (argument or `DRO_TF_BACKEND`,
 * the environment winning) must work or this throws; 'auto' walks the preference order, or keeps the
 * backend already chosen by an earlier call, so every entry point can call this cheaply.
 */
export async function initBackend(
  preferred: BackendPreference = 'auto',
  options: InitBackendOptions = {},
): Promise<BackendChoice> {
  const fromEnv = parsePreference(process.env.DRO_TF_BACKEND, 'DRO_TF_BACKEND');
  const wanted = fromEnv ?? preferred;
  const source = fromEnv !== undefined ? 'DRO_TF_BACKEND' : 'requested';
  const keep = wanted === current?.name || (wanted === 'auto' && options.reselect !== true);
  if (current && keep && tf.getBackend() === backendRegistryName(current.name)) {
    return current;
  }
  let choice: BackendChoice;
  if (wanted !== 'auto') {
    const failure = await tryBackend(wanted);
    if (failure !== undefined) {
      const others = describeBackends()
        .backends.filter((b) => b.available && b.name !== wanted)
        .map((b) => b.name);
      throw new BackendUnavailableError(
        `${source} backend '${wanted}' is unavailable: ${failure}; available: ${others.join(', ') || 'none'}`,
      );
    }
    choice = { name: wanted, reason: `${source} explicitly` };
  } else {
    const skipped: string[] = [];
    let found: BackendName | undefined;
    for (const name of BACKEND_NAMES) {
      const failure = await tryBackend(name);
      if (failure === undefined) {
        found = name;
        break;
      }
      skipped.push(`${name}: ${failure}`);
    }
    if (found === undefined)
      throw new BackendUnavailableError(`no TF.js backend works (${skipped.join('; ')})`);
    choice = {
      name: found,
      reason: skipped.length ? `best available (skipped ${skipped.join('; ')})` : 'best available',
    };
  }
  await tf.ready();
  current = choice;
  logger().info({ backend: choice.name, reason: choice.reason }, 'tensorflow backend selected');
  return choice;
}

/** The backend chosen by the last `initBackend`, if any. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}

function resolvable(pkg: string): string | undefined {
  try {
    return require.resolve(pkg);
  } catch {
    return undefined;
  }
}

/**
 * For `dro doctor`: which backends are installed and which one `initBackend()` would pick. Checks
 * packages and binaries without initializing anything, so it is cheap and has no side effects.
 */
export function describeBackends(): { backends: BackendStatus[]; willRun: BackendName | undefined } {
  const backends: BackendStatus[] = [];
  for (const name of ['tensorflow-gpu', 'tensorflow'] as const) {
    const source = nativeSource(name);
    if ('error' in source) {
      backends.push({ name, available: false, detail: source.error });
      continue;
    }
    const installed = path.isAbsolute(source.specifier) || resolvable(source.specifier) !== undefined;
    backends.push({
      name,
      available: installed,
      detail: `${source.label} ${installed ? 'installed' : 'not installed'}`,
    });
  }
  let wasmDetail: string;
  let wasmOk = false;
  try {
    const dir = wasmBinaryDir();
    const simd = existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'));
    wasmOk = existsSync(path.join(dir, 'tfjs-backend-wasm.wasm'));
    wasmDetail = wasmOk ? `binaries in ${dir}${simd ? ' (SIMD available)' : ''}` : `no binary in ${dir}`;
  } catch (err) {
    wasmDetail = `@tensorflow/tfjs-backend-wasm not installed: ${errorText(err)}`;
  }
  backends.push({ name: 'wasm', available: wasmOk, detail: wasmDetail });
  backends.push({ name: 'cpu', available: true, detail: 'pure JavaScript, slow convolution gradients' });
  const forced = process.env.DRO_TF_BACKEND;
  const willRun =
    forced !== undefined && forced !== '' && forced !== 'auto'
      ? (forced as BackendName)
      : backends.find((b) => b.available)?.name;
  return { backends, willRun };
}
