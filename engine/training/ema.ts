/**
 * Exponential moving average of the trained weights, with diffusers' EMAModel schedule (the
 * reference implementation's defaults: decay 0.9999, no warmup, update_after_step 0):
 *   at the n-th update (n = 1, 2, ...), step = n - 1,
 *   decay_n = 0 if step <= 0 else min(decay, (1 + step) / (10 + step))
 *   ema <- decay_n * ema + (1 - decay_n) * param
 * so early averages follow the weights closely and the full decay applies only later.
 *
 * On host-memory backends the update is a JS loop per parameter instead of three kernel calls, with
 * the kernels' float32 rounding after each operation, so both routes give the same bits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { bf16, type Precision } from './bf16';
import { assignTensor, mapValues, runsOnHost, type UpdateRoute } from './host-update';

export class Ema {
  private updates = 0;
  readonly shadow = new Map<string, tf.Variable>();

  constructor(
    params: Map<string, tf.Tensor>,
    readonly decay = 0.9999,
    public route: UpdateRoute = 'auto',
    /**
     * `bf16`: the shadows are bfloat16 values updated as diffusers' EMAModel.step updates bf16
     * tensors, `s.sub_((1 - d) * (s - p))`, each operation rounded to bfloat16 (on the host).
     */
    readonly precision: Precision = 'fp32',
  ) {
    for (const [name, p] of params) {
      // In a tidy: the clone is only the variable's initial value and would otherwise leak.
      this.shadow.set(
        name,
        tf.tidy(() => tf.variable(p.clone(), false)),
      );
    }
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
    for (const name of this.shadow.keys()) {
      if (!params.has(name)) throw new Error(`EMA has parameter '${name}' that the model lacks`);
    }
    this.updates += 1;
    if (this.precision === 'bf16') {
      const take = Math.fround(1 - d);
      for (const [name, s] of this.shadow) {
        const updated = mapValues([s, params.get(name)!], s.shape, ([sv, pv], out) =>
          emaBf16Loop(sv!, pv!, out, take),
        );
        assignTensor(s, updated);
      }
      return;
    }
    if (!runsOnHost(this.route)) {
      for (const [name, s] of this.shadow) {
        const p = params.get(name)!;
        tf.tidy(() => s.assign(tf.add(tf.mul(s, d), tf.mul(p, 1 - d))));
      }
      return;
    }
    const keep = Math.fround(d);
    const take = Math.fround(1 - d);
    for (const [name, s] of this.shadow) {
      const updated = mapValues([s, params.get(name)!], s.shape, ([sv, pv], out) =>
        emaLoop(sv!, pv!, out, keep, take),
      );
      assignTensor(s, updated);
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

/** Module-level, constants as arguments, so that the JIT keeps them in registers. */
function emaLoop(s: Float32Array, p: Float32Array, out: Float32Array, keep: number, take: number): void {
  const f = Math.fround;
  for (let i = 0; i < out.length; i++) out[i] = f(f(s[i]! * keep) + f(p[i]! * take));
}

/** diffusers' `s.sub_(one_minus_decay * (s - p))` on bfloat16 tensors: three rounded operations. */
function emaBf16Loop(s: Float32Array, p: Float32Array, out: Float32Array, take: number): void {
  for (let i = 0; i < out.length; i++) {
    const delta = bf16(s[i]! - p[i]!);
    out[i] = bf16(s[i]! - bf16(take * delta));
  }
}
