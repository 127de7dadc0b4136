/**
 * Everything the run report shows, as plain data: the pipeline gathers it from the stage
 * artifacts and the evaluation statistics, and `renderReport` turns it into files.
 *
 * Field shapes follow what the statistics produce (GenEval per-tag accuracies, paired-test p
 * values, bootstrap or Wilson intervals), so the report adds formatting only, never numbers.
 */
import type { UtilityComparison } from '../eval/utility-summary';
import type { ExpertProvenanceRow } from './expert-provenance';

/** A closed interval [low, high], e.g. a 95% confidence interval. */
export type Interval = readonly [number, number];

export interface StageTiming {
  /** Stage name as the pipeline spells it: "base", "pretrain", "sft", "dro", ... */
  stage: string;
  /** Wall time of the stage in seconds (0 when it was reused from an earlier attempt). */
  wallSeconds: number;
  /** True when the stage's artifacts were reused instead of recomputed. */
  cacheHit: boolean;
  /** For a reused stage, the run that computed it (the stage cache entry's run). */
  fromRun?: string;
}

/** Another run this report's results come from, e.g. the run that computed a reused stage. */
export interface LinkedRun {
  runId: string;
  /** What the run gave this one, e.g. "computed pretrain, sft (reused here)". */
  relation: string;
  /**
   * Relative path from this report to that run's report.html, when the store holds one. Only a
   * relative path of plain segments is linked; anything else is shown as text.
   */
  report?: string;
}

export interface ArtifactRef {
  /** What the artifact is, e.g. "dro/model" or "ranking/experts". */
  role: string;
  /** Where it lives: a `file://` or `s3://` URI. Shown as text, never as a link. */
  uri: string;
  /** Lowercase hex SHA-256 of its bytes. */
  sha256: string;
}

export interface RewardAccuracy {
  /** Reward model name, e.g. "preference-mlp". */
  name: string;
  /** Pairwise accuracy on held-out preference pairs, in [0, 1]. */
  accuracy: number;
  /** Number of held-out pairs the accuracy was measured on. */
  heldOutPairs: number;
  /** Optional 95% interval of the accuracy. */
  ci95?: Interval;
}

/** GenEval result of one method (one row of the paper's GenEval table). */
export interface GenEvalRow {
  method: string;
  /** Accuracy in [0, 1] per GenEval tag ("single_object", "counting", ...). */
  perTag: Record<string, number>;
  /** Unweighted mean of the tag accuracies (GenEval's overall score), in [0, 1]. */
  overall: number;
  /** Mean per-image score (share of the prompt's requirements met), in [0, 1]. */
  meanScore: number;
  /** p value of the overall score against the baseline method; absent for the baseline itself. */
  pValueVsBaseline?: number;
  /** Per tag: judged images, correct ones and the Wilson 95% interval of the accuracy. */
  perTagCounts?: Record<string, GenEvalTagCount>;
}

export interface GenEvalTagCount {
  correct: number;
  total: number;
  ci95: Interval;
}

/** What the GenEval suite left out: tags without prompts, and prompts that were training prompts. */
export interface GenEvalExclusions {
  /** Where the prompts came from: "built-in (seed ...)", a suite file's URI, ... */
  source: string;
  /** Distinct prompts before exclusion. */
  drawn: number;
  /** Prompts removed because they occur in the training data, per tag. */
  excludedPerTag: Record<string, number>;
  /** Tags without any GenEval prompt, with why; the overall score averages the other tags. */
  excludedTags: { tag: string; reason: string }[];
}

/**
 * A GenEval row from a per-method summary whose tags carry `{ accuracy }` (the shape the GenEval
 * scoring produces), keeping only what the table shows.
 */
export function genevalRow(
  method: string,
  summary: { perTag: Partial<Record<string, { accuracy: number }>>; overall: number; meanScore: number },
  pValueVsBaseline?: number,
): GenEvalRow {
  const perTag: Record<string, number> = {};
  for (const [tag, score] of Object.entries(summary.perTag)) if (score) perTag[tag] = score.accuracy;
  return {
    method,
    perTag,
    overall: summary.overall,
    meanScore: summary.meanScore,
    ...(pValueVsBaseline === undefined ? {} : { pValueVsBaseline }),
  };
}

