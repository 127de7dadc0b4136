/**
 * The UNet exported to ONNX and run by onnxruntime-node: the same `predict(x, t, context)` as
 * UNet2DConditionModel, on a snapshot of the weights taken when the session was built.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { UNet2DConditionModel } from '../models/unet';
import { inferenceThreads, loadOnnxRuntime, type OrtModule } from './runtime';
import { sessionOptions } from './session-options';
import { exportUNetToOnnx, UNET_ONNX_IO } from './unet-export';

export interface OnnxUNetOptions {
  /** Intra-op threads. Default: `DRO_INFERENCE_THREADS`, else the available cores. */
  threads?: number;
  /** The onnxruntime module (default: onnxruntime-node, loaded once). */
  ort?: OrtModule;
  /** Run on the CUDA execution provider of this device (the GPU runtime's onnxruntime-node). */
  cuda?: { deviceId: number };
}

type OrtTensor = InstanceType<OrtModule['Tensor']>;
type OrtSession = Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;

export class OnnxUNet {
  /** Text states converted once per tensor: the sampler passes the same one every step. */
  private readonly contexts = new WeakMap<tf.Tensor3D, OrtTensor>();

  private constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
    readonly config: UNet2DConditionModel['config'],
    readonly threads: number,
    /** Milliseconds spent exporting the graph and building the session. */
    readonly buildMs: { export: number; session: number },
  ) {}

  /** Exports `unet`'s current weights and opens a session on them. */
  static async create(unet: UNet2DConditionModel, options: OnnxUNetOptions = {}): Promise<OnnxUNet> {
    const ort = options.ort ?? (await loadOnnxRuntime());
    const threads = inferenceThreads(options.threads);
    const t0 = performance.now();
    const bytes = exportUNetToOnnx(unet);
    const t1 = performance.now();
    const session = await ort.InferenceSession.create(
      bytes,
      sessionOptions({ threads, ...(options.cuda && { cuda: options.cuda }) }),
    );
    const t2 = performance.now();
    return new OnnxUNet(ort, session, unet.config, threads, { export: t1 - t0, session: t2 - t1 });
  }

  /**
   * eps(x, t, context) as UNet2DConditionModel.predict computes it; `t` has one timestep per sample
   * or a single one for all. The caller owns (and disposes) the result.
   */
  async predict(x: tf.Tensor4D, t: readonly number[], context: tf.Tensor3D): Promise<tf.Tensor4D> {
    const c = this.config;
    const [b, h, w, ch] = x.shape;
    if (ch !== c.in_channels)
      throw new Error(`UNet input has ${ch} channels, config in_channels is ${c.in_channels}`);
    const factor = 2 ** (c.block_out_channels.length - 1);
    if (h % factor !== 0 || w % factor !== 0)
      throw new Error(`UNet input ${h}x${w} must be divisible by ${factor}`);
    if (context.rank !== 3 || context.shape[0] !== b || context.shape[2] !== c.cross_attention_dim)
      throw new Error(
        `UNet context must be [${b}, L, ${c.cross_attention_dim}], got [${context.shape.join(', ')}]`,
      );
    if (t.length !== b && t.length !== 1)
      throw new Error(`UNet timesteps must have shape [${b}] or [1], got [${t.length}]`);
    const times = Float32Array.from({ length: b }, (_, i) => t[t.length === 1 ? 0 : i]!);
    const feeds = {
      [UNET_ONNX_IO.sample]: new this.ort.Tensor('float32', (await x.data()) as Float32Array, [b, h, w, ch]),
      [UNET_ONNX_IO.timestep]: new this.ort.Tensor('float32', times, [b]),
      [UNET_ONNX_IO.context]: await this.contextTensor(context),
    };
    const out = (await this.session.run(feeds))[UNET_ONNX_IO.output]!;
    try {
      return tf.tensor4d(out.data as Float32Array, out.dims as [number, number, number, number], 'float32');
    } finally {
      out.dispose();
    }
  }

  private async contextTensor(context: tf.Tensor3D): Promise<OrtTensor> {
    let cached = this.contexts.get(context);
    if (!cached) {
      cached = new this.ort.Tensor('float32', (await context.data()) as Float32Array, [...context.shape]);
      this.contexts.set(context, cached);
    }
    return cached;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
