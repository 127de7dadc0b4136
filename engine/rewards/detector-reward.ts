/**
 * Detector-based alignment reward: the continuous GenEval alignment score of engine/world/geneval.ts
 * (mean partial credit over the count, color and position checks of the prompt's metadata; exactly
 * 1 when the image passes GenEval). It needs each prompt's GenEval metadata: given explicitly
 * (a map or a lookup function), or parsed from the prompt text with the world's templates.
 */
import type { PromptMetadata } from '../world/world';
import type { DetectorOptions } from '../world/detector';
import { judgeImage } from '../world/geneval';
import { UnscorableImageError, checkBatch } from './reward-model';
import type { ImageBatch, RewardModel } from './reward-model';
import { UnknownPromptError, parseWorldPrompt } from '../world/world-prompts';

/** Bumped whenever the scoring rule changes, so stored scores of the old rule are not reused. */
export const DETECTOR_REWARD_VERSION = 'geneval-continuous-1';

export type MetadataLookup = ReadonlyMap<string, PromptMetadata> | ((prompt: string) => PromptMetadata);

export interface DetectorRewardOptions {
  /** How prompt text maps to metadata. Default: parse with the world's templates (parseWorldPrompt). */
  metadata?: MetadataLookup;
  detector?: DetectorOptions;
}

export class DetectorReward implements RewardModel {
  readonly name = 'geneval-detector';
  readonly version = DETECTOR_REWARD_VERSION;
  private readonly lookup: (prompt: string) => PromptMetadata;
  private readonly cache = new Map<string, PromptMetadata>();

  constructor(private readonly options: DetectorRewardOptions = {}) {
    const source = options.metadata;
    if (source === undefined) this.lookup = parseWorldPrompt;
    else if (typeof source === 'function') this.lookup = source;
    else
      this.lookup = (prompt) => {
        const meta = source.get(prompt);
        if (!meta) throw new UnknownPromptError(prompt);
        return meta;
      };
  }

  metadataFor(prompt: string): PromptMetadata {
    let meta = this.cache.get(prompt);
    if (!meta) {
      meta = this.lookup(prompt);
      this.cache.set(prompt, meta);
    }
    return meta;
  }

  /** Synchronous single-image score, for callers inside tight loops (feedback simulation). */
  scoreOne(image: ImageBatch[number], prompt: string): number {
    return judgeImage(image, this.metadataFor(prompt), this.options.detector).score;
  }

  score(images: ImageBatch, prompts: readonly string[]): Promise<number[]> {
    // Failures surface as rejections, as callers of an async scorer expect.
    try {
      return Promise.resolve(this.scoreSync(images, prompts));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private scoreSync(images: ImageBatch, prompts: readonly string[]): number[] {
    checkBatch(this.name, images, prompts);
    return images.map((image, i) => {
      const prompt = prompts[i] as string;
      let meta: PromptMetadata;
      try {
        meta = this.metadataFor(prompt);
      } catch (err) {
        throw new UnscorableImageError(i, (err as Error).message);
      }
      return judgeImage(image, meta, this.options.detector).score;
    });
  }
}
