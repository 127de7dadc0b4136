/**
 * `npm run bench`: speed of the UNet on each available TF.js backend.
 *
 * For each config and backend: forward, one SFT training step (MSE, forward + backward + Adam), one
 * DRO step (phi with gradient on expert + policy inputs, ref on both without gradient), and a
 * 20-step DPM-Solver++ sample. Reports ms, images/s and achieved GFLOP/s against the conv/matmul
 * FLOP count of engine/models/flops.ts. Beside the sample, the same 20 steps with guidance 3 in
 * both forms, two UNet calls of B per step against one of 2B (bench/guidance.ts), on every backend
 * but the plain cpu one. Writes bench/results/latest.json (or --out FILE).
 *
 * Options: --backends wasm,cpu  --configs tiny,demo  --quick (fewer repetitions, no cpu demo)
 *   --out FILE                 where to write the report
 *   --dump-spec FILE           write the benchmark's definition (configs, batches, FLOP counts) as JSON
 *                              for bench/torch_reference.py, and exit
 *   --compare FILE             after the run, print ours against a peer report (bench/torch_reference.py)
 *   --ours FILE                with --compare: compare this earlier report instead of running
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeBackends, initBackend, type BackendName } from '../engine/backend';
import { setGradientMode, type GradientMode } from '../engine/ops';
import { UNet2DConditionModel } from '../engine/models/unet';
import { UNET_CONFIGS } from '../engine/models/unet-config';
import { Rng } from '../engine/rng';
import { DpmSolverPlusPlus } from '../engine/schedulers/dpm-solver';
import { disposeSampleResult } from '../engine/schedulers/sampling';
import { inferenceTimesteps, sharedGrid } from '../engine/schedulers/timesteps';
import {
  BenchCompareError,
  compareReports,
  formatComparison,
  parseBenchReport,
  type BenchReport,
} from './compare';
import { timeGuidedSampling, type GuidedSampleTiming } from './guidance';
import { benchInputs } from './inputs';
import {
  BATCH,
  BENCH_CONFIGS,
  benchSpec,
  CONTEXT_LENGTH,
  DRO_MARGIN,
  LEARNING_RATE,
  opFlops,
  SAMPLE_STEPS,
  TIMING,
  type BenchConfigName,
  type BenchOp,
  type OpFlops,
} from './spec';

interface Row {
  backend: BackendName;
  /** 'custom': the engine's fast gradients; 'autodiff': plain TF.js ops (the plain cpu backend baseline). */
  gradients: GradientMode;
  config: BenchConfigName;
  batch: number;
  size: number;
  params: number;
  forwardMs: number;
  sftStepMs: number;
  droStepMs: number;
  sample20Ms: number | null;
  /** The guided 20-step sample in its two forms; null where not timed. Outside the peer comparison. */
  guided20: GuidedSampleTiming | null;
  /** Median process CPU milliseconds (user + system) of each operation; null where not timed. */
  cpuMs: Record<BenchOp, number | null>;
  trainOverForward: number;
  forwardImagesPerSec: number;
  sftImagesPerSec: number;
  forwardGflops: number;
  sftGflops: number;
  droGflops: number;
  sample20Gflops: number | null;
  /** FLOP count of each timed operation (bench/spec.ts), the divisor of every GFLOP/s figure. */
  flops: OpFlops;
}

/** Rounds per guided form: each sample does twice a sample20's work, so the demo row stays near a minute. */
const GUIDED_ROUNDS = 5;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Median wall-clock milliseconds of `fn`. The median CPU milliseconds of the whole process (user +
 * system) go into `cpuMs[op]`: on a machine shared with other jobs, wall time also counts the time
 * the process waited for a core, CPU time does not.
 */
async function timeIt(
  fn: () => Promise<void> | void,
  budgetMs: number,
  maxReps: number,
  op: BenchOp,
  cpuMs: Record<BenchOp, number | null>,
): Promise<number> {
  await fn(); // warm-up: kernel setup, optimizer slots
  const times: number[] = [];
  const cpu: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length === 0 || performance.now() - start < budgetMs)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  cpuMs[op] = median(cpu);
  return median(times);
}

