/**
 * How much signal the simulated feedback carries: the learned preference model's held-out pairwise
 * accuracy when trained on the feedback a base model's images get, at several data sizes, measured
 * the way the pipeline's preferences and reward stages compute it (same prompts, image seeds,
 * sampler, simulation, 80/20 split, model and epochs for a given root seed):
 *
 *   npx tsx tools/reward-accuracy.ts --model models/world-base/base.safetensors \
 *     --sizes 128,512 [--seed 0] [--steps 10] [--guidance 3] [--cache /tmp/images.safetensors]
 *   npx tsx tools/reward-accuracy.ts --model world --sizes 128,512
 *   ... --init models/world-preference/pretrained.safetensors   (fine-tune pretrained weights)
 *
 * `--model world` uses the stand-in generator of engine/world/world-generator.ts (renders, half
 * of them for another prompt, degraded at random) instead of a model: seconds instead of an hour on
 * a CPU, and a check of the simulation itself.
 *
 * The images of the largest size are generated once (a smaller size's prompts and seeds are a
 * prefix of a larger one's) and cached. Besides the learned model it reports the prompt-blind
 * baseline, how often a click goes to the image GenEval judges correct when exactly one is, and
 * what matters to the ranking stage: the share of GenEval-correct images among the top 3/16 of all
 * images by the model's score (`expertsCorrect`; `imagesCorrect` is the share among all images).
 */
import fs from 'node:fs';
import { stageSeed } from '../activities/stage';
import { initBackend } from '../engine/backend';
import { fromModelSpace, toModelSpace } from '../engine/world/pretraining-corpus';
import { generatePrompts, type PromptMetadata } from '../engine/world/world';
import { simulateFeedback, type FeedbackSimulationOptions } from '../engine/world/simulate';
import { worldGenerator } from '../engine/world/world-generator';
import { generateImages } from '../engine/generate';
import { decodeModelBundle } from '../engine/io/model-bundle';
import { parseSafetensors, serializeSafetensors } from '../engine/io/safetensors';
import {
  PREFERENCE_LR,
  PreferenceModel,
  checkPreferenceWeights,
  defaultPreferenceConfig,
  pairwiseAccuracy,
  preferencePairsFromRows,
  trainPreferenceModel,
  type PreferencePair,
} from '../engine/rewards/preference-model';
import { Rng } from '../engine/rng';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** The reward stage's split: a seeded shuffle, the first 20% held out. */
function split(pairs: readonly PreferencePair[], seed: number) {
  const order = pairs.map((_, i) => i);
  new Rng(seed).shuffle(order);
  const held = pairs.length >= 5 ? Math.max(1, Math.round(pairs.length * 0.2)) : 0;
  return {
    train: order.slice(held).map((i) => pairs[i]!),
    heldOut: order.slice(0, held).map((i) => pairs[i]!),
  };
}

