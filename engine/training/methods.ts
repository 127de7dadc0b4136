/**
 * What SFT, Diffusion-DRO and Diffusion-DPO each do in one micro-step; the shared loop is in
 * ./trainer. Every method draws its batch and runs the frozen networks in `prepare` (outside the
 * gradient tape), then computes its loss from phi's predictions in `loss` (inside it).
 *
 * Paper/reference names: phi = `unet` (trained), ref = `unet_ref` (frozen start weights),
 * policy = `unet_policy` (frozen copy of phi refreshed every bufferUpdateSteps, samples the buffer).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorToWrite } from '../io/safetensors';
import { dpoLoss } from '../losses/dpo-loss';
import { droLoss } from '../losses/dro-loss';
import { epsilonMseLoss } from '../losses/mse';
import type { CLIPTextModel } from '../models/text-encoder';
import type { UNet2DConditionModel } from '../models/unet';
import type { Rng } from '../rng';
import type { NoiseSchedule } from '../schedulers/ddpm-schedule';
import {
  isLatentSet,
  validateLatentSet,
  type LatentImageSet,
  type LatentPairSet,
} from '../latent/latent-data';
import { DpmSolverPlusPlus } from '../schedulers/dpm-solver';
import { DdpmAncestralSampler } from '../schedulers/ddpm-ancestral';
import {
  disposeSampleResult,
  guidanceBatch,
  runSampler,
  trajectoryToArrays,
  type GridSolver,
} from '../schedulers/sampling';
import { perturbedTimesteps } from '../schedulers/timesteps';
import type { DataOrder } from './data-order';
import {
  flipHorizontal,
  validateImageDataset,
  validatePreferenceDataset,
  type ImageDataset,
  type PreferenceDataset,
} from './datasets';
import { encodePrompts, type PromptTokenizer } from './diffusion-model';
import { TrainingInputError } from './errors';
import type { LrDecay } from './lr-schedule';
import { roundToBf16InPlace, roundTensorToBf16, type Precision } from './bf16';
import { ReplayBuffer, type BufferDraw, type Trajectory } from './replay-buffer';
import { createUNetInference, type InferenceOptions, type UNetInference } from '../onnx/unet-inference';

interface CommonSettings {
  seed: number;
  steps: number;
  learningRate: number;
  weightDecay: number;
  batchSize: number;
  gradientAccumulation: number;
  maxGradNorm: number;
  promptDropout: number;
  randomFlip: boolean;
  emaDecay: number;
  checkpointEvery: number;
  /**
   * Train the text encoder together with the UNet (SFT only: pretraining a base from scratch, where
   * a random encoder would leave prompts barely separable). DRO and DPO keep it frozen, as the
   * reference does. Default false.
   */
  trainTextEncoder?: boolean;
  /** Optimizer updates of linear learning-rate warmup (see ./lr-schedule). Default 0. */
  warmupUpdates?: number;
  /** Learning-rate decay after warmup (see ./lr-schedule). Default `constant`. */
  lrDecay?: LrDecay;
  /**
   * `bf16` emulates pure-bf16 training (docs/algorithm.md, "Precision"): weights, gradients, AdamW
   * moments and EMA shadows are bfloat16 values; the frozen networks load bf16 weights and their
   * predictions and losses are rounded to bf16; noise is added in bf16. phi's own forward and
   * backward stay float32. Absent: fp32.
   */
  precision?: Precision;
}

export type BufferSampler = 'dpm-solver++' | 'ddpm';

export type TrainingSettings =
  | (CommonSettings & { method: 'sft' })
  | (CommonSettings & {
      method: 'dro';
      margin: number;
      bufferSize: number;
      bufferBatchSize: number;
      bufferSampleSteps: number;
      bufferUpdateSteps: number;
      samplerSteps: number;
      bufferGuidanceScale: number;
      /** Sampler of the buffer's trajectories. Default 'dpm-solver++'. */
      bufferSampler?: BufferSampler;
      /** How a micro-step draws its batch from the buffer (see ReplayBuffer.sample). Default 'with-replacement'. */
      bufferDraw?: BufferDraw;
    })
  | (CommonSettings & { method: 'dpo'; beta: number });

