/**
 * `npm run bench`: speed of the UNet on each available TF.js backend.
 *
 * For each config and backend: forward, one SFT training step (MSE, forward + backward + Adam), one
 * DRO step (phi with gradient on expert + policy inputs, ref on both without gradient), and a
 * 20-step DPM-Solver++ sample. Reports ms, images/s and achieved GFLOP/s against the conv/matmul
 * FLOP count of engine/models/flops.ts. Writes bench/results/latest.json.
 *
 * Options: --backends wasm,cpu  --configs tiny,demo  --quick (fewer repetitions, no cpu demo).
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describeBackends, initBackend, type BackendName } from '../engine/backend';
import { unetForwardFlops } from '../engine/models/flops';
import { setGradientMode, type GradientMode } from '../engine/ops';
import { UNet2DConditionModel } from '../engine/models/unet';
import { UNET_CONFIGS, type UNetConfigName } from '../engine/models/unet-config';
import { Rng } from '../engine/rng';
import { DpmSolverPlusPlus } from '../engine/schedulers/dpm-solver';
import { disposeSampleResult } from '../engine/schedulers/sampling';
import { inferenceTimesteps, sharedGrid } from '../engine/schedulers/timesteps';

interface Row {
  backend: BackendName;
  /** 'custom': the engine's fast gradients; 'autodiff': plain TF.js ops (the plain cpu backend baseline). */
  gradients: GradientMode;
  config: UNetConfigName;
  batch: number;
  size: number;
  params: number;
  forwardMs: number;
  sftStepMs: number;
  droStepMs: number;
  sample20Ms: number | null;
  trainOverForward: number;
  forwardImagesPerSec: number;
  sftImagesPerSec: number;
  forwardGflops: number;
  sftGflops: number;
  droGflops: number;
}