/** Paired comparison of method `a` against method `b` under one reward model. */
export interface WinRateRow {
  a: string;
  b: string;
  /** Reward model that scored both images, e.g. "PickScore". */
  reward: string;
  /**
   * Reward whose median image was kept: the run's preference reward under the paper's protocol
   * (the same image for every reward), or `reward` itself in the per-reward-median table.
   */
  medianBy?: string;
  /** Share of prompts where `a`'s image scored higher, in [0, 1]. */
  winRate: number;
  meanA: number;
  meanB: number;
  /** Paired test p value of the score difference; null when it could not be computed (under 2 prompts). */
  pValue: number | null;
  /** 95% interval of the mean score difference a - b. */
  ci95: Interval;
}

/** One model's mean utility to the simulated users (noise-free, default weights). */
export interface UtilityModelRow {
  method: string;
  mean: number;
  /** 95% interval of the mean. */
  ci95: Interval;
  images: number;
  prompts: number;
}

/** Head to head under the users' utility: per prompt, the mean utility of the prompt's images. */
export type UtilityWinRow = UtilityComparison;

/** The simulated users' own judgement of the held-out GenEval images. */
export interface UtilityReport {
  /** Why it was not computed (then `models` and `comparisons` are empty). */
  skipped?: string;
  models: UtilityModelRow[];
  comparisons: UtilityWinRow[];
}

export interface LossPoint {
  step: number;
  loss: number;
}

/**
 * The DRO hinge's terms at one optimizer update, each the mean over the update's samples (the
 * training summary's history row). Older summaries lack `hingeOpen`.
 */
export interface DroTermPoint {
  step: number;
  /** (Le - Le0) - (Lp - Lp0). */
  diff?: number;
  /** Le - Le0: phi's denoising error on expert samples relative to the reference's. */
  expertDiff?: number;
  /** Lp - Lp0: the same on the policy's own samples. */
  policyDiff?: number;
  /** Share of samples with diff + margin > 0, the ones that still contribute a gradient. */
  hingeOpen?: number;
}

export interface DroTerms {
  /** The hinge margin (config `dro.margin`), when known. */
  margin?: number;
  points: DroTermPoint[];
}

export interface LossCurve {
  /** Training stage, e.g. "pretrain", "sft", "dro". */
  stage: string;
  points: LossPoint[];
}

/**
 * Samples of every method on the same prompts and seeds: `methods[m].images[i]` is method m's
 * image for `prompts[i]` drawn with `seeds[i]`.
 */
export interface SampleGrid {
  prompts: string[];
  seeds: number[];
  methods: { method: string; images: Uint8Array[] /* PNG or JPEG bytes */ }[];
}

/** Human preference of method `a` over `b` from the blinded study. */
export interface HumanStudyRow {
  a: string;
  b: string;
  winsA: number;
  total: number;
  /** winsA / total. */
  winRate: number;
  /** Wilson score 95% interval of the win rate. */
  ci95: Interval;
}

export interface HumanStudySummary {
  studyId: string;
  /** Participants whose answers count. */
  participants: number;
  /** Participants dropped for failed attention checks. */
  dropped: number;
  rows: HumanStudyRow[];
}

export interface ReportData {
  runId: string;
  /** Human-readable run name (the config's name, or the run id). */
  name: string;
  /** ISO time the report was made; shown as given. */
  createdAt?: string;
  /** The run's parsed config, shown as JSON. */
  config: unknown;
  /** Hash of the canonical config, as recorded on the run. */
  configHash: string;
  stages: StageTiming[];
  artifacts: ArtifactRef[];
  reward?: RewardAccuracy;
  /** Method the p values and win rates are measured against, e.g. "base". */
  baseline?: string;
  geneval: GenEvalRow[];
  /** The paper's protocol: one median image per method and prompt, chosen by `preferenceReward`. */
  winRates: WinRateRow[];
  /** The reward the protocol's median images were chosen by (the run's reward model). */
  preferenceReward?: string;
  /** Extra, not the protocol: each reward chooses its own median image. */
  perRewardMedianWinRates?: WinRateRow[];
  /** The simulated users' utility of the held-out GenEval images (built-in world prompts only). */
  utility?: UtilityReport;
  lossCurves: LossCurve[];
  /** The DRO stage's hinge terms per update. */
  droTerms?: DroTerms;
  /** The GenEval suite's exclusions (tags without prompts and why, removed training prompts). */
  genevalSuite?: GenEvalExclusions;
  /** Runs this report draws on besides its own (the runs that computed its reused stages). */
  linkedRuns?: LinkedRun[];
  /** Experts per generator of a pooled preference set (`data.generators`). */
  expertProvenance?: ExpertProvenanceRow[];
  samples?: SampleGrid;
  humanStudy?: HumanStudySummary;
}
