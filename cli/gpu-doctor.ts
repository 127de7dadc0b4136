/**
 * The GPU lines of `dro doctor`: which GPUs the machine shows, whether the GPU runtime of ONNX
 * inference is built (tools/gpu-backend/build.sh), and whether its CUDA execution provider loads,
 * found by running one operator on it in a child process. The runtime is required only when the
 * config (or DRO_INFERENCE_RUNTIME) selects it; otherwise the lines inform.
 */
import type { PipelineConfig } from '../config/schemas';
import { probeInChild, type ProbeResult } from '../engine/onnx/cuda-probe';
import { gpuRuntimeStatus, withLibDir, type GpuRuntimeStatus } from '../engine/onnx/gpu-backend';
import { describeAccelerators, listAccelerators, type AcceleratorList } from '../infra/accelerators';
import type { DoctorCheck } from './commands/doctor';

export interface GpuDoctorDeps {
  env?: NodeJS.ProcessEnv;
  accelerators?: () => AcceleratorList;
  status?: (accelerators: AcceleratorList) => GpuRuntimeStatus;
  probe?: (packageDir: string, env: NodeJS.ProcessEnv) => ProbeResult;
}

export function gpuChecks(config: PipelineConfig, deps: GpuDoctorDeps = {}): DoctorCheck[] {
  const env = deps.env ?? process.env;
  const accelerators = (deps.accelerators ?? listAccelerators)();
  const status = (deps.status ?? ((a) => gpuRuntimeStatus({ env, accelerators: a })))(accelerators);
  const selected = (env.DRO_INFERENCE_RUNTIME || config.workers.inferenceRuntime) === 'onnx-cuda';
  const gpus: DoctorCheck = {
    name: 'gpus',
    ok: true,
    required: false,
    detail:
      accelerators.gpus.length > 0
        ? describeAccelerators(accelerators)
        : `none: ${describeAccelerators(accelerators)}; the CPU path runs (ONNX Runtime and TF.js on the CPU)`,
  };
  return [gpus, runtimeCheck(status, selected, env, deps.probe ?? probeInChild)];
}

function runtimeCheck(
  status: GpuRuntimeStatus,
  selected: boolean,
  env: NodeJS.ProcessEnv,
  probe: (packageDir: string, env: NodeJS.ProcessEnv) => ProbeResult,
): DoctorCheck {
  const use = selected
    ? 'selected by workers.inferenceRuntime "onnx-cuda"'
    : 'not selected (workers.inferenceRuntime "onnx-cuda" selects it)';
  const line = (ok: boolean, detail: string): DoctorCheck => ({
    name: 'gpu runtime',
    ok: ok || !selected,
    required: selected,
    detail: `${detail}; ${use}`,
  });
  const { backend, accelerators } = status;
  if (!backend.ok) return line(false, backend.problem);
  const m = backend.manifest;
  const built = `built in ${backend.dir} (ONNX Runtime ${m.ortVersion}, CUDA ${m.cudaMajor})`;
  if (accelerators.gpus.length === 0)
    return line(false, `${built}; the CUDA execution provider cannot load: no GPU visible`);
  // The probe's child process gets the library path the runtime needs even if this one lacks it,
  // so the report tells a missing `source env.sh` apart from a provider that does not load.
  const probed = probe(m.packageDir, { ...env, LD_LIBRARY_PATH: withLibDir(env.LD_LIBRARY_PATH, m.libDir) });
  if (!probed.ok) return line(false, `${built}; ${probed.detail}`);
  if (!status.ok)
    return line(false, `${built}; ${probed.detail}, but not in this shell: ${status.problems.join('; ')}`);
  return line(true, `${built}; ${probed.detail}`);
}
