/**
 * The built-in world's prompt split (config `data.promptSplit: 'hash'`, docs/world.md): every
 * prompt the world can write is, once and for all, either a training prompt or a held-out one.
 *
 * Per tag, the whole prompt space (`worldPromptSpace`) is ordered by a 32-bit FNV-1a hash of the
 * prompt text (ties by the text) and the first `ceil(n * HELD_OUT_SHARE)` prompts are held out:
 * 1 of the 5 single-object prompts, 4 of 20 two-object, 3 of 15 counting, 6 of 30 colors, 16 of 80
 * position and 120 of 600 color-attribute prompts. The split depends on the text alone (no seed),
 * so every run, evaluation and schedule sees the same one, and every tag has prompts on both sides
 * by construction. `generateTrainingPrompts` draws like `generatePrompts` and draws again whenever
 * a held-out prompt comes up, so simulated comparisons never use a held-out prompt however many a
 * config asks for.
 */
import { Rng } from '../rng';
import {
  COLOR_NAMES,
  MAX_COUNT,
  RELATIONS,
  SHAPE_CLASSES,
  TAGS,
  generatePrompt,
  generatePrompts,
  numberWord,
  plural,
  withArticle,
} from './world';
import type { PromptMetadata, Tag } from './world';

/** Share of each tag's prompts that is held out (at least one per tag). */
export const HELD_OUT_SHARE = 0.2;

/** Every distinct prompt of `tag` the world's templates can write (as `generatePrompt` writes them). */
export function worldPromptSpace(tag: Tag): PromptMetadata[] {
  const out: PromptMetadata[] = [];
  const pairs = SHAPE_CLASSES.flatMap((a) =>
    SHAPE_CLASSES.filter((b) => b !== a).map((b) => [a, b] as const),
  );
  switch (tag) {
    case 'single_object':
      for (const cls of SHAPE_CLASSES)
        out.push({ tag, include: [{ class: cls, count: 1 }], prompt: `a photo of ${withArticle(cls)}` });
      break;
    case 'two_object':
      for (const [a, b] of pairs)
        out.push({
          tag,
          include: [
            { class: a, count: 1 },
            { class: b, count: 1 },
          ],
          prompt: `a photo of ${withArticle(a)} and ${withArticle(b)}`,
        });
      break;
    case 'counting':
      for (const cls of SHAPE_CLASSES)
        for (let n = 2; n <= MAX_COUNT; n++)
          out.push({
            tag,
            include: [{ class: cls, count: n }],
            exclude: [{ class: cls, count: n + 1 }],
            prompt: `a photo of ${numberWord(n)} ${plural(cls)}`,
          });
      break;
    case 'colors':
      for (const cls of SHAPE_CLASSES)
        for (const color of COLOR_NAMES)
          out.push({
            tag,
            include: [{ class: cls, count: 1, color }],
            prompt: `a photo of ${withArticle(color)} ${cls}`,
          });
      break;
    case 'position':
      for (const [a, b] of pairs)
        for (const relation of RELATIONS)
          out.push({
            tag,
            include: [
              { class: b, count: 1 },
              { class: a, count: 1, position: [relation, 0] },
            ],
            prompt: `a photo of ${withArticle(a)} ${relation} ${withArticle(b)}`,
          });
      break;
    case 'color_attr':
      for (const [a, b] of pairs)
        for (const ca of COLOR_NAMES)
          for (const cb of COLOR_NAMES) {
            if (ca === cb) continue;
            out.push({
              tag,
              include: [
                { class: a, count: 1, color: ca },
                { class: b, count: 1, color: cb },
              ],
              prompt: `a photo of ${withArticle(ca)} ${a} and ${withArticle(cb)} ${b}`,
            });
          }
      break;
  }
  return out;
}

/** 32-bit FNV-1a of the prompt text, lower-cased with spaces collapsed (as prompts are compared). */
export function promptHash(prompt: string): number {
  const text = prompt.trim().replace(/\s+/g, ' ').toLowerCase();
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

let heldOutCache: { byTag: Map<Tag, PromptMetadata[]>; texts: Set<string> } | undefined;

function heldOut(): { byTag: Map<Tag, PromptMetadata[]>; texts: Set<string> } {
  if (heldOutCache) return heldOutCache;
  const byTag = new Map<Tag, PromptMetadata[]>();
  const texts = new Set<string>();
  for (const tag of TAGS) {
    const space = worldPromptSpace(tag)
      .map((meta) => ({ meta, hash: promptHash(meta.prompt) }))
      .sort((a, b) => a.hash - b.hash || (a.meta.prompt < b.meta.prompt ? -1 : 1));
    const kept = space.slice(0, Math.ceil(space.length * HELD_OUT_SHARE)).map((e) => e.meta);
    byTag.set(tag, kept);
    for (const meta of kept) texts.add(normalize(meta.prompt));
  }
  heldOutCache = { byTag, texts };
  return heldOutCache;
}

function normalize(prompt: string): string {
  return prompt.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** The held-out prompts of `tag`, in hash order. */
export function heldOutPrompts(tag: Tag): PromptMetadata[] {
  return heldOut().byTag.get(tag)!.slice();
}

/** Whether the split holds `prompt` out of training (compared case- and space-insensitively). */
export function isHeldOutPrompt(prompt: string): boolean {
  return heldOut().texts.has(normalize(prompt));
}

/**
 * `n` training prompts cycling through the six tags, as `generatePrompts(seed, n)` draws them but
 * with every held-out prompt drawn again (same tag, same stream), so none is ever returned.
 */
export function generateTrainingPrompts(seed: number | string, n: number): PromptMetadata[] {
  const rng = new Rng(seed);
  const out: PromptMetadata[] = [];
  for (let i = 0; i < n; i++) {
    const tag = TAGS[i % TAGS.length] as Tag;
    let meta = generatePrompt(rng, tag);
    while (isHeldOutPrompt(meta.prompt)) meta = generatePrompt(rng, tag);
    out.push(meta);
  }
  return out;
}

/** The prompts of the simulated comparisons: the whole world (`none`) or training prompts only. */
export function preferencePrompts(
  seed: number | string,
  n: number,
  split: 'none' | 'hash' | undefined,
): PromptMetadata[] {
  return split === 'hash' ? generateTrainingPrompts(seed, n) : generatePrompts(seed, n);
}
