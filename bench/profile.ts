/**
 * Where the time of one benchmark operation goes, kernel by kernel.
 *
 *   npx tsx bench/profile.ts [--config demo|tiny] [--row forward|sft|dro] [--reps N] [--backend wasm]
 *                            [--optimizer adam|trainer]
 *
 * Builds the UNet and inputs of `bench/run.ts` (same seed, batch, context length, learning rate and
 * margin from bench/spec.ts), runs two warm-up steps, times `--reps` plain steps (wall and process
 * CPU time), then runs `--reps` steps under `tf.profile()` and prints, per rep: kernels aggregated by
 * name and by kind, the phase split (forward, backward, optimizer), and the slowest single kernel calls
 * with their input shapes.
 *
 * `--optimizer adam` (default) updates with `tf.train.adam`, as `bench/run.ts` and the PyTorch side do;
 * `--optimizer trainer` runs what the engine's trainer does after a backward pass instead: scale the
 * gradients by 1 / gradientAccumulation (1 here), clip their global norm to 1, AdamW (weight decay
 * 1e-2), EMA (decay 0.9999), each its own phase, and reports the CPU time of that update alone.
 *
 * Kernel times: the wasm backend runs each kernel synchronously and its `time()` is `performance.now()`
 * around the kernel call, so `kernelTimeMs` is the kernel's own wall time (the wasm code plus its JS
 * wrapper and output allocation), not an estimate. What is left of the profiled step's wall time is
 * engine bookkeeping, gradient-tape and Adam JS code between kernels. On a loaded machine all of it
 * includes time spent waiting for a core; shares are more stable than milliseconds.
 *
 * The step bodies repeat those of `bench/run.ts` (which runs its benchmark when imported), with
 * `optimizer.minimize` split into its two halves, `computeGradients` and `applyGradients`, so that the
 * optimizer's kernels can be told from the backward pass's.
 */
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import { initBackend, type BackendName } from '../engine/backend';
import { AdamW } from '../engine/training/adamw';
import { clipGradNorm } from '../engine/training/clip-grad';
import { Ema } from '../engine/training/ema';
import { benchInputs } from './inputs';
import { BATCH, DRO_MARGIN, LEARNING_RATE, type BenchConfigName } from './spec';

type ProfileRow = 'forward' | 'sft' | 'dro';
type OptimizerChoice = 'adam' | 'trainer';
type Phase =
  'ref forward' | 'forward' | 'backward' | 'optimizer' | 'accumulate' | 'clip' | 'ema' | 'loss/readback';

interface KernelCall {
  name: string;
  ms: number;
  bytesAdded: number;
  inputShapes: number[][];
  outputShapes: number[][];
  phase: Phase;
}

/** Kernel kinds for the summary: names as the TF.js kernel registry spells them. */
const KINDS: Record<string, readonly string[]> = {
  conv2d: ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'DepthwiseConv2dNative'],
  matmul: ['BatchMatMul', '_FusedMatMul'],
  transpose: ['Transpose'],
  reshape: ['Reshape'],
  /**
   * tfjs-core clones every input a gradient needs while the tape records; the engine's wasm Identity
   * (engine/ops/wasm-identity.ts) shares the buffer where wasm's own would copy it.
   */
  identity: ['Identity'],
  'pad/slice/concat': [
    'Pad',
    'PadV2',
    'MirrorPad',
    'Slice',
    'StridedSlice',
    'Concat',
    'SplitV',
    'Pack',
    'Unpack',
    'Tile',
    'GatherV2',
  ],
  resize: ['ResizeNearestNeighbor', 'ResizeNearestNeighborGrad', 'ResizeBilinear', 'ResizeBilinearGrad'],
  'reduce/softmax': ['Sum', 'Mean', 'Max', 'Min', 'Prod', 'Softmax', 'ArgMax', 'All', 'Any'],
};
/**
 * Kernels whose output shares its input's buffer on wasm, which the engine still counts as new
 * bytes: reshapes, and the engine's Identity.
 */
