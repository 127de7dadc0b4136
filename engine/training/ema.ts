/**
 * Exponential moving average of the trained weights, with diffusers' EMAModel schedule (the
 * reference implementation's defaults: decay 0.9999, no warmup, update_after_step 0):
 *   at the n-th update (n = 1, 2, ...), step = n - 1,
 *   decay_n = 0 if step <= 0 else min(decay, (1 + step) / (10 + step))
 *   ema <- decay_n * ema + (1 - decay_n) * param
 * so early averages follow the weights closely and the full decay applies only later.
 */
import * as tf from '@tensorflow/tfjs-core';

export class Ema {
  private updates = 0;
  readonly shadow = new Map<string, tf.Variable>();

  constructor(
    params: Map<string, tf.Tensor>,
    readonly decay = 0.9999,
  ) {
    for (const [name, p] of params) this.shadow.set(name, tf.variable(p.clone(), false));
  }

  get updateCount(): number {
    return this.updates;
  }

  /** The decay used at the next update. */
  nextDecay(): number {
    const step = this.updates; // (n - 1) for the upcoming n-th update
    return step <= 0 ? 0 : Math.min(this.decay, (1 + step) / (10 + step));
  }

  update(params: Map<string, tf.Tensor>): void {
    const d = this.nextDecay();
    this.updates += 1;
    for (const [name, s] of this.shadow) {
      const p = params.get(name);
      if (!p) throw new Error(`EMA has parameter '${name}' that the model lacks`);
      tf.tidy(() => s.assign(tf.add(tf.mul(s, d), tf.mul(p, 1 - d))));
    }
  }

  getState(): { updates: number; weights: Map<string, Float32Array> } {
    return {
      updates: this.updates,
      weights: new Map([...this.shadow].map(([k, v]) => [k, v.dataSync() as Float32Array] as const)),
    };
  }

  setState(state: { updates: number; weights: Map<string, Float32Array> }): void {
    for (const [name, s] of this.shadow) {
      const data = state.weights.get(name);
      if (!data || data.length !== s.size) throw new Error(`EMA state lacks '${name}' or has the wrong size`);
      s.assign(tf.tensor(data, s.shape, 'float32'));
    }
    this.updates = state.updates;
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
    this.shadow.clear();
  }
}
