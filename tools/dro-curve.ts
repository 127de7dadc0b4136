/**
 * Runs Diffusion-DRO from a model bundle on an expert image set and prints the logged terms per
 * optimizer update, to see how the hinge loss and its parts move over a longer run than the demo's.
 * Run by hand, e.g. on the artifacts of a `dro run`:
 *
 *   npx tsx tools/dro-curve.ts --model .dro/artifacts/runs/<id>/sft/model.safetensors \
 *     --experts .dro/artifacts/runs/<id>/ranking/experts.safetensors --steps 400 --accumulation 4 \
 *     [--lr 1e-4] [--margin 1e-3] [--buffer-update-steps 16] [--buffer-sample-steps 4] [--seed 0]
 */
import fs from 'node:fs';
import { initBackend } from '../engine/backend';
import { decodeImageDataset } from '../engine/io/image-dataset';
import { decodeModelBundle } from '../engine/io/model-bundle';
import { Trainer } from '../engine/training/trainer';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

async function run(): Promise<void> {
  const backend = await initBackend('auto');
  const model = decodeModelBundle(fs.readFileSync(arg('model')), arg('model'));
  const experts = decodeImageDataset(fs.readFileSync(arg('experts')), arg('experts'));
  const steps = Number(arg('steps', '400'));
  const accumulation = Number(arg('accumulation', '4'));
  const trainer = Trainer.create({
    settings: {
      method: 'dro',
      seed: Number(arg('seed', '0')),
      steps,
      learningRate: Number(arg('lr', '1e-4')),
      weightDecay: 0.01,
      batchSize: 4,
      gradientAccumulation: accumulation,
      maxGradNorm: 1,
      promptDropout: 0.2,
      randomFlip: false,
      emaDecay: 0.99,
      checkpointEvery: steps,
      margin: Number(arg('margin', '1e-3')),
      bufferSize: 4,
      bufferBatchSize: 4,
      bufferSampleSteps: Number(arg('buffer-sample-steps', '4')),
      bufferUpdateSteps: Number(arg('buffer-update-steps', '16')),
      samplerSteps: Number(arg('sampler-steps', '10')),
      bufferGuidanceScale: 1,
    },
    unet: model.unet,
    text: model.text,
    tokenizer: model.tokenizer,
    data: { images: experts },
  });
  console.log(`backend ${backend.name}; ${experts.examples.length} experts; ${steps} micro-steps`);
  console.log(['step', 'loss', 'diff', 'Le-Le0', 'Lp-Lp0', 'Le', 'Lp'].join('\t'));
  const started = Date.now();
  await trainer.run(steps, {
    onProgress: ({ metrics: m }) => {
      if (!m) return;
      const f = (v: number | undefined) => (v ?? NaN).toExponential(3);
      console.log(
        [m.step, f(m.loss), f(m.diff), f(m.expertDiff), f(m.policyDiff), f(m.expert), f(m.policy)].join('\t'),
      );
    },
  });
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  trainer.dispose();
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
