/**
 * Named parameters whose names are the reference implementation's state-dict keys
 * (diffusers for the UNet, transformers for CLIP), so safetensors files map 1:1.
 *
 * Layout decision. Each parameter records its PyTorch shape (`shape`) and is stored in the layout
 * our ops consume directly (`tfShape`), so the forward pass never transposes a weight:
 * - conv weight  PyTorch [O, I, kh, kw]  ->  TF.js [kh, kw, I, O]
 * - linear weight PyTorch [O, I] (y = x W^T + b)  ->  stored transposed as [I, O] (y = x W + b)
 * - everything else (biases, norm scales, embedding tables [V, D]) is identical.
 * `toDiffusersLayout` / `fromDiffusersLayout` convert one tensor between the two.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../rng';

export type ParamKind = 'conv' | 'linear' | 'bias' | 'norm_weight' | 'norm_bias' | 'embedding';

export interface ParamSpec {
  /** State-dict key, e.g. `down_blocks.0.resnets.0.conv1.weight`. */
  name: string;
  /** Shape in the PyTorch state dict. */
  shape: number[];
  kind: ParamKind;
  /** Fan-in used by the default initializer of weights and their biases. */
  fanIn?: number;
}

/** A parameter spec whose TF.js shape is also known; pure data, no tensors. */
export function tfShape(spec: ParamSpec): number[] {
  const s = spec.shape;
  switch (spec.kind) {
    case 'conv':
      return [s[2]!, s[3]!, s[1]!, s[0]!];
    case 'linear':
      return [s[1]!, s[0]!];
    default:
      return [...s];
  }
}

export function countParameters(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** TF.js layout -> PyTorch layout (new tensor). */
export function toDiffusersLayout(spec: ParamSpec, t: tf.Tensor): tf.Tensor {
  checkShape(spec, t, tfShape(spec), 'TF.js');
  switch (spec.kind) {
    case 'conv':
      return tf.transpose(t, [3, 2, 0, 1]);
    case 'linear':
      return tf.transpose(t);
    default:
      return tf.clone(t);
  }
}

/** PyTorch layout -> TF.js layout (new tensor). */
export function fromDiffusersLayout(spec: ParamSpec, t: tf.Tensor): tf.Tensor {
  checkShape(spec, t, spec.shape, 'diffusers');
  switch (spec.kind) {
    case 'conv':
      return tf.transpose(t, [2, 3, 1, 0]);
    case 'linear':
      return tf.transpose(t);
    default:
      return tf.clone(t);
  }
}

function checkShape(spec: ParamSpec, t: tf.Tensor, want: number[], layout: string): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ParameterShapeError(
      `tensor '${spec.name}' has shape [${t.shape.join(', ')}], expected ${layout} shape [${want.join(', ')}]`,
    );
  }
}

/** A weight map does not fit a model (wrong name set or shape); nothing was assigned. */
export class ParameterShapeError extends Error {
  override name = 'ParameterShapeError';
}

/**
 * PyTorch's default initialization (uniform in +-1/sqrt(fan_in) for conv/linear weights and biases,
 * ones/zeros for norms), embeddings N(0, 0.02) as in CLIP, all drawn from a seeded generator.
 */
export function initialValues(spec: ParamSpec, rng: Rng): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  switch (spec.kind) {
    case 'norm_weight':
      return out.fill(1);
    case 'norm_bias':
      return out;
    case 'embedding':
      return rng.fillNormal(out, 0, 0.02);
    case 'conv':
    case 'linear':
    case 'bias': {
      if (!spec.fanIn) throw new Error(`parameter '${spec.name}' has no fanIn for initialization`);
      const bound = 1 / Math.sqrt(spec.fanIn);
      return rng.fillUniform(out, -bound, bound);
    }
  }
}

export type WeightLayout = 'tfjs' | 'diffusers';

/** Read access to named tensors in TF.js layout, as the model code consumes them. */
export interface ParamReader {
  get(name: string): tf.Tensor;
  has(name: string): boolean;
}

/** The trainable (or frozen) parameters of one model instance. */
export class ParameterSet implements ParamReader {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly specByName = new Map<string, ParamSpec>();
  private disposed = false;

  private constructor(
    readonly specs: readonly ParamSpec[],
    readonly trainable: boolean,
  ) {
    for (const s of specs) {
      if (this.specByName.has(s.name)) throw new Error(`duplicate parameter name '${s.name}'`);
      this.specByName.set(s.name, s);
    }
  }

