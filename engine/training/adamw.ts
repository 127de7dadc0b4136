/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter 2019), step for step as torch.optim.AdamW
 * computes it, with its state exposed as named arrays so checkpoints can hold it exactly.
 *
 *   p <- p * (1 - lr * wd)
 *   m <- b1 m + (1 - b1) g;        v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * Two ways to run the same update. On backends whose tensors live in host memory (wasm, cpu) the
 * update is one JS loop over each parameter's values: the kernel route costs 14 kernel calls per
 * parameter tensor, and on wasm the fixed cost of a call outweighs the arithmetic of these small
 * tensors many times over. Elsewhere (native TensorFlow, a GPU) it runs as kernels. The loop rounds
 * to float32 after every operation in the kernels' order, so both routes give the same bits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { bf16, type Precision } from './bf16';
import { assignTensor, mapValues, runsOnHost, type UpdateRoute } from './host-update';

export interface AdamWOptions {
  /** Learning rate. */
  lr: number;
  /** Decoupled weight decay. torch default 1e-2. */
  weightDecay?: number;
  /** torch default 0.9. */
  beta1?: number;
  /** torch default 0.999. */
  beta2?: number;
  /** torch default 1e-8. */
  eps?: number;
  /** Where the update runs; `auto` (default) picks the host loop on host-memory backends. */
  route?: UpdateRoute;
  /**
   * `bf16`: parameters and moments are bfloat16 values, and every in-place operation of torch's
   * AdamW rounds its float32 result to bfloat16, as a pure-bf16 torch run computes it (see
   * `adamwBf16Loop`); always on the host. Default `fp32`.
   */
  precision?: Precision;
}

