/**
 * Exact renderer for the built-in world, and scene samplers.
 *
 * A scene is a list of upright shapes on a plain background. Coordinates are fractions of the
 * image side: (cx, cy) is the center of the shape's tight bounding box (y grows downwards) and
 * `size` its side, so every shape touches all four sides of its box. Pixels are anti-aliased by
 * supersampling (`supersample`^2 samples on a regular grid per pixel), which makes a pixel the
 * exact coverage-weighted mix of object and background colors; the detector relies on that to
 * unmix edges.
 *
 * `sceneForMetadata` samples a scene that satisfies a prompt's GenEval metadata (counts, colors,
 * positions with a margin beyond GenEval's threshold). `sampleCaptionedScene` pairs a scene with a
 * caption that is, with configurable probabilities, wrong or partial, as captions of web data are.
 */
import type { RgbImageF32 } from '../data/image';
import type { Rng } from '../rng';
import {
  BACKGROUND_RGB,
  COLOR_NAMES,
  COLOR_RGB,
  SHAPE_CLASSES,
  TAGS,
  generatePrompt,
  numberWord,
  plural,
  relationStrength,
  relativePosition,
  withArticle,
} from './world';
import type { Box, ColorName, PromptMetadata, Relation, ShapeClass, Tag } from './world';

export interface SceneObject {
  class: ShapeClass;
  color: ColorName;
  /** Box center, fraction of the image side. */
  cx: number;
  cy: number;
  /** Box side, fraction of the image side. */
  size: number;
}

export interface Scene {
  objects: SceneObject[];
}

export interface RenderOptions {
  /** Image side in pixels (square images). Default 24. */
  resolution?: number;
  /** Samples per pixel along each axis. Default 4 (16 samples per pixel). */
  supersample?: number;
  /** Background sRGB color. Default BACKGROUND_RGB (mid gray). */
  background?: readonly [number, number, number];
}

export const DEFAULT_RESOLUTION = 24;
export const DEFAULT_SUPERSAMPLE = 4;

/** Half-width of a cross's arms and inner radius of a ring, as fractions of the box side. */
export const CROSS_HALF_WIDTH = 0.19;
export const RING_INNER_RADIUS = 0.26;

/** Whether box-relative point (u, v) in [-0.5, 0.5]^2 lies inside the shape. */
export function insideShape(cls: ShapeClass, u: number, v: number): boolean {
  if (u < -0.5 || u > 0.5 || v < -0.5 || v > 0.5) return false;
  switch (cls) {
    case 'circle':
      return u * u + v * v <= 0.25;
    case 'square':
      return true;
    case 'triangle':
      // Apex at the top center, base along the bottom edge.
      return Math.abs(u) <= (v + 0.5) / 2;
    case 'cross':
      return Math.abs(u) <= CROSS_HALF_WIDTH || Math.abs(v) <= CROSS_HALF_WIDTH;
    case 'ring': {
      const r2 = u * u + v * v;
      return r2 <= 0.25 && r2 >= RING_INNER_RADIUS * RING_INNER_RADIUS;
    }
  }
}

/** Tight bounding box of an object, in pixels of an image of side `resolution`. */
export function objectBox(obj: SceneObject, resolution: number): Box {
  const h = obj.size / 2;
  return [
    (obj.cx - h) * resolution,
    (obj.cy - h) * resolution,
    (obj.cx + h) * resolution,
    (obj.cy + h) * resolution,
  ];
}

/**
 * Fraction of each pixel of the w x h window at (x0, y0) covered by a shape with box center
 * (cxPx, cyPx) and side sizePx, all in pixels. Shared with the detector's template fit.
 */
export function coverageWindow(
  cls: ShapeClass,
  cxPx: number,
  cyPx: number,
  sizePx: number,
  x0: number,
  y0: number,
  w: number,
  h: number,
  supersample = DEFAULT_SUPERSAMPLE,
): Float32Array {
  const out = new Float32Array(w * h);
  const inv = 1 / sizePx;
  const n = supersample * supersample;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let hits = 0;
      for (let sy = 0; sy < supersample; sy++) {
        const v = (y0 + y + (sy + 0.5) / supersample - cyPx) * inv;
        for (let sx = 0; sx < supersample; sx++) {
          const u = (x0 + x + (sx + 0.5) / supersample - cxPx) * inv;
          if (insideShape(cls, u, v)) hits++;
        }
      }
      out[y * w + x] = hits / n;
    }
  }
  return out;
}

