/**
 * Which runtime runs UNet inference (sampling): TF.js, on whatever backend engine/backend.ts chose,
 * onnxruntime-node on the CPU with one intra-op thread per core, or onnxruntime-node on the CUDA
 * execution provider ('onnx-cuda', the runtime tools/gpu-backend/build.sh assembles; see
 * ./gpu-backend). Training always runs on TF.js; only the no-gradient sampling loops (generation,
 * DRO replay-buffer refills) can use ONNX.
 *
 * `DRO_INFERENCE_RUNTIME` overrides the requested preference (config `workers.inferenceRuntime`),
 * as `DRO_TF_BACKEND` does for the TF.js backend. 'auto' picks onnx when onnxruntime-node loads,
 * else tfjs, and tfjs when TF.js runs on a GPU; it never picks 'onnx-cuda', which must be asked
 * for. An explicit 'onnx' or 'onnx-cuda' that cannot load is an error, never a silent fallback. A
 * worker sets its config's preference as the process default (`setDefaultInferenceRuntime`), since
 * the runtime is a property of where work runs.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Ort from 'onnxruntime-node';
import { currentBackend } from '../backend';
import { gpuRuntimeStatus, readGpuBackend, type GpuRuntimeStatus } from './gpu-backend';

export const INFERENCE_RUNTIMES = ['auto', 'tfjs', 'onnx', 'onnx-cuda'] as const;
export type InferenceRuntimePreference = (typeof INFERENCE_RUNTIMES)[number];
export type InferenceRuntime = Exclude<InferenceRuntimePreference, 'auto'>;

export const INFERENCE_RUNTIME_ENV = 'DRO_INFERENCE_RUNTIME';
export const INFERENCE_THREADS_ENV = 'DRO_INFERENCE_THREADS';

/** The requested runtime cannot run here, or the request itself is malformed. Permanent. */
export class InferenceRuntimeError extends Error {
  override name = 'InferenceRuntimeError';
}

export type OrtModule = typeof Ort;

export interface RuntimeChoice {
  runtime: InferenceRuntime;
  /** Named by the request or the environment rather than picked by 'auto'. */
  explicit: boolean;
  /** Why, e.g. "DRO_INFERENCE_RUNTIME explicitly" or "auto: onnxruntime-node failed to load: ...". */
  reason: string;
}

export interface RuntimeDeps {
  env?: NodeJS.ProcessEnv;
  /** The TF.js backend in use (default: the engine's current one). */
  backend?: string;
  /** Loads onnxruntime-node (injectable so tests can simulate a missing binding). */
  loadOrt?: () => Promise<OrtModule>;
  /** Whether the GPU runtime can load (injectable so tests need no GPU). */
  gpuStatus?: () => GpuRuntimeStatus;
}

let ortPromise: Promise<OrtModule> | undefined;
let loadedCopy: 'node_modules' | 'gpu-runtime' | undefined;
let processDefault: InferenceRuntimePreference = 'auto';
let processThreads: number | undefined;

/** The preference used when a caller names none: a worker's `workers.inferenceRuntime`. */
export function setDefaultInferenceRuntime(preference: InferenceRuntimePreference): void {
  processDefault = parse(preference, 'workers.inferenceRuntime') ?? 'auto';
}

/**
 * The thread count used when neither a caller nor `DRO_INFERENCE_THREADS` names one: a worker's
 * `workers.threads`. Also sets TF_NUM_INTRAOP_THREADS (unless already set) for the native TensorFlow
 * backend, which reads it once, when it loads; the other TF.js backends have no such knob.
 */
export function setDefaultInferenceThreads(
  threads: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
): void {
  processThreads = threads === undefined ? undefined : inferenceThreads(threads, {});
  if (processThreads !== undefined && !env.TF_NUM_INTRAOP_THREADS)
    env.TF_NUM_INTRAOP_THREADS = String(processThreads);
}

/** Whether this process runs ONNX on the GPU: the environment's choice, else the worker's default. */
function processWantsCuda(env: NodeJS.ProcessEnv = process.env): boolean {
  return (parse(env[INFERENCE_RUNTIME_ENV], INFERENCE_RUNTIME_ENV) ?? processDefault) === 'onnx-cuda';
}

/**
 * onnxruntime-node, loaded once per process; rejects with the loader's reason when it cannot load.
 * A process that runs ONNX on the GPU loads the GPU runtime's copy for every session, CPU ones too:
 * both copies' libraries share a soname, so whichever loads first would serve the other as well.
 * `cuda` asks for the GPU copy (default: whether the process runs ONNX on the GPU).
 */