async function benchOne(
  backend: BackendName,
  name: BenchConfigName,
  quick: boolean,
  gradients: GradientMode = 'custom',
): Promise<Row> {
  setGradientMode(gradients);
  // The autodiff baseline is slow (naive convolution gradients): time one step of each kind only.
  const baseline = gradients === 'autodiff';
  const inputs = benchInputs(name);
  const { config, batch, size, phi, ref, x, target, ctx, t, x2, target2, ctx2, t2 } = inputs;
  const vars = phi.params.variables();
  const optimizer = tf.train.adam(LEARNING_RATE);
  const budget = quick || baseline ? TIMING.quickBudgetMs : TIMING.budgetMs;
  const reps = baseline ? 1 : quick ? TIMING.quickMaxReps : TIMING.maxReps;

  const cpuMs: Record<BenchOp, number | null> = {
    forward: null,
    sftStep: null,
    droStep: null,
    sample20: null,
  };
  const forwardMs = await timeIt(
    () => {
      const y = phi.predict(x, t, ctx);
      y.dataSync();
      y.dispose();
    },
    budget,
    reps,
    'forward',
    cpuMs,
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
    'sftStep',
    cpuMs,
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
              return tf.mean(tf.relu(tf.add(tf.sub(le!, lp!), DRO_MARGIN))) as tf.Scalar;
            },
            true,
            vars,
          )!;
          loss.dataSync();
          tf.dispose([loss, refLoss]);
        },
        budget,
        reps,
        'droStep',
        cpuMs,
      );
  let sample20Ms: number | null = null;
  if (!(backend === 'cpu' && quick) && !baseline) {
    const solver = new DpmSolverPlusPlus();
    const grid = inferenceTimesteps(SAMPLE_STEPS, {
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
      quick ? 1 : TIMING.sampleMaxReps,
      'sample20',
      cpuMs,
    );
  }

  // The plain cpu backend needs minutes per guided demo sample; its rows time the unguided one only.
  const guided20 =
    sample20Ms === null || backend === 'cpu'
      ? null
      : await timeGuidedSampling((xt, tt, c) => ref.predict(xt, tt, c), x, ctx, {
          steps: SAMPLE_STEPS,
          rounds: quick ? 1 : GUIDED_ROUNDS,
        });

  const flops = opFlops(config, batch);
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
    guided20,
    cpuMs,
    trainOverForward: sftStepMs / forwardMs,
    forwardImagesPerSec: (1000 * batch) / forwardMs,
    sftImagesPerSec: (1000 * batch) / sftStepMs,
    forwardGflops: flops.forward / forwardMs / 1e6,
    sftGflops: flops.sftStep / sftStepMs / 1e6,
    droGflops: flops.droStep / droStepMs / 1e6,
    sample20Gflops: sample20Ms === null ? null : flops.sample20 / sample20Ms / 1e6,
    flops,
  };
  setGradientMode('custom');
  optimizer.dispose();
  inputs.dispose();
  return row;
}

function fmt(v: number | null, digits = 1): string {
  return v === null ? '-' : v.toFixed(digits);
}

function writeAtomic(out: string, text: string): void {
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, out);
}

async function dumpSpec(out: string): Promise<void> {
  await initBackend('cpu', { reselect: true });
  const spec = benchSpec((name) => {
    const model = UNet2DConditionModel.create(UNET_CONFIGS[name], new Rng(2024));
    const n = model.params.parameterCount();
    model.dispose();
    return n;
  });
  writeAtomic(out, JSON.stringify(spec, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new BenchCompareError(`${file}: cannot read (${(err as Error).message})`);
  }
}

function compareWith(peer: BenchReport, oursFile: string, oursText: string): void {
  const ours = parseBenchReport(oursText, oursFile);
  console.log(formatComparison(compareReports(ours, peer)));
}

async function run(): Promise<void> {
  const specOut = argValue('dump-spec');
  if (specOut !== undefined) return dumpSpec(specOut);
  const peerFile = argValue('compare');
  // Read the peer report first: a bad file fails before minutes of timing, not after.
  const peer = peerFile === undefined ? undefined : parseBenchReport(readText(peerFile), peerFile);
  const oursIn = argValue('ours');
  if (oursIn !== undefined) {
    if (peer === undefined) throw new Error('--ours FILE needs --compare PEER_FILE');
    compareWith(peer, oursIn, readText(oursIn));
    return;
  }
  const quick = process.argv.includes('--quick');
  const loadStart = os.loadavg();
  const available = describeBackends()
    .backends.filter((b) => b.available)
    .map((b) => b.name);
  const backends = (
    argValue('backends')?.split(',') ?? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']
  ).filter((b): b is BackendName => available.includes(b as BackendName));
  const configs = (argValue('configs')?.split(',') ?? [...BENCH_CONFIGS]) as BenchConfigName[];
  const rows: Row[] = [];
  const plan: Array<[BackendName, BenchConfigName, GradientMode]> = [];
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
      const g = row.guided20;
      if (g) {
        console.log(
          `${''.padEnd(31)}guided20 (w ${g.guidanceScale}) CPU ms: two calls of B ${fmt(g.twoCallCpuMs, 0)}, ` +
            `one call of 2B ${fmt(g.oneCallCpuMs, 0)} (${fmt(g.cpuRatio, 2)}x; wall ${fmt(g.twoCallMs, 0)} vs ` +
            `${fmt(g.oneCallMs, 0)} ms, median of ${g.rounds} alternating rounds)`,
        );
      }
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
  const out = argValue('out') ?? path.join(__dirname, 'results', 'latest.json');
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    /** 1, 5 and 15 minute load averages at the start and end: other jobs inflate wall times. */
    loadavg: { start: loadStart, end: os.loadavg() },
    contextLength: CONTEXT_LENGTH,
    note: 'median of repetitions after one warm-up; machine load inflates times',
    rows,
    speedups,
  };
  const text = JSON.stringify(report, null, 2) + '\n';
  writeAtomic(out, text);
  console.log(`wrote ${out}`);
  if (peer !== undefined) compareWith(peer, out, text);
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