/** demo: batch 4 as the reference's DRO micro-batch, so the DRO step runs phi and ref on 8 inputs. */
const BATCH: Record<Exclude<UNetConfigName, 'sd15'>, number> = { tiny: 2, demo: 4 };
const CONTEXT_LENGTH = 8;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function timeIt(fn: () => Promise<void> | void, budgetMs: number, maxReps: number): Promise<number> {
  await fn(); // warm-up: kernel setup, optimizer slots
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length === 0 || performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function benchOne(
  backend: BackendName,
  name: 'tiny' | 'demo',
  quick: boolean,
  gradients: GradientMode = 'custom',
): Promise<Row> {
  setGradientMode(gradients);
  // The autodiff baseline is slow (naive convolution gradients): time one step of each kind only.
  const baseline = gradients === 'autodiff';
  const config = UNET_CONFIGS[name];
  const batch = BATCH[name];
  const size = config.sample_size;
  const rng = new Rng(2024);
  const phi = UNet2DConditionModel.create(config, rng);
  const ref = phi.clone(false);
  const shape = [batch, size, size, config.in_channels];
  const x = rng.normalTensor(shape) as tf.Tensor4D;
  const target = rng.normalTensor(shape);
  const ctx = rng.normalTensor([batch, CONTEXT_LENGTH, config.cross_attention_dim]) as tf.Tensor3D;
  const t = Array.from({ length: batch }, () => rng.int(0, 1000));
  const x2 = tf.concat([x, x]) as tf.Tensor4D;
  const target2 = tf.concat([target, target]);
  const ctx2 = tf.concat([ctx, ctx]) as tf.Tensor3D;
  const t2 = [...t, ...t];
  const vars = phi.params.variables();
  const optimizer = tf.train.adam(1e-4);
  const budget = quick || baseline ? 800 : 3000;
  const reps = baseline ? 1 : quick ? 3 : 10;

  const forwardMs = await timeIt(
    () => {
      const y = phi.predict(x, t, ctx);
      y.dataSync();
      y.dispose();
    },
    budget,
    reps,
  );
  const sftStepMs = await timeIt(
    () => {
      const loss = optimizer.minimize(
        () => tf.mean(tf.squaredDifference(phi.predict(x, t, ctx), target)) as tf.Scalar,
        true,
        vars,
      )!;
      loss.dataSync();
      loss.dispose();
    },
    budget,
    reps,
  );
  const droStepMs = baseline
    ? NaN
    : await timeIt(
        () => {
          const perSample = (p: tf.Tensor) => tf.mean(tf.squaredDifference(p, target2), [1, 2, 3]);
          const refLoss = tf.tidy(() => perSample(ref.predict(x2, t2, ctx2)));
          const loss = optimizer.minimize(
            () => {
              const [le, lp] = tf.split(tf.sub(perSample(phi.predict(x2, t2, ctx2)), refLoss), 2);
              return tf.mean(tf.relu(tf.add(tf.sub(le!, lp!), 1e-3))) as tf.Scalar;
            },
            true,
            vars,
          )!;
          loss.dataSync();
          tf.dispose([loss, refLoss]);
        },
        budget,
        reps,
      );
  let sample20Ms: number | null = null;
  if (!(backend === 'cpu' && quick) && !baseline) {
    const solver = new DpmSolverPlusPlus();
    const grid = inferenceTimesteps(20, {
      numTrainTimesteps: 1000,
      timestepSpacing: 'linspace',
      stepsOffset: 0,
    });
    sample20Ms = await timeIt(
      async () => {
        const result = await solver.sample({
          model: (xt, tt, c: tf.Tensor3D) => ref.predict(xt, tt, c),
          xT: x,
          grids: sharedGrid(grid, batch),
          cond: ctx,
          record: false,
        });
        result.x0.dataSync();
        disposeSampleResult(result);
      },
      quick ? 1 : budget,
      quick ? 1 : 3,
    );
  }

  const fwdFlops = unetForwardFlops(config, {
    batch,
    height: size,
    width: size,
    contextLength: CONTEXT_LENGTH,
  });
  const row: Row = {
    backend,
    gradients,
    config: name,
    batch,
    size,
    params: phi.params.parameterCount(),
    forwardMs,
    sftStepMs,
    droStepMs,
    sample20Ms,
    trainOverForward: sftStepMs / forwardMs,
    forwardImagesPerSec: (1000 * batch) / forwardMs,
    sftImagesPerSec: (1000 * batch) / sftStepMs,
    forwardGflops: fwdFlops / forwardMs / 1e6,
    sftGflops: (3 * fwdFlops) / sftStepMs / 1e6,
    // phi: forward + backward on 2B; ref: forward on 2B.
    droGflops: (8 * fwdFlops) / droStepMs / 1e6,
  };
  tf.dispose([x, target, ctx, x2, target2, ctx2]);
  setGradientMode('custom');
  optimizer.dispose();
  phi.dispose();
  ref.dispose();
  return row;
}

function fmt(v: number | null, digits = 1): string {
  return v === null ? '-' : v.toFixed(digits);
}

async function run(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const available = describeBackends()
    .backends.filter((b) => b.available)
    .map((b) => b.name);
  const backends = (
    argValue('backends')?.split(',') ?? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']
  ).filter((b): b is BackendName => available.includes(b as BackendName));
  const configs = (argValue('configs')?.split(',') ?? ['tiny', 'demo']) as ('tiny' | 'demo')[];
  const rows: Row[] = [];
  const plan: Array<[BackendName, 'tiny' | 'demo', GradientMode]> = [];
  for (const backend of backends) {
    for (const name of configs) {
      if (!(name in BATCH)) throw new Error(`--configs: unknown or unsupported config '${name}'`);
      if (backend === 'cpu' && name === 'demo' && quick) continue;
      plan.push([backend, name, 'custom']);
    }
  }
  if (backends.includes('cpu') && !process.argv.includes('--no-baseline')) {
    for (const name of configs) if (!(quick && name === 'demo')) plan.push(['cpu', name, 'autodiff']);
  }
  for (const [backend, name, gradients] of plan) {
    await initBackend(backend, { reselect: true });
    {
      const row = await benchOne(backend, name, quick, gradients);
      rows.push(row);
      console.log(
        [
          `${row.backend}${row.gradients === 'autodiff' ? '/autodiff' : ''}`.padEnd(14),
          `${row.config} B${row.batch} ${row.size}px`.padEnd(16),
          `fwd ${fmt(row.forwardMs)} ms`.padEnd(16),
          `sft ${fmt(row.sftStepMs)} ms (${fmt(row.trainOverForward, 2)}x)`.padEnd(26),
          `dro ${fmt(row.droStepMs)} ms`.padEnd(16),
          `sample20 ${fmt(row.sample20Ms, 0)} ms`.padEnd(18),
          `${fmt(row.sftImagesPerSec)} img/s train`.padEnd(18),
          `GFLOP/s fwd ${fmt(row.forwardGflops, 2)} sft ${fmt(row.sftGflops, 2)} dro ${fmt(row.droGflops, 2)}`,
        ].join(' '),
      );
    }
  }
  const speedups = rows
    .filter((r) => r.gradients === 'autodiff')
    .flatMap((base) => {
      const fast = rows.find(
        (r) => r.backend === 'wasm' && r.gradients === 'custom' && r.config === base.config,
      );
      return fast ? [{ config: base.config, trainingStepSpeedup: base.sftStepMs / fast.sftStepMs }] : [];
    });
  for (const s of speedups) {
    console.log(
      `training step, ${s.config}: wasm with custom gradients is ${s.trainingStepSpeedup.toFixed(0)}x faster than the plain cpu backend`,
    );
  }
  const out = path.join(__dirname, 'results', 'latest.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    contextLength: CONTEXT_LENGTH,
    note: 'median of repetitions after one warm-up; machine load inflates times',
    rows,
    speedups,
  };
  writeFileSync(tmp, JSON.stringify(report, null, 2) + '\n');
  renameSync(tmp, out);
  console.log(`wrote ${out}`);
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