/** Renders a scene; later objects paint over earlier ones. Values in [0, 1]. */
export function renderScene(scene: Scene, options: RenderOptions = {}): RgbImageF32 {
  const res = options.resolution ?? DEFAULT_RESOLUTION;
  const ss = options.supersample ?? DEFAULT_SUPERSAMPLE;
  if (!Number.isInteger(res) || res < 4)
    throw new RangeError(`renderScene: resolution must be an integer >= 4, got ${res}`);
  if (!Number.isInteger(ss) || ss < 1)
    throw new RangeError(`renderScene: supersample must be a positive integer, got ${ss}`);
  const bg = options.background ?? BACKGROUND_RGB;
  const data = new Float32Array(res * res * 3);
  const boxes = scene.objects.map((o) => objectBox(o, res));
  const colors = scene.objects.map((o) => COLOR_RGB[o.color]);
  const n = ss * ss;
  for (let y = 0; y < res; y++) {
    for (let x = 0; x < res; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < ss; sy++) {
        const py = y + (sy + 0.5) / ss;
        for (let sx = 0; sx < ss; sx++) {
          const px = x + (sx + 0.5) / ss;
          let color: readonly number[] = bg;
          for (let k = scene.objects.length - 1; k >= 0; k--) {
            const box = boxes[k] as Box;
            if (px < box[0] || px > box[2] || py < box[1] || py > box[3]) continue;
            const obj = scene.objects[k] as SceneObject;
            const side = box[2] - box[0];
            if (insideShape(obj.class, (px - box[0]) / side - 0.5, (py - box[1]) / side - 0.5)) {
              color = colors[k] as readonly number[];
              break;
            }
          }
          r += color[0] as number;
          g += color[1] as number;
          b += color[2] as number;
        }
      }
      const i = (y * res + x) * 3;
      data[i] = r / n / 255;
      data[i + 1] = g / n / 255;
      data[i + 2] = b / n / 255;
    }
  }
  return { width: res, height: res, data };
}

export interface SceneSamplingOptions {
  /** Probability of adding distractor objects of classes the prompt does not mention. Default 0. */
  distractorProb?: number;
  /** Most distractors added when adding any. Default 1. */
  maxDistractors?: number;
}

/** Smallest gap between object boxes and from boxes to the image border (fraction of the side). */
const GAP = 0.09;
const BORDER = 0.03;
/** Positions are placed so GenEval's normalized component exceeds this (it needs only 0.5). */
const POSITION_MARGIN = 0.7;

function sizeRange(total: number): [number, number] {
  if (total <= 1) return [0.34, 0.5];
  if (total === 2) return [0.3, 0.4];
  if (total === 3) return [0.29, 0.35];
  return [0.28, 0.32];
}

function boxesClear(a: SceneObject, b: SceneObject): boolean {
  const half = (a.size + b.size) / 2 + GAP;
  return Math.abs(a.cx - b.cx) >= half || Math.abs(a.cy - b.cy) >= half;
}

function unitBox(o: SceneObject): Box {
  return objectBox(o, 1);
}

interface Slot {
  class: ShapeClass;
  color: ColorName;
  /** Index (into slots) of the object this one must stand in `relation` to. */
  relativeTo?: { slot: number; relation: Relation };
}

/** Three or four objects: one per random cell of a 2x2 grid, jittered inside its cell. */
function placeInGrid(slots: Slot[], rng: Rng): SceneObject[] {
  const [lo, hi] = sizeRange(slots.length);
  const cells = rng.sample([0, 1, 2, 3], slots.length);
  return slots.map((slot, i) => {
    const cell = cells[i] as number;
    const size = rng.uniform(lo, hi);
    const cellX = (cell % 2) * 0.5;
    const cellY = Math.floor(cell / 2) * 0.5;
    // Inner cell edges keep half the gap, outer edges keep the border.
    const minX = cellX + (cellX === 0 ? BORDER : GAP / 2) + size / 2;
    const maxX = cellX + 0.5 - (cellX === 0 ? GAP / 2 : BORDER) - size / 2;
    const minY = cellY + (cellY === 0 ? BORDER : GAP / 2) + size / 2;
    const maxY = cellY + 0.5 - (cellY === 0 ? GAP / 2 : BORDER) - size / 2;
    return {
      class: slot.class,
      color: slot.color,
      cx: rng.uniform(minX, maxX),
      cy: rng.uniform(minY, maxY),
      size,
    };
  });
}

