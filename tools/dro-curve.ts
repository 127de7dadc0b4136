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

/** A wrong argument or unreadable file: printed as one line, with no stack trace. */
class CurveArgError extends Error {}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined || v.startsWith('--')) throw new CurveArgError(`--${name} is required`);
  return v;
}

function numberArg(name: string, fallback: string, integer = false): number {
  const v = Number(arg(name, fallback));
  if (!Number.isFinite(v) || (integer && (!Number.isInteger(v) || v < 1)))
    throw new CurveArgError(
      `--${name} ${arg(name, fallback)}: give ${integer ? 'a positive integer' : 'a number'}`,
    );
  return v;
}

/** A file's bytes decoded by `decode`; any failure names the option and the file. */
function readArg<T>(name: string, decode: (bytes: Uint8Array, file: string) => T): T {
  const file = arg(name);
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CurveArgError(
      `--${name} ${file}: cannot read it (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`,
    );
  }
  try {
    return decode(bytes, file);
  } catch (err) {
    throw new CurveArgError(`--${name} ${file}: ${(err as Error).message}`);
  }
}

async function run(): Promise<void> {
  // Arguments and files first: a typo should not wait for a backend to load.
  const model = readArg('model', decodeModelBundle);
  const experts = readArg('experts', decodeImageDataset);
  const backend = await initBackend('auto');
  const steps = numberArg('steps', '400', true);
  const accumulation = numberArg('accumulation', '4', true);
  const trainer = Trainer.create({
    settings: {
      method: 'dro',
      seed: numberArg('seed', '0'),
      steps,
      learningRate: numberArg('lr', '1e-4'),
      weightDecay: 0.01,
      batchSize: 4,
      gradientAccumulation: accumulation,
      maxGradNorm: 1,
      promptDropout: 0.2,
      randomFlip: false,
      emaDecay: 0.99,
      checkpointEvery: steps,
      margin: numberArg('margin', '1e-3'),
      bufferSize: 4,
      bufferBatchSize: 4,
      bufferSampleSteps: numberArg('buffer-sample-steps', '4', true),
      bufferUpdateSteps: numberArg('buffer-update-steps', '16', true),
      samplerSteps: numberArg('sampler-steps', '10', true),
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
  // Our own refusals are one line; anything else keeps its stack, which is then the useful part.
  console.error(err instanceof CurveArgError ? `dro-curve: ${err.message}` : err);
  process.exit(1);
});