  /** Fresh parameters, initialized deterministically from `rng` in spec order. */
  static create(specs: readonly ParamSpec[], rng: Rng, trainable = true): ParameterSet {
    const set = new ParameterSet(specs, trainable);
    for (const s of specs) {
      // PyTorch-layout values, converted, so a seed gives the same model whatever the layout.
      const torchLayout = tf.tensor(initialValues(s, rng), s.shape, 'float32');
      const value = fromDiffusersLayout(s, torchLayout);
      set.vars.set(s.name, tf.variable(value, trainable));
      tf.dispose([torchLayout, value]);
    }
    return set;
  }

  get names(): string[] {
    return this.specs.map((s) => s.name);
  }

  spec(name: string): ParamSpec {
    const s = this.specByName.get(name);
    if (!s) throw new Error(`unknown parameter '${name}'`);
    return s;
  }

  /** Live variable in TF.js layout (owned by this set: do not dispose). */
  get(name: string): tf.Variable {
    this.assertAlive();
    const v = this.vars.get(name);
    if (!v) throw new Error(`unknown parameter '${name}'`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  /** All live variables in spec order, e.g. for an optimizer's var list. */
  variables(): tf.Variable[] {
    this.assertAlive();
    return this.specs.map((s) => this.vars.get(s.name)!);
  }

  parameterCount(): number {
    return countParameters(this.specs);
  }

  /** Copies of every weight (the caller owns and disposes them), in TF.js or diffusers layout. */
  getWeights(layout: WeightLayout = 'tfjs'): Map<string, tf.Tensor> {
    this.assertAlive();
    const out = new Map<string, tf.Tensor>();
    for (const s of this.specs) {
      const v = this.vars.get(s.name)!;
      out.set(s.name, layout === 'tfjs' ? tf.clone(v) : toDiffusersLayout(s, v));
    }
    return out;
  }

  /**
   * Replaces every weight. All names and shapes are validated before anything is assigned, so a bad
   * map leaves the model untouched. The input tensors stay owned by the caller.
   */
  setWeights(weights: ReadonlyMap<string, tf.Tensor>, layout: WeightLayout = 'tfjs'): void {
    this.assertAlive();
    const missing = this.specs.filter((s) => !weights.has(s.name)).map((s) => s.name);
    const unexpected = [...weights.keys()].filter((k) => !this.specByName.has(k));
    if (missing.length || unexpected.length) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing ${missing.length} tensor(s): ${preview(missing)}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.length} tensor(s): ${preview(unexpected)}`);
      throw new ParameterShapeError(`weights do not match the model: ${parts.join('; ')}`);
    }
    for (const s of this.specs) {
      const t = weights.get(s.name)!;
      checkShape(s, t, layout === 'tfjs' ? tfShape(s) : s.shape, layout === 'tfjs' ? 'TF.js' : 'diffusers');
      if (t.dtype !== 'float32') {
        throw new ParameterShapeError(`tensor '${s.name}' has dtype ${t.dtype}, expected float32`);
      }
    }
    for (const s of this.specs) {
      const t = weights.get(s.name)!;
      if (layout === 'tfjs') {
        this.vars.get(s.name)!.assign(t);
      } else {
        const converted = fromDiffusersLayout(s, t);
        this.vars.get(s.name)!.assign(converted);
        converted.dispose();
      }
    }
  }

  /** Copies the values of another set with the same specs (e.g. refreshing `policy` from `phi`). */
  copyFrom(other: ParameterSet): void {
    this.assertAlive();
    const m = new Map<string, tf.Tensor>(other.specs.map((s) => [s.name, other.get(s.name)]));
    this.setWeights(m);
  }

  /** An independent copy (ref, policy and phi are three copies of one model). */
  clone(trainable = this.trainable): ParameterSet {
    this.assertAlive();
    const set = new ParameterSet(this.specs, trainable);
    for (const s of this.specs) set.vars.set(s.name, tf.variable(this.vars.get(s.name)!, trainable));
    return set;
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('ParameterSet used after dispose()');
  }
}

function preview(names: string[]): string {
  return names.length > 5 ? `${names.slice(0, 5).join(', ')}, ...` : names.join(', ');
}