const SHARES_INPUT_BUFFER: ReadonlySet<string> = new Set(['Reshape', 'Identity']);
const KIND_OF = new Map(
  Object.entries(KINDS).flatMap(([kind, names]) => names.map((n) => [n, kind] as const)),
);
/** Everything else the UNet and Adam run is one pass over its inputs: add, mul, sigmoid, sqrt, ... */
const kindOf = (name: string): string => KIND_OF.get(name) ?? 'elementwise/other';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function pad(cells: (string | number)[], widths: number[]): string {
  return cells
    .map((c, i) => (typeof c === 'number' || i > 0 ? String(c).padStart(widths[i]!) : c.padEnd(widths[i]!)))
    .join('  ');
}

interface Setup {
  step: () => void;
  paramTensors: number;
  /** CPU ms of each step's update (gradients in, weights out), trainer optimizer only. */
  updateCpu: number[];
  dispose: () => void;
}

function buildStep(
  name: BenchConfigName,
  row: ProfileRow,
  optimizerChoice: OptimizerChoice,
  mark: (phase: Phase) => void,
): Setup {
  const inputs = benchInputs(name);
  const { phi, ref, x, target, ctx, t, x2, target2, ctx2, t2 } = inputs;
  const vars = phi.params.variables();
  const optimizer = tf.train.adam(LEARNING_RATE);
  const byName = new Map(phi.params.names.map((n) => [n, phi.params.get(n)]));
  const adamw = new AdamW({ lr: LEARNING_RATE, weightDecay: 1e-2 });
  const ema = optimizerChoice === 'trainer' ? new Ema(byName, 0.9999) : undefined;
  const updateCpu: number[] = [];

  /** The trainer's micro-step and update (trainer.ts), with the phase boundaries marked. */
  const trainerMinimize = (f: () => tf.Scalar): tf.Scalar => {
    const { value, grads } = tf.variableGrads(() => {
      const loss = f();
      mark('backward');
      return loss;
    }, vars);
    const c0 = process.cpuUsage();
    mark('accumulate');
    const accum = new Map<string, tf.Tensor>();
    for (const [n, v] of byName) {
      const g = grads[v.name];
      if (!g) continue;
      accum.set(
        n,
        tf.tidy(() => tf.mul(g, 1)),
      );
    }
    tf.dispose(Object.values(grads));
    mark('clip');
    clipGradNorm(accum, 1);
    mark('optimizer');
    adamw.apply(byName, accum);
    tf.dispose([...accum.values()]);
    mark('ema');
    ema!.update(byName);
    const c = process.cpuUsage(c0);
    updateCpu.push((c.user + c.system) / 1000);
    mark('loss/readback');
    return value;
  };

  /** `optimizer.minimize(f, true, vars)`, with the phase boundaries marked. */
  const adamMinimize = (f: () => tf.Scalar): tf.Scalar => {
    const { value, grads } = optimizer.computeGradients(() => {
      const loss = f();
      mark('backward');
      return loss;
    }, vars);
    mark('optimizer');
    // What minimize() does with the same map; the declared parameter type is the variables' map.
    optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
    tf.dispose(Object.values(grads));
    mark('loss/readback');
    return value;
  };
  const minimize = optimizerChoice === 'trainer' ? trainerMinimize : adamMinimize;

  const steps: Record<ProfileRow, () => void> = {
    forward: () => {
      mark('forward');
      const y = phi.predict(x, t, ctx);
      mark('loss/readback');
      y.dataSync();
      y.dispose();
    },
    sft: () => {
      mark('forward');
      const loss = minimize(() => {
        const y = phi.predict(x, t, ctx);
        mark('loss/readback');
        return tf.mean(tf.squaredDifference(y, target)) as tf.Scalar;
      });
      loss.dataSync();
      loss.dispose();
    },
    dro: () => {
      const perSample = (p: tf.Tensor) => tf.mean(tf.squaredDifference(p, target2), [1, 2, 3]);
      mark('ref forward');
      const refLoss = tf.tidy(() => perSample(ref.predict(x2, t2, ctx2)));
      mark('forward');
      const loss = minimize(() => {
        const y = phi.predict(x2, t2, ctx2);
        mark('loss/readback');
        const [le, lp] = tf.split(tf.sub(perSample(y), refLoss), 2);
        return tf.mean(tf.relu(tf.add(tf.sub(le!, lp!), DRO_MARGIN))) as tf.Scalar;
      });
      loss.dataSync();
      tf.dispose([loss, refLoss]);
    },
  };
  return {
    step: steps[row],
    paramTensors: vars.length,
    updateCpu,
    dispose: () => {
      optimizer.dispose();
      adamw.dispose();
      ema?.dispose();
      inputs.dispose();
    },
  };
}

