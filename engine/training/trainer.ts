/**
 * The training loop shared by SFT, Diffusion-DRO and Diffusion-DPO: micro-steps with gradient
 * accumulation, global-norm clipping, AdamW, EMA, checkpoints of the complete state, and a guard
 * against non-finite values. What differs per method lives in `./methods`.
 *
 * Step counting follows the reference: `step` counts micro-steps (forward/backward passes); the
 * optimizer updates after every `gradientAccumulation` of them with the mean of their gradients, and
 * checkpoints fall on those update boundaries, so no half-accumulated gradient is ever saved.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CLIPTextModel } from '../models/text-encoder';
import type { UNet2DConditionModel } from '../models/unet';
import { canonicalJson } from '../canonical-json';
import { Rng } from '../rng';
import { NoiseSchedule } from '../schedulers/ddpm-schedule';
import { AdamW } from './adamw';
import { roundToBf16InPlace } from './bf16';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointContents } from './checkpoint';
import { clipGradNorm } from './clip-grad';
import { DataOrder, type DataOrderState } from './data-order';
import { Ema } from './ema';
import { NonFiniteTrainingError, TrainingInputError } from './errors';
import { learningRateAt } from './lr-schedule';
import type { PromptTokenizer } from './diffusion-model';
import { TEXT_ENCODER_PREFIX } from './text-encoder-ema';
import { createMethod, type MethodContext, type TrainingMethod, type TrainingSettings } from './methods';

export type { TrainingSettings } from './methods';

/** Scalars logged per optimizer update: the mean over its micro-steps of every term. */
export type MetricRow = Record<string, number> & { step: number };

export interface TrainerProgress {
  step: number;
  totalSteps: number;
  metrics: MetricRow | undefined;
  imagesPerSecond: number;
}

export interface RunHooks {
  /** After each optimizer update. */
  onProgress?: (p: TrainerProgress) => void | Promise<void>;
  /** At every checkpoint boundary (`checkpointEvery`) with the serialized state. */
  onCheckpoint?: (bytes: Uint8Array, step: number) => void | Promise<void>;
  /** Checked at every update boundary; true stops the run there. */
  shouldStop?: () => boolean;
}

export interface TrainerInit {
  settings: TrainingSettings;
  /** Starting UNet weights: phi starts here, and ref and policy are copies of it. */
  unet: UNet2DConditionModel;
  text: CLIPTextModel;
  tokenizer: PromptTokenizer;
  data: MethodContext['data'];
  /** Runtime of the no-gradient sampling (DRO buffer refills); default 'auto'. */
  inference?: MethodContext['inference'];
}

const STREAMS = ['data', 'noise', 'buffer'] as const;

type Stream = (typeof STREAMS)[number];

function roundVariableToBf16(v: tf.Variable): void {
  v.assign(tf.tensor(roundToBf16InPlace(Float32Array.from(v.dataSync() as Float32Array)), v.shape));
}

/** prev + bf16(g * scale), rounded to bf16: a bf16 `.grad` accumulating a scaled loss's gradients. */
function accumulateBf16(prev: tf.Tensor | undefined, g: tf.Tensor, scale: number): tf.Tensor {
  const gv = g.dataSync() as Float32Array;
  const pv = prev ? (prev.dataSync() as Float32Array) : undefined;
  const out = new Float32Array(gv.length);
  const f = Math.fround;
  const c = f(scale);
  for (let i = 0; i < out.length; i++) out[i] = f(gv[i]! * c);
  roundToBf16InPlace(out);
  if (pv) {
    for (let i = 0; i < out.length; i++) out[i] = f(pv[i]! + out[i]!);
    roundToBf16InPlace(out);
  }
  return tf.tensor(out, g.shape, 'float32');
}

