/**
 * GenEval results and their summary, as GenEval's evaluate_images.py and summary_scores.py do it:
 * - one `GenevalResultRow` per image, the shape of a line of GenEval's results.jsonl (filename, tag,
 *   prompt, correct, reason, metadata as JSON text) plus the judge's continuous `score` and the
 *   image's slot (promptIndex, imageIndex, seed);
 * - per-tag accuracy (with a Wilson 95% interval), overall = unweighted mean of the tag accuracies,
 *   the share of correct images and of prompts with at least one correct image, and the mean
 *   partial score;
 * - a paired comparison of two methods on matched (prompt, seed) images: McNemar's exact test on the
 *   discordant images, and a bootstrap 95% interval of the difference in overall score that
 *   resamples (prompt, seed) pairs within each tag (so each tag keeps its size). Images of one prompt
 *   are treated as independent units.
 */
import type { PromptMetadata, Tag } from '../world/world';
import { TAGS } from '../world/world';
import { genevalImagePath } from './seeds';
import { mcnemarExact, type McNemarResult } from '../stats/binomial';
import { bootstrapInterval, DEFAULT_BOOTSTRAP_RESAMPLES } from '../stats/bootstrap';
import { pairedTTest } from '../stats/t-test';
import { wilsonInterval } from '../stats/wilson';
import { scoreGenEval } from '../world/geneval';
import type { Judgement, TagScore } from '../world/geneval';

/** One judged image: a line of results.jsonl. */
export interface GenevalResultRow {
  /** Image path relative to the evaluation folder (see `genevalImagePath`). */
  filename: string;
  tag: Tag;
  prompt: string;
  correct: boolean;
  /** Failed checks, one per line; empty when correct. */
  reason: string;
  /** The prompt's metadata as JSON text (GenEval stores `json.dumps(metadata)`). */
  metadata: string;
  /** The judge's partial score in [0, 1]; 1 exactly when correct. */
  score: number;
  promptIndex: number;
  imageIndex: number;
  seed: number;
  /**
   * The simulated users' noise-free utility of the image (engine/world/utility.ts, default weights);
   * absent in results written before it was recorded.
   */
  utility?: number;
}

/** Metadata JSON text with keys in GenEval's order (tag, include, exclude, prompt). */
export function metadataJson(meta: PromptMetadata): string {
  const line: Record<string, unknown> = { tag: meta.tag, include: meta.include };
  if (meta.exclude) line.exclude = meta.exclude;
  line.prompt = meta.prompt;
  return JSON.stringify(line);
}

/** Builds the results.jsonl row of one judged image. */
export function genevalResultRow(input: {
  meta: PromptMetadata;
  judgement: Judgement;
  filename: string;
  promptIndex: number;
  imageIndex: number;
  seed: number;
  utility?: number;
}): GenevalResultRow {
  const { meta, judgement } = input;
  return {
    filename: input.filename,
    tag: meta.tag,
    prompt: meta.prompt,
    correct: judgement.correct,
    reason: judgement.reason,
    metadata: metadataJson(meta),
    score: judgement.score,
    promptIndex: input.promptIndex,
    imageIndex: input.imageIndex,
    seed: input.seed,
    ...(input.utility === undefined ? {} : { utility: input.utility }),
  };
}

/** One image as an evaluation shard records its GenEval judgement. */
export interface JudgedGenevalImage {
  /** Index into the suite's prompts. */
  prompt: number;
  /** Image index within the prompt. */
  index: number;
  seed: number;
  correct: boolean;
  reason: string;
  score: number;
  /** The simulated users' utility of the image (see GenevalResultRow.utility). */
  utility?: number;
}

/** A judged image with its utility, as a shard computes it. */
export type ScoredGenevalImage = JudgedGenevalImage & { utility: number };

/** The results.jsonl rows of a shard's judged images, against the suite's prompts. */
export function genevalRowsOf(
  judged: readonly JudgedGenevalImage[],
  prompts: readonly PromptMetadata[],
): GenevalResultRow[] {
  return judged.map((g) =>
    genevalResultRow({
      meta: prompts[g.prompt]!,
      judgement: { correct: g.correct, reason: g.reason, score: g.score },
      filename: genevalImagePath(g.prompt, g.index),
      promptIndex: g.prompt,
      imageIndex: g.index,
      seed: g.seed,
      ...(g.utility === undefined ? {} : { utility: g.utility }),
    }),
  );
}

