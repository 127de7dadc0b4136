/**
 * A stand-in text-to-image generator for the built-in world: renders a scene for the prompt, or,
 * with probability `pWrong`, a scene for a different prompt of the same family (a deliberately
 * misaligned generation), then degrades it with a randomly chosen perturbation level (soft edges,
 * grain, color casts) the way samples of a weak model look. A pure function of (prompt, seed).
 * Used wherever a base model is not available yet: tests, preference-model training data, demos.
 */
import type { RgbImageF32 } from '../data/image';
import { Rng } from '../rng';
import { renderScene, sceneForMetadata } from './render';
import { TAGS, generatePrompt } from './world';
import type { PromptMetadata } from './world';
import { judgeImage } from './geneval';
import { PERTURB_LEVELS, perturb } from './perturb';
import type { PerturbLevel } from './perturb';

export interface WorldGeneratorOptions {
  /** Image side in pixels. Default 24. */
  resolution?: number;
  /** Probability of rendering a scene for another prompt. Default 0.5. */
  pWrong?: number;
  /**
   * 'random' (default): each image is misaligned with probability pWrong. 'odd': exactly the odd
   * seeds give misaligned scenes, so a pair seeded 2k, 2k+1 (as simulateFeedback seeds pairs)
   * always holds one aligned and one misaligned image, a pair of a good and a bad model.
   */
  wrongSeeds?: 'random' | 'odd';
  /** Degradations drawn uniformly per image; null = clean render. Default clean, mild, moderate, strong. */
  levels?: readonly (PerturbLevel | null)[];
  /** Probability of adding a distractor object (see sceneForMetadata). Default 0. */
  distractorProb?: number;
}

export type WorldGenerate = (prompt: PromptMetadata, seed: number) => RgbImageF32;

const DEFAULT_LEVELS: readonly (PerturbLevel | null)[] = [
  null,
  PERTURB_LEVELS.mild,
  PERTURB_LEVELS.moderate,
  PERTURB_LEVELS.strong,
];

/** A scene that the detector judges wrong for `meta`, from another prompt of the same family if possible. */
function wrongScene(meta: PromptMetadata, rng: Rng, resolution: number): RgbImageF32 {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tag = attempt < 10 ? meta.tag : rng.choice(TAGS);
    const other = generatePrompt(rng, tag);
    if (other.prompt === meta.prompt) continue;
    const image = renderScene(sceneForMetadata(other, rng), { resolution });
    if (!judgeImage(image, meta).correct) return image;
  }
  throw new Error(`world generator: found no misaligned scene for "${meta.prompt}"`);
}

export function worldGenerator(options: WorldGeneratorOptions = {}): WorldGenerate {
  const resolution = options.resolution ?? 24;
  const pWrong = options.pWrong ?? 0.5;
  const levels = options.levels ?? DEFAULT_LEVELS;
  if (!(pWrong >= 0 && pWrong <= 1))
    throw new RangeError(`worldGenerator: pWrong must be in [0, 1], got ${pWrong}`);
  if (levels.length === 0) throw new RangeError('worldGenerator: levels must not be empty');
  return (meta, seed) => {
    const rng = new Rng(`world-generator:${seed}`);
    const wrong = options.wrongSeeds === 'odd' ? seed % 2 === 1 : rng.bernoulli(pWrong);
    const image = wrong
      ? wrongScene(meta, rng, resolution)
      : renderScene(sceneForMetadata(meta, rng, { distractorProb: options.distractorProb ?? 0 }), {
          resolution,
        });
    const level = rng.choice(levels);
    return level ? perturb(image, level, rng) : image;
  };
}