async function run(): Promise<void> {
  const modelFile = arg('model', '');
  if (!modelFile) throw new Error('--model <bundle.safetensors> is required');
  const sizes = arg('sizes', '128,512').split(',').map(Number);
  const seed = Number(arg('seed', '0'));
  const steps = Number(arg('steps', '10'));
  const guidance = Number(arg('guidance', '3'));
  const cache = arg('cache', '');
  await initBackend('auto');
  const standIn = modelFile === 'world';
  const model = standIn
    ? undefined
    : decodeModelBundle(new Uint8Array(fs.readFileSync(modelFile)), modelFile);
  const res = model?.unet.config.sample_size ?? 16;
  const maxN = Math.max(...sizes);
  // As the preferences stage draws them.
  const prompts = generatePrompts(`preferences:${stageSeed(seed, 'prompts')}`, maxN);
  const simSeed = stageSeed(seed, 'feedback') % 0x7fffffff;
  const index = new Map<PromptMetadata, number>(prompts.map((p, i) => [p, i]));
  const wanted: { prompt: PromptMetadata; seed: number }[] = [];
  const blank = { width: res, height: res, data: new Float32Array(res * res * 3) };
  await simulateFeedback(
    prompts,
    (prompt, s) => {
      wanted.push({ prompt, seed: s });
      return blank;
    },
    { seed: simSeed },
  );
  let generated: Float32Array[];
  if (!model) {
    const render = worldGenerator({ resolution: res });
    generated = wanted.map((w) => toModelSpace(render(w.prompt, w.seed).data));
  } else {
    // Cached images are a prefix (a run at a smaller size); only the rest is generated.
    const cached: Float32Array[] = [];
    if (cache && fs.existsSync(cache)) {
      const file = parseSafetensors(new Uint8Array(fs.readFileSync(cache)), cache);
      for (let i = 0; file.tensors.has(String(i)) && i < wanted.length; i++)
        cached.push(file.tensors.get(String(i))!.data);
      console.log(`${cached.length} images from ${cache}`);
    }
    const rest = wanted.slice(cached.length);
    const t0 = Date.now();
    const fresh = rest.length
      ? await generateImages(
          model,
          rest.map((w) => w.prompt.prompt),
          {
            seeds: rest.map((w) => w.seed),
            steps,
            guidanceScale: guidance,
            onProgress: (done, total) => {
              if (done % 64 === 0)
                console.log(`generated ${done}/${total} ${Math.round((Date.now() - t0) / 1000)} s`);
            },
          },
        )
      : [];
    generated = [...cached, ...fresh];
    if (cache && fresh.length) {
      const shape = [res, res, 3];
      fs.writeFileSync(
        cache,
        serializeSafetensors(new Map(generated.map((d, i) => [String(i), { shape, data: d }]))),
      );
    }
  }
  const images = new Map<string, { width: number; height: number; data: Float32Array }>();
  wanted.forEach((w, i) =>
    images.set(`${index.get(w.prompt)}:${w.seed}`, {
      width: res,
      height: res,
      data: fromModelSpace(generated[i]!),
    }),
  );

  const allVariants: Array<[string, Partial<FeedbackSimulationOptions>]> = [
    ['verdict+partial credit (correctnessWeight 1)', {}],
    ['partial credit only (correctnessWeight 0)', { correctnessWeight: 0 }],
  ];
  const variants = allVariants.slice(0, Number(arg('variants', '2')));
  // As the reward stage does with ranking.preferenceInit: fine-tune pretrained weights at 1e-3.
  const initFile = arg('init', '');
  const init = initFile
    ? checkPreferenceWeights(parseSafetensors(new Uint8Array(fs.readFileSync(initFile)), initFile), initFile)
    : undefined;
  const pretrained = init ? new PreferenceModel(defaultPreferenceConfig(), init) : undefined;
  const rows: unknown[] = [];
  for (const [label, extra] of variants) {
    const feedback = await simulateFeedback(
      prompts,
      (prompt, s) => images.get(`${index.get(prompt)}:${s}`)!,
      { seed: simSeed, ...extra },
    );
    for (const n of sizes) {
      // One pair per prompt: the first n rows are the simulation of the first n prompts.
      const sub = feedback.rows.slice(0, n);
      const subPairs = feedback.pairs.slice(0, n);
      const pairs = preferencePairsFromRows(sub);
      const { train, heldOut } = split(pairs, stageSeed(seed, 'reward-split'));
      const opts = { seed: stageSeed(seed, 'reward-init'), epochs: 12 };
      const learned = await trainPreferenceModel(train, defaultPreferenceConfig(), {
        ...opts,
        ...(init && { init, lr: PREFERENCE_LR.fineTune }),
      });
      const zeroShot = pretrained ? await pairwiseAccuracy(pretrained, heldOut) : undefined;
      // The ranking stage's use of the model: of the top 3/16 of all images by score (the demo's
      // top-K share), how many GenEval judges correct.
      const allImages = pairs.flatMap((p) => [p.images[0], p.images[1]]);
      const allPrompts = pairs.flatMap((p) => [p.prompt, p.prompt]);
      const correct = subPairs.flatMap((p) => [p.correct[0], p.correct[1]]);
      const k = Math.round((allImages.length * 3) / 16);
      const expertPrecision = async (m: { score: typeof learned.model.score }): Promise<number> => {
        const scores = await m.score.call(m, allImages, allPrompts);
        const top = scores
          .map((sc, i) => [sc, i] as const)
          .sort((a, b) => b[0] - a[0] || a[1] - b[1])
          .slice(0, k);
        return top.filter(([, i]) => correct[i]).length / k;
      };
      const blind = await trainPreferenceModel(train, defaultPreferenceConfig({ promptInput: false }), opts);
      const acc = await pairwiseAccuracy(learned.model, heldOut);
      const accBlind = await pairwiseAccuracy(blind.model, heldOut);
      const precision = await expertPrecision(learned.model);
      const precisionBlind = await expertPrecision(blind.model);
      const precisionPretrained = pretrained ? await expertPrecision(pretrained) : undefined;
      learned.model.dispose();
      blind.model.dispose();
      const oneCorrect = subPairs
        .map((p, i) => ({ p, label0: sub[i]!.label_0! }))
        .filter(({ p }) => p.correct[0] !== p.correct[1]);
      const followsVerdict =
        oneCorrect.reduce((a, { p, label0 }) => a + (p.correct[0] ? label0 : 1 - label0), 0) /
        Math.max(1, oneCorrect.length);
      const decisions: Record<string, number> = {};
      for (const p of subPairs) decisions[p.decision] = (decisions[p.decision] ?? 0) + 1;
      const correctShare =
        subPairs.reduce((a, p) => a + Number(p.correct[0]) + Number(p.correct[1]), 0) / (2 * n);
      const row = {
        simulation: label,
        prompts: n,
        trainPairs: train.length,
        heldOutDecided: acc.pairs,
        heldOutAccuracy: Number(acc.accuracy.toFixed(4)),
        ...(zeroShot && { pretrainedZeroShot: Number(zeroShot.accuracy.toFixed(4)) }),
        promptBlindAccuracy: Number(accBlind.accuracy.toFixed(4)),
        topK: k,
        expertsCorrect: Number(precision.toFixed(4)),
        promptBlindExpertsCorrect: Number(precisionBlind.toFixed(4)),
        ...(precisionPretrained !== undefined && {
          pretrainedExpertsCorrect: Number(precisionPretrained.toFixed(4)),
        }),
        imagesCorrect: Number(correctShare.toFixed(4)),
        pairsWithOneCorrect: oneCorrect.length,
        clicksForCorrectImage: Number(followsVerdict.toFixed(4)),
        decisions,
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  const out = arg('out', '');
  if (out)
    fs.writeFileSync(out, `${JSON.stringify({ model: modelFile, seed, steps, guidance, rows }, null, 2)}\n`);
  model?.unet.dispose();
  model?.text.dispose();
  pretrained?.dispose();
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
