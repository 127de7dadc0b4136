/**
 * What an evaluation shard records of its generated images: the GenEval verdict of each GenEval
 * slot with the simulated users' noise-free utility of the image (engine/world/utility.ts, default
 * weights), the win-rate slots (scored afterwards by the reward models) and the PNG of each
 * report-grid slot. Images are judged as 8-bit RGB, the image a saved PNG holds, so re-judging a stored sample
 * gives the same verdict.
 */
import { Buffer } from 'node:buffer';
import { toUint8, type RgbImage } from '../data/image';
import { encodePng } from '../data/image-codec';
import { fromModelSpace } from '../world/pretraining-corpus';
import type { PromptMetadata } from '../world/world';
import { judgeImage } from '../world/geneval';
import { imageUtility } from '../world/utility';
import type { ScoredGenevalImage } from './geneval-summary';

/** One image slot: which prompt, which image of it, its seed, whether the report grid shows it. */
export interface ShardSlot {
  kind: 'geneval' | 'winrate';
  /** Index into the prompts. */
  prompt: number;
  index: number;
  seed: number;
  grid?: true;
}

export interface JudgedShard {
  /** GenEval verdicts; `utility` is `imageUtility(image, prompt).utility` with the default weights. */
  geneval: ScoredGenevalImage[];
  /** The win-rate slots in slot order, `scores` still empty. */
  winrate: { prompt: number; index: number; seed: number; scores: Record<string, number> }[];
  /** Positions in the slots (and images) of the win-rate slots, parallel to `winrate`. */
  winrateSlots: number[];
  /** Grid images, PNG as base64. */
  grid: { prompt: number; index: number; seed: number; png: string }[];
}

/** Generated images (HWC in model space [-1, 1], `side` x `side`) as the 8-bit images that are judged and saved. */
export function toJudgedImages(pixels: readonly Float32Array[], side: number): RgbImage[] {
  return pixels.map((x) => toUint8({ width: side, height: side, data: fromModelSpace(x) }));
}

/**
 * Judges the GenEval slots (unless `judgeGeneval` is false: then they are only drawn for the grid),
 * lists the win-rate slots and encodes the grid slots. `images[i]` is slot i's image.
 */
export function judgeShardImages(
  slots: readonly ShardSlot[],
  images: readonly RgbImage[],
  prompts: readonly PromptMetadata[],
  judgeGeneval: boolean,
): JudgedShard {
  const geneval: JudgedShard['geneval'] = [];
  const grid: JudgedShard['grid'] = [];
  const winrateSlots: number[] = [];
  slots.forEach((slot, i) => {
    if (slot.kind === 'geneval' && judgeGeneval) {
      const meta = prompts[slot.prompt]!;
      const j = judgeImage(images[i]!, meta);
      geneval.push({
        prompt: slot.prompt,
        index: slot.index,
        seed: slot.seed,
        correct: j.correct,
        reason: j.reason,
        score: j.score,
        utility: imageUtility(images[i]!, meta).utility,
      });
    } else if (slot.kind === 'winrate') winrateSlots.push(i);
    if (slot.grid)
      grid.push({
        prompt: slot.prompt,
        index: slot.index,
        seed: slot.seed,
        png: Buffer.from(encodePng(images[i]!)).toString('base64'),
      });
  });
  const winrate = winrateSlots.map((i) => ({
    prompt: slots[i]!.prompt,
    index: slots[i]!.index,
    seed: slots[i]!.seed,
    scores: {} as Record<string, number>,
  }));
  return { geneval, winrate, winrateSlots, grid };
}