function placeSlots(slots: Slot[], rng: Rng, what: string): SceneObject[] {
  if (slots.length > 4) throw new RangeError(`scenes hold at most 4 objects, ${what} needs ${slots.length}`);
  if (slots.length >= 3 && slots.every((s) => !s.relativeTo)) return placeInGrid(slots, rng);
  const [lo, hi] = sizeRange(slots.length);
  // Each object gets many tries given the ones before it; the whole layout restarts on a dead end.
  for (let attempt = 0; attempt < 200; attempt++) {
    const objects: SceneObject[] = [];
    for (const slot of slots) {
      for (let t = 0; t < 200; t++) {
        const size = rng.uniform(lo, hi);
        const half = size / 2 + BORDER;
        const obj: SceneObject = {
          class: slot.class,
          color: slot.color,
          cx: rng.uniform(half, 1 - half),
          cy: rng.uniform(half, 1 - half),
          size,
        };
        if (!objects.every((other) => boxesClear(obj, other))) continue;
        if (slot.relativeTo) {
          const target = objects[slot.relativeTo.slot] as SceneObject;
          const { dx, dy } = relativePosition(unitBox(obj), unitBox(target));
          if (relationStrength(slot.relativeTo.relation, dx, dy) < POSITION_MARGIN) continue;
        }
        objects.push(obj);
        break;
      }
      if (objects.length < slots.indexOf(slot) + 1) break;
    }
    if (objects.length === slots.length) return objects;
  }
  throw new Error(`could not place ${slots.length} objects for ${what}`);
}

/**
 * A scene satisfying `meta` under GenEval's rules: exactly the requested objects (counting prompts
 * get exactly `count`), requested colors (others drawn at random), positions with a margin.
 */
export function sceneForMetadata(meta: PromptMetadata, rng: Rng, options: SceneSamplingOptions = {}): Scene {
  const slots: Slot[] = [];
  const groupFirstSlot: number[] = [];
  for (const clause of meta.include) {
    groupFirstSlot.push(slots.length);
    for (let k = 0; k < clause.count; k++) {
      const slot: Slot = { class: clause.class, color: clause.color ?? rng.choice(COLOR_NAMES) };
      if (clause.position) {
        const [relation, group] = clause.position;
        const targetGroup = meta.include[group];
        if (!targetGroup || (targetGroup.count !== 1 && clause.count !== 1)) {
          throw new RangeError(`sceneForMetadata: unsupported position clause in "${meta.prompt}"`);
        }
        slot.relativeTo = { slot: groupFirstSlot[group] as number, relation };
      }
      slots.push(slot);
    }
  }
  const mentioned = new Set<ShapeClass>([...meta.include, ...(meta.exclude ?? [])].map((c) => c.class));
  const free = SHAPE_CLASSES.filter((c) => !mentioned.has(c));
  const distractorProb = options.distractorProb ?? 0;
  if (free.length > 0 && distractorProb > 0 && rng.bernoulli(distractorProb)) {
    const max = Math.max(1, Math.min(options.maxDistractors ?? 1, 4 - slots.length));
    const k = rng.intBetween(1, max);
    for (let i = 0; i < k && slots.length < 4; i++)
      slots.push({ class: rng.choice(free), color: rng.choice(COLOR_NAMES) });
  }
  return { objects: placeSlots(slots, rng, `"${meta.prompt}"`) };
}

export type CaptionKind = 'exact' | 'partial' | 'wrong';

export interface CaptionedScene {
  /** What the scene really shows (GenEval metadata). */
  metadata: PromptMetadata;
  scene: Scene;
  /** The caption paired with the scene; equals metadata.prompt when `kind` is 'exact'. */
  caption: string;
  kind: CaptionKind;
}

