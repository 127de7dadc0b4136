/**
 * The built-in text-to-image world: a small closed vocabulary of shapes and colors whose prompts
 * follow GenEval's six task families and carry GenEval's evaluation metadata, so prompt alignment
 * of a generated image can be judged exactly (see engine/world/geneval.ts).
 *
 * Metadata mirrors GenEval's `evaluation_metadata.jsonl` lines:
 *   { tag, include: [{ class, count, color?, position?: [relation, groupIndex] }], exclude?, prompt }
 * - `include` clauses are ANDed; each asks for at least `count` objects of `class`.
 * - `exclude` clauses are ORed; each fails the image when `count` or more objects of `class` exist.
 *   Counting prompts ask for N and exclude N+1, i.e. exactly N.
 * - `position: [relation, g]` says this group stands in `relation` to include group `g`.
 *   For "a photo of A left of B", include is [B, A with position ['left of', 0]].
 */
import { z } from 'zod';
import { Rng } from '../rng';

/** Shape classes. A "cross" is an upright plus sign; a "ring" is an annulus. */
export const SHAPE_CLASSES = ['circle', 'square', 'triangle', 'cross', 'ring'] as const;
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

/** Colors, named as in GenEval's color list, with the exact sRGB value the renderer paints. */
export const COLOR_RGB = {
  red: [220, 30, 30],
  green: [30, 170, 50],
  blue: [30, 60, 220],
  yellow: [240, 220, 30],
  white: [245, 245, 245],
  purple: [170, 40, 200],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColorName = keyof typeof COLOR_RGB;
export const COLOR_NAMES = Object.keys(COLOR_RGB) as ColorName[];

/** Plain mid-gray background: every color above is far from it and from each other. */
export const BACKGROUND_RGB: readonly [number, number, number] = [128, 128, 128];

export const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
export type Relation = (typeof RELATIONS)[number];

export const TAGS = ['single_object', 'two_object', 'counting', 'colors', 'position', 'color_attr'] as const;
export type Tag = (typeof TAGS)[number];

/** Counting prompts ask for 2..MAX_COUNT objects, as GenEval's default max_count=4. */
export const MAX_COUNT = 4;

const ShapeClassSchema = z.enum(SHAPE_CLASSES);
const ColorSchema = z.enum(COLOR_NAMES as [ColorName, ...ColorName[]]);

export const IncludeClause = z.strictObject({
  class: ShapeClassSchema,
  count: z.number().int().min(1),
  color: ColorSchema.optional(),
  position: z.tuple([z.enum(RELATIONS), z.number().int().min(0)]).optional(),
});
export type IncludeClause = z.infer<typeof IncludeClause>;

export const ExcludeClause = z.strictObject({
  class: ShapeClassSchema,
  count: z.number().int().min(1),
});
export type ExcludeClause = z.infer<typeof ExcludeClause>;

export const PromptMetadata = z
  .strictObject({
    tag: z.enum(TAGS),
    include: z.array(IncludeClause).min(1),
    exclude: z.array(ExcludeClause).optional(),
    prompt: z.string().min(1),
  })
  .superRefine((meta, ctx) => {
    meta.include.forEach((clause, i) => {
      if (clause.position && clause.position[1] >= i) {
        ctx.addIssue({
          code: 'custom',
          path: ['include', i, 'position'],
          message: `position target group ${clause.position[1]} must come before group ${i}`,
        });
      }
    });
  });
export type PromptMetadata = z.infer<typeof PromptMetadata>;

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

export function withArticle(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

export function plural(word: string): string {
  return word.endsWith('s') ? `${word}es` : `${word}s`;
}

export function numberWord(n: number): string {
  return NUMBER_WORDS[n] ?? String(n);
}

/** One prompt of the given tag, mirroring GenEval's create_prompts.py families. */
export function generatePrompt(rng: Rng, tag: Tag): PromptMetadata {
  switch (tag) {
    case 'single_object': {
      const cls = rng.choice(SHAPE_CLASSES);
      return { tag, include: [{ class: cls, count: 1 }], prompt: `a photo of ${withArticle(cls)}` };
    }
    case 'two_object': {
      const [a, b] = rng.sample(SHAPE_CLASSES, 2) as [ShapeClass, ShapeClass];
      return {
        tag,
        include: [
          { class: a, count: 1 },
          { class: b, count: 1 },
        ],
        prompt: `a photo of ${withArticle(a)} and ${withArticle(b)}`,
      };
    }
    case 'counting': {
      const cls = rng.choice(SHAPE_CLASSES);
      const n = rng.intBetween(2, MAX_COUNT);
      return {
        tag,
        include: [{ class: cls, count: n }],
        exclude: [{ class: cls, count: n + 1 }],
        prompt: `a photo of ${numberWord(n)} ${plural(cls)}`,
      };
    }
    case 'colors': {
      const cls = rng.choice(SHAPE_CLASSES);
      const color = rng.choice(COLOR_NAMES);
      return {
        tag,
        include: [{ class: cls, count: 1, color }],
        prompt: `a photo of ${withArticle(color)} ${cls}`,
      };
    }
    case 'position': {
      const [a, b] = rng.sample(SHAPE_CLASSES, 2) as [ShapeClass, ShapeClass];
      const relation = rng.choice(RELATIONS);
      return {
        tag,
        include: [
          { class: b, count: 1 },
          { class: a, count: 1, position: [relation, 0] },
        ],
        prompt: `a photo of ${withArticle(a)} ${relation} ${withArticle(b)}`,
      };
    }
    case 'color_attr': {
      const [a, b] = rng.sample(SHAPE_CLASSES, 2) as [ShapeClass, ShapeClass];
      const [ca, cb] = rng.sample(COLOR_NAMES, 2) as [ColorName, ColorName];
      return {
        tag,
        include: [
          { class: a, count: 1, color: ca },
          { class: b, count: 1, color: cb },
        ],
        prompt: `a photo of ${withArticle(ca)} ${a} and ${withArticle(cb)} ${b}`,
      };
    }
  }
}

export interface SuiteOptions {
  seed: number | string;
  /** Prompts drawn per tag before de-duplication (GenEval: 100). Single-object prompts cover every class. */
  perTag?: number;
}

/**
 * A GenEval-style evaluation suite: every class once as a single object, then `perTag` draws of each
 * other family, de-duplicated in order (the world is small, so families with few distinct prompts
 * end up with fewer than `perTag`).
 */
export function generateSuite(options: SuiteOptions): PromptMetadata[] {
  const rng = new Rng(options.seed);
  const perTag = options.perTag ?? 100;
  const all: PromptMetadata[] = SHAPE_CLASSES.map((cls) => ({
    tag: 'single_object' as const,
    include: [{ class: cls, count: 1 }],
    prompt: `a photo of ${withArticle(cls)}`,
  }));
  for (const tag of TAGS) {
    if (tag === 'single_object') continue;
    for (let i = 0; i < perTag; i++) all.push(generatePrompt(rng, tag));
  }
  const seen = new Set<string>();
  return all.filter((meta) => {
    const key = JSON.stringify(meta);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** `n` prompts cycling through the six tags (no de-duplication): for training sets and tests. */
export function generatePrompts(seed: number | string, n: number): PromptMetadata[] {
  const rng = new Rng(seed);
  const out: PromptMetadata[] = [];
  for (let i = 0; i < n; i++) out.push(generatePrompt(rng, TAGS[i % TAGS.length] as Tag));
  return out;
}

/** GenEval's evaluation_metadata.jsonl text: one JSON object per line, keys in GenEval's order. */
export function toMetadataJsonl(prompts: readonly PromptMetadata[]): string {
  return prompts
    .map((meta) => {
      const line: Record<string, unknown> = { tag: meta.tag, include: meta.include };
      if (meta.exclude) line.exclude = meta.exclude;
      line.prompt = meta.prompt;
      return JSON.stringify(line);
    })
    .map((line) => `${line}\n`)
    .join('');
}

export class MetadataParseError extends Error {
  override readonly name = 'MetadataParseError';
}

/** Parses evaluation_metadata.jsonl text; errors name `source` and the 1-based line. Blank lines are skipped. */
export function parseMetadataJsonl(text: string, source = 'evaluation_metadata.jsonl'): PromptMetadata[] {
  const out: PromptMetadata[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      throw new MetadataParseError(`${source} line ${i + 1}: invalid JSON (${(err as Error).message})`);
    }
    const parsed = PromptMetadata.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? issue.path.join('.') || '(root)' : '(root)';
      throw new MetadataParseError(`${source} line ${i + 1}: field ${where}: ${issue?.message ?? 'invalid'}`);
    }
    out.push(parsed.data);
  });
  return out;
}

/** Axis-aligned box [x0, y0, x1, y1] in any consistent unit, y growing downwards (image rows). */
export type Box = readonly [number, number, number, number];

/** GenEval's default position_threshold. */
export const POSITION_THRESHOLD = 0.1;

/**
 * Relations of A relative to B with GenEval's rule: the center offset is shrunk by
 * `threshold * (dimA + dimB)` per axis; a relation holds when the shrunk offset along its axis,
 * divided by the full offset length, exceeds 0.5 in its direction. Returns the signed normalized
 * components too (dx < -0.5 means "left of", dy < -0.5 "above").
 */
export function relativePosition(
  a: Box,
  b: Box,
  threshold = POSITION_THRESHOLD,
): { relations: Set<Relation>; dx: number; dy: number } {
  const ox = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2;
  const oy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2;
  const rx = Math.max(Math.abs(ox) - threshold * (a[2] - a[0] + (b[2] - b[0])), 0) * Math.sign(ox);
  const ry = Math.max(Math.abs(oy) - threshold * (a[3] - a[1] + (b[3] - b[1])), 0) * Math.sign(oy);
  const relations = new Set<Relation>();
  if (Math.abs(rx) < 1e-3 && Math.abs(ry) < 1e-3) return { relations, dx: 0, dy: 0 };
  const norm = Math.hypot(ox, oy);
  const dx = rx / norm;
  const dy = ry / norm;
  if (dx < -0.5) relations.add('left of');
  if (dx > 0.5) relations.add('right of');
  if (dy < -0.5) relations.add('above');
  if (dy > 0.5) relations.add('below');
  return { relations, dx, dy };
}

/** How strongly `relation` holds given normalized components: > 0.5 means it holds (GenEval). */
export function relationStrength(relation: Relation, dx: number, dy: number): number {
  switch (relation) {
    case 'left of':
      return -dx;
    case 'right of':
      return dx;
    case 'above':
      return -dy;
    case 'below':
      return dy;
  }
}
