/**
 * How far fine-tuning can move a built-in-world base at all: an oracle SFT on clean renders of
 * training prompts that the judge finds correct (the best demonstrations the world has), measured
 * on held-out prompts by GenEval and by the simulated users' noise-free utility, for the base and
 * at every `--eval-every` micro-steps. No prompt of the suite is a training prompt.
 *
 *   npx tsx tools/headroom-probe.ts [--model models/world-base/base.safetensors] [--seed 0]
 *     [--prompts 512] [--renders 4] [--steps 2048] [--eval-every 512] [--lr 1e-4] [--batch 4]
 *     [--accumulation 1] [--ema 0.99] [--suite-prompts 96] [--images-per-prompt 4]
 *     [--sampler-steps 20] [--guidance 3] [--split hash|none] [--precision fp32|bf16] [--clip 1] [--out probe.jsonl]
 *
 * Prints one JSON line per measurement (and appends it to --out): GenEval per tag and overall, the
 * mean utility with a bootstrap 95% interval, and against the base McNemar's exact test on the
 * per-image verdicts and a paired bootstrap interval and t-test on the per-image utilities.
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import { decodeModelBundle } from '../engine/io/model-bundle';
import { buildWorldSuite, selectSuitePrompts } from '../engine/eval/suite';
import { generateTrainingPrompts, heldOutPrompts } from '../engine/world/prompt-split';
import { toUint8, toModelSpace } from '../engine/data/image';
import { judgeImage } from '../engine/world/geneval';
import { generatePrompts, TAGS } from '../engine/world/world';
import { worldGenerator } from '../engine/world/world-generator';
import { Trainer } from '../engine/training/trainer';
import type { DiffusionModel } from '../engine/training/diffusion-model';
import { bootstrapMeanCI, pairedBootstrapMeanDiffCI } from '../engine/stats/bootstrap';
import { mcnemarFromPairs } from '../engine/stats/binomial';
import { mean, pairedTTest } from '../engine/stats/t-test';
import { evaluateBase, perTag, type BaseEvalResult } from './base-geneval';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function num(name: string, fallback: number): number {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isFinite(v)) throw new Error(`--${name} must be a number, got '${arg(name, '')}'`);
  return v;
}

const round = (x: number, d = 4) => Number(x.toFixed(d));

/** Clean, correct renders of `prompts`, `renders` attempts each, in model space. */
function oracleExperts(prompts: ReturnType<typeof generatePrompts>, renders: number, resolution: number) {
  const render = worldGenerator({ resolution, pWrong: 0, levels: [null] });
  const examples: { prompt: string; image: Float32Array }[] = [];
  let attempts = 0;
  prompts.forEach((meta, i) => {
    for (let r = 0; r < renders; r++) {
      attempts++;
      const image = render(meta, i * renders + r);
      if (!judgeImage(toUint8(image), meta).correct) continue;
      examples.push({ prompt: meta.prompt, image: toModelSpace(image.data) });
    }
  });
  return { examples, attempts };
}

function withUnet(model: DiffusionModel, weights: Map<string, tf.Tensor>): DiffusionModel {
  const unet = model.unet.clone(false);
  unet.params.setWeights(weights);
  tf.dispose([...weights.values()]);
  return { ...model, unet };
}

function measurement(
  label: string,
  r: BaseEvalResult,
  base: BaseEvalResult | undefined,
  seed: string,
): Record<string, unknown> {
  const utilities = r.images.map((i) => i.utility);
  const out: Record<string, unknown> = {
    label,
    images: r.images.length,
    overall: round(r.summary.overall),
    perTag: perTag(r.summary),
    utility: round(mean(utilities)),
    utilityCI: bootstrapMeanCI(utilities, { seed }).map((x) => round(x)),
  };
  if (base) {
    const b = base.images.map((i) => i.utility);
    const mc = mcnemarFromPairs(
      r.images.map((i) => i.correct),
      base.images.map((i) => i.correct),
    );
    out.vsBase = {
      geneval: { rightOnlyHere: mc.b, rightOnlyBase: mc.c, p: round(mc.pValue, 5) },
      utilityDiff: round(mean(utilities) - mean(b)),
      utilityDiffCI: pairedBootstrapMeanDiffCI(utilities, b, { seed }).map((x) => round(x)),
      utilityP: round(pairedTTest(utilities, b).pValue, 5),
    };
  }
  return out;
}