export interface MethodContext {
  settings: TrainingSettings;
  /** Frozen starting weights (owned by the caller). */
  ref: UNet2DConditionModel;
  text: CLIPTextModel;
  tokenizer: PromptTokenizer;
  /** Pixel images, or (latent models) a latent set from ../latent/latent-data, which fits the same shape. */
  data: { images?: ImageDataset | LatentImageSet; pairs?: PreferenceDataset | LatentPairSet };
  schedule: NoiseSchedule;
  /** The trained copy of the text encoder when `trainTextEncoder` is on (owned by the trainer). */
  trainText?: CLIPTextModel;
  /** Runtime of the no-gradient sampling (DRO buffer refills). Default 'auto'. */
  inference?: InferenceOptions;
}

export interface StepInputs {
  rngs: { data: Rng; noise: Rng; buffer: Rng };
  order: DataOrder;
}

/** Inputs of phi for one micro-step, drawn outside the tape. */
export interface PreparedBatch {
  x: tf.Tensor4D;
  t: number[];
  /** Text encoder states; absent when the encoder is trained and `ids` are encoded on the tape. */
  cond?: tf.Tensor3D;
  /** Token ids [B, L] (int32) when the text encoder is trained. */
  ids?: tf.Tensor2D;
  target: tf.Tensor4D;
  /** ref's predictions on the same inputs (DRO, DPO). */
  predRef?: tf.Tensor4D;
}

export interface LossOutput {
  loss: tf.Scalar;
  /** Logged terms (scalars kept past the tape; the loop reads and disposes them). */
  terms: Record<string, tf.Scalar>;
}

export interface TrainingMethod {
  readonly datasetSize: number;
  /** Images phi sees per micro-step, for images/s. */
  readonly imagesPerStep: number;
  /** Work before micro-step `stepNo` (1-based), e.g. refilling the replay buffer. */
  beforeStep(stepNo: number, inp: StepInputs): Promise<void>;
  prepare(inp: StepInputs): PreparedBatch;
  loss(batch: PreparedBatch, phi: UNet2DConditionModel): LossOutput;
  /** Work after micro-step `stepNo` and its optimizer update, e.g. refreshing the policy. */
  afterStep(stepNo: number, phi: UNet2DConditionModel): void;
  extraMetrics(): Record<string, number>;
  saveGroups(): Array<[string, Map<string, TensorToWrite>]>;
  saveState(): unknown;
  loadState(state: unknown, groups: Map<string, Map<string, TensorToWrite>>, source: string): void;
  dispose(): void;
}

/** Prompts with classifier-free-guidance dropout applied (replaced by ""). */
function dropPrompts(prompts: string[], p: number, rng: Rng): string[] {
  return prompts.map((prompt) => (rng.uniform() < p ? '' : prompt));
}

function stack(
  images: Float32Array[],
  shape: { height: number; width: number; channels: number },
): tf.Tensor4D {
  const size = shape.height * shape.width * shape.channels;
  const out = new Float32Array(images.length * size);
  images.forEach((img, i) => out.set(img, i * size));
  return tf.tensor4d(out, [images.length, shape.height, shape.width, shape.channels]);
}

function keepMeans(named: Record<string, tf.Tensor>): Record<string, tf.Scalar> {
  return Object.fromEntries(Object.entries(named).map(([k, v]) => [k, tf.keep(tf.mean(v) as tf.Scalar)]));
}

/** Prompts encoded per micro-step in batches of this many when caching them. */
const PROMPT_BATCH = 16;

abstract class BaseMethod {
  /** Text encoder states per prompt, [L * D] each, when the data is a latent set. */
  private promptStates?: Map<string, Float32Array>;

