/**
 * The base model's pretraining data in the built-in world: rendered scenes with captions of which a
 * configurable share is wrong or partial, as web alt-text is. A model trained on it follows prompts
 * only roughly: the misaligned starting point that preference alignment improves.
 */
import type { ImageDataset } from '../training/datasets';
import { Rng } from '../rng';
import { renderScene, sampleCaptionedScene } from './render';

export interface CorpusOptions {
  seed: number;
  size: number;
  resolution: number;
  /** Share of captions that are wrong or partial (split evenly). */
  captionNoise: number;
}

export { fromModelSpace, toModelSpace } from '../data/image';
import { toModelSpace } from '../data/image';

export function buildPretrainingCorpus(options: CorpusOptions): ImageDataset & { kinds: string[] } {
  const rng = new Rng(`corpus:${options.seed}`);
  const examples = [];
  const kinds: string[] = [];
  for (let i = 0; i < options.size; i++) {
    const c = sampleCaptionedScene(rng, {
      pWrong: options.captionNoise / 2,
      pPartial: options.captionNoise / 2,
    });
    const img = renderScene(c.scene, { resolution: options.resolution });
    examples.push({ prompt: c.caption, image: toModelSpace(img.data) });
    kinds.push(c.kind);
  }
  return { height: options.resolution, width: options.resolution, channels: 3, examples, kinds };
}
