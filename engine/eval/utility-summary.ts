/**
 * The simulated users' own judgement of an evaluation: every held-out GenEval image is scored with
 * the noise-free utility of engine/world/utility.ts (`imageUtility`, default weights: the function
 * behind every simulated click), and this module summarizes those utilities.
 *
 * - Per model: the mean utility over its images, with a 95% percentile-bootstrap interval that
 *   resamples prompts (a prompt's images stay together, since they share the prompt).
 * - Head to head, per pair of models (A listed before B): per prompt the mean utility of the
 *   prompt's images under each model; A wins the prompt when its mean is higher, a tie counts half;
 *   wins, ties and losses, both models' mean over prompts, the two-sided paired t-test p-value over
 *   prompts (none with a single prompt) and a percentile-bootstrap 95% interval of the mean
 *   difference A - B over prompts.
 *
 * A prompt is any grouping `unit` (the prompt index within one evaluation; the run and prompt index
 * when several runs are pooled). Pure: the same utilities and seed give the same numbers.
 */
import {
  bootstrapInterval,
  DEFAULT_BOOTSTRAP_RESAMPLES,
  pairedBootstrapMeanDiffCI,
} from '../stats/bootstrap';
import { mean, pairedTTest, sampleStd } from '../stats/t-test';

/** One scored image: the prompt it belongs to (`unit`) and its utility. */
export interface UtilityImage {
  unit: string;
  utility: number;
}

export interface UtilityModelSummary {
  method: string;
  /** Mean utility over the model's images. */
  mean: number;
  /** Sample standard deviation (n - 1) over images. */
  sd: number;
  /** Percentile-bootstrap 95% interval of the mean, resampling prompts. */
  ci95: [number, number];
  images: number;
  prompts: number;
}

export interface UtilityComparison {
  a: string;
  b: string;
  /** Share of prompts where A's mean utility is higher; ties count half. */
  winRate: number;
  wins: number;
  ties: number;
  losses: number;
  /** Mean over prompts of each model's per-prompt mean utility. */
  meanA: number;
  meanB: number;
  /** Two-sided paired t-test over prompts; null with fewer than 2 prompts. */
  pValue: number | null;
  /** Percentile-bootstrap 95% interval of mean(A - B) over prompts. */
  ci95: [number, number];
  prompts: number;
}

export interface UtilitySummary {
  models: UtilityModelSummary[];
  comparisons: UtilityComparison[];
}

export interface UtilitySummaryOptions {
  /** Model order: the per-model rows follow it, and a comparison (A, B) has A listed before B. */
  methods: readonly string[];
  /** Root of the bootstrap seeds; each interval derives its own from it. */
  seed: number | string;
  /** Bootstrap resamples. Default 10,000. */
  resamples?: number;
}

/** Per unit, the utilities of its images, in first-seen unit order. */
function byUnit(images: readonly UtilityImage[], method: string): Map<string, number[]> {
  const units = new Map<string, number[]>();
  images.forEach((im, i) => {
    if (!Number.isFinite(im.utility))
      throw new RangeError(`model "${method}", image ${i}: utility ${im.utility} is not finite`);
    const list = units.get(im.unit);
    if (list) list.push(im.utility);
    else units.set(im.unit, [im.utility]);
  });
  return units;
}

/** Mean utility per model with its interval, and every pairwise comparison over prompts. */
export function summarizeUtility(
  images: ReadonlyMap<string, readonly UtilityImage[]>,
  options: UtilitySummaryOptions,
): UtilitySummary {
  const { methods } = options;
  if (new Set(methods).size !== methods.length)
    throw new RangeError(`methods repeat a name: ${methods.join(', ')}`);
  const resamples = options.resamples ?? DEFAULT_BOOTSTRAP_RESAMPLES;
  const units = new Map<string, Map<string, number[]>>();
  for (const m of methods) {
    const list = images.get(m);
    if (!list || list.length === 0) throw new RangeError(`model "${m}" has no image with a utility`);
    units.set(m, byUnit(list, m));
  }

  const models = methods.map((method): UtilityModelSummary => {
    const groups = [...units.get(method)!.values()];
    const all = groups.flat();
    const sums = groups.map((g) => g.reduce((s, v) => s + v, 0));
    const sizes = groups.map((g) => g.length);
    const k = groups.length;
    const ci95 = bootstrapInterval(
      (rng) => {
        let total = 0;
        let n = 0;
        for (let i = 0; i < k; i++) {
          const u = rng.int(k);
          total += sums[u]!;
          n += sizes[u]!;
        }
        return total / n;
      },
      { seed: `${String(options.seed)}:utility:${method}`, resamples },
    );
    return { method, mean: mean(all), sd: sampleStd(all), ci95, images: all.length, prompts: k };
  });

  const comparisons: UtilityComparison[] = [];
  for (let i = 0; i < methods.length; i++)
    for (let j = i + 1; j < methods.length; j++) {
      const [a, b] = [methods[i]!, methods[j]!];
      const ua = units.get(a)!;
      const ub = units.get(b)!;
      const keys = [...ua.keys()];
      if (keys.length !== ub.size || keys.some((u) => !ub.has(u)))
        throw new RangeError(`models "${a}" and "${b}" were not scored on the same prompts`);
      const pa = keys.map((u) => mean(ua.get(u)!));
      const pb = keys.map((u) => mean(ub.get(u)!));
      let wins = 0;
      let ties = 0;
      pa.forEach((x, p) => {
        if (x > pb[p]!) wins++;
        else if (x === pb[p]!) ties++;
      });
      comparisons.push({
        a,
        b,
        winRate: (wins + ties / 2) / keys.length,
        wins,
        ties,
        losses: keys.length - wins - ties,
        meanA: mean(pa),
        meanB: mean(pb),
        pValue: keys.length >= 2 ? pairedTTest(pa, pb).pValue : null,
        ci95: pairedBootstrapMeanDiffCI(pa, pb, {
          seed: `${String(options.seed)}:utility:${a}:${b}`,
          resamples,
        }),
        prompts: keys.length,
      });
    }
  return { models, comparisons };
}
