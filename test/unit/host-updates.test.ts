/**
 * The host-loop routes of AdamW, EMA and gradient clipping against their kernel routes (which are
 * the plain per-tensor TF.js formulas) and against float64 references, on the cpu and wasm backends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { Rng } from '../../engine/rng';
import { AdamW, type AdamWState } from '../../engine/training/adamw';
import { clipGradNorm } from '../../engine/training/clip-grad';
import { Ema } from '../../engine/training/ema';
import type { UpdateRoute } from '../../engine/training/host-update';

const SHAPES = [[3, 5], [17], [2, 3, 3, 4], [257]];
const BACKENDS = ['cpu', 'wasm'] as const;

type Params = Map<string, tf.Variable>;

function makeParams(seed: number): Params {
  const rng = new Rng(seed);
  return new Map(
    SHAPES.map((s, i) => [`p${i}`, tf.tidy(() => tf.variable(rng.normalTensor(s), false))] as const),
  );
}

/** Gradients of step `step`: some steps large (so clipping acts), some with exact zeros. */
function makeGrads(seed: number, step: number): Map<string, tf.Tensor> {
  const rng = new Rng(seed * 1000 + step);
  const scale = step % 3 === 0 ? 20 : 0.05;
  return new Map(
    SHAPES.map((s, i) => {
      const values = rng.fillNormal(new Float32Array(s.reduce((a, b) => a * b, 1)), 0, scale);
      if (step % 4 === 1) values.fill(0, 0, Math.min(5, values.length));
      return [`p${i}`, tf.tensor(values, s, 'float32')] as const;
    }),
  );
}

function valuesOf(m: Map<string, tf.Tensor>): Map<string, number[]> {
  return new Map([...m].map(([k, t]) => [k, Array.from(t.dataSync())] as const));
}

function stateValues(s: AdamWState): unknown {
  const plain = (m: Map<string, Float32Array>) => [...m].map(([k, a]) => [k, Array.from(a)]);
  return { step: s.step, m: plain(s.m), v: plain(s.v) };
}

interface RunResult {
  params: Map<string, number[]>;
  ema: Map<string, number[]>;
  state: AdamWState;
  norms: number[];
}

/**
 * Trainer-like updates: clip, AdamW with a changing rate, EMA. `routes[i]` is the route of step i,
 * so a run can change route midway (AdamW's moments then move between its two stores).
 */
function run(routes: UpdateRoute[], opts: { weightDecay: number; maxNorm: number }): RunResult {
  const params = makeParams(3);
  const opt = new AdamW({ lr: 1e-2, weightDecay: opts.weightDecay });
  const ema = new Ema(params, 0.99);
  const norms: number[] = [];
  routes.forEach((route, i) => {
    const grads = makeGrads(3, i);
    norms.push(clipGradNorm(grads, opts.maxNorm, route));
    opt.route = route;
    opt.apply(params, grads, 1e-2 * (1 + 0.5 * Math.sin(i)));
    ema.route = route;
    ema.update(params);
    tf.dispose([...grads.values()]);
  });
  const result = { params: valuesOf(params), ema: valuesOf(ema.shadow), state: opt.getState(), norms };
  opt.dispose();
  ema.dispose();
  tf.dispose([...params.values()]);
  return result;
}

/** torch.optim.AdamW on one element, in float64. */
function adamwReference(p0: number, grads: number[], lrs: number[], wd: number): number {
  let p = p0;
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lrs[i]! * wd;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    p -= (lrs[i]! / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
  });
  return p;
}

