/**
 * Session options of the sampling sessions, in one place so that the thread count and the device
 * a worker was configured with reach every session it builds.
 */
import type { InferenceSession } from 'onnxruntime-node';

export interface SessionPlacement {
  /** Intra-op threads (operators that run on the CPU, all of them without a GPU). */
  threads: number;
  /**
   * Run on the CUDA execution provider of this device. The device id counts the GPUs the process
   * sees, so a worker pinned with CUDA_VISIBLE_DEVICES (`dro worker --device N`) uses 0.
   */
  cuda?: { deviceId: number };
}

export function sessionOptions(placement: SessionPlacement): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: placement.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Operators the CUDA provider lacks fall back to the CPU provider, listed after it.
    ...(placement.cuda && {
      executionProviders: [{ name: 'cuda', deviceId: placement.cuda.deviceId }, 'cpu'],
    }),
    // Idle pool threads sleep instead of spinning: workers share their cores with TF.js and with
    // each other, and on a busy 2-core machine spinning made 2 threads 2-4x slower than 1.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}