  constructor(protected readonly ctx: MethodContext) {}

  /**
   * Encodes every distinct prompt (and "", the dropped prompt) once. Used for latent models, whose
   * frozen text encoder is large enough (SD1.5: 123M parameters) to dominate a step otherwise;
   * the pixel path encodes per step as before.
   */
  protected cachePrompts(prompts: readonly string[]): void {
    if (this.ctx.settings.trainTextEncoder) return;
    const distinct = [...new Set(['', ...prompts])];
    const states = new Map<string, Float32Array>();
    for (let start = 0; start < distinct.length; start += PROMPT_BATCH) {
      const part = distinct.slice(start, start + PROMPT_BATCH);
      const enc = encodePrompts(this.ctx, part);
      const data = enc.dataSync() as Float32Array;
      enc.dispose();
      const n = data.length / part.length;
      part.forEach((p, i) => states.set(p, data.slice(i * n, (i + 1) * n)));
    }
    this.promptStates = states;
  }

  /** Text encoder states [B, L, D] of prompts: from the cache when there is one. */
  protected encode(prompts: readonly string[]): tf.Tensor3D {
    const cache = this.promptStates;
    if (!cache) return encodePrompts(this.ctx, prompts);
    const rows = prompts.map((p) => cache.get(p));
    if (rows.some((r) => r === undefined)) return encodePrompts(this.ctx, prompts);
    const n = rows[0]!.length;
    const out = new Float32Array(prompts.length * n);
    rows.forEach((r, i) => out.set(r!, i * n));
    const L = this.ctx.tokenizer.config.maxLength;
    return tf.tensor3d(out, [prompts.length, L, n / L]);
  }

  /** Checks a data set of either space; a latent one also turns on the prompt cache. */
  protected checkData(
    ds: ImageDataset | PreferenceDataset | LatentImageSet | LatentPairSet,
    what: string,
  ): void {
    if (isLatentSet(ds)) {
      validateLatentSet(ds, this.ctx.ref.config, this.ctx.settings.randomFlip, what);
      this.cachePrompts('examples' in ds ? ds.examples.map((e) => e.prompt) : ds.pairs.map((p) => p.prompt));
    } else if ('examples' in ds) validateImageDataset(ds, this.ctx.ref.config, what);
    else validatePreferenceDataset(ds, this.ctx.ref.config, what);
  }
  /** Pure-bf16 emulation (settings.precision). */
  protected get bf16(): boolean {
    return this.ctx.settings.precision === 'bf16';
  }

  /** x_t of `x0` and fresh noise `drawn`, with the noise it used: in bf16 when the run is. */
  protected noised(x0: tf.Tensor4D, drawn: tf.Tensor4D, t: number[]): { x: tf.Tensor4D; eps: tf.Tensor4D } {
    if (!this.bf16) return { x: this.ctx.schedule.addNoise(x0, drawn, t), eps: drawn };
    const eps = roundTensorToBf16(drawn);
    return { x: this.ctx.schedule.addNoiseBf16(x0, eps, t), eps };
  }

  /** The frozen reference's prediction; a bf16 network's output is a bf16 tensor. */
  protected refPredict(x: tf.Tensor4D, t: number[], cond: tf.Tensor3D): tf.Tensor4D {
    const pred = this.ctx.ref.predict(x, t, cond);
    return this.bf16 ? roundTensorToBf16(pred) : pred;
  }

  async beforeStep(_stepNo: number, _inp: StepInputs): Promise<void> {}
  afterStep(_stepNo: number, _phi: UNet2DConditionModel): void {}
  extraMetrics(): Record<string, number> {
    return {};
  }
  saveGroups(): Array<[string, Map<string, TensorToWrite>]> {
    return [];
  }
  saveState(): unknown {
    return null;
  }
  loadState(_state: unknown, _groups: Map<string, Map<string, TensorToWrite>>, _source: string): void {}
  dispose(): void {}

