/**
 * Where an expert set came from: per generator of the preference set (its `model_0` / `model_1`
 * names), how many images it drew, how many of them became experts, and how many of each the
 * built-in world's GenEval judge (engine/world/geneval.ts) finds correct. With a pool of
 * generators (config `data.generators`, docs/world.md) this shows whether the ranking picked the
 * stronger generators' images, as Pick-a-Pic's top images come from models better than the base.
 */
import type { PickapicRow, PickapicWriteRow } from '../data/pickapic';
import { decodeImage } from '../data/image-codec';
import { judgeImage } from '../world/geneval';
import { parseWorldPrompt } from '../world/world-prompts';
import type { ExpertSet } from './expert-ranking';

export interface GeneratorProvenance {
  /** The generator's name, as the preference set's model column writes it. */
  name: string;
  /** Distinct images it drew in the preference set. */
  images: number;
  /** Of them GenEval-correct; null when a prompt is not one of the built-in world's. */
  imagesCorrect: number | null;
  /** Its images among the experts. */
  experts: number;
  /** Of them GenEval-correct; null as for `imagesCorrect`. */
  expertsCorrect: number | null;
  /** expertsCorrect / experts (null without experts or a verdict). */
  expertShareCorrect: number | null;
}

export interface ExpertProvenance {
  /** The configured generators first (in config order, also those that drew nothing), then any other name. */
  generators: GeneratorProvenance[];
  experts: number;
  /** GenEval-correct experts over all generators (null without a verdict). */
  expertsCorrect: number | null;
}

/** The judge's verdict on encoded image bytes for a world prompt; null for a prompt of no world template. */
export function worldVerdict(bytes: Uint8Array, prompt: string, source: string): boolean | null {
  let meta;
  try {
    meta = parseWorldPrompt(prompt);
  } catch {
    return null;
  }
  return judgeImage(decodeImage(bytes, { source }), meta).correct;
}

/**
 * Counts the preference set's distinct images and the expert set's images per generator, with the
 * judge's verdict on each (`verdict`, default the world judge on the stored 8-bit image).
 */
export function expertProvenance(
  set: Pick<ExpertSet, 'experts'>,
  rows: readonly (PickapicRow | PickapicWriteRow)[],
  configured: readonly string[] = [],
  verdict: (bytes: Uint8Array, prompt: string, uid: string) => boolean | null = (bytes, prompt, uid) =>
    worldVerdict(bytes, prompt, `image ${uid}`),
): ExpertProvenance {
  const images = new Map<string, { name: string; correct: boolean | null }>();
  rows.forEach((row) => {
    for (const side of [0, 1] as const) {
      const uid = side === 0 ? row.image_0_uid : row.image_1_uid;
      if (images.has(uid)) continue;
      const bytes = side === 0 ? row.jpg_0 : row.jpg_1;
      const name = (side === 0 ? row.model_0 : row.model_1) ?? '';
      const correct = bytes === null || row.caption === null ? null : verdict(bytes, row.caption, uid);
      images.set(uid, { name, correct });
    }
  });
  const order = [...configured];
  const byName = new Map<string, GeneratorProvenance>();
  const entry = (name: string): GeneratorProvenance => {
    let e = byName.get(name);
    if (!e) {
      e = { name, images: 0, imagesCorrect: 0, experts: 0, expertsCorrect: 0, expertShareCorrect: null };
      byName.set(name, e);
    }
    return e;
  };
  for (const name of configured) entry(name);
  const add = (count: number | null, correct: boolean | null): number | null =>
    count === null || correct === null ? null : count + (correct ? 1 : 0);
  for (const image of images.values()) {
    const e = entry(image.name);
    e.images++;
    e.imagesCorrect = add(e.imagesCorrect, image.correct);
  }
  let expertsCorrect: number | null = 0;
  for (const expert of set.experts) {
    const image = images.get(expert.uid);
    if (!image) throw new RangeError(`expert uid '${expert.uid}' is not an image of the preference set`);
    const e = entry(image.name);
    e.experts++;
    e.expertsCorrect = add(e.expertsCorrect, image.correct);
    expertsCorrect = add(expertsCorrect, image.correct);
  }
  const others = [...byName.keys()].filter((n) => !order.includes(n)).sort();
  const generators = [...order, ...others].map((name) => {
    const e = byName.get(name)!;
    e.expertShareCorrect = e.experts > 0 && e.expertsCorrect !== null ? e.expertsCorrect / e.experts : null;
    return e;
  });
  return { generators, experts: set.experts.length, expertsCorrect };
}