export interface CaptionNoiseOptions extends SceneSamplingOptions {
  /** Probability that the caption contradicts the scene. Default 0.15. */
  pWrong?: number;
  /** Probability that the caption leaves out part of the scene. Default 0.15. */
  pPartial?: number;
  /** Tags to draw from. Default all six. */
  tags?: readonly Tag[];
}

function other<T>(rng: Rng, items: readonly T[], not: T): T {
  return rng.choice(items.filter((x) => x !== not));
}

function wrongCaption(meta: PromptMetadata, rng: Rng): string {
  const [g0, g1] = meta.include;
  const a = g0 as NonNullable<typeof g0>;
  switch (meta.tag) {
    case 'single_object':
      return `a photo of ${withArticle(other(rng, SHAPE_CLASSES, a.class))}`;
    case 'two_object': {
      const b = (g1 as NonNullable<typeof g1>).class;
      const replacement = rng.choice(SHAPE_CLASSES.filter((c) => c !== a.class && c !== b));
      return `a photo of ${withArticle(a.class)} and ${withArticle(replacement)}`;
    }
    case 'counting': {
      const n = other(rng, [1, 2, 3, 4, 5], a.count);
      return `a photo of ${numberWord(n)} ${n === 1 ? a.class : plural(a.class)}`;
    }
    case 'colors':
      return `a photo of ${withArticle(other(rng, COLOR_NAMES, a.color ?? 'red'))} ${a.class}`;
    case 'position': {
      const b = g1 as NonNullable<typeof g1>;
      const [relation] = b.position ?? ['left of'];
      const opposite: Record<Relation, Relation> = {
        'left of': 'right of',
        'right of': 'left of',
        above: 'below',
        below: 'above',
      };
      return `a photo of ${withArticle(b.class)} ${opposite[relation]} ${withArticle(a.class)}`;
    }
    case 'color_attr': {
      // Attribute-binding error: colors swapped between the two objects.
      const b = g1 as NonNullable<typeof g1>;
      return `a photo of ${withArticle(b.color ?? 'red')} ${a.class} and ${withArticle(a.color ?? 'red')} ${b.class}`;
    }
  }
}

function partialCaption(meta: PromptMetadata, rng: Rng): string {
  const [g0, g1] = meta.include;
  const a = g0 as NonNullable<typeof g0>;
  switch (meta.tag) {
    case 'single_object':
      return 'a photo of a shape';
    case 'two_object':
      return `a photo of ${withArticle(rng.choice([a.class, (g1 as NonNullable<typeof g1>).class]))}`;
    case 'counting':
      return `a photo of ${plural(a.class)}`;
    case 'colors':
      return `a photo of ${withArticle(a.class)}`;
    case 'position':
      return `a photo of ${withArticle((g1 as NonNullable<typeof g1>).class)} and ${withArticle(a.class)}`;
    case 'color_attr':
      return `a photo of ${withArticle(a.color ?? 'red')} ${a.class} and ${withArticle((g1 as NonNullable<typeof g1>).class)}`;
  }
}

/** A random scene with a caption that is exact, partial or wrong with the configured probabilities. */
export function sampleCaptionedScene(rng: Rng, options: CaptionNoiseOptions = {}): CaptionedScene {
  const pWrong = options.pWrong ?? 0.15;
  const pPartial = options.pPartial ?? 0.15;
  if (pWrong < 0 || pPartial < 0 || pWrong + pPartial > 1) {
    throw new RangeError(
      `sampleCaptionedScene: need pWrong, pPartial >= 0 and pWrong + pPartial <= 1 (got ${pWrong}, ${pPartial})`,
    );
  }
  const metadata = generatePrompt(rng, rng.choice(options.tags ?? TAGS));
  const scene = sceneForMetadata(metadata, rng, options);
  const u = rng.uniform();
  if (u < pWrong) return { metadata, scene, caption: wrongCaption(metadata, rng), kind: 'wrong' };
  if (u < pWrong + pPartial)
    return { metadata, scene, caption: partialCaption(metadata, rng), kind: 'partial' };
  return { metadata, scene, caption: metadata.prompt, kind: 'exact' };
}