  /** The example's image, mirrored with probability 1/2 under randomFlip (a latent set stores the flip). */
  protected flipMaybe(
    ex: { image: Float32Array; flipped?: Float32Array },
    rng: Rng,
    shape: ImageDataset | PreferenceDataset,
  ): Float32Array {
    if (!(this.ctx.settings.randomFlip && rng.uniform() < 0.5)) return ex.image;
    return ex.flipped ?? flipHorizontal(ex.image, shape);
  }
}

/** Supervised fine-tuning (and pretraining): epsilon-prediction MSE, t uniform in [0, 999]. */
class SftMethod extends BaseMethod implements TrainingMethod {
  readonly datasetSize: number;
  readonly imagesPerStep: number;
  private readonly ds: ImageDataset;

  constructor(ctx: MethodContext) {
    super(ctx);
    const ds = ctx.data.images;
    if (!ds) throw new TrainingInputError('SFT needs an image dataset');
    this.checkData(ds, 'expert set');
    this.ds = ds;
    this.datasetSize = ds.examples.length;
    this.imagesPerStep = ctx.settings.batchSize;
  }

  prepare({ rngs, order }: StepInputs): PreparedBatch {
    const s = this.ctx.settings;
    const picks = order.take(s.batchSize).map((i) => this.ds.examples[i]!);
    const prompts = dropPrompts(
      picks.map((p) => p.prompt),
      s.promptDropout,
      rngs.data,
    );
    const images = picks.map((p) => this.flipMaybe(p, rngs.data, this.ds));
    const t = this.ctx.schedule.sampleTimesteps(s.batchSize, rngs.noise);
    const tok = this.ctx.tokenizer;
    const cond = this.ctx.trainText
      ? { ids: tf.tensor2d(tok.encodeBatch(prompts), [prompts.length, tok.config.maxLength], 'int32') }
      : { cond: this.encode(prompts) };
    return tf.tidy(() => {
      const x0 = stack(images, this.ds);
      const { x, eps } = this.noised(x0, rngs.noise.normalTensor(x0.shape) as tf.Tensor4D, t);
      return { x, t, ...cond, target: eps };
    });
  }

  loss(b: PreparedBatch, phi: UNet2DConditionModel): LossOutput {
    // Encoded inside the tape so the encoder's parameters get gradients too.
    const cond = b.ids ? this.ctx.trainText!.encode(b.ids) : b.cond!;
    return { loss: epsilonMseLoss(phi.predict(b.x, b.t, cond), b.target), terms: {} };
  }
}

type DroSettings = Extract<TrainingSettings, { method: 'dro' }>;

/** Diffusion-DRO: hinge ranking loss between expert demonstrations and online policy samples. */
class DroMethod extends BaseMethod implements TrainingMethod {
  readonly datasetSize: number;
  readonly imagesPerStep: number;
  private readonly ds: ImageDataset;
  private readonly policy: UNet2DConditionModel;
  private readonly buffer: ReplayBuffer;
  private readonly solver: GridSolver;
  /** The policy's predictions for refills; an ONNX snapshot is rebuilt after each policy refresh. */
  private sampler: UNetInference | undefined;

  constructor(
    ctx: MethodContext,
    private readonly s: DroSettings,
  ) {
    super(ctx);
    const ds = ctx.data.images;
    if (!ds) throw new TrainingInputError('DRO needs an expert image set');
    this.checkData(ds, 'expert set');
    this.ds = ds;
    this.datasetSize = ds.examples.length;
    this.imagesPerStep = 2 * s.batchSize;
    this.policy = ctx.ref.clone(false);
    const condLen = ctx.tokenizer.config.maxLength;
    const condDim = ctx.text.config.hidden_size;
    this.buffer = new ReplayBuffer(s.bufferSize, {
      latent: [ds.height, ds.width, ds.channels],
      cond: [condLen, condDim],
    });
    this.solver =
      (s.bufferSampler ?? 'dpm-solver++') === 'ddpm'
        ? new DdpmAncestralSampler(ctx.schedule)
        : new DpmSolverPlusPlus(ctx.schedule);
  }