export class Trainer {
  private stepCount = 0;
  private readonly rngs: Record<Stream, Rng>;
  private order: DataOrder;
  readonly phi: UNet2DConditionModel;
  /** The trained text encoder when `trainTextEncoder` is on. */
  readonly textPhi: CLIPTextModel | undefined;
  private readonly optimizer: AdamW;
  private readonly ema: Ema;
  private readonly method: TrainingMethod;
  private accum = new Map<string, tf.Tensor>();
  private window: Record<string, number> = {};
  private windowImages = 0;
  readonly history: MetricRow[] = [];
  private readonly paramByName: Map<string, tf.Variable>;
  /** The frozen start weights the methods see: the caller's, or a bf16-rounded copy this trainer owns. */
  private readonly ref: UNet2DConditionModel;

  private constructor(
    readonly settings: TrainingSettings,
    private readonly init: TrainerInit,
  ) {
    const root = new Rng(settings.seed);
    // Independent streams so that, e.g., a change in buffer sampling leaves data order unchanged.
    this.rngs = {
      data: new Rng(root.nextUint32()),
      noise: new Rng(root.nextUint32()),
      buffer: new Rng(root.nextUint32()),
    };
    this.phi = init.unet.clone(true);
    this.ref = init.unet;
    if (settings.precision === 'bf16') {
      this.ref = init.unet.clone(false);
      for (const name of this.ref.params.names) roundVariableToBf16(this.ref.params.get(name));
    }
    this.paramByName = new Map(this.phi.params.names.map((n) => [n, this.phi.params.get(n)]));
    const textPhi = settings.trainTextEncoder ? init.text.clone(true) : undefined;
    this.textPhi = textPhi;
    for (const n of textPhi?.params.names ?? []) {
      this.paramByName.set(`${TEXT_ENCODER_PREFIX}${n}`, textPhi!.params.get(n));
    }
    const precision = settings.precision ?? 'fp32';
    // Pure bf16 loads every network in bf16: phi starts from the rounded weights.
    if (precision === 'bf16') for (const v of this.paramByName.values()) roundVariableToBf16(v);
    this.optimizer = new AdamW({ lr: settings.learningRate, weightDecay: settings.weightDecay, precision });
    this.ema = new Ema(this.paramByName, settings.emaDecay, 'auto', precision);
    const ctx: MethodContext = {
      settings,
      ref: this.ref,
      text: init.text,
      tokenizer: init.tokenizer,
      data: init.data,
      schedule: new NoiseSchedule(),
      ...(textPhi ? { trainText: textPhi } : {}),
      ...(init.inference ? { inference: init.inference } : {}),
    };
    this.method = createMethod(ctx);
    this.order = DataOrder.start(this.method.datasetSize, settings.seed);
  }

  /** A fresh run from the starting weights. */
  static create(init: TrainerInit): Trainer {
    const { settings } = init;
    if (settings.steps % settings.gradientAccumulation !== 0) {
      throw new TrainingInputError(
        `steps (${settings.steps}) must be a multiple of gradientAccumulation (${settings.gradientAccumulation})`,
      );
    }
    return new Trainer(settings, init);
  }

  /** A run continued from a checkpoint written by `checkpoint()` with the same settings. */
  static restore(init: TrainerInit, bytes: Uint8Array, source = 'checkpoint'): Trainer {
    const contents = decodeCheckpoint(bytes, source);
    const saved = canonicalJson(contents.state.settings);
    if (saved !== canonicalJson(init.settings)) {
      throw new TrainingInputError(`${source} was written with other settings: ${saved}`);
    }
    const trainer = Trainer.create(init);
    try {
      trainer.load(contents, source);
    } catch (err) {
      trainer.dispose();
      throw err;
    }
    return trainer;
  }

  get step(): number {
    return this.stepCount;
  }

  get done(): boolean {
    return this.stepCount >= this.settings.steps;
  }