interface Agg {
  count: number;
  ms: number;
  bytes: number;
}

function aggregate(calls: KernelCall[], key: (c: KernelCall) => string): Map<string, Agg> {
  const out = new Map<string, Agg>();
  for (const c of calls) {
    const a = out.get(key(c)) ?? { count: 0, ms: 0, bytes: 0 };
    a.count += 1;
    a.ms += c.ms;
    if (!SHARES_INPUT_BUFFER.has(c.name)) a.bytes += Math.max(0, c.bytesAdded);
    out.set(key(c), a);
  }
  return out;
}

function printAgg(title: string, agg: Map<string, Agg>, totalMs: number, limit = Infinity): void {
  const w = [34, 7, 9, 7, 9];
  console.log(`\n${title}, per step`);
  console.log(pad(['', 'calls', 'ms', 'share', 'MB out'], w));
  const rows = [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms);
  for (const [name, a] of rows.slice(0, limit)) {
    const share = `${((100 * a.ms) / totalMs).toFixed(1)}%`;
    console.log(pad([name, a.count, a.ms.toFixed(1), share, (a.bytes / 2 ** 20).toFixed(1)], w));
  }
  if (rows.length > limit) console.log(`  ... ${rows.length - limit} more`);
}

async function main(): Promise<void> {
  const config = (argValue('config') ?? 'demo') as BenchConfigName;
  if (!(config in BATCH)) throw new Error(`--config: expected tiny or demo, got '${config}'`);
  const row = (argValue('row') ?? 'sft') as ProfileRow;
  if (!['forward', 'sft', 'dro'].includes(row))
    throw new Error(`--row: expected forward, sft or dro, got '${row}'`);
  const reps = Number(argValue('reps') ?? 3);
  if (!Number.isInteger(reps) || reps < 1)
    throw new Error(`--reps: expected a positive integer, got '${argValue('reps')}'`);
  const optimizerChoice = (argValue('optimizer') ?? 'adam') as OptimizerChoice;
  if (!['adam', 'trainer'].includes(optimizerChoice))
    throw new Error(`--optimizer: expected adam or trainer, got '${optimizerChoice}'`);
  const backend = (argValue('backend') ?? 'wasm') as BackendName;
  await initBackend(backend, { reselect: true });

  let phase: Phase = 'forward';
  let profiling = false;
  const boundaries: Array<[number, Phase]> = [];
  // Phase boundaries are kernel indices into the profile being recorded.
  const mark = (p: Phase): void => {
    phase = p;
    if (profiling) boundaries.push([tf.engine().state.activeProfile.kernels.length, p]);
  };
  const { step, paramTensors, updateCpu, dispose } = buildStep(config, row, optimizerChoice, mark);

  step();
  step(); // warm-up: kernel setup, optimizer slots, wasm memory growth
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    step();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const timedUpdates = updateCpu.splice(0).slice(2);

  // The step is deterministic, so rep r's k-th kernel is the same call as every other rep's k-th:
  // each call's time is its median over the reps, which drops one-off stalls (a preempted core, GC).
  const runs: KernelCall[][] = [];
  const profiledWall: number[] = [];
  let newBytes = 0;
  let newTensors = 0;
  for (let i = 0; i < reps; i++) {
    boundaries.length = 0;
    profiling = true;
    const t0 = performance.now();
    const info = await tf.profile(() => step());
    profiledWall.push(performance.now() - t0);
    profiling = false;
    newBytes += info.newBytes;
    newTensors += info.newTensors;
    let b = 0;
    let current: Phase = phase;
    runs.push(
      info.kernels.map((k, idx) => {
        while (b < boundaries.length && boundaries[b]![0] <= idx) current = boundaries[b++]![1];
        return {
          name: k.name,
          ms: k.kernelTimeMs as number,
          bytesAdded: k.bytesAdded,
          inputShapes: k.inputShapes,
          outputShapes: k.outputShapes,
          phase: current,
        };
      }),
    );
  }
  const first = runs[0]!;
  if (runs.some((r) => r.length !== first.length || r.some((c, i) => c.name !== first[i]!.name))) {
    throw new Error('profile: the kernel sequence differs between reps, cannot take per-call medians');
  }
  const all = first.map((c, i) => ({ ...c, ms: median(runs.map((r) => r[i]!.ms)) }));
  // tf.customGrad records its whole forward as one 'unnamed scope' entry around the kernels it runs,
  // which are recorded too: counting both would count their time twice.
  const calls = all.filter((c) => c.name !== 'unnamed scope');
  const wrappers = all.filter((c) => c.name === 'unnamed scope');
  const kernelMs = calls.reduce((s, c) => s + c.ms, 0);
  const profiled = median(profiledWall);

  const load = os.loadavg().map((l) => l.toFixed(1));
  console.log(
    `${backend} ${config} B${BATCH[config]} row ${row}, optimizer ${optimizerChoice}, ${reps} reps; load average ${load.join(' ')} on ${os.cpus().length} CPUs`,
  );
  console.log(
    `step wall ${median(wall).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms (median, unprofiled)`,
  );
  if (timedUpdates.length > 0) {
    console.log(
      `update (accumulate, clip, AdamW, EMA) CPU ${median(timedUpdates).toFixed(1)} ms (median, unprofiled)`,
    );
  }
  console.log(
    `profiled step wall ${profiled.toFixed(1)} ms (median); sum of per-call median kernel times ${kernelMs.toFixed(1)} ms ` +
      `(${((100 * kernelMs) / profiled).toFixed(0)}% of it); ${calls.length} kernel calls; ` +
      `${(newBytes / reps / 2 ** 20).toFixed(2)} MB and ${(newTensors / reps).toFixed(0)} tensors left after the step`,
  );
  const buffers = calls.filter((c) => !SHARES_INPUT_BUFFER.has(c.name) && c.bytesAdded > 0);
  const allocated = buffers.reduce((s, c) => s + c.bytesAdded, 0);
  const allocating = buffers.length;
  console.log(
    `kernel outputs allocated: ${(allocated / 2 ** 20).toFixed(1)} MB in ${allocating} new buffers per step`,
  );
  console.log(
    `custom-gradient scopes (left out of the sums; their kernels are in): ${wrappers.length}, ` +
      `${wrappers.reduce((s, c) => s + c.ms, 0).toFixed(1)} ms including the kernels inside`,
  );

  const optimizerCalls = calls.filter((c) => c.phase === 'optimizer').length;
  if (optimizerCalls > 0) {
    const perTensor = (optimizerCalls / paramTensors).toFixed(1);
    console.log(
      `${optimizerChoice === 'trainer' ? 'AdamW' : 'Adam'}: ${optimizerCalls} kernel calls for ${paramTensors} parameter tensors (${perTensor} per tensor)`,
    );
  }

  printAgg(
    'by phase',
    aggregate(calls, (c) => c.phase),
    kernelMs,
  );
  printAgg(
    'by kind',
    aggregate(calls, (c) => kindOf(c.name)),
    kernelMs,
  );
  printAgg(
    'by kernel',
    aggregate(calls, (c) => c.name),
    kernelMs,
  );
  printAgg(
    'by kernel and phase, top 20',
    aggregate(calls, (c) => `${c.name} ${c.phase}`),
    kernelMs,
    20,
  );

  console.log('\ntop 15 kernel calls (median over reps)');
  for (const c of [...calls].sort((a, b) => b.ms - a.ms).slice(0, 15)) {
    const shapes = c.inputShapes.map((s) => `[${s.join(',')}]`).join(' ');
    console.log(
      `${c.ms.toFixed(2).padStart(7)} ms  ${c.name.padEnd(14)} ${c.phase.padEnd(10)} in ${shapes} -> [${c.outputShapes[0]?.join(',') ?? ''}]`,
    );
  }

  for (const name of ['Conv2D', 'BatchMatMul']) {
    printAgg(
      `${name} by phase and input shapes, top 10`,
      aggregate(
        calls.filter((c) => c.name === name),
        (c) => `${c.phase} ${c.inputShapes.map((sh) => `[${sh.join(',')}]`).join(' ')}`,
      ),
      kernelMs,
      10,
    );
  }

  const transposes = calls.filter((c) => c.name === 'Transpose');
  printAgg(
    'transposes by input shape, permutation unknown, and phase, top 10',
    aggregate(transposes, (c) => `[${c.inputShapes[0]?.join(',')}] ${c.phase}`),
    kernelMs,
    10,
  );
  dispose();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
