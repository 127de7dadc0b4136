/**
 * GenEval of a built-in-world model on a prompt suite, as the pretraining tool measures it: every
 * prompt is drawn `seedsPerPrompt` times with DPM-Solver++ and classifier-free guidance, each image
 * judged by engine/world/geneval.ts. Image j of prompt i has seed `i + j * P` (P = number of prompts),
 * so adding seeds keeps the earlier images. Images are judged as 8-bit RGB through the evaluation
 * stage's own conversion (`toJudgedImages`): rounding moves a few verdicts near the judge's
 * thresholds, and the stage judges the image a saved PNG holds.
 */
import { fromModelSpace } from '../engine/world/pretraining-corpus';
import { generateSuite, type PromptMetadata } from '../engine/world/world';
import { encodePng } from '../engine/data/image-codec';
import { judgeImage, scoreGenEval, type GenEvalSummary } from '../engine/world/geneval';
import { toJudgedImages } from '../engine/eval/shard-judging';
import { generateImages } from '../engine/generate';
import { imageUtility } from '../engine/world/utility';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../engine/rng';
import { encodePrompts, type DiffusionModel } from '../engine/training/diffusion-model';

export interface BaseEvalOptions {
  /** Images per prompt. Default 1. */
  seedsPerPrompt?: number;
  /** Solver steps. Default 20. */
  samplerSteps?: number;
  /** Classifier-free guidance scale. Default 3 (the demo's). */
  guidanceScale?: number;
  /**
   * Indices into the suite of the prompts to draw, in suite order. Default: every prompt. Seeds stay
   * those of the whole suite, so a slice draws exactly the images a full measurement draws.
   */
  only?: readonly number[];
}

export interface BaseEvalResult {
  summary: GenEvalSummary;
  /** Every image in [0, 1] RGB (HWC) with its prompt, seed and verdict, seed-major order. */
  images: {
    prompt: string;
    seed: number;
    data: Float32Array;
    correct: boolean;
    score: number;
    /** The simulated users' noise-free utility of the 8-bit image (engine/world/utility.ts). */
    utility: number;
  }[];
  /** Mean of the judge's continuous alignment score over all images. */
  meanScore: number;
}

export async function evaluateBase(
  model: DiffusionModel,
  suite: readonly PromptMetadata[],
  options: BaseEvalOptions = {},
): Promise<BaseEvalResult> {
  const k = options.seedsPerPrompt ?? 1;
  const p = suite.length;
  const drawn = options.only ?? suite.map((_, i) => i);
  for (const i of drawn)
    if (!Number.isInteger(i) || i < 0 || i >= p)
      throw new RangeError(`prompt index ${i} is not in the suite`);
  const slots = Array.from({ length: k }, (_, j) => drawn.map((i) => ({ i, j }))).flat();
  const metas = slots.map(({ i }) => suite[i]!);
  const seeds = slots.map(({ i, j }) => i + j * p);
  const images = await generateImages(
    model,
    metas.map((m) => m.prompt),
    { seeds, steps: options.samplerSteps ?? 20, guidanceScale: options.guidanceScale ?? 3 },
  );
  const res = model.unet.config.sample_size;
  const judgedImages = toJudgedImages(images, res);
  let scoreSum = 0;
  const judged = metas.map((meta, n) => {
    const data = fromModelSpace(images[n]!);
    const j = judgeImage(judgedImages[n]!, meta);
    scoreSum += j.score;
    const { utility } = imageUtility(judgedImages[n]!, meta);
    return {
      tag: meta.tag,
      correct: j.correct,
      score: j.score,
      utility,
      prompt: meta.prompt,
      seed: seeds[n]!,
      data,
    };
  });
  return {
    summary: scoreGenEval(judged),
    meanScore: scoreSum / metas.length,
    images: judged.map(({ prompt, seed, data, correct, score, utility }) => ({
      prompt,
      seed,
      data,
      correct,
      score,
      utility,
    })),
  };
}

/** Per-tag accuracies rounded for logs and summaries. */
export function perTag(s: GenEvalSummary): Record<string, number> {
  return Object.fromEntries(Object.entries(s.perTag).map(([k, v]) => [k, Number(v.accuracy.toFixed(4))]));
}