async function run(): Promise<void> {
  const file = arg('model', 'models/world-base/base.safetensors');
  const seed = num('seed', 0);
  const steps = num('steps', 2048);
  const evalEvery = num('eval-every', 512);
  const accumulation = num('accumulation', 1);
  const out = arg('out', '');
  await initBackend('auto');
  const base = decodeModelBundle(new Uint8Array(fs.readFileSync(file)), file);
  const resolution = base.unet.config.sample_size;
  // `hash` (default): training prompts from the training side of the world's prompt split and the
  // suite from its held-out side, every tag present; `none`: a drawn suite minus the training prompts.
  const split = arg('split', 'hash');
  if (split !== 'hash' && split !== 'none') throw new Error(`--split must be hash or none, got '${split}'`);
  const trainingSeed = `headroom-train:${seed}`;
  const training =
    split === 'hash'
      ? generateTrainingPrompts(trainingSeed, num('prompts', 512))
      : generatePrompts(trainingSeed, num('prompts', 512));
  const trainingTexts = training.map((p) => p.prompt);
  const suite =
    split === 'hash'
      ? selectSuitePrompts(
          TAGS.flatMap((tag) => heldOutPrompts(tag)),
          new Set(),
          num('suite-prompts', 96),
          'held-out prompts',
        )
      : buildWorldSuite({
          seed: `headroom-suite:${seed}`,
          prompts: num('suite-prompts', 96),
          trainingPrompts: trainingTexts,
        });
  const experts = oracleExperts(training, num('renders', 4), resolution);
  const evalOptions = {
    seedsPerPrompt: num('images-per-prompt', 4),
    samplerSteps: num('sampler-steps', 20),
    guidanceScale: num('guidance', 3),
  };
  const emit = (row: Record<string, unknown>) => {
    const line = JSON.stringify(row);
    console.log(line);
    if (out) fs.appendFileSync(out, `${line}\n`);
  };
  emit({
    probe: 'oracle-sft',
    model: file,
    seed,
    split,
    trainingPrompts: training.length,
    experts: experts.examples.length,
    renderAttempts: experts.attempts,
    suitePrompts: suite.prompts.length,
    excludedFromSuite: suite.excluded,
    steps,
    learningRate: num('lr', 1e-4),
    batchSize: num('batch', 4),
    accumulation,
    precision: arg('precision', 'fp32'),
    maxGradNorm: num('clip', 1),
    ...evalOptions,
  });
  const t0 = Date.now();
  const baseResult = await evaluateBase(base, suite.prompts, evalOptions);
  emit({
    ...measurement('base', baseResult, undefined, `headroom:${seed}`),
    seconds: (Date.now() - t0) / 1000,
  });
  const trainer = Trainer.create({
    settings: {
      method: 'sft',
      seed,
      steps,
      learningRate: num('lr', 1e-4),
      weightDecay: 1e-2,
      batchSize: num('batch', 4),
      gradientAccumulation: accumulation,
      maxGradNorm: num('clip', 1),
      promptDropout: 0.2,
      randomFlip: false,
      emaDecay: num('ema', 0.99),
      checkpointEvery: steps,
      ...(arg('precision', 'fp32') === 'bf16' ? { precision: 'bf16' as const } : {}),
    },
    unet: base.unet,
    text: base.text,
    tokenizer: base.tokenizer,
    data: { images: { height: resolution, width: resolution, channels: 3, examples: experts.examples } },
  });
  while (!trainer.done) {
    const started = Date.now();
    await trainer.run(trainer.step + evalEvery);
    const trainSeconds = (Date.now() - started) / 1000;
    const model = withUnet(base, trainer.emaWeights());
    const r = await evaluateBase(model, suite.prompts, evalOptions);
    model.unet.dispose();
    const recent = trainer.history.slice(-Math.max(1, evalEvery / accumulation));
    emit({
      ...measurement(`sft@${trainer.step}`, r, baseResult, `headroom:${seed}`),
      step: trainer.step,
      meanLoss: round(mean(recent.map((h) => h.loss!)), 5),
      trainSeconds,
    });
  }
  trainer.dispose();
}

run().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
