/**
 * Prompt text -> GenEval metadata for the built-in world: the inverse of the prompt templates in
 * engine/world/world.ts (`generatePrompt`), so a reward that judges alignment can be given bare
 * prompt strings, as rows of a preference set carry them.
 *
 * Templates (articles "a"/"an" as `withArticle` writes them):
 *   single_object  a photo of a CLS
 *   two_object     a photo of a A and a B
 *   counting       a photo of N CLSs            (N a number word; exactly N: exclude N+1)
 *   colors         a photo of a COLOR CLS
 *   position       a photo of a A RELATION a B  (include [B, A at RELATION of group 0])
 *   color_attr     a photo of a CA A and a CB B
 */
import { COLOR_NAMES, RELATIONS, SHAPE_CLASSES, numberWord, plural } from './world';
import type { ColorName, PromptMetadata, Relation, ShapeClass } from './world';

/** The prompt does not follow any of the world's templates. Permanent. */
export class UnknownPromptError extends Error {
  override readonly name = 'UnknownPromptError';
  constructor(readonly prompt: string) {
    super(`prompt "${prompt}" does not follow a template of the built-in world`);
  }
}

const CLASSES = new Set<string>(SHAPE_CLASSES);
const COLORS = new Set<string>(COLOR_NAMES);
const PLURALS = new Map<string, ShapeClass>(SHAPE_CLASSES.map((c) => [plural(c), c]));
const NUMBERS = new Map<string, number>(Array.from({ length: 11 }, (_, n) => [numberWord(n), n]));

/** Whether words[i] is an indefinite article. */
function article(words: readonly string[], i: number): boolean {
  return words[i] === 'a' || words[i] === 'an';
}

/** Metadata for a prompt of the world's grammar, or an UnknownPromptError. */
export function parseWorldPrompt(prompt: string): PromptMetadata {
  const fail = (): never => {
    throw new UnknownPromptError(prompt);
  };
  const text = prompt.trim().replace(/\s+/g, ' ');
  if (!text.startsWith('a photo of ')) fail();
  const rest = text.slice('a photo of '.length);
  // Relations contain spaces ("left of"); match them before splitting into words.
  for (const relation of RELATIONS) {
    const parts = rest.split(` ${relation} `);
    if (parts.length === 2) {
      const a = parts[0]!.split(' ');
      const b = parts[1]!.split(' ');
      if (a.length !== 2 || b.length !== 2 || !article(a, 0) || !article(b, 0)) fail();
      if (!CLASSES.has(a[1]!) || !CLASSES.has(b[1]!)) fail();
      return {
        tag: 'position',
        include: [
          { class: b[1] as ShapeClass, count: 1 },
          { class: a[1] as ShapeClass, count: 1, position: [relation as Relation, 0] },
        ],
        prompt,
      };
    }
  }
  const words = rest.split(' ');
  const count = NUMBERS.get(words[0] ?? '');
  if (count !== undefined && count > 0 && words.length === 2) {
    const cls =
      count === 1 ? (CLASSES.has(words[1]!) ? (words[1] as ShapeClass) : undefined) : PLURALS.get(words[1]!);
    if (cls === undefined) return fail();
    return {
      tag: 'counting',
      include: [{ class: cls, count }],
      exclude: [{ class: cls, count: count + 1 }],
      prompt,
    };
  }
  const groups = words.join(' ').split(' and ');
  const phrases = groups.map((g) => {
    const w = g.split(' ');
    if (!article(w, 0)) return fail();
    if (w.length === 2 && CLASSES.has(w[1]!)) return { class: w[1] as ShapeClass };
    if (w.length === 3 && COLORS.has(w[1]!) && CLASSES.has(w[2]!))
      return { class: w[2] as ShapeClass, color: w[1] as ColorName };
    return fail();
  });
  if (phrases.length === 1) {
    const p = phrases[0]!;
    if (p.color === undefined)
      return { tag: 'single_object', include: [{ class: p.class, count: 1 }], prompt };
    return { tag: 'colors', include: [{ class: p.class, count: 1, color: p.color }], prompt };
  }
  if (phrases.length === 2) {
    const [p, q] = phrases as [(typeof phrases)[0], (typeof phrases)[0]];
    if (p.color === undefined && q.color === undefined) {
      return {
        tag: 'two_object',
        include: [
          { class: p.class, count: 1 },
          { class: q.class, count: 1 },
        ],
        prompt,
      };
    }
    if (p.color !== undefined && q.color !== undefined) {
      return {
        tag: 'color_attr',
        include: [
          { class: p.class, count: 1, color: p.color },
          { class: q.class, count: 1, color: q.color },
        ],
        prompt,
      };
    }
  }
  return fail();
}