export interface FinalSettings {
  final: { suiteSeed: string; perTag: number; seedsPerPrompt: number };
  eval: { samplerSteps: number; guidanceScale: number };
}

/** The held-out measurement recorded for a shipped base; `onImages` sees every image. */
export async function measureFinal(
  model: DiffusionModel,
  s: FinalSettings,
  onImages?: (images: BaseEvalResult['images'], side: number) => void,
) {
  const suite = generateSuite({ seed: s.final.suiteSeed, perTag: s.final.perTag });
  const r = await evaluateBase(model, suite, { ...s.eval, seedsPerPrompt: s.final.seedsPerPrompt });
  onImages?.(r.images, model.unet.config.sample_size);
  return {
    suite: { seed: s.final.suiteSeed, perTag: s.final.perTag, prompts: suite.length },
    seedsPerPrompt: s.final.seedsPerPrompt,
    samplerSteps: s.eval.samplerSteps,
    guidanceScale: s.eval.guidanceScale,
    images: r.summary.images,
    overall: Number(r.summary.overall.toFixed(4)),
    meanScore: Number(r.meanScore.toFixed(4)),
    perTag: perTag(r.summary),
  };
}

/**
 * A PNG contact sheet: images in rows of `columns`, each enlarged `scale` times with nearest
 * neighbour (16 px images are otherwise too small to see), 2 px gaps.
 */
export function contactSheet(
  images: readonly { data: Float32Array }[],
  side: number,
  columns = 8,
  scale = 4,
): Uint8Array {
  const gap = 2;
  const cell = side * scale + gap;
  const rows = Math.ceil(images.length / columns);
  const width = columns * cell + gap;
  const height = rows * cell + gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  images.forEach((img, k) => {
    const ox = gap + (k % columns) * cell;
    const oy = gap + Math.floor(k / columns) * cell;
    for (let y = 0; y < side * scale; y++) {
      for (let x = 0; x < side * scale; x++) {
        const src = (Math.floor(y / scale) * side + Math.floor(x / scale)) * 3;
        const dst = ((oy + y) * width + ox + x) * 3;
        for (let c = 0; c < 3; c++) data[dst + c] = Math.round(img.data[src + c]! * 255);
      }
    }
  });
  return encodePng({ width, height, data });
}

/**
 * How much the UNet's noise prediction depends on the prompt: on the same noisy inputs (3 inputs at
 * t = 900, 500, 100), the relative distance ||eps(a) - eps(b)|| / ||eps(a)|| between two prompts
 * that differ in color and shape, and between a prompt and the empty prompt (what classifier-free
 * guidance amplifies). Near 0 means the model draws the same thing whatever it is asked.
 */
export function promptSensitivity(model: DiffusionModel): { betweenPrompts: number; versusEmpty: number } {
  const pairs: Array<[string, string]> = [
    ['a photo of a red circle', 'a photo of a blue square'],
    ['a photo of two triangles', 'a photo of four rings'],
    ['a photo of a cross left of a ring', 'a photo of a cross above a ring'],
  ];
  const size = model.unet.config.sample_size;
  const ch = model.unet.config.in_channels;
  let between = 0;
  let empty = 0;
  let n = 0;
  for (const [a, b] of pairs) {
    for (const t of [900, 500, 100]) {
      const [dab, dae] = tf.tidy(() => {
        const cond = encodePrompts(model, [a, b, '']);
        const x = tf.tile(new Rng(t).normalTensor([1, size, size, ch]), [3, 1, 1, 1]) as tf.Tensor4D;
        const eps = model.unet.predict(x, [t, t, t], cond);
        const [ea, eb, ee] = tf.split(eps, 3);
        const norm = tf.norm(ea!);
        return [
          tf.div(tf.norm(tf.sub(ea!, eb!)), norm).dataSync()[0]!,
          tf.div(tf.norm(tf.sub(ea!, ee!)), norm).dataSync()[0]!,
        ];
      });
      between += dab!;
      empty += dae!;
      n++;
    }
  }
  return { betweenPrompts: Number((between / n).toFixed(5)), versusEmpty: Number((empty / n).toFixed(5)) };
}