  /** Samples `bufferBatchSize` new trajectories from the policy on perturbed per-sample grids. */
  override async beforeStep(stepNo: number, { rngs, order }: StepInputs): Promise<void> {
    const s = this.s;
    if ((stepNo - 1) % s.bufferSampleSteps !== 0) return;
    const idx = order.take(s.bufferBatchSize);
    const picks = idx.map((i) => this.ds.examples[i]!);
    const prompts = dropPrompts(
      picks.map((p) => p.prompt),
      s.promptDropout,
      rngs.data,
    );
    const x0s = picks.map((p) => this.flipMaybe(p, rngs.data, this.ds));
    const cond = this.encode(prompts);
    const guidanceCond =
      s.bufferGuidanceScale === 1
        ? undefined
        : tf.tidy(() => guidanceBatch(this.encode(prompts.map(() => '')), cond));
    const xT = rngs.buffer.normalTensor([
      s.bufferBatchSize,
      this.ds.height,
      this.ds.width,
      this.ds.channels,
    ]) as tf.Tensor4D;
    const { grids } = perturbedTimesteps(s.samplerSteps, s.bufferBatchSize, rngs.buffer);
    this.sampler ??= await createUNetInference(this.policy, this.ctx.inference);
    const result = await runSampler(this.solver, {
      model: this.sampler.predict,
      xT,
      grids,
      cond,
      guidanceCond,
      guidanceScale: s.bufferGuidanceScale,
      // Ancestral steps draw fresh noise from the buffer stream, which checkpoints carry.
      ...(this.solver instanceof DdpmAncestralSampler ? { noise: rngs.buffer } : {}),
    });
    try {
      const perSample = await trajectoryToArrays(result);
      const condData = cond.dataSync() as Float32Array;
      const condSize = condData.length / s.bufferBatchSize;
      const trajectories: Trajectory[] = perSample.map((tr, b) => ({
        exampleIndex: idx[b]!,
        cond: condData.slice(b * condSize, (b + 1) * condSize),
        x0: this.bf16 ? roundToBf16InPlace(Float32Array.from(x0s[b]!)) : x0s[b]!,
        // The policy runs in bf16 in a pure-bf16 run: its latents and predictions are bf16 values.
        steps: tr.timesteps.map((t, i) => ({
          t,
          xt: this.bf16 ? roundToBf16InPlace(tr.latents[i]!) : tr.latents[i]!,
          eps: this.bf16 ? roundToBf16InPlace(tr.eps[i]!) : tr.eps[i]!,
        })),
      }));
      this.buffer.push(trajectories);
    } finally {
      disposeSampleResult(result);
      tf.dispose([xT, cond, ...(guidanceCond ? [guidanceCond] : [])]);
    }
  }

  prepare({ rngs }: StepInputs): PreparedBatch {
    const batch = this.buffer.sample(this.s.batchSize, rngs.data, this.s.bufferDraw);
    try {
      return tf.tidy(() => {
        // Expert branch: fresh noise at the policy step's timestep.
        const expert = this.noised(batch.x0, rngs.noise.normalTensor(batch.x0.shape) as tf.Tensor4D, batch.t);
        const [xtExpert, epsExpert] = [expert.x, expert.eps];
        const x = tf.concat([xtExpert, batch.xt]) as tf.Tensor4D;
        const target = tf.concat([epsExpert, batch.eps]) as tf.Tensor4D;
        const t = [...batch.t, ...batch.t];
        const cond = tf.concat([batch.cond, batch.cond]) as tf.Tensor3D;
        const predRef = this.refPredict(x, t, cond);
        return { x, t, cond, target, predRef };
      });
    } finally {
      tf.dispose([batch.cond, batch.x0, batch.xt, batch.eps]);
    }
  }