/** Serializable optimizer state: the update count and both moments per parameter name. */
export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export class AdamW {
  readonly lr: number;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly precision: Precision;
  /** May change between updates; the moments follow to the other route's store. */
  route: UpdateRoute;
  private stepCount = 0;
  /** Moments as variables, for the kernel route. */
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Moments as plain arrays, for the host route; a name is in one of the two stores, never both. */
  private readonly hostM = new Map<string, Float32Array>();
  private readonly hostV = new Map<string, Float32Array>();

  constructor(options: AdamWOptions) {
    this.lr = options.lr;
    this.weightDecay = options.weightDecay ?? 1e-2;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.route = options.route ?? 'auto';
    this.precision = options.precision ?? 'fp32';
  }

  get step(): number {
    return this.stepCount;
  }

  /**
   * Applies one update to every parameter that has a gradient. `lr` overrides the constructor's
   * rate for this update (a learning-rate schedule); weight decay scales with it, as in torch.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr = this.lr): void {
    this.stepCount += 1;
    const t = this.stepCount;
    const stepSize = lr / (1 - this.beta1 ** t);
    const sqrtBc2 = Math.sqrt(1 - this.beta2 ** t);
    if (this.precision === 'bf16') this.applyBf16(params, grads, lr, stepSize, sqrtBc2);
    else if (runsOnHost(this.route)) this.applyOnHost(params, grads, lr, stepSize, sqrtBc2);
    else this.applyWithKernels(params, grads, lr, stepSize, sqrtBc2);
  }

  private applyWithKernels(
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    lr: number,
    stepSize: number,
    sqrtBc2: number,
  ): void {
    for (const [name, param] of params) {
      const g = grads.get(name);
      if (!g) continue;
      const m = this.momentVariable(this.m, this.hostM, name, param);
      const v = this.momentVariable(this.v, this.hostV, name, param);
      tf.tidy(() => {
        const decayed = this.weightDecay === 0 ? param : tf.mul(param, 1 - lr * this.weightDecay);
        const mNew = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const vNew = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(vNew), sqrtBc2), this.eps);
        m.assign(mNew);
        v.assign(vNew);
        param.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), stepSize)));
      });
    }
  }

  /**
   * The kernel route's arithmetic in the same order, each operation rounded to float32 with
   * Math.fround (a float64 result of one +, -, *, / or sqrt of float32 values rounds to the float32
   * the kernel computes), and every constant rounded as the kernels' scalar tensors round it.
   */
  private applyOnHost(
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    lr: number,
    stepSize: number,
    sqrtBc2: number,
  ): void {
    const f = Math.fround;
    const decay = this.weightDecay === 0 ? 1 : f(1 - lr * this.weightDecay);
    const b1 = f(this.beta1);
    const c1 = f(1 - this.beta1);
    const b2 = f(this.beta2);
    const c2 = f(1 - this.beta2);
    const bc2 = f(sqrtBc2);
    const eps = f(this.eps);
    const size = f(stepSize);
    this.updateOnHost(params, grads, (p, g, m, v, out) =>
      adamwLoop(p, g, m, v, out, decay, b1, c1, b2, c2, bc2, eps, size),
    );
  }

  /** Runs `loop` over every parameter with a gradient, its moments as host arrays. */
  private updateOnHost(
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    loop: (p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, out: Float32Array) => void,
  ): void {
    for (const [name, param] of params) {
      const grad = grads.get(name);
      if (!grad) continue;
      const m = this.momentArray(this.hostM, this.m, name, param);
      const v = this.momentArray(this.hostV, this.v, name, param);
      const updated = mapValues([param, grad], param.shape, ([p, g], out) => loop(p!, g!, m, v, out));
      assignTensor(param, updated);
    }
  }

  /** The bf16 update (see `adamwBf16Loop`); scalars are cast to float32 as torch's kernels cast them. */
  private applyBf16(
    params: Map<string, tf.Variable>,
    grads: Map<string, tf.Tensor>,
    lr: number,
    stepSize: number,
    sqrtBc2: number,
  ): void {
    const f = Math.fround;
    const scalars: Bf16Scalars = {
      decay: this.weightDecay === 0 ? 1 : f(1 - lr * this.weightDecay),
      lerpWeight: f(1 - this.beta1),
      b2: f(this.beta2),
      c2: f(1 - this.beta2),
      bc2: f(sqrtBc2),
      eps: f(this.eps),
      negSize: f(-stepSize),
    };
    this.updateOnHost(params, grads, (p, g, m, v, out) => adamwBf16Loop(p, g, m, v, out, scalars));
  }

  private momentVariable(
    store: Map<string, tf.Variable>,
    other: Map<string, Float32Array>,
    name: string,
    like: tf.Tensor,
  ): tf.Variable {
    let mv = store.get(name);
    if (!mv) {
      const saved = other.get(name);
      other.delete(name);
      mv = tf.tidy(() =>
        tf.variable(saved ? tf.tensor(saved, like.shape, 'float32') : tf.zerosLike(like), false),
      );
      store.set(name, mv);
    }
    return mv;
  }

  private momentArray(
    store: Map<string, Float32Array>,
    other: Map<string, tf.Variable>,
    name: string,
    like: tf.Tensor,
  ): Float32Array {
    let arr = store.get(name);
    if (!arr) {
      const saved = other.get(name);
      arr = saved ? Float32Array.from(saved.dataSync() as Float32Array) : new Float32Array(like.size);
      saved?.dispose();
      other.delete(name);
      store.set(name, arr);
    }
    return arr;
  }

  /** Copies of the moments, in the parameters' order of first update. */
  getState(): AdamWState {
    const read = (store: Map<string, tf.Variable>, host: Map<string, Float32Array>) =>
      new Map<string, Float32Array>([
        ...[...store].map(([k, t]) => [k, Float32Array.from(t.dataSync() as Float32Array)] as const),
        ...[...host].map(([k, a]) => [k, Float32Array.from(a)] as const),
      ]);
    return { step: this.stepCount, m: read(this.m, this.hostM), v: read(this.v, this.hostV) };
  }

  /** Restores a saved state; shapes come from the parameters the moments belong to. */
  setState(state: AdamWState, params: Map<string, tf.Variable>): void {
    this.dispose();
    this.stepCount = state.step;
    for (const [store, saved] of [
      [this.hostM, state.m],
      [this.hostV, state.v],
    ] as const) {
      for (const [name, data] of saved) {
        const param = params.get(name);
        if (!param)
          throw new Error(`optimizer state names parameter '${name}', which the model does not have`);
        if (data.length !== param.size) {
          throw new Error(
            `optimizer state for '${name}' has ${data.length} values, the parameter ${param.size}`,
          );
        }
        // A copy: the caller's arrays (a decoded checkpoint) must not change as training goes on.
        store.set(name, Float32Array.from(data));
      }
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
    this.hostM.clear();
    this.hostV.clear();
  }
}

/**
 * One parameter's host update (see `applyOnHost`), a module-level function with every constant an
 * argument so that the JIT keeps them in registers. `decay` 1 means no weight decay: the kernels
 * skip that multiply, and p * 1 is p exactly.
 */
function adamwLoop(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  out: Float32Array,
  decay: number,
  b1: number,
  c1: number,
  b2: number,
  c2: number,
  bc2: number,
  eps: number,
  size: number,
): void {
  const f = Math.fround;
  for (let i = 0; i < out.length; i++) {
    const gi = g[i]!;
    const mi = f(f(m[i]! * b1) + f(gi * c1));
    const vi = f(f(v[i]! * b2) + f(f(gi * gi) * c2));
    const denom = f(f(f(Math.sqrt(vi)) / bc2) + eps);
    m[i] = mi;
    v[i] = vi;
    out[i] = f(f(p[i]! * decay) - f(f(mi / denom) * size));
  }
}

interface Bf16Scalars {
  decay: number;
  lerpWeight: number;
  b2: number;
  c2: number;
  bc2: number;
  eps: number;
  negSize: number;
}

/**
 * torch.optim.AdamW's single-tensor update on bfloat16 tensors, operation by operation: each
 * in-place op computes in float32 and stores a bfloat16, so every line below ends in `bf16`.
 *   param.mul_(1 - lr wd); exp_avg.lerp_(grad, 1 - b1); exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1 - b2)
 *   denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps); param.addcdiv_(exp_avg, denom, -step_size)
 * The gradient is a bfloat16 value already (the caller rounds it). A step smaller than half a
 * bf16 ulp of a weight is rounded away: the implicit trust region of pure-bf16 training.
 */
function adamwBf16Loop(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  out: Float32Array,
  k: Bf16Scalars,
): void {
  const f = Math.fround;
  const { decay, lerpWeight, b2, c2, bc2, eps, negSize } = k;
  for (let i = 0; i < out.length; i++) {
    const gi = g[i]!;
    const pi = decay === 1 ? p[i]! : bf16(p[i]! * decay);
    // lerp with a weight below 0.5: self + weight * (end - self).
    const mi = bf16(m[i]! + f(lerpWeight * f(gi - m[i]!)));
    const vScaled = bf16(v[i]! * b2);
    const vi = bf16(vScaled + f(f(c2 * gi) * gi));
    const root = bf16(Math.sqrt(vi));
    const denom = bf16(bf16(root / bc2) + eps);
    m[i] = mi;
    v[i] = vi;
    out[i] = bf16(pi + f(f(negSize * mi) / denom));
  }
}
