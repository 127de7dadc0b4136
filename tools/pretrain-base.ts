/**
 * Pretrains the built-in world's base model (UNet on noisy captions, frozen text encoder) and writes
 * it as a model bundle the pipeline can start from (`model.baseCheckpoint`). Run by hand:
 *
 *   npx tsx tools/pretrain-base.ts --steps 4000 --out /tmp/base
 *
 * Every `--eval-every` steps it samples the GenEval-style suite and prints per-tag accuracy, so the
 * run shows how well the (deliberately misaligned) base model follows prompts.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import { buildPretrainingCorpus, fromModelSpace } from '../engine/data/pretraining-corpus';
import { generateSuite } from '../engine/data/world';
import { worldTokenizer } from '../engine/data/world-text';
import { judgeImage, scoreGenEval } from '../engine/eval/geneval';
import { generateImages } from '../engine/generate';
import { encodeModelBundle } from '../engine/io/model-bundle';
import { CLIPTextModel, demoTextEncoderConfig } from '../engine/models/text-encoder';
import { UNet2DConditionModel } from '../engine/models/unet';
import { DEMO_UNET } from '../engine/models/unet-config';
import { Rng } from '../engine/rng';
import { Trainer } from '../engine/training/trainer';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function run(): Promise<void> {
  const steps = Number(arg('steps', '2000'));
  const evalEvery = Number(arg('eval-every', '500'));
  const out = arg('out', '/tmp/dro-base');
  const lr = Number(arg('lr', '1e-3'));
  const batch = Number(arg('batch', '16'));
  const corpusSize = Number(arg('corpus', '4000'));
  const noise = Number(arg('caption-noise', '0.3'));
  const backend = await initBackend('auto');
  console.log(`backend ${backend.name}`);
  const config = { ...DEMO_UNET };
  const res = config.sample_size;
  const tokenizer = worldTokenizer();
  const text = CLIPTextModel.create(
    demoTextEncoderConfig(tokenizer.vocabSize, 16, config.cross_attention_dim),
    new Rng(1),
    false,
  );
  const unet = UNet2DConditionModel.create(config, new Rng(2), false);
  const corpus = buildPretrainingCorpus({ seed: 0, size: corpusSize, resolution: res, captionNoise: noise });
  const suite = generateSuite({ seed: 'pretrain-eval', perTag: 8 });
  const trainer = Trainer.create({
    settings: {
      method: 'sft',
      seed: 0,
      steps,
      learningRate: lr,
      weightDecay: 0.01,
      batchSize: batch,
      gradientAccumulation: 1,
      maxGradNorm: 1,
      promptDropout: 0.1,
      randomFlip: false,
      emaDecay: 0.999,
      checkpointEvery: steps,
    },
    unet,
    text,
    tokenizer,
    data: { images: corpus },
  });
  const t0 = Date.now();
  for (let s = evalEvery; s <= steps; s += evalEvery) {
    await trainer.run(s, {
      onProgress: (p) => {
        if (p.step % 50 === 0) {
          console.log(
            `step ${p.step} loss ${p.metrics?.loss?.toFixed(4)} ${p.imagesPerSecond.toFixed(1)} img/s ${((Date.now() - t0) / 1000).toFixed(0)} s`,
          );
        }
      },
    });
    const ema = trainer.emaWeights();
    const evalUnet = unet.clone(false);
    evalUnet.params.setWeights(ema);
    tf.dispose([...ema.values()]);
    const images = await generateImages(
      { unet: evalUnet, text, tokenizer },
      suite.map((p) => p.prompt),
      {
        seeds: suite.map((_, i) => i),
        steps: 20,
        guidanceScale: 5,
      },
    );
    const results = suite.map((meta, i) => ({
      tag: meta.tag,
      correct: judgeImage({ width: res, height: res, data: fromModelSpace(images[i]!) }, meta).correct,
    }));
    const summary = scoreGenEval(results);
    console.log(
      `step ${s} geneval overall ${summary.overall.toFixed(3)} ${JSON.stringify(Object.fromEntries(Object.entries(summary.perTag).map(([k, v]) => [k, v?.accuracy.toFixed(2)])))}`,
    );
    fs.mkdirSync(out, { recursive: true });
    const file = path.join(out, `world-base-${s}.safetensors`);
    fs.writeFileSync(`${file}.tmp`, encodeModelBundle({ unet: evalUnet, text, tokenizer }));
    fs.renameSync(`${file}.tmp`, file);
    console.log(`wrote ${file}`);
    evalUnet.dispose();
  }
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
