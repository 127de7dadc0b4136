/**
 * Pretrains the built-in world's base model from a recipe (`config/pretrain-base.json`) and writes
 * it as a model bundle the pipeline can start from (`model.baseCheckpoint`). Run by hand:
 *
 *   npx tsx tools/pretrain-base.ts --config config/pretrain-base.json --out /tmp/base \
 *     [--set training.steps=800 --set corpus.captionNoise=0.2 ...] [--curve curve.jsonl]
 *
 * Every `eval.every` updates it samples the EMA model on the learning-curve suite (20 DPM-Solver++
 * steps, guidance 3 by default) and appends GenEval per tag to the curve file (JSON lines); at the
 * end it writes `base.safetensors` and `summary.json` (recipe, curve, SHA-256), then measures the
 * larger held-out `final` suite and adds it to the summary (`--no-final` skips that; measure a
 * bundle later with tools/eval-base.ts). `--keep-curve-models` also writes the model of every curve
 * point (`base-step<N>.safetensors`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import { buildPretrainingCorpus } from '../engine/world/pretraining-corpus';
import { generateSuite } from '../engine/world/world';
import { worldTokenizer } from '../engine/world/world-text';
import { encodeModelBundle } from '../engine/io/model-bundle';
import { CLIPTextModel, demoTextEncoderConfig } from '../engine/models/text-encoder';
import { UNet2DConditionModel } from '../engine/models/unet';
import { DEMO_UNET } from '../engine/models/unet-config';
import { Rng } from '../engine/rng';
import type { DiffusionModel } from '../engine/training/diffusion-model';
import { Trainer } from '../engine/training/trainer';
import { evaluateBase, measureFinal, perTag, promptSensitivity } from './base-geneval';
import { loadRecipe } from './pretrain-recipe';

function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === `--${name}` && process.argv[i + 1] !== undefined) out.push(process.argv[i + 1]!);
  });
  return out;
}

async function run(): Promise<void> {
  const recipe = loadRecipe(args('config')[0], args('set'));
  const out = args('out')[0] ?? '/tmp/dro-base';
  const curveFile = args('curve')[0] ?? path.join(out, 'curve.jsonl');
  fs.mkdirSync(out, { recursive: true });
  fs.mkdirSync(path.dirname(curveFile), { recursive: true });
  fs.writeFileSync(curveFile, '');
  const backend = await initBackend('auto');
  console.log(`backend ${backend.name}`);
  console.log(`recipe ${JSON.stringify(recipe)}`);

  const config = { ...DEMO_UNET, sample_size: recipe.resolution };
  const tokenizer = worldTokenizer();
  const text = CLIPTextModel.create(
    demoTextEncoderConfig(tokenizer.vocabSize, tokenizer.config.maxLength, config.cross_attention_dim),
    new Rng(recipe.textInitSeed),
    false,
  );
  const unet = UNet2DConditionModel.create(config, new Rng(recipe.unetInitSeed), false);
  const corpus = buildPretrainingCorpus({ ...recipe.corpus, resolution: recipe.resolution });
  const curveSuite = generateSuite({ seed: recipe.eval.suiteSeed, perTag: recipe.eval.perTag });
  const t = recipe.training;
  const trainer = Trainer.create({
    settings: {
      method: 'sft',
      seed: recipe.seed,
      steps: t.steps,
      learningRate: t.learningRate,
      weightDecay: t.weightDecay,
      batchSize: t.batchSize,
      gradientAccumulation: 1,
      maxGradNorm: t.maxGradNorm,
      promptDropout: t.promptDropout,
      randomFlip: false,
      emaDecay: t.emaDecay,
      checkpointEvery: t.steps,
      trainTextEncoder: t.trainTextEncoder,
      warmupUpdates: t.warmupUpdates,
      lrDecay: t.lrDecay,
    },
    unet,
    text,
    tokenizer,
    data: { images: corpus },
  });

  /** The EMA model as it would be exported; the caller disposes it. */
  const emaModel = (): DiffusionModel => {
    const unetEma = unet.clone(false);
    const w = trainer.emaWeights();
    unetEma.params.setWeights(w);
    tf.dispose([...w.values()]);
    const textEma = text.clone(false);
    const tw = trainer.emaTextWeights();
    if (tw) {
      textEma.params.setWeights(tw);
      tf.dispose([...tw.values()]);
    }
    return { unet: unetEma, text: textEma, tokenizer };
  };

  const t0 = Date.now();
  const seconds = () => Number(((Date.now() - t0) / 1000).toFixed(0));
  let lossSum = 0;
  let lossN = 0;
  const curve: unknown[] = [];
  const first = recipe.eval.atStart ? 0 : Math.min(recipe.eval.every, t.steps);
  for (let s = first; ; s = Math.min(s + recipe.eval.every, t.steps)) {
    await trainer.run(s, {
      onProgress: (p) => {
        lossSum += p.metrics?.loss ?? 0;
        lossN++;
        if (p.step % 25 === 0) {
          console.log(
            `step ${p.step} loss ${p.metrics?.loss?.toFixed(4)} lr ${p.metrics?.lr?.toExponential(2)} ` +
              `${p.imagesPerSecond.toFixed(1)} img/s ${seconds()} s`,
          );
        }
      },
    });
    const trainSeconds = seconds();
    const model = emaModel();
    const r = await evaluateBase(model, curveSuite, recipe.eval);
    const sensitivity = promptSensitivity(model);
    if (process.argv.includes('--keep-curve-models')) {
      fs.writeFileSync(path.join(out, `base-step${s}.safetensors`), encodeModelBundle(model));
    }
    model.unet.dispose();
    model.text.dispose();
    const row = {
      step: s,
      images: s * t.batchSize,
      loss: Number((lossSum / Math.max(1, lossN)).toFixed(5)),
      overall: Number(r.summary.overall.toFixed(4)),
      meanScore: Number(r.meanScore.toFixed(4)),
      perTag: perTag(r.summary),
      promptSensitivity: sensitivity,
      trainSeconds,
      seconds: seconds(),
    };
    lossSum = 0;
    lossN = 0;
    curve.push(row);
    fs.appendFileSync(curveFile, `${JSON.stringify(row)}\n`);
    console.log(`eval ${JSON.stringify(row)}`);
    if (s >= t.steps) break;
  }

  const model = emaModel();
  const bytes = encodeModelBundle(model);
  const file = path.join(out, 'base.safetensors');
  fs.writeFileSync(`${file}.tmp`, bytes);
  fs.renameSync(`${file}.tmp`, file);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  console.log(`wrote ${file} sha256 ${sha256} (${bytes.length} bytes) ${seconds()} s`);
  const summary: Record<string, unknown> = {
    recipe,
    curve,
    bundle: { file: 'base.safetensors', bytes: bytes.length, sha256 },
    backend: backend.name,
    trainSeconds: seconds(),
  };
  const writeSummary = () =>
    fs.writeFileSync(path.join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  writeSummary();
  trainer.dispose();
  if (!process.argv.includes('--no-final')) {
    const final = await measureFinal(model, recipe);
    summary.final = final;
    summary.wallSeconds = seconds();
    writeSummary();
    console.log(`final ${JSON.stringify(final)}`);
  }
  model.unet.dispose();
  model.text.dispose();
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