  /**
   * Runs micro-steps until `untilStep` (an update boundary), the end, or `shouldStop()`.
   * Returns the step reached.
   */
  async run(untilStep: number, hooks: RunHooks = {}): Promise<number> {
    const s = this.settings;
    const target = Math.min(untilStep, s.steps);
    if (target % s.gradientAccumulation !== 0 && target !== s.steps) {
      throw new TrainingInputError(
        `run target ${untilStep} is not an update boundary (gradientAccumulation ${s.gradientAccumulation})`,
      );
    }
    let started = performance.now();
    while (this.stepCount < target) {
      await this.microStep();
      // Give the event loop a turn: a worker in the same process must heartbeat and answer queries.
      await new Promise((resolve) => setImmediate(resolve));
      if (this.stepCount % s.gradientAccumulation !== 0) {
        this.method.afterStep(this.stepCount, this.phi);
        continue;
      }
      const metrics = this.update();
      // After the update, as the reference refreshes its policy after optimizer.step().
      this.method.afterStep(this.stepCount, this.phi);
      const elapsed = (performance.now() - started) / 1000;
      const imagesPerSecond = elapsed > 0 ? this.windowImages / elapsed : 0;
      this.windowImages = 0;
      started = performance.now();
      await hooks.onProgress?.({ step: this.stepCount, totalSteps: s.steps, metrics, imagesPerSecond });
      if (hooks.onCheckpoint && (this.stepCount % s.checkpointEvery === 0 || this.stepCount === s.steps)) {
        await hooks.onCheckpoint(this.checkpoint(), this.stepCount);
      }
      if (hooks.shouldStop?.()) break;
    }
    return this.stepCount;
  }

  private async microStep(): Promise<void> {
    const stepNo = this.stepCount + 1;
    const inputs = { rngs: this.rngs, order: this.order };
    await this.method.beforeStep(stepNo, inputs);
    const batch = this.method.prepare(inputs);
    const trained = [...this.paramByName];
    const varList = trained.map(([, v]) => v);
    let terms: Record<string, tf.Scalar> = {};
    let loss: number;
    let grads: tf.NamedTensorMap;
    try {
      const out = tf.variableGrads(() => {
        const r = this.method.loss(batch, this.phi);
        terms = r.terms;
        return r.loss;
      }, varList);
      grads = out.grads;
      loss = (await out.value.data())[0]!;
      out.value.dispose();
    } finally {
      const used: Array<tf.Tensor | undefined> = [
        batch.x,
        batch.cond,
        batch.ids,
        batch.target,
        batch.predRef,
      ];
      tf.dispose(used.filter((t): t is tf.Tensor => t !== undefined));
    }
    const termValues = Object.fromEntries(Object.entries(terms).map(([k, v]) => [k, v.dataSync()[0]!]));
    tf.dispose(Object.values(terms));
    if (!Number.isFinite(loss)) {
      tf.dispose(Object.values(grads));
      throw new NonFiniteTrainingError(stepNo, 'the loss');
    }
    const scale = 1 / this.settings.gradientAccumulation;
    const bf16Grads = this.settings.precision === 'bf16';
    trained.forEach(([name, variable]) => {
      const g = grads[variable.name];
      if (!g) return;
      const prev = this.accum.get(name);
      // In pure bf16 each micro-step's gradient and the running sum are bf16 tensors.
      const next = bf16Grads
        ? accumulateBf16(prev, g, scale)
        : tf.tidy(() => (prev ? tf.add(prev, tf.mul(g, scale)) : tf.mul(g, scale)));
      this.accum.set(name, next);
      prev?.dispose();
    });
    tf.dispose(Object.values(grads));
    for (const [k, v] of Object.entries({ loss, ...termValues })) this.window[k] = (this.window[k] ?? 0) + v;
    this.windowImages += this.method.imagesPerStep;
    this.stepCount = stepNo;
  }

  /** Clip, AdamW, EMA; returns the window's mean metrics. */
  private update(): MetricRow {
    const norm = clipGradNorm(this.accum, this.settings.maxGradNorm);
    if (!Number.isFinite(norm)) {
      this.clearAccum();
      throw new NonFiniteTrainingError(this.stepCount, 'the gradient norm');
    }
    const n = this.settings.gradientAccumulation;
    const lr = learningRateAt(this.settings, this.stepCount / n, this.settings.steps / n);
    this.optimizer.apply(this.paramByName, this.accum, lr);
    this.clearAccum();
    this.ema.update(this.paramByName);
    const row: MetricRow = {
      step: this.stepCount,
      lr,
      gradNorm: norm,
    } as MetricRow;
    for (const [k, v] of Object.entries(this.window)) row[k] = v / n;
    Object.assign(row, this.method.extraMetrics());
    this.window = {};
    this.history.push(row);
    return row;
  }

