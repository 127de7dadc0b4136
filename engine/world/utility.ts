/**
 * The simulated users' utility of one image (the quantity behind every simulated click, see
 * ./simulate): u = a * alignment + q * quality, alignment = (score + c * correct) / (1 + c), with
 * GenEval's verdict and partial credit (./geneval) and the sharpness/noise measure of
 * ./image-quality. Evaluated without click noise and with the default weights it is what the
 * simulated population prefers on average: the built-in world's stand-in for a human study.
 */
import type { RgbImage } from '../data/image';
import { judgeImage } from './geneval';
import { imageQuality } from './image-quality';
import type { PromptMetadata } from './world';

export interface UtilityWeights {
  /** Weight of prompt alignment. Default 1. */
  alignmentWeight: number;
  /** Weight of image quality. Default 0.3. */
  qualityWeight: number;
  /** Weight of GenEval's verdict against its partial credit inside the alignment term. Default 1. */
  correctnessWeight: number;
}

export const DEFAULT_UTILITY_WEIGHTS: Readonly<UtilityWeights> = Object.freeze({
  alignmentWeight: 1,
  qualityWeight: 0.3,
  correctnessWeight: 1,
});

export interface ImageUtility {
  /** The alignment term in [0, 1]. */
  alignment: number;
  correct: boolean;
  quality: number;
  /** alignmentWeight * alignment + qualityWeight * quality. */
  utility: number;
}

/** The alignment term alone: GenEval's partial credit and verdict, mixed by `correctnessWeight`. */
export function alignmentTerm(score: number, correct: boolean, correctnessWeight: number): number {
  return (score + correctnessWeight * (correct ? 1 : 0)) / (1 + correctnessWeight);
}

/** Utility of an 8-bit image for a prompt (raters see 8-bit images, so it is measured on them). */
export function imageUtility(
  image: RgbImage,
  meta: PromptMetadata,
  weights: UtilityWeights = DEFAULT_UTILITY_WEIGHTS,
): ImageUtility {
  const verdict = judgeImage(image, meta);
  const alignment = alignmentTerm(verdict.score, verdict.correct, weights.correctnessWeight);
  const quality = imageQuality(image).quality;
  return {
    alignment,
    correct: verdict.correct,
    quality,
    utility: weights.alignmentWeight * alignment + weights.qualityWeight * quality,
  };
}
