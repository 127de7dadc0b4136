/**
 * The statistics of an evaluation of several models on the same image slots: GenEval summaries,
 * every pairwise GenEval comparison, the report's GenEval table (p values against the baseline)
 * and the reward win-rate tables: the paper's protocol (one median image per method and prompt,
 * chosen by the preference reward, compared under every reward) and, as an extra, the medians
 * chosen separately under each reward. Pure: the same rows and scores give the same numbers.
 */
import { genevalRow, type GenEvalRow } from '../report/report-data';
import {
  compareGeneval,
  summarizeGeneval,
  type GenevalComparison,
  type GenevalResultRow,
  type GenevalSummary,
} from './geneval-summary';
import { protocolWinRateTable, winRateTable, type RewardScores, type WinRateRow } from './win-rate';

export interface ModelComparisonInput {
  /** Models in the order they were given; comparisons and win rates put later models first. */
  models: readonly string[];
  baseline: string;
  /** Each model's GenEval rows (ignored when `genevalSkipped`). */
  geneval: ReadonlyMap<string, readonly GenevalResultRow[]>;
  /** GenEval was not judged: no summaries, comparisons or table. */
  genevalSkipped: boolean;
  /** Per reward, `scores[model][prompt][sample]`. */
  rewards: readonly RewardScores[];
  /** The reward whose median image is kept for every reward (the run's reward model). Default: the first reward. */
  preferenceReward?: string;
  /** Root of the bootstrap seeds. */
  seed: number;
  bootstrapSamples: number;
}

export interface ModelComparison {
  summaries: Record<string, GenevalSummary>;
  /** Every pair, the later model of `models` as A. */
  comparisons: ({ a: string; b: string } & GenevalComparison)[];
  /** One row per model; the p value is McNemar's exact test against the baseline. */
  table: GenEvalRow[];
  /**
   * The paper's protocol: per model and prompt the median image under `preferenceReward`, the same
   * image under every reward. Empty with fewer than two models.
   */
  winRates: WinRateRow[];
  /** Extra: each reward keeps its own median image. Empty with fewer than two models. */
  perRewardMedianWinRates: WinRateRow[];
  /** kept[model][prompt]: index of the win-rate image the protocol keeps; empty with fewer than two models. */
  keptImages: Record<string, number[]>;
  /** The reward the kept images were chosen by; undefined without win rates. */
  preferenceReward?: string;
}

export function compareModels(input: ModelComparisonInput): ModelComparison {
  const { models, baseline } = input;
  const rowsOf = (name: string): readonly GenevalResultRow[] => input.geneval.get(name) ?? [];
  const summaries: Record<string, GenevalSummary> = {};
  if (!input.genevalSkipped) for (const name of models) summaries[name] = summarizeGeneval(rowsOf(name));

  // Later models first: rows read "dro vs base", as the paper's tables.
  const order = [...models].reverse();
  const comparisons: ModelComparison['comparisons'] = [];
  for (let i = 0; i < order.length && !input.genevalSkipped; i++)
    for (let j = i + 1; j < order.length; j++) {
      const [a, b] = [order[i]!, order[j]!];
      comparisons.push({
        a,
        b,
        ...compareGeneval(rowsOf(a), rowsOf(b), {
          seed: `geneval:${input.seed}:${a}:${b}`,
          resamples: input.bootstrapSamples,
        }),
      });
    }
  const vsBaseline = (name: string): number | undefined =>
    name === baseline
      ? undefined
      : comparisons.find((c) => (c.a === name && c.b === baseline) || (c.b === name && c.a === baseline))
          ?.mcnemar.pValue;
  const table = input.genevalSkipped ? [] : models.map((n) => genevalRow(n, summaries[n]!, vsBaseline(n)));

  if (models.length < 2)
    return { summaries, comparisons, table, winRates: [], perRewardMedianWinRates: [], keptImages: {} };
  const options = { methods: order, seed: `winrate:${input.seed}`, resamples: input.bootstrapSamples };
  const preferenceReward = input.preferenceReward ?? input.rewards[0]?.reward;
  const protocol = protocolWinRateTable(input.rewards, { ...options, medianBy: preferenceReward ?? '' });
  return {
    summaries,
    comparisons,
    table,
    winRates: protocol.rows,
    perRewardMedianWinRates: winRateTable(input.rewards, options),
    keptImages: protocol.kept,
    preferenceReward: protocol.medianBy,
  };
}
