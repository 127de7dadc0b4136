/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter 2019), step for step as torch.optim.AdamW
 * computes it, with its state exposed as named arrays so checkpoints can hold it exactly.
 *
 *   p <- p * (1 - lr * wd)
 *   m <- b1 m + (1 - b1) g;        v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
import * as tf from '@tensorflow/tfjs-core';

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
  private stepCount = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(options: AdamWOptions) {
    this.lr = options.lr;
    this.weightDecay = options.weightDecay ?? 1e-2;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
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
    for (const [name, param] of params) {
      const g = grads.get(name);
      if (!g) continue;
      const m = this.moment(this.m, name, param);
      const v = this.moment(this.v, name, param);
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

  private moment(store: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let mv = store.get(name);
    if (!mv) {
      mv = tf.variable(tf.zerosLike(like), false);
      store.set(name, mv);
    }
    return mv;
  }

  getState(): AdamWState {
    const read = (store: Map<string, tf.Variable>) =>
      new Map([...store].map(([k, t]) => [k, t.dataSync() as Float32Array] as const));
    return { step: this.stepCount, m: read(this.m), v: read(this.v) };
  }

  /** Restores a saved state; shapes come from the parameters the moments belong to. */
  setState(state: AdamWState, params: Map<string, tf.Variable>): void {
    this.dispose();
    this.stepCount = state.step;
    for (const [store, saved] of [
      [this.m, state.m],
      [this.v, state.v],
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
        store.set(name, tf.variable(tf.tensor(data, param.shape, 'float32'), false));
      }
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
