/**
 * The pool of generators behind the built-in world's simulated comparisons (config
 * `data.generators`, docs/world.md). Pick-a-Pic v2's images come from several models, so its top
 * images are demonstrations better than any one base; here each image of a comparison is drawn
 * from the pool by share: the run's base model, the world's stand-in renderer at some failure rate
 * and degradation (./world-generator), or another model bundle.
 *
 * Pure: which generator draws which image is a function of the shares and an `Rng`; a stand-in's
 * image is a function of (prompt, seed).
 */
import type { Rng } from '../rng';
import { PERTURB_LEVELS } from './perturb';
import type { PerturbLevel } from './perturb';
import { worldGenerator, type WorldGenerate } from './world-generator';

export type StandInLevel = 'clean' | 'mild' | 'moderate' | 'strong';

export interface StandInSettings {
  /** Probability of rendering a scene for another prompt (a misaligned image). */
  pWrong: number;
  /** Degradations drawn uniformly per image. */
  levels: readonly StandInLevel[];
  /** Probability of an extra object the prompt did not ask for. */
  distractorProb: number;
}

/** One entry of the pool, as config `data.generators` writes it. */
export type PoolGenerator = { name: string; share: number } & (
  { kind: 'base' } | ({ kind: 'stand-in' } & StandInSettings) | { kind: 'bundle'; path: string }
);

/**
 * Two stand-ins either side of the shipped base model on the world's GenEval judge (the base reads
 * about 0.48 overall): `stronger` draws the right scene 9 times in 10 with at most mild
 * degradations (about 0.9 of its images GenEval-correct at 16 px); `weaker` draws a wrong scene 3
 * times in 4, always strongly degraded, with distractors (about 0.15). test/unit/generator-pool
 * measures both.
 */
export const STAND_IN_EXAMPLES = {
  stronger: { pWrong: 0.1, levels: ['clean', 'mild'], distractorProb: 0 },
  weaker: { pWrong: 0.75, levels: ['strong'], distractorProb: 0.3 },
} as const satisfies Record<string, StandInSettings>;

function perturbLevel(level: StandInLevel): PerturbLevel | null {
  return level === 'clean' ? null : PERTURB_LEVELS[level];
}

/** The stand-in renderer with `settings`, drawing `resolution`-px images. */
export function standInGenerator(settings: StandInSettings, resolution: number): WorldGenerate {
  return worldGenerator({
    resolution,
    pWrong: settings.pWrong,
    levels: settings.levels.map(perturbLevel),
    distractorProb: settings.distractorProb,
  });
}

/**
 * The generator of each of `count` images, as indices into `shares`: image i's generator is drawn
 * with probability share / sum of shares, one uniform draw of `rng` per image.
 */
export function drawGenerators(shares: readonly number[], count: number, rng: Rng): number[] {
  const total = shares.reduce((a, s) => a + s, 0);
  if (!shares.every((s) => Number.isFinite(s) && s >= 0) || !(total > 0))
    throw new RangeError(
      `generator shares must be finite, >= 0 and sum to a positive number, got [${shares.join(', ')}]`,
    );
  const last = shares.reduce((best, s, i) => (s > 0 ? i : best), -1);
  const out: number[] = [];
  for (let n = 0; n < count; n++) {
    const u = rng.uniform() * total;
    let acc = 0;
    let pick = last;
    for (let i = 0; i < shares.length; i++) {
      acc += shares[i] as number;
      if (u < acc && (shares[i] as number) > 0) {
        pick = i;
        break;
      }
    }
    out.push(pick);
  }
  return out;
}
