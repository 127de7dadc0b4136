/**
 * A UNet's noise prediction for the sampling loops, on the runtime chosen by ./runtime: TF.js runs
 * the model's live weights; ONNX runs an exported snapshot of them, rebuilt lazily after
 * `weightsChanged()` so that samples always come from the current weights.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { UNet2DConditionModel } from '../models/unet';
import type { EpsModel } from '../schedulers/sampling';
import { ONNX_MAX_BYTES } from '../io/onnx-writer';
import {
  InferenceRuntimeError,
  inferenceThreads,
  loadOnnxRuntime,
  resolveInferenceRuntime,
  type InferenceRuntimePreference,
  type RuntimeChoice,
} from './runtime';
import { OnnxUNet } from './unet-session';

export interface InferenceOptions {
  /** Default 'auto' (see ./runtime); `DRO_INFERENCE_RUNTIME` overrides it. */
  runtime?: InferenceRuntimePreference;
  /** Intra-op threads of the ONNX session; default `DRO_INFERENCE_THREADS`, else every core. */
  threads?: number;
}

export interface InferenceStats {
  /** Sessions built (the first one and one per weight change that was sampled from). */
  builds: number;
  /** Total milliseconds of graph export and session creation. */
  buildMs: number;
}

export interface UNetInference {
  readonly choice: RuntimeChoice;
  /** eps(x, t, context) of the UNet's current weights, for runSampler. */
  readonly predict: EpsModel<tf.Tensor3D>;
  /** The UNet's weights were replaced: the next prediction must use the new ones. */
  weightsChanged(): void;
  readonly stats: InferenceStats;
  /** Releases the ONNX session, if any. The UNet itself stays owned by the caller. */
  dispose(): Promise<void>;
}

class TfjsInference implements UNetInference {
  readonly stats: InferenceStats = { builds: 0, buildMs: 0 };
  readonly predict: EpsModel<tf.Tensor3D>;

  constructor(
    unet: UNet2DConditionModel,
    readonly choice: RuntimeChoice,
  ) {
    this.predict = (x, t, ctx) => unet.predict(x, t, ctx);
  }

  weightsChanged(): void {}

  async dispose(): Promise<void> {}
}

class OnnxInference implements UNetInference {
  readonly stats: InferenceStats = { builds: 0, buildMs: 0 };
  readonly predict: EpsModel<tf.Tensor3D>;
  private session: Promise<OnnxUNet> | undefined;

  constructor(
    private readonly unet: UNet2DConditionModel,
    readonly choice: RuntimeChoice,
    private readonly threads: number,
  ) {
    this.predict = async (x, t, ctx) => (await this.current()).predict(x, t, ctx);
  }

  private current(): Promise<OnnxUNet> {
    if (!this.session) {
      // The device id is 0: `dro worker --device N` pins the process to one GPU with CUDA_VISIBLE_DEVICES.
      const onGpu = this.choice.runtime === 'onnx-cuda';
      const cuda = onGpu ? { cuda: { deviceId: 0 } } : {};
      const built = loadOnnxRuntime(onGpu || undefined).then((ort) =>
        OnnxUNet.create(this.unet, { ort, threads: this.threads, ...cuda }),
      );
      const session = built.then((s) => {
        this.stats.builds++;
        this.stats.buildMs += s.buildMs.export + s.buildMs.session;
        return s;
      });
      // A failed build is not kept: the next prediction tries again.
      session.catch(() => {
        if (this.session === session) this.session = undefined;
      });
      this.session = session;
    }
    return this.session;
  }

  weightsChanged(): void {
    const old = this.session;
    this.session = undefined;
    void old?.then((s) => s.release()).catch(() => undefined);
  }

  async dispose(): Promise<void> {
    const old = this.session;
    this.session = undefined;
    await old?.then((s) => s.release()).catch(() => undefined);
  }
}

/** UNet inference on the runtime `options.runtime` resolves to. */
export async function createUNetInference(
  unet: UNet2DConditionModel,
  options: InferenceOptions = {},
): Promise<UNetInference> {
  const choice = await resolveInferenceRuntime(options.runtime);
  if (choice.runtime === 'tfjs') return new TfjsInference(unet, choice);
  const bytes = unet.params.parameterCount() * 4;
  if (bytes > ONNX_MAX_BYTES) {
    const why = `the UNet's ${bytes} bytes of weights exceed the 2 GiB an inline ONNX model can hold`;
    if (choice.explicit)
      throw new InferenceRuntimeError(
        `inference runtime '${choice.runtime}' (${choice.reason}) cannot run this model: ${why}; available: tfjs`,
      );
    return new TfjsInference(unet, { runtime: 'tfjs', explicit: false, reason: `auto: ${why}` });
  }
  // A bad thread count fails here, not at the first prediction.
  return new OnnxInference(unet, choice, inferenceThreads(options.threads));
}
