/**
 * Implicit-feedback simulation: the data-collection loop of Pick-a-Pic, in miniature.
 *
 * For every prompt two images are generated (`generate(prompt, seed)`, seeds 2k and 2k+1) and shown
 * side by side, in random order, to a simulated user who clicks one. Each image has a latent utility
 *   u = a_user * alignment + q_user * quality
 *   alignment = (score + c * correct) / (1 + c)
 * where `correct` (0 or 1) is GenEval's verdict and `score` its continuous partial credit
 * (engine/world/geneval.ts), c = `correctnessWeight`, and quality the sharpness/noise measure of
 * ./image-quality. People asked for "two circles" care first whether they got two circles: the
 * verdict term makes an image that shows the prompt clearly better than a nearly-right one, so the
 * clicks carry what GenEval measures rather than mostly partial credit and looks. The click
 * follows, in this order:
 *  1. position bias: with probability `positionBias` the user clicks the left image unseen;
 *  2. ties: when |u_left - u_right| <= `tieMargin` the user declares a tie (labels 0.5 / 0.5);
 *  3. otherwise left wins with probability sigmoid((u_left - u_right) / temperature); with
 *     temperature 0 the higher utility always wins.
 * Rater disagreement: each user's weights are the configured ones times exp(d z) with z ~ N(0, 1)
 * drawn per user and weight, d = `raterDisagreement`, so users trade alignment against looks
 * differently. Everything is a pure function of `seed` (and of `generate`, which must be pure).
 *
 * Rows follow the Pick-a-Pic v2 schema (engine/data/pickapic.ts), images as PNG bytes.
 */
import { toUint8 } from '../data/image';
import type { RgbImage, RgbImageF32 } from '../data/image';
import { encodeImage } from '../data/image-codec';
import type { ImageFormat } from '../data/image-codec';
import type { PickapicWriteRow } from '../data/pickapic';
import type { PromptMetadata } from './world';
import { Rng } from '../rng';
import { imageUtility } from './utility';

export type Generate = (
  prompt: PromptMetadata,
  seed: number,
) => RgbImage | RgbImageF32 | Promise<RgbImage | RgbImageF32>;

export interface FeedbackSimulationOptions {
  /** Root seed of image seeds, users, display order and clicks. */
  seed: number;
  /** Comparisons per prompt, each with two fresh generations. Default 1. */
  pairsPerPrompt?: number;
  /** Number of distinct simulated users. Default 50. */
  users?: number;
  /** Weight of prompt alignment in the utility. Default 1. */
  alignmentWeight?: number;
  /** Weight of image quality in the utility. Default 0.3. */
  qualityWeight?: number;
  /**
   * Weight of GenEval's verdict (correct or not) against its partial credit inside the alignment
   * term; 0 gives partial credit alone. Default 1.
   */
  correctnessWeight?: number;
  /** Logit temperature of the click; 0 means the higher utility always wins. Default 0.1. */
  temperature?: number;
  /** Probability that a user clicks the left image regardless of content. Default 0. */
  positionBias?: number;
  /** Spread (log scale) of per-user weights. Default 0: all users agree. */
  raterDisagreement?: number;
  /** Utility gap at or below which the user declares a tie. Default 1e-3. */
  tieMargin?: number;
  /** Encoding of jpg_0 / jpg_1. Default 'png' (lossless). */
  imageFormat?: ImageFormat;
  /** Prefix of image uids. Default `sim${seed}-`. */
  uidPrefix?: string;
  /** First ranking_id. Default 0. */
  rankingIdOffset?: number;
  /** Keep the 8-bit images in `pairs` (for training without decoding). Default false. */
  keepImages?: boolean;
}

/** What the simulation knows about one comparison beyond the published columns. */
export interface SimulatedPair {
  promptIndex: number;
  metadata: PromptMetadata;
  /** Seeds given to `generate`, left then right. */
  seeds: [number, number];
  /** The utility's alignment term (verdict and partial credit), left then right. */
  alignment: [number, number];
  /** GenEval's verdict per image. */
  correct: [boolean, boolean];
  quality: [number, number];
  utility: [number, number];
  /** How the click came about. */
  decision: 'position' | 'tie' | 'utility';
  images?: [RgbImage, RgbImage];
}

export interface SimulatedFeedback {
  rows: PickapicWriteRow[];
  pairs: SimulatedPair[];
}

function checkOption(name: string, value: number, ok: boolean): void {
  if (!Number.isFinite(value) || !ok) throw new RangeError(`simulateFeedback: invalid ${name} ${value}`);
}

