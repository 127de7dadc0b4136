/**
 * Whether the GPU a config asks for can be used here, checked before any stage starts (by the
 * pre-flight of `dro run` / `dro validate` / `dro doctor`, and by `dro worker` at start): a GPU
 * runtime that cannot load must stop the command with what was tried, not let it run on the CPU.
 */
import type { PipelineConfig } from '../config/schemas';
import type * as BackendModule from '../engine/backend';
import { gpuRuntimeStatus, type GpuRuntimeStatus } from '../engine/onnx/gpu-backend';
import type * as RuntimeModule from '../engine/onnx/runtime';
import { describeAccelerators, listAccelerators, type AcceleratorList } from '../infra/accelerators';

// The engine's modules load TF.js, which a config check must not wait for; the type keeps the name in step.
const INFERENCE_RUNTIME_ENV: typeof RuntimeModule.INFERENCE_RUNTIME_ENV = 'DRO_INFERENCE_RUNTIME';

export interface DeviceProblem {
  /** The config field to change (dotted). */
  field: string;
  message: string;
}

export interface DeviceCheckDeps {
  env?: NodeJS.ProcessEnv;
  /** Default: the GPUs this machine shows (runs nvidia-smi once, and only when a GPU is asked for). */
  accelerators?: () => AcceleratorList;
  gpuStatus?: (accelerators: AcceleratorList) => GpuRuntimeStatus;
  /** Which TF.js backends are installed (engine/backend.ts describeBackends). */
  tfBackends?: () => ReturnType<typeof BackendModule.describeBackends>;
  /** Who selected the GPU runtime, when neither the config nor the user's environment did. */
  runtimeSource?: string;
}

/** Every reason the GPU `config` (or the environment's override of it) asks for is unusable. */
export function deviceProblems(config: PipelineConfig, deps: DeviceCheckDeps = {}): DeviceProblem[] {
  const env = deps.env ?? process.env;
  const problems: DeviceProblem[] = [];
  let accelerators: AcceleratorList | undefined;
  const gpus = (): AcceleratorList => (accelerators ??= (deps.accelerators ?? listAccelerators)());

  const runtimeFromEnv = env[INFERENCE_RUNTIME_ENV] || undefined;
  const runtime = runtimeFromEnv ?? config.workers.inferenceRuntime;
  if (runtime === 'onnx-cuda') {
    const source =
      deps.runtimeSource ??
      (runtimeFromEnv ? `${INFERENCE_RUNTIME_ENV}=onnx-cuda (overriding it)` : `'onnx-cuda'`);
    const status = (deps.gpuStatus ?? ((a) => gpuRuntimeStatus({ env, accelerators: a })))(gpus());
    if (!status.ok)
      problems.push({
        field: 'workers.inferenceRuntime',
        message:
          `${source}: the CUDA execution provider cannot load: ${status.problems.join('; ')}. ` +
          `Available: onnx (onnxruntime-node on the CPU), tfjs; use "onnx" or "auto" to run on the CPU`,
      });
  }

  const backendFromEnv = env.DRO_TF_BACKEND || undefined;
  const backend = backendFromEnv ?? config.workers.backend;
  if (backend === 'tensorflow-gpu') {
    const source = backendFromEnv ? 'DRO_TF_BACKEND=tensorflow-gpu (overriding it)' : `'tensorflow-gpu'`;
    const describe =
      deps.tfBackends ??
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- TF.js loads only when asked about
      (require('../engine/backend') as typeof BackendModule).describeBackends;
    const { backends } = describe();
    const native = backends.find((b) => b.name === 'tensorflow-gpu');
    const available = backends.filter((b) => b.available && b.name !== 'tensorflow-gpu').map((b) => b.name);
    const why = [
      ...(native?.available ? [] : [native?.detail ?? '@tensorflow/tfjs-node-gpu not installed']),
      // TensorFlow without a GPU quietly runs on the CPU; refuse that instead.
      ...(gpus().gpus.length === 0 ? [describeAccelerators(gpus())] : []),
    ];
    if (why.length > 0)
      problems.push({
        field: 'workers.backend',
        message: `${source} cannot run: ${why.join('; ')}. Available: ${available.join(', ') || 'none'}`,
      });
  }
  return problems;
}