  loss(b: PreparedBatch, phi: UNet2DConditionModel): LossOutput {
    const r = droLoss({
      predPhi: phi.predict(b.x, b.t, b.cond!),
      predRef: b.predRef!,
      target: b.target,
      margin: this.s.margin,
      ...(this.bf16 ? { refPrecision: 'bf16' as const } : {}),
    });
    const terms = keepMeans({
      diff: r.diff,
      expert: r.le,
      policy: r.lp,
      expert0: r.le0,
      policy0: r.lp0,
      expertDiff: tf.sub(r.le, r.le0),
      policyDiff: tf.sub(r.lp, r.lp0),
      // The share of samples that still train: those whose hinge is open (diff + margin > 0).
      hingeOpen: tf.cast(tf.greater(tf.add(r.diff, this.s.margin), 0), 'float32'),
    });
    return { loss: r.loss, terms };
  }

  override afterStep(stepNo: number, phi: UNet2DConditionModel): void {
    if (stepNo % this.s.bufferUpdateSteps !== 0) return;
    const weights = phi.params.getWeights();
    this.policy.params.setWeights(weights);
    tf.dispose([...weights.values()]);
    this.sampler?.weightsChanged();
  }

  override extraMetrics(): Record<string, number> {
    return { bufferSize: this.buffer.size };
  }

  override saveGroups(): Array<[string, Map<string, TensorToWrite>]> {
    const policy = new Map<string, TensorToWrite>();
    for (const name of this.policy.params.names) {
      const v = this.policy.params.get(name);
      policy.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
    }
    const [h, w, c] = this.buffer.shapes.latent;
    const buffer = new Map<string, TensorToWrite>();
    this.buffer.trajectories.forEach((tr, i) => {
      const n = tr.steps.length;
      const size = h * w * c;
      const xt = new Float32Array(n * size);
      const eps = new Float32Array(n * size);
      tr.steps.forEach((st, k) => {
        xt.set(st.xt, k * size);
        eps.set(st.eps, k * size);
      });
      buffer.set(`${i}/x0`, { shape: [h, w, c], data: tr.x0 });
      buffer.set(`${i}/cond`, { shape: [...this.buffer.shapes.cond], data: tr.cond });
      buffer.set(`${i}/xt`, { shape: [n, h, w, c], data: xt });
      buffer.set(`${i}/eps`, { shape: [n, h, w, c], data: eps });
    });
    return [
      ['policy', policy],
      ['buffer', buffer],
    ];
  }

  override saveState(): unknown {
    return {
      trajectories: this.buffer.trajectories.map((tr) => ({
        exampleIndex: tr.exampleIndex,
        t: tr.steps.map((s) => s.t),
      })),
    };
  }

  override loadState(state: unknown, groups: Map<string, Map<string, TensorToWrite>>, source: string): void {
    const policy = groups.get('policy');
    if (!policy) throw new TrainingInputError(`${source} lacks the DRO policy weights`);
    const weights = new Map<string, tf.Tensor>();
    try {
      for (const name of this.policy.params.names) {
        const t = policy.get(name);
        if (!t) throw new TrainingInputError(`${source}: policy tensor '${name}' is missing`);
        weights.set(name, tf.tensor(t.data, t.shape, 'float32'));
      }
      this.policy.params.setWeights(weights);
      this.sampler?.weightsChanged();
    } finally {
      tf.dispose([...weights.values()]);
    }
    const buffer = groups.get('buffer') ?? new Map<string, TensorToWrite>();
    const saved = (state as { trajectories: Array<{ exampleIndex: number; t: number[] }> }).trajectories;
    this.buffer.clear();
    this.buffer.push(
      saved.map((meta, i) => {
        const get = (k: string) => {
          const t = buffer.get(`${i}/${k}`);
          if (!t) throw new TrainingInputError(`${source}: replay buffer tensor '${i}/${k}' is missing`);
          return t.data;
        };
        const xt = get('xt');
        const eps = get('eps');
        const size = xt.length / meta.t.length;
        return {
          exampleIndex: meta.exampleIndex,
          x0: get('x0'),
          cond: get('cond'),
          steps: meta.t.map((t, k) => ({
            t,
            xt: xt.slice(k * size, (k + 1) * size),
            eps: eps.slice(k * size, (k + 1) * size),
          })),
        };
      }),
    );
  }