export async function simulateFeedback(
  prompts: readonly PromptMetadata[],
  generate: Generate,
  options: FeedbackSimulationOptions,
): Promise<SimulatedFeedback> {
  const pairsPerPrompt = options.pairsPerPrompt ?? 1;
  const users = options.users ?? 50;
  const alignmentWeight = options.alignmentWeight ?? 1;
  const qualityWeight = options.qualityWeight ?? 0.3;
  const correctnessWeight = options.correctnessWeight ?? 1;
  const temperature = options.temperature ?? 0.1;
  const positionBias = options.positionBias ?? 0;
  const disagreement = options.raterDisagreement ?? 0;
  const tieMargin = options.tieMargin ?? 1e-3;
  checkOption('seed', options.seed, Number.isInteger(options.seed));
  checkOption('pairsPerPrompt', pairsPerPrompt, Number.isInteger(pairsPerPrompt) && pairsPerPrompt >= 1);
  checkOption('users', users, Number.isInteger(users) && users >= 1);
  checkOption('alignmentWeight', alignmentWeight, alignmentWeight >= 0);
  checkOption('qualityWeight', qualityWeight, qualityWeight >= 0);
  checkOption('correctnessWeight', correctnessWeight, correctnessWeight >= 0);
  checkOption('temperature', temperature, temperature >= 0);
  checkOption('positionBias', positionBias, positionBias >= 0 && positionBias <= 1);
  checkOption('raterDisagreement', disagreement, disagreement >= 0);
  checkOption('tieMargin', tieMargin, tieMargin >= 0);
  const format = options.imageFormat ?? 'png';
  const prefix = options.uidPrefix ?? `sim${options.seed}-`;

  // Independent streams, so changing one setting does not reshuffle the others' draws.
  const root = new Rng(options.seed);
  const streams = {
    seeds: new Rng(root.nextUint32()),
    users: new Rng(root.nextUint32()),
    clicks: new Rng(root.nextUint32()),
  };
  const userWeights = Array.from({ length: users }, () => [
    alignmentWeight * Math.exp(disagreement * streams.users.normal()),
    qualityWeight * Math.exp(disagreement * streams.users.normal()),
  ]);

  const rows: PickapicWriteRow[] = [];
  const pairs: SimulatedPair[] = [];
  for (let p = 0; p < prompts.length; p++) {
    const meta = prompts[p] as PromptMetadata;
    for (let r = 0; r < pairsPerPrompt; r++) {
      // A pair's images get consecutive seeds 2k and 2k+1 (generators may key off the parity, like
      // Pick-a-Pic's two models per comparison); which one is shown on the left is a coin flip.
      const base = 2 * streams.seeds.int(0, 0x40000000);
      const seeds: [number, number] = streams.seeds.uniform() < 0.5 ? [base, base + 1] : [base + 1, base];
      const images: RgbImage[] = [];
      const alignment: number[] = [];
      const correct: boolean[] = [];
      const quality: number[] = [];
      for (const s of seeds) {
        const generated = await generate(meta, s);
        const image =
          generated.data instanceof Uint8Array ? (generated as RgbImage) : toUint8(generated as RgbImageF32);
        images.push(image);
        // Raters see the 8-bit image, so utilities are measured on it too.
        const judged = imageUtility(image, meta, { alignmentWeight, qualityWeight, correctnessWeight });
        alignment.push(judged.alignment);
        correct.push(judged.correct);
        quality.push(judged.quality);
      }
      const user = streams.users.int(0, users);
      const [wa, wq] = userWeights[user] as [number, number];
      const utility: [number, number] = [
        wa * (alignment[0] as number) + wq * (quality[0] as number),
        wa * (alignment[1] as number) + wq * (quality[1] as number),
      ];
      const gap = utility[0] - utility[1];
      let label0: 0 | 0.5 | 1;
      let decision: SimulatedPair['decision'];
      // Draw every variate unconditionally so one setting does not shift later pairs' draws.
      const uBias = streams.clicks.uniform();
      const uClick = streams.clicks.uniform();
      if (uBias < positionBias) {
        label0 = 1;
        decision = 'position';
      } else if (Math.abs(gap) <= tieMargin) {
        label0 = 0.5;
        decision = 'tie';
      } else {
        const pLeft = temperature === 0 ? (gap > 0 ? 1 : 0) : 1 / (1 + Math.exp(-gap / temperature));
        label0 = uClick < pLeft ? 1 : 0;
        decision = 'utility';
      }
      const index = rows.length;
      rows.push({
        caption: meta.prompt,
        image_0_uid: `${prefix}${p}-${r}-0`,
        image_1_uid: `${prefix}${p}-${r}-1`,
        jpg_0: encodeImage(images[0] as RgbImage, format),
        jpg_1: encodeImage(images[1] as RgbImage, format),
        label_0: label0,
        label_1: (1 - label0) as 0 | 0.5 | 1,
        user_id: user,
        ranking_id: (options.rankingIdOffset ?? 0) + index,
        model_0: 'simulated',
        model_1: 'simulated',
      });
      const pair: SimulatedPair = {
        promptIndex: p,
        metadata: meta,
        seeds,
        alignment: alignment as [number, number],
        correct: correct as [boolean, boolean],
        quality: quality as [number, number],
        utility,
        decision,
      };
      if (options.keepImages) pair.images = images as [RgbImage, RgbImage];
      pairs.push(pair);
    }
  }
  return { rows, pairs };
}

/** How the simulated clicks came about, and the mean alignment term over every compared image. */
export function feedbackStats(pairs: readonly SimulatedPair[]): {
  decisions: Record<string, number>;
  meanAlignment: number;
} {
  const decisions: Record<string, number> = {};
  for (const p of pairs) decisions[p.decision] = (decisions[p.decision] ?? 0) + 1;
  const meanAlignment = pairs.reduce((a, p) => a + p.alignment[0] + p.alignment[1], 0) / (2 * pairs.length);
  return { decisions, meanAlignment };
}
