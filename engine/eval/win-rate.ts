/**
 * Win rates between methods under reward models, the Diffusion-DRO paper's protocol:
 * 1. each method samples `samples` images (default 5) per prompt with the seed schedule
 *    `winrateSeed(root, promptIndex, i, P)` (engine/eval/seeds.ts), the same seeds for every method;
 * 2. the ONE preference reward (the run's reward model, PickScore in the paper) scores every image,
 *    and per method and prompt the image with the median preference score is kept (`medianIndex`);
 *    that same image is scored under every reward model (`protocolWinRateTable`);
 * 3. method A beats B on a prompt when its kept image scores higher under a reward; a tie counts
 *    half; the win rate is the mean over prompts.
 * Each row also gives both methods' mean and standard deviation of the kept scores, the two-sided
 * paired t-test p-value over prompts, and a seeded percentile-bootstrap 95% interval of the mean
 * difference A - B (10,000 resamples of prompts by default).
 *
 * `winRateTable` is the variant that chooses the median image separately under each reward (each
 * reward its own kept image); the evaluation reports it as an extra table beside the protocol's.
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
  /** The reward whose median image was kept: the preference reward (protocol), or `reward` itself. */
  medianBy: string;
  /** Share of prompts where A's kept image beats B's under `reward`; ties count half. */
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

/** The methods in row order, checked: at least two, no name twice. */
function methodsOf(rewards: readonly RewardScores[], options: WinRateOptions): readonly string[] {
  if (rewards.length === 0) throw new RangeError('win rates need at least one reward model');
  const methods = options.methods ?? Object.keys(rewards[0]!.scores);
  if (methods.length < 2) throw new RangeError(`win rates need at least two methods, got ${methods.length}`);
  if (new Set(methods).size !== methods.length)
    throw new RangeError(`methods repeat a name: ${methods.join(', ')}`);
  return methods;
}

/** `scores[m]` of one reward for every method, checked: equal prompt counts, finite scores. */
function checkedScores(
  { reward, scores }: RewardScores,
  methods: readonly string[],
): Map<string, readonly (readonly number[])[]> {
  const out = new Map<string, readonly (readonly number[])[]>();
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
    out.set(m, perPrompt);
  }
  return out;
}

/** One row per pair (A listed before B) from each method's kept score per prompt under `reward`. */
function pairRows(
  reward: string,
  medianBy: string,
  kept: ReadonlyMap<string, readonly number[]>,
  methods: readonly string[],
  options: WinRateOptions,
): WinRateRow[] {
  const rows: WinRateRow[] = [];
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
        medianBy,
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
  return rows;
}

/**
 * Win-rate rows for every pair of methods and every reward model, rewards outermost, each reward
 * choosing its own median image (not the paper's protocol: see `protocolWinRateTable`).
 */
export function winRateTable(rewards: readonly RewardScores[], options: WinRateOptions): WinRateRow[] {
  const methods = methodsOf(rewards, options);
  const rows: WinRateRow[] = [];
  for (const r of rewards) {
    const scores = checkedScores(r, methods);
    const kept = new Map(methods.map((m) => [m, selectMedians(scores.get(m)!).scores]));
    rows.push(...pairRows(r.reward, r.reward, kept, methods, options));
  }
  return rows;
}

/** The paper's protocol: the kept image of every method and prompt, and the rows under every reward. */
export interface ProtocolWinRates {
  /** The preference reward whose median image is kept. */
  medianBy: string;
  /** kept[method][prompt]: index of the kept image (the same for every reward). */
  kept: Record<string, number[]>;
  /** Rows for every reward (rewards outermost, as `winRateTable`), all on the kept images. */
  rows: WinRateRow[];
}

/**
 * The paper's protocol: per method and prompt the image with the median score under the preference
 * reward `medianBy` is kept, and that same image is compared under every reward model. Every reward
 * must score the same images (same prompt and image counts per method).
 */
export function protocolWinRateTable(
  rewards: readonly RewardScores[],
  options: WinRateOptions & { medianBy: string },
): ProtocolWinRates {
  const methods = methodsOf(rewards, options);
  const checked = rewards.map((r) => ({ reward: r.reward, scores: checkedScores(r, methods) }));
  const preference = checked.find((r) => r.reward === options.medianBy);
  if (!preference)
    throw new RangeError(
      `the preference reward "${options.medianBy}" is not one of the rewards (${rewards.map((r) => r.reward).join(', ')})`,
    );
  const kept: Record<string, number[]> = {};
  for (const m of methods) kept[m] = selectMedians(preference.scores.get(m)!).indices;
  const rows: WinRateRow[] = [];
  for (const { reward, scores } of checked) {
    const keptScores = new Map(
      methods.map((m) => {
        const perPrompt = scores.get(m)!;
        const indices = kept[m]!;
        if (perPrompt.length !== indices.length)
          throw new RangeError(
            `reward "${reward}": method "${m}" has ${perPrompt.length} prompts, the preference reward ${indices.length}`,
          );
        return [
          m,
          indices.map((i, p) => {
            const v = perPrompt[p]![i];
            if (v === undefined)
              throw new RangeError(
                `reward "${reward}": method "${m}", prompt ${p} has no score for image ${i}`,
              );
            return v;
          }),
        ];
      }),
    );
    rows.push(...pairRows(reward, options.medianBy, keptScores, methods, options));
  }
  return { medianBy: options.medianBy, kept, rows };
}