  override dispose(): void {
    void this.sampler?.dispose();
    this.policy.dispose();
    this.buffer.clear();
  }
}

type DpoSettings = Extract<TrainingSettings, { method: 'dpo' }>;

/** Diffusion-DPO on preference pairs: shared noise and t for winner and loser. */
class DpoMethod extends BaseMethod implements TrainingMethod {
  readonly datasetSize: number;
  readonly imagesPerStep: number;
  private readonly ds: PreferenceDataset;

  constructor(
    ctx: MethodContext,
    private readonly s: DpoSettings,
  ) {
    super(ctx);
    const ds = ctx.data.pairs;
    if (!ds) throw new TrainingInputError('DPO needs a preference set');
    this.checkData(ds, 'preference set');
    this.ds = ds;
    this.datasetSize = ds.pairs.length;
    this.imagesPerStep = 2 * s.batchSize;
  }

  prepare({ rngs, order }: StepInputs): PreparedBatch {
    const s = this.s;
    const picks = order.take(s.batchSize).map((i) => this.ds.pairs[i]!);
    const prompts = dropPrompts(
      picks.map((p) => p.prompt),
      s.promptDropout,
      rngs.data,
    );
    const flips = picks.map(() => s.randomFlip && rngs.data.uniform() < 0.5);
    const orient = (img: Float32Array, i: number, stored?: Float32Array) =>
      flips[i] ? (stored ?? flipHorizontal(img, this.ds)) : img;
    const t = this.ctx.schedule.sampleTimesteps(s.batchSize, rngs.noise);
    const cond1 = this.encode(prompts);
    try {
      return tf.tidy(() => {
        const w = stack(
          picks.map((p, i) => orient(p.winner, i, (p as { winnerFlipped?: Float32Array }).winnerFlipped)),
          this.ds,
        );
        const l = stack(
          picks.map((p, i) => orient(p.loser, i, (p as { loserFlipped?: Float32Array }).loserFlipped)),
          this.ds,
        );
        const drawn = rngs.noise.normalTensor(w.shape) as tf.Tensor4D;
        const noisedW = this.noised(w, drawn, t);
        const eps = noisedW.eps;
        const x = tf.concat([noisedW.x, this.noised(l, eps, t).x]) as tf.Tensor4D;
        const target = tf.concat([eps, eps]) as tf.Tensor4D;
        const cond = tf.concat([cond1, cond1]) as tf.Tensor3D;
        const tt = [...t, ...t];
        return { x, t: tt, cond, target, predRef: this.refPredict(x, tt, cond) };
      });
    } finally {
      cond1.dispose();
    }
  }

  loss(b: PreparedBatch, phi: UNet2DConditionModel): LossOutput {
    const r = dpoLoss({
      pred: phi.predict(b.x, b.t, b.cond!),
      predRef: b.predRef!,
      target: b.target,
      beta: this.s.beta,
    });
    return { loss: r.loss, terms: keepMeans({ logits: r.logits, implicitAccuracy: r.implicitAccuracy }) };
  }
}

export function createMethod(ctx: MethodContext): TrainingMethod {
  const s = ctx.settings;
  if (s.trainTextEncoder && s.method !== 'sft') {
    throw new TrainingInputError(
      `trainTextEncoder is supported for SFT (pretraining) only; ${s.method} keeps the text encoder frozen`,
    );
  }
  switch (s.method) {
    case 'sft':
      return new SftMethod(ctx);
    case 'dro':
      return new DroMethod(ctx, s);
    case 'dpo':
      return new DpoMethod(ctx, s);
  }
}