/** results.jsonl text: one row per line. */
export function toResultsJsonl(rows: readonly GenevalResultRow[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
}

export interface GenevalTagSummary extends TagScore {
  /** Wilson 95% interval of the tag's accuracy. */
  ci95: [number, number];
}

export interface GenevalSummary {
  /** Tags with at least one image; see `missingTags` for the others. */
  perTag: Partial<Record<Tag, GenevalTagSummary>>;
  /** Unweighted mean of the accuracies of the tags present (GenEval's "overall score"). */
  overall: number;
  /** Mean of the judge's partial score over all images. */
  meanScore: number;
  /** Share of correct images. */
  imageAccuracy: number;
  /** Share of prompts with at least one correct image (summary_scores.py's "correct prompts"). */
  promptAccuracy: number;
  images: number;
  prompts: number;
  /** Tags without images: `overall` then averages fewer than six tags. */
  missingTags: Tag[];
}

/** Summarizes judged images; throws on an empty list. */
export function summarizeGeneval(rows: readonly GenevalResultRow[]): GenevalSummary {
  if (rows.length === 0) throw new RangeError('GenEval summary of no images');
  const base = scoreGenEval(rows);
  const perTag: Partial<Record<Tag, GenevalTagSummary>> = {};
  for (const tag of TAGS) {
    const s = base.perTag[tag];
    if (s) perTag[tag] = { ...s, ci95: wilsonInterval(s.correct, s.total) };
  }
  const anyCorrect = new Map<string, boolean>();
  let scoreSum = 0;
  for (const r of rows) {
    anyCorrect.set(r.metadata, (anyCorrect.get(r.metadata) ?? false) || r.correct);
    scoreSum += r.score;
  }
  return {
    perTag,
    overall: base.overall,
    meanScore: scoreSum / rows.length,
    imageAccuracy: base.imageAccuracy,
    promptAccuracy: [...anyCorrect.values()].filter(Boolean).length / anyCorrect.size,
    images: rows.length,
    prompts: anyCorrect.size,
    missingTags: base.missingTags,
  };
}

export interface GenevalComparison {
  /** Matched (prompt, seed) images. */
  pairs: number;
  overallA: number;
  overallB: number;
  /** overallA - overallB. */
  overallDiff: number;
  /** Bootstrap 95% interval of overallA - overallB, pairs resampled within each tag. */
  overallDiffCi95: [number, number];
  /** McNemar exact test; b = images right under A only, c = right under B only. */
  mcnemar: McNemarResult;
  meanScoreA: number;
  meanScoreB: number;
  /** Two-sided paired t-test p-value of the partial scores over pairs; null with fewer than 2 pairs. */
  meanScorePValue: number | null;
}

export interface GenevalComparisonOptions {
  /** Seed of the bootstrap stream. */
  seed: number | string;
  /** Bootstrap resamples. Default 10,000. */
  resamples?: number;
}

function pairKey(r: GenevalResultRow): string {
  return `${r.seed}\u0000${r.metadata}`;
}

/**
 * Compares method A with method B on the same images slots: rows are matched on (metadata, seed);
 * every row of one side needs exactly one partner on the other.
 */
export function compareGeneval(
  a: readonly GenevalResultRow[],
  b: readonly GenevalResultRow[],
  options: GenevalComparisonOptions,
): GenevalComparison {
  const byKey = new Map<string, GenevalResultRow>();
  for (const r of b) {
    const key = pairKey(r);
    if (byKey.has(key))
      throw new RangeError(`method B has two images of prompt "${r.prompt}" with seed ${r.seed}`);
    byKey.set(key, r);
  }
  if (a.length !== b.length)
    throw new RangeError(`methods have ${a.length} and ${b.length} images; they must match`);
  if (a.length === 0) throw new RangeError('GenEval comparison of no images');
  const pairs: [GenevalResultRow, GenevalResultRow][] = [];
  for (const r of a) {
    const partner = byKey.get(pairKey(r));
    if (!partner) throw new RangeError(`method B has no image of prompt "${r.prompt}" with seed ${r.seed}`);
    byKey.delete(pairKey(r));
    pairs.push([r, partner]);
  }
  const byTag = new Map<Tag, [boolean, boolean][]>();
  for (const [x, y] of pairs) {
    const list = byTag.get(x.tag) ?? [];
    list.push([x.correct, y.correct]);
    byTag.set(x.tag, list);
  }
  const groups = [...byTag.values()];
  const overallDiffOf = (pick: (g: [boolean, boolean][], i: number) => [boolean, boolean]): number => {
    let sum = 0;
    for (const g of groups) {
      let d = 0;
      for (let i = 0; i < g.length; i++) {
        const [x, y] = pick(g, i);
        d += Number(x) - Number(y);
      }
      sum += d / g.length;
    }
    return sum / groups.length;
  };
  const overallA = summarizeGeneval(a).overall;
  const overallB = summarizeGeneval(b).overall;
  const ci = bootstrapInterval((rng) => overallDiffOf((g) => g[rng.int(g.length)]!), {
    seed: options.seed,
    resamples: options.resamples ?? DEFAULT_BOOTSTRAP_RESAMPLES,
  });
  let bOnly = 0;
  let cOnly = 0;
  for (const [x, y] of pairs) {
    if (x.correct && !y.correct) bOnly++;
    else if (!x.correct && y.correct) cOnly++;
  }
  const scoresA = pairs.map(([x]) => x.score);
  const scoresB = pairs.map(([, y]) => y.score);
  return {
    pairs: pairs.length,
    overallA,
    overallB,
    overallDiff: overallA - overallB,
    overallDiffCi95: ci,
    mcnemar: mcnemarExact(bOnly, cOnly),
    meanScoreA: scoresA.reduce((s, v) => s + v, 0) / pairs.length,
    meanScoreB: scoresB.reduce((s, v) => s + v, 0) / pairs.length,
    meanScorePValue: pairs.length >= 2 ? pairedTTest(scoresA, scoresB).pValue : null,
  };
}
