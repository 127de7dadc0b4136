/**
 * Which runtime runs UNet inference (sampling): TF.js, on whatever backend engine/backend.ts chose,
 * or onnxruntime-node on the CPU with one intra-op thread per core. Training always runs on TF.js;
 * only the no-gradient sampling loops (generation, DRO replay-buffer refills) can use ONNX.
 *
 * `DRO_INFERENCE_RUNTIME` overrides the requested preference (config `workers.inferenceRuntime`),
 * as `DRO_TF_BACKEND` does for the TF.js backend. 'auto' picks onnx when onnxruntime-node loads,
 * else tfjs, and tfjs when TF.js runs on a GPU (ONNX here runs on the CPU); an explicit 'onnx' that
 * cannot load is an error, never a silent fallback. A worker sets its config's preference as the
 * process default (`setDefaultInferenceRuntime`), since the runtime is a property of where work runs.
 */
import { availableParallelism } from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { currentBackend } from '../backend';

export const INFERENCE_RUNTIMES = ['auto', 'tfjs', 'onnx'] as const;
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
}

let ortPromise: Promise<OrtModule> | undefined;
let processDefault: InferenceRuntimePreference = 'auto';

/** The preference used when a caller names none: a worker's `workers.inferenceRuntime`. */
export function setDefaultInferenceRuntime(preference: InferenceRuntimePreference): void {
  processDefault = parse(preference, 'workers.inferenceRuntime') ?? 'auto';
}

/** onnxruntime-node, loaded once per process; rejects with the loader's reason when it cannot load. */
export function loadOnnxRuntime(): Promise<OrtModule> {
  ortPromise ??= import('onnxruntime-node').then(
    (m) => ((m as { default?: OrtModule }).default ?? m) as OrtModule,
    (err: unknown) => {
      ortPromise = undefined;
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

/**
 * Intra-op threads of an ONNX session: the explicit value, else `DRO_INFERENCE_THREADS`, else the
 * cores available to this process.
 */
export function inferenceThreads(requested?: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[INFERENCE_THREADS_ENV];
  const fromEnv = raw === undefined || raw === '' ? undefined : Number(raw);
  const value = requested ?? fromEnv;
  const source = requested !== undefined ? 'inference threads' : INFERENCE_THREADS_ENV;
  if (value === undefined) return availableParallelism();
  if (!Number.isInteger(value) || value < 1 || value > 1024)
    throw new InferenceRuntimeError(
      `${source} must be an integer in [1, 1024], got ${JSON.stringify(requested ?? raw)}`,
    );
  return value;
}