export function loadOnnxRuntime(cuda?: boolean): Promise<OrtModule> {
  if (ortPromise) {
    if (cuda === true && loadedCopy === 'node_modules')
      return Promise.reject(
        new InferenceRuntimeError(
          "onnxruntime-node from node_modules is already loaded in this process, so the GPU runtime's " +
            `copy cannot be; set ${INFERENCE_RUNTIME_ENV}=onnx-cuda or workers.inferenceRuntime "onnx-cuda" for the whole worker`,
        ),
      );
    return ortPromise;
  }
  let specifier = 'onnxruntime-node';
  try {
    if (cuda ?? processWantsCuda()) {
      const backend = readGpuBackend();
      if (!backend.ok) throw new InferenceRuntimeError(`GPU runtime ${backend.problem}`);
      specifier = pathToFileURL(path.join(backend.manifest.packageDir, 'dist', 'index.js')).href;
    }
  } catch (err) {
    return Promise.reject(err as Error);
  }
  loadedCopy = specifier === 'onnxruntime-node' ? 'node_modules' : 'gpu-runtime';
  ortPromise = import(specifier).then(
    (m) => ((m as { default?: OrtModule }).default ?? m) as OrtModule,
    (err: unknown) => {
      ortPromise = undefined;
      loadedCopy = undefined;
      throw err;
    },
  );
  return ortPromise;
}

function parse(value: string | undefined, source: string): InferenceRuntimePreference | undefined {
  if (value === undefined || value === '') return undefined;
  if ((INFERENCE_RUNTIMES as readonly string[]).includes(value)) return value as InferenceRuntimePreference;
  throw new InferenceRuntimeError(
    `${source} ${JSON.stringify(value)} is not an inference runtime; use one of ${INFERENCE_RUNTIMES.join(', ')}`,
  );
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** Resolves a preference (and the environment's override) to the runtime that will run. */
export async function resolveInferenceRuntime(
  requested: InferenceRuntimePreference | undefined = undefined,
  deps: RuntimeDeps = {},
): Promise<RuntimeChoice> {
  requested ??= processDefault;
  const env = deps.env ?? process.env;
  const fromEnv = parse(env[INFERENCE_RUNTIME_ENV], INFERENCE_RUNTIME_ENV);
  const wanted = fromEnv ?? parse(requested, 'inference runtime');
  const source = fromEnv !== undefined ? INFERENCE_RUNTIME_ENV : 'requested';
  if (wanted === 'tfjs') return { runtime: 'tfjs', explicit: true, reason: `${source} explicitly` };
  if (wanted === 'onnx-cuda') return resolveCuda(source, deps);
  const backend = deps.backend ?? currentBackend()?.name;
  if (wanted === 'auto' && backend === 'tensorflow-gpu')
    return { runtime: 'tfjs', explicit: false, reason: 'auto: TF.js runs on the GPU' };
  let failure: string | undefined;
  try {
    await (deps.loadOrt ?? loadOnnxRuntime)();
  } catch (err) {
    failure = errorText(err);
  }
  if (wanted === 'onnx') {
    if (failure !== undefined)
      throw new InferenceRuntimeError(
        `${source} inference runtime 'onnx' is not available (onnxruntime-node failed to load: ${failure}); ` +
          `available: tfjs. Set ${INFERENCE_RUNTIME_ENV}=tfjs or workers.inferenceRuntime "tfjs" (or "auto").`,
      );
    return { runtime: 'onnx', explicit: true, reason: `${source} explicitly` };
  }
  return failure === undefined
    ? { runtime: 'onnx', explicit: false, reason: 'auto: onnxruntime-node loaded' }
    : { runtime: 'tfjs', explicit: false, reason: `auto: onnxruntime-node failed to load: ${failure}` };
}

/** Checks the GPU runtime before it is chosen, so that a stage never starts on a runtime that fails. */
async function resolveCuda(source: string, deps: RuntimeDeps): Promise<RuntimeChoice> {
  const fail = (why: string) =>
    new InferenceRuntimeError(
      `${source} inference runtime 'onnx-cuda' is not available: ${why}; available: onnx (CPU), tfjs. ` +
        `Set ${INFERENCE_RUNTIME_ENV} or workers.inferenceRuntime to "onnx" or "auto" to run on the CPU.`,
    );
  const status = (deps.gpuStatus ?? gpuRuntimeStatus)();
  if (!status.ok) throw fail(status.problems.join('; '));
  try {
    await (deps.loadOrt ?? (() => loadOnnxRuntime(true)))();
  } catch (err) {
    throw fail(`the GPU runtime's onnxruntime-node failed to load: ${errorText(err)}`);
  }
  return { runtime: 'onnx-cuda', explicit: true, reason: `${source} explicitly` };
}

/**
 * Intra-op threads of an ONNX session: the explicit value, else `DRO_INFERENCE_THREADS`, else the
 * worker's `workers.threads`, else the cores available to this process.
 */
export function inferenceThreads(requested?: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[INFERENCE_THREADS_ENV];
  const fromEnv = raw === undefined || raw === '' ? undefined : Number(raw);
  const value = requested ?? fromEnv ?? processThreads;
  const source =
    requested !== undefined
      ? 'inference threads'
      : fromEnv !== undefined
        ? INFERENCE_THREADS_ENV
        : 'workers.threads';
  if (value === undefined) return availableParallelism();
  if (!Number.isInteger(value) || value < 1 || value > 1024)
    throw new InferenceRuntimeError(
      `${source} must be an integer in [1, 1024], got ${JSON.stringify(requested ?? raw)}`,
    );
  return value;
}