  private clearAccum(): void {
    tf.dispose([...this.accum.values()]);
    this.accum = new Map();
  }

  /** The complete state at the current update boundary. */
  checkpoint(): Uint8Array {
    if (this.accum.size > 0) throw new Error('checkpoint() called between update boundaries');
    const flat = (m: Map<string, Float32Array>, like: Map<string, tf.Tensor>) =>
      new Map([...m].map(([k, data]) => [k, { shape: like.get(k)!.shape, data }] as const));
    const adam = this.optimizer.getState();
    const ema = this.ema.getState();
    const groups = new Map([
      [
        'phi',
        flat(
          new Map([...this.paramByName].map(([k, v]) => [k, v.dataSync() as Float32Array])),
          this.paramByName,
        ),
      ],
      ['ema', flat(ema.weights, this.paramByName)],
      ['adam.m', flat(adam.m, this.paramByName)],
      ['adam.v', flat(adam.v, this.paramByName)],
      ...this.method.saveGroups(),
    ]);
    const contents: CheckpointContents = {
      state: {
        settings: this.settings,
        step: this.stepCount,
        rngs: Object.fromEntries(STREAMS.map((s) => [s, this.rngs[s].state()])),
        order: this.order.state(),
        adamStep: adam.step,
        emaUpdates: ema.updates,
        history: this.history,
        method: this.method.saveState(),
      },
      groups,
    };
    return encodeCheckpoint(contents);
  }

  private load(contents: CheckpointContents, source: string): void {
    const st = contents.state as {
      step: number;
      rngs: Record<Stream, ReturnType<Rng['state']>>;
      order: DataOrderState;
      adamStep: number;
      emaUpdates: number;
      history: MetricRow[];
      method: unknown;
    };
    const group = (name: string) => {
      const g = contents.groups.get(name);
      if (!g) throw new TrainingInputError(`${source} lacks the '${name}' tensors`);
      return new Map([...g].map(([k, t]) => [k, t.data] as const));
    };
    const phi = group('phi');
    for (const [name, v] of this.paramByName) {
      const data = phi.get(name);
      if (!data || data.length !== v.size)
        throw new TrainingInputError(`${source}: phi tensor '${name}' is missing or has the wrong size`);
    }
    for (const [name, v] of this.paramByName) v.assign(tf.tensor(phi.get(name)!, v.shape, 'float32'));
    this.optimizer.setState({ step: st.adamStep, m: group('adam.m'), v: group('adam.v') }, this.paramByName);
    this.ema.setState({ updates: st.emaUpdates, weights: group('ema') });
    for (const s of STREAMS) this.rngs[s] = Rng.fromState(st.rngs[s]);
    this.order = new DataOrder(this.method.datasetSize, st.order);
    this.stepCount = st.step;
    this.history.push(...st.history);
    this.method.loadState(st.method, contents.groups, source);
  }

  /** EMA weights of the UNet (the exported model), copies in TF.js layout. */
  emaWeights(): Map<string, tf.Tensor> {
    return new Map(
      [...this.ema.shadow]
        .filter(([k]) => !k.startsWith(TEXT_ENCODER_PREFIX))
        .map(([k, v]) => [k, v.clone()] as const),
    );
  }

  /**
   * EMA weights of the trained text encoder (its own parameter names, TF.js layout), or undefined
   * when the encoder is frozen and the exported model keeps the starting one.
   */
  emaTextWeights(): Map<string, tf.Tensor> | undefined {
    if (!this.textPhi) return undefined;
    return new Map(
      [...this.ema.shadow]
        .filter(([k]) => k.startsWith(TEXT_ENCODER_PREFIX))
        .map(([k, v]) => [k.slice(TEXT_ENCODER_PREFIX.length), v.clone()] as const),
    );
  }

  dispose(): void {
    this.clearAccum();
    this.optimizer.dispose();
    this.ema.dispose();
    this.method.dispose();
    this.phi.dispose();
    if (this.ref !== this.init.unet) this.ref.dispose();
    this.textPhi?.dispose();
  }
}
