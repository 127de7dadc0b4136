/**
 * GenEval judging for the built-in world: an image is correct for a prompt when the detected
 * objects satisfy the prompt's metadata under the rules of GenEval's evaluate_images.py:
 * - include clauses are ANDed: at least `count` objects of `class`; colors and positions are
 *   checked only on the `count` highest-ranked objects of that class (GenEval ranks by detector
 *   confidence; our detector is exact, so objects rank by area, the most salient first);
 * - a color clause needs all of those objects to have that color;
 * - a position clause [relation, g] needs every one of them to stand in `relation` to every object
 *   matched by include group g (GenEval's relative_position, threshold 0.1), and fails when group g
 *   itself failed;
 * - exclude clauses are ORed: `count` or more objects of `class` fail the image.
 * Overall accuracy is the unweighted mean of the per-tag accuracies (summary_scores.py).
 */
import type { RgbImage, RgbImageF32 } from '../data/image';
import { POSITION_THRESHOLD, TAGS, relationStrength, relativePosition } from './world';
import type { PromptMetadata, Tag } from './world';
import { detectObjects } from './detector';
import type { Detection, DetectorOptions } from './detector';

export interface Judgement {
  correct: boolean;
  /** Failed checks, one per line in GenEval's wording; empty when correct. */
  reason: string;
  /**
   * Continuous alignment in [0, 1]: mean over checks (count, color, position of each include
   * clause; each exclude clause) of partial credit. Exactly 1 if and only if `correct`.
   */
  score: number;
}

function groupByClass(detections: readonly Detection[]): Map<string, Detection[]> {
  const byClass = new Map<string, Detection[]>();
  for (const d of detections) {
    const list = byClass.get(d.class) ?? [];
    list.push(d);
    byClass.set(d.class, list);
  }
  return byClass;
}

/** Judges detections (ranked most salient first, as detectObjects returns them) against metadata. */
export function judgeDetections(detections: readonly Detection[], meta: PromptMetadata): Judgement {
  const byClass = groupByClass(detections);
  const reasons: string[] = [];
  const credits: number[] = [];
  let correct = true;
  const matchedGroups: (Detection[] | null)[] = [];

  for (const req of meta.include) {
    const all = byClass.get(req.class) ?? [];
    const found = all.slice(0, req.count);
    let matched = true;
    credits.push(Math.min(all.length, req.count) / req.count);
    if (found.length < req.count) {
      correct = matched = false;
      reasons.push(`expected ${req.class}>=${req.count}, found ${found.length}`);
    }
    if (req.color !== undefined) {
      const right = found.filter((d) => d.color === req.color).length;
      credits.push(right / req.count);
      if (matched && right < req.count) {
        correct = matched = false;
        const tally = new Map<string, number>();
        for (const d of found) tally.set(d.color, (tally.get(d.color) ?? 0) + 1);
        reasons.push(
          `expected ${req.color} ${req.class}>=${req.count}, found ${right} ${req.color}; and ` +
            [...tally].map(([c, k]) => `${k} ${c}`).join(', '),
        );
      }
    }
    if (req.position !== undefined) {
      const [relation, targetGroup] = req.position;
      const targets = matchedGroups[targetGroup] ?? null;
      const pairCredits: number[] = [];
      let failure: string | undefined;
      if (targets === null) {
        failure = `no target for ${req.class} to be ${relation}`;
      } else {
        for (const obj of found) {
          for (const target of targets) {
            const { relations, dx, dy } = relativePosition(obj.box, target.box, POSITION_THRESHOLD);
            const strength = relationStrength(relation, dx, dy);
            pairCredits.push(
              relations.has(relation) ? 1 : Math.max(0, Math.min(1, (strength + 1) / 1.5)) * 0.999,
            );
            if (!relations.has(relation) && failure === undefined) {
              failure = `expected ${req.class} ${relation} target, found ${[...relations].join(' and ')} target`;
            }
          }
        }
      }
      credits.push(pairCredits.length ? pairCredits.reduce((a, b) => a + b, 0) / pairCredits.length : 0);
      if (matched && failure !== undefined) {
        correct = matched = false;
        reasons.push(failure);
      }
    }
    matchedGroups.push(matched ? found : null);
  }

  for (const req of meta.exclude ?? []) {
    const n = byClass.get(req.class)?.length ?? 0;
    if (n >= req.count) {
      correct = false;
      reasons.push(`expected ${req.class}<${req.count}, found ${n}`);
      credits.push((req.count - 1) / n);
    } else {
      credits.push(1);
    }
  }
  const score = credits.reduce((a, b) => a + b, 0) / credits.length;
  // Partial credits can round to 1 only through float error; keep "1 iff correct" exact.
  return { correct, reason: reasons.join('\n'), score: correct ? 1 : Math.min(score, 1 - 1e-9) };
}

/** Detects objects in `image` and judges them against `meta`. */
export function judgeImage(
  image: RgbImage | RgbImageF32,
  meta: PromptMetadata,
  detectorOptions?: DetectorOptions,
): Judgement & { detections: Detection[] } {
  const detections = detectObjects(image, detectorOptions);
  return { ...judgeDetections(detections, meta), detections };
}

export interface TagScore {
  correct: number;
  total: number;
  accuracy: number;
}

export interface GenEvalSummary {
  perTag: Partial<Record<Tag, TagScore>>;
  /** Unweighted mean of the accuracies of the tags present (GenEval's "overall score"). */
  overall: number;
  /** Share of correct images over all tags. */
  imageAccuracy: number;
  images: number;
  /** Of the six tags, those with no results (overall then averages fewer tags). */
  missingTags: Tag[];
}

const ALL_TAGS: readonly Tag[] = TAGS;

export function scoreGenEval(results: readonly { tag: Tag; correct: boolean }[]): GenEvalSummary {
  const perTag: Partial<Record<Tag, TagScore>> = {};
  for (const r of results) {
    const s = perTag[r.tag] ?? { correct: 0, total: 0, accuracy: 0 };
    s.total++;
    if (r.correct) s.correct++;
    s.accuracy = s.correct / s.total;
    perTag[r.tag] = s;
  }
  const present = ALL_TAGS.filter((t) => perTag[t] !== undefined);
  const overall = present.length
    ? present.reduce((a, t) => a + (perTag[t] as TagScore).accuracy, 0) / present.length
    : 0;
  const correct = results.filter((r) => r.correct).length;
  return {
    perTag,
    overall,
    imageAccuracy: results.length ? correct / results.length : 0,
    images: results.length,
    missingTags: ALL_TAGS.filter((t) => perTag[t] === undefined),
  };
}