for (const backend of BACKENDS) {
  describe(`host-loop updates on ${backend}`, () => {
    let previous = '';
    before(async () => {
      previous = tf.getBackend();
      await initBackend(backend, { reselect: true });
    });
    after(async () => {
      if (previous) await tf.setBackend(previous);
    });

    const steps = 9;
    const host: UpdateRoute[] = Array.from({ length: steps }, () => 'host');
    const kernels: UpdateRoute[] = Array.from({ length: steps }, () => 'kernels');

    for (const weightDecay of [0, 1e-2]) {
      test(`AdamW and EMA: host loop gives the kernels' bits (weight decay ${weightDecay})`, () => {
        // No clipping here: the routes' norms may differ in the last float32 bit on wasm.
        const a = run(host, { weightDecay, maxNorm: 0 });
        const b = run(kernels, { weightDecay, maxNorm: 0 });
        assert.deepEqual(a.params, b.params);
        assert.deepEqual(a.ema, b.ema);
        assert.deepEqual(stateValues(a.state), stateValues(b.state));
      });
    }

    test('AdamW host loop follows torch.optim.AdamW in float64', () => {
      const lr = 0.05;
      const wd = 0.1;
      const params = makeParams(5);
      const start = valuesOf(params);
      const opt = new AdamW({ lr, weightDecay: wd, route: 'host' });
      const history = new Map<string, number[][]>();
      const lrs: number[] = [];
      for (let i = 0; i < 6; i++) {
        const grads = makeGrads(5, i);
        for (const [k, g] of valuesOf(grads)) history.set(k, [...(history.get(k) ?? []), g]);
        lrs.push(lr * (i + 1));
        opt.apply(params, grads, lr * (i + 1));
        tf.dispose([...grads.values()]);
      }
      for (const [k, values] of valuesOf(params)) {
        values.forEach((got, j) => {
          const grads = history.get(k)!.map((g) => g[j]!);
          const want = adamwReference(start.get(k)![j]!, grads, lrs, wd);
          assert.ok(
            Math.abs(got - want) < 1e-5 * Math.max(1, Math.abs(want)),
            `${k}[${j}]: ${got} vs ${want}`,
          );
        });
      }
      opt.dispose();
      tf.dispose([...params.values()]);
    });

    test('moments move between routes without changing the run', () => {
      const mixed: UpdateRoute[] = [
        'host',
        'host',
        'kernels',
        'kernels',
        'host',
        'kernels',
        'host',
        'host',
        'host',
      ];
      const a = run(mixed, { weightDecay: 1e-2, maxNorm: 0 });
      const b = run(host, { weightDecay: 1e-2, maxNorm: 0 });
      assert.deepEqual(a.params, b.params);
      assert.deepEqual([...a.state.m.keys()], [...b.state.m.keys()]);
      assert.deepEqual(a.ema, b.ema);
      assert.deepEqual(stateValues(a.state), stateValues(b.state));
    });

    test('a state saved from one route continues on the other as if uninterrupted', () => {
      const resumed = (first: UpdateRoute, second: UpdateRoute) => {
        const params = makeParams(7);
        let opt = new AdamW({ lr: 0.02, route: first });
        for (let i = 0; i < 6; i++) {
          if (i === 3) {
            const state = opt.getState();
            opt.dispose();
            opt = new AdamW({ lr: 0.02, route: second });
            opt.setState(state, params);
          }
          const grads = makeGrads(7, i);
          opt.apply(params, grads);
          tf.dispose([...grads.values()]);
        }
        const out = { params: valuesOf(params), state: stateValues(opt.getState()) };
        opt.dispose();
        tf.dispose([...params.values()]);
        return out;
      };
      const straight = resumed('kernels', 'kernels');
      assert.deepEqual(resumed('kernels', 'host'), straight);
      assert.deepEqual(resumed('host', 'kernels'), straight);
      assert.deepEqual(resumed('host', 'host'), straight);
    });

    test('AdamW state: restored arrays are copied in and handed out as copies', () => {
      const params = makeParams(9);
      const opt = new AdamW({ lr: 0.1, route: 'host' });
      const saved: AdamWState = {
        step: 2,
        m: new Map([['p0', new Float32Array(15).fill(0.5)]]),
        v: new Map([['p0', new Float32Array(15).fill(0.25)]]),
      };
      opt.setState(saved, params);
      const grads = makeGrads(9, 0);
      opt.apply(params, grads);
      assert.equal(saved.m.get('p0')![0], 0.5, 'the caller-owned array was written');
      const out = opt.getState();
      out.m.get('p0')!.fill(99);
      assert.notEqual(opt.getState().m.get('p0')![0], 99, 'getState handed out the live array');
      assert.equal(opt.getState().step, 3);
      opt.dispose();
      tf.dispose([...grads.values(), ...params.values()]);
    });

    test('EMA host loop follows the float64 formula', () => {
      const params = makeParams(11);
      const ema = new Ema(params, 0.9, 'host');
      const want = valuesOf(params);
      for (let i = 0; i < 5; i++) {
        const d = ema.nextDecay();
        for (const p of params.values()) p.assign(tf.tidy(() => tf.add(p, 0.5)));
        ema.update(params);
        for (const [k, values] of valuesOf(params)) {
          want.set(
            k,
            want.get(k)!.map((s, j) => d * s + (1 - d) * values[j]!),
          );
        }
      }
      for (const [k, values] of valuesOf(ema.shadow)) {
        values.forEach((got, j) => assert.ok(Math.abs(got - want.get(k)![j]!) < 1e-5, `${k}[${j}]`));
      }
      ema.dispose();
      tf.dispose([...params.values()]);
    });

    test('clipping: host loop agrees with the kernels and the float64 norm', () => {
      for (let step = 0; step < 6; step++) {
        const a = makeGrads(13, step);
        const b = makeGrads(13, step);
        const exact = Math.sqrt([...valuesOf(a).values()].flat().reduce((s, x) => s + x * x, 0));
        const na = clipGradNorm(a, 1, 'host');
        const nb = clipGradNorm(b, 1, 'kernels');
        assert.ok(Math.abs(na - exact) < 1e-6 * exact, `norm ${na} vs float64 ${exact}`);
        // The cpu backend's kernels round the same way as the loop; wasm's sum in another order.
        if (backend === 'cpu') assert.equal(na, nb);
        else assert.ok(Math.abs(na - nb) < 1e-6 * nb, `norm ${na} vs kernels ${nb}`);
        const coef = Math.min(1, 1 / (exact + 1e-6));
        const scaled = [...valuesOf(a).values()].flat();
        const reference = [...valuesOf(b).values()].flat();
        const raw = [...valuesOf(makeGrads(13, step)).values()].flat();
        scaled.forEach((x, i) => {
          assert.ok(Math.abs(x - raw[i]! * coef) <= 1e-6 * Math.abs(raw[i]!) + 1e-12, `scaled[${i}]`);
          if (backend === 'cpu') assert.equal(x, reference[i]);
          else assert.ok(Math.abs(x - reference[i]!) <= 1e-6 * Math.abs(reference[i]!) + 1e-12);
        });
        tf.dispose([...a.values(), ...b.values()]);
      }
    });

    test('a trainer-like run with clipping stays within float32 rounding of the kernels', () => {
      const a = run(host, { weightDecay: 1e-2, maxNorm: 1 });
      const b = run(kernels, { weightDecay: 1e-2, maxNorm: 1 });
      a.norms.forEach((n, i) => assert.ok(Math.abs(n - b.norms[i]!) < 1e-6 * b.norms[i]!));
      for (const [k, values] of a.params) {
        values.forEach((x, j) => {
          const y = b.params.get(k)![j]!;
          assert.ok(Math.abs(x - y) < 1e-6 * Math.max(1, Math.abs(y)), `${k}[${j}]: ${x} vs ${y}`);
        });
      }
      if (backend === 'cpu') assert.deepEqual(a.params, b.params);
    });

    test('no tensors are left behind', () => {
      const before = tf.memory().numTensors;
      run(host, { weightDecay: 1e-2, maxNorm: 1 });
      run(kernels, { weightDecay: 1e-2, maxNorm: 1 });
      assert.equal(tf.memory().numTensors, before);
    });
  });
}
