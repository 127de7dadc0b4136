/**
 * Win rates between methods under reward models, the Diffusion-DRO paper's protocol:
 * 1. each method samples `samples` images (default 5) per prompt with the seed schedule
 *    `winrateSeed(root, promptIndex, i, P)` (engine/eval/seeds.ts), the same seeds for every method;
 * 2. a reward model scores every image, and per method and prompt the image with the median reward
 *    is kept (`medianIndex`);
 * 3. method A beats B on a prompt when its kept image scores higher; a tie counts half; the win rate
 *    is the mean over prompts.
 * Each row also gives both methods' mean and standard deviation of the kept scores, the two-sided
 * paired t-test p-value over prompts, and a seeded percentile-bootstrap 95% interval of the mean
 * difference A - B (10,000 resamples of prompts by default).
 *
 * The median image: the scores are ordered ascending (equal scores by image index) and the image at
 * sorted position floor((n - 1) / 2) is kept. For an odd n that is the median; for an even n it is
 * the lower of the two middle images, so the kept score is always one an image really has.
 */
import { pairedBootstrapMeanDiffCI, DEFAULT_BOOTSTRAP_RESAMPLES } from '../stats/bootstrap';
import { mean, pairedTTest, sampleStd } from '../stats/t-test';

export { winrateSeed } from './seeds';

/** Index of the median image among `scores` (see the module doc for ties and even counts). */
export function medianIndex(scores: readonly number[]): number {
  if (scores.length === 0) throw new RangeError('median of no images');
  scores.forEach((s, i) => {
    if (Number.isNaN(s)) throw new RangeError(`score ${i} is NaN`);
  });
  const order = scores.map((_, i) => i).sort((x, y) => scores[x]! - scores[y]! || x - y);
  return order[Math.floor((scores.length - 1) / 2)]!;
}

export interface MedianSelection {
  /** Per prompt, the index of the kept image. */
  indices: number[];
  /** Per prompt, the kept image's score. */
  scores: number[];
}

/** The median image of every prompt: `perPrompt[p][i]` is the score of image i of prompt p. */
export function selectMedians(perPrompt: readonly (readonly number[])[]): MedianSelection {
  const indices = perPrompt.map((scores, p) => {
    if (scores.length === 0) throw new RangeError(`prompt ${p} has no scored image`);
    return medianIndex(scores);
  });
  return { indices, scores: indices.map((i, p) => perPrompt[p]![i]!) };
}

/** Share of prompts where `a` beats `b` (ties count half), over paired per-prompt scores. */
export function winRate(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length)
    throw new RangeError(`win rate needs paired scores, got ${a.length} and ${b.length}`);
  if (a.length === 0) throw new RangeError('win rate over no prompts');
  let wins = 0;
  a.forEach((x, i) => {
    const y = b[i]!;
    if (x > y) wins += 1;
    else if (x === y) wins += 0.5;
  });
  return wins / a.length;
}

export interface RewardScores {
  /** Reward model name (a row field). */
  reward: string;
  /** scores[method][promptIndex][imageIndex]: every method scored on the same prompts. */
  scores: Readonly<Record<string, readonly (readonly number[])[]>>;
}

export interface WinRateRow {
  a: string;
  b: string;
  reward: string;
  /** Share of prompts where A's median image beats B's; ties count half. */
  winRate: number;
  /** Mean and sample standard deviation (n - 1) of the kept scores over prompts. */
  meanA: number;
  stdA: number;
  meanB: number;
  stdB: number;
  /** Two-sided paired t-test over prompts; null with fewer than 2 prompts. */
  pValue: number | null;
  /** Percentile-bootstrap 95% interval of mean(A - B) over prompts. */
  ci95: [number, number];
  prompts: number;
}

export interface WinRateOptions {
  /** Method order: a row (A, B) for each A listed before B. Default: the first reward's keys in order. */
  methods?: readonly string[];
  /** Root of the bootstrap seeds; each row derives its own from it and (reward, A, B). */
  seed: number | string;
  /** Bootstrap resamples (config `eval.bootstrapSamples`). Default 10,000. */
  resamples?: number;
}

/** Win-rate rows for every pair of methods and every reward model, rewards outermost. */
export function winRateTable(rewards: readonly RewardScores[], options: WinRateOptions): WinRateRow[] {
  if (rewards.length === 0) throw new RangeError('win rates need at least one reward model');
  const methods = options.methods ?? Object.keys(rewards[0]!.scores);
  if (methods.length < 2) throw new RangeError(`win rates need at least two methods, got ${methods.length}`);
  if (new Set(methods).size !== methods.length)
    throw new RangeError(`methods repeat a name: ${methods.join(', ')}`);
  const rows: WinRateRow[] = [];
  for (const { reward, scores } of rewards) {
    const kept = new Map<string, number[]>();
    let prompts: number | undefined;
    for (const m of methods) {
      const perPrompt = scores[m];
      if (!perPrompt) throw new RangeError(`reward "${reward}" has no scores for method "${m}"`);
      if (prompts !== undefined && perPrompt.length !== prompts)
        throw new RangeError(
          `reward "${reward}": method "${m}" has ${perPrompt.length} prompts, expected ${prompts}`,
        );
      prompts = perPrompt.length;
      if (prompts === 0) throw new RangeError(`reward "${reward}": method "${m}" has no prompts`);
      perPrompt.forEach((s, p) =>
        s.forEach((v, i) => {
          if (!Number.isFinite(v))
            throw new RangeError(
              `reward "${reward}", method "${m}", prompt ${p}, image ${i}: score ${v} is not finite`,
            );
        }),
      );
      kept.set(m, selectMedians(perPrompt).scores);
    }
    for (let i = 0; i < methods.length; i++) {
      for (let j = i + 1; j < methods.length; j++) {
        const a = methods[i]!;
        const b = methods[j]!;
        const sa = kept.get(a)!;
        const sb = kept.get(b)!;
        rows.push({
          a,
          b,
          reward,
          winRate: winRate(sa, sb),
          meanA: mean(sa),
          stdA: sampleStd(sa),
          meanB: mean(sb),
          stdB: sampleStd(sb),
          pValue: sa.length >= 2 ? pairedTTest(sa, sb).pValue : null,
          ci95: pairedBootstrapMeanDiffCI(sa, sb, {
            seed: `${String(options.seed)}:${reward}:${a}:${b}`,
            resamples: options.resamples ?? DEFAULT_BOOTSTRAP_RESAMPLES,
          }),
          prompts: sa.length,
        });
      }
    }
  }
  return rows;
}
