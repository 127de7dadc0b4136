/**
 * The base model's pretraining data in the built-in world: rendered scenes with captions of which a
 * configurable share is wrong or partial, as web alt-text is. A model trained on it follows prompts
 * only roughly: the misaligned starting point that preference alignment improves.
 */
import type { ImageDataset } from '../training/datasets';
import { Prng } from './prng';
import { renderScene, sampleCaptionedScene } from './render';

export interface CorpusOptions {
  seed: number;
  size: number;
  resolution: number;
  /** Share of captions that are wrong or partial (split evenly). */
  captionNoise: number;
}

/** Maps [0, 1] RGB to the model's [-1, 1] input space. */
export function toModelSpace(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! * 2 - 1;
  return out;
}

/** Maps model outputs back to [0, 1] RGB, clipping. */
export function fromModelSpace(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.min(1, Math.max(0, (data[i]! + 1) / 2));
  return out;
}

export function buildPretrainingCorpus(options: CorpusOptions): ImageDataset & { kinds: string[] } {
  const rng = new Prng(`corpus:${options.seed}`);
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
