/**
 * Export of a blinded pairwise study as static files (open index.html from a file:// URL; no
 * server) plus a separate unblinding key.
 *
 * ```ts
 * const comparisons = selectComparisons(samples, { methods: ['dro', 'sft'], pairs: 24, seed: 1 });
 * const checks = attentionChecks(cleanRenders, { seed: 1 });      // clean render vs noise
 * const study = exportStudy({ runId, comparisons, attentionChecks: checks, seed: 1 });
 * // write study.files under report/study/, and study.key as study-key.json somewhere else
 * ```
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeImage, encodePng } from '../data/image-codec';
import { Rng } from '../rng';
import { scaleFor, upscaleNearest } from '../report/image-grid';
import type { SampleGrid } from '../report/report-data';
import type { KeyPair, StudyKey, StudyManifest } from './study-format';
import { KEY_FORMAT, MANIFEST_FORMAT } from './study-format';

export interface StudyImage {
  method: string;
  /** PNG or JPEG bytes. */
  image: Uint8Array;
}

/** Two methods' images for one prompt. */
export interface StudyComparison {
  prompt: string;
  seed?: number;
  images: [StudyImage, StudyImage];
}

/** A pair whose right answer is known, e.g. a clean render of the prompt against noise. */
export interface AttentionCheck {
  prompt: string;
  correct: Uint8Array;
  wrong: Uint8Array;
}

export interface StudyExportInput {
  runId: string;
  comparisons: readonly StudyComparison[];
  attentionChecks: readonly AttentionCheck[];
  /** Seeds the pair order and which image of a pair comes first in study.json. */
  seed: number | string;
  /** Methods in the order human win rates are reported. Default: order of first appearance. */
  methods?: readonly string[];
  /** Default: "study-" and 12 hex digits derived from the run id and the nonce. */
  studyId?: string;
  /** 32 hex digits. Default: random. Fixed only in tests, where reproducible files matter. */
  nonce?: string;
  /** Default "Which image is better?". */
  title?: string;
  /** Default: the prompt-match-then-quality question below. */
  question?: string;
  /** Images are enlarged (nearest-neighbour) to at least this side, in px. Default 256. */
  displaySize?: number;
}

export interface ExportedStudy {
  studyId: string;
  /** The study folder, by relative path: index.html, study.js, study.css, study-data.js, study.json, images/*. */
  files: Record<string, Uint8Array>;
  /** study-key.json: the unblinding key. Never put it in the study folder. */
  key: Uint8Array;
  /** Number of compared pairs and of attention checks. */
  comparisons: number;
  attentionChecks: number;
}

export const KEY_FILE_NAME = 'study-key.json';
export const DEFAULT_QUESTION =
  'Which image matches the text better? If both match equally well, pick the one that looks better.';

const PAGE_DIR = path.join(__dirname, 'page');
const PAGE_FILES = ['index.html', 'study.js', 'study.css'] as const;

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

/** The chosen methods' samples, checked: known, listed once, at least two, one image per prompt. */
function chosenMethods(samples: SampleGrid, methods: readonly string[] | undefined): SampleGrid['methods'] {
  const names = methods ?? samples.methods.map((m) => m.method);
  const chosen = names.map((name) => {
    const m = samples.methods.find((s) => s.method === name);
    if (!m) {
      const known = samples.methods.map((s) => s.method).join(', ');
      throw new RangeError(`study methods: no samples of method "${name}" (this run has: ${known})`);
    }
    if (m.images.length !== samples.prompts.length) {
      throw new RangeError(
        `samples of "${name}": ${m.images.length} images for ${samples.prompts.length} prompts`,
      );
    }
    return m;
  });
  if (new Set(names).size !== names.length) throw new RangeError(`study methods: a method is listed twice`);
  if (chosen.length < 2)
    throw new RangeError(`study methods: need at least two methods, got ${chosen.length}`);
  return chosen;
}

/**
 * How many comparisons `samples` holds for the chosen methods (default: all): every method pair on
 * every prompt. Throws a RangeError for methods selectComparisons would refuse.
 */
export function countComparisons(samples: SampleGrid, options: { methods?: readonly string[] } = {}): number {
  const k = chosenMethods(samples, options.methods).length;
  return ((k * (k - 1)) / 2) * samples.prompts.length;
}

/**
 * `pairs` comparisons of the chosen methods on the same prompts and seeds, spread evenly over the
 * method pairs (round-robin) and over prompts (a shuffled prompt order per method pair).
 * Default methods: all in `samples`; default pairs: every method pair on every prompt
 * (countComparisons). More pairs than that is a RangeError.
 */
export function selectComparisons(
  samples: SampleGrid,
  options: { methods?: readonly string[]; pairs?: number; seed: number | string },
): StudyComparison[] {
  const chosen = chosenMethods(samples, options.methods);
  const rng = new Rng(options.seed).fork('study-comparisons');
  const queues: StudyComparison[][] = [];
  for (let i = 0; i < chosen.length; i++) {
    for (let j = i + 1; j < chosen.length; j++) {
      const a = chosen[i] as SampleGrid['methods'][number];
      const b = chosen[j] as SampleGrid['methods'][number];
      const order = rng.sample(
        samples.prompts.map((_, k) => k),
        samples.prompts.length,
      );
      queues.push(
        order.map((k) => ({
          prompt: samples.prompts[k] as string,
          seed: samples.seeds[k],
          images: [
            { method: a.method, image: a.images[k] as Uint8Array },
            { method: b.method, image: b.images[k] as Uint8Array },
          ],
        })),
      );
    }
  }
  const available = queues.reduce((n, q) => n + q.length, 0);
  const wanted = options.pairs ?? available;
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > available) {
    throw new RangeError(`study pairs: ${wanted} requested, between 1 and ${available} are available`);
  }
  const out: StudyComparison[] = [];
  for (let round = 0; out.length < wanted; round++) {
    for (const q of queues)
      if (round < q.length && out.length < wanted) out.push(q[round] as StudyComparison);
  }
  return out;
}

/** Uniform RGB noise as PNG: the obviously wrong answer of an attention check. */
export function noisePng(width: number, height: number, seed: number | string): Uint8Array {
  const rng = new Rng(seed).fork('study-noise');
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return encodePng({ width, height, data });
}

/** Attention checks from clean renders of prompts: each against noise of the same size. */
export function attentionChecks(
  renders: readonly { prompt: string; image: Uint8Array }[],
  options: { seed: number | string },
): AttentionCheck[] {
  return renders.map((r, i) => {
    const im = decodeImage(r.image, { source: `attention check ${i}` });
    return {
      prompt: r.prompt,
      correct: r.image,
      wrong: noisePng(im.width, im.height, `${options.seed}:${i}`),
    };
  });
}

/**
 * Builds the study folder and its key. Throws a RangeError naming the item on bad input (no
 * comparisons, an undecodable image, unknown methods), before anything is returned.
 */
export function exportStudy(input: StudyExportInput): ExportedStudy {
  if (input.comparisons.length === 0) throw new RangeError('study: no comparisons to show');
  const nonce = input.nonce ?? randomBytes(16).toString('hex');
  if (!/^[0-9a-f]{32}$/.test(nonce)) throw new RangeError('study nonce: expected 32 lowercase hex digits');
  // The id is derived from the run, so two runs' studies never share one.
  const studyId = input.studyId ?? `study-${sha256(`study-id:${input.runId}:${nonce}`).slice(0, 12)}`;
  const appearing = [...new Set(input.comparisons.flatMap((c) => c.images.map((im) => im.method)))];
  const methods = input.methods ? [...input.methods] : appearing;
  for (const m of appearing) {
    if (!methods.includes(m)) throw new RangeError(`study methods: "${m}" is compared but not listed`);
  }
  input.comparisons.forEach((c, i) => {
    if (c.images[0].method === c.images[1].method)
      throw new RangeError(`study comparisons[${i}]: both images are from "${c.images[0].method}"`);
  });

  const rng = new Rng(input.seed).fork('study-export');
  const displaySize = input.displaySize ?? 256;
  type Item = { prompt: string; images: [Uint8Array, Uint8Array]; key: KeyPair };
  const items: Item[] = [];
  for (const c of input.comparisons) {
    const swap = rng.bernoulli(0.5);
    const [first, second] = swap ? [c.images[1], c.images[0]] : c.images;
    items.push({
      prompt: c.prompt,
      images: [first.image, second.image],
      key: {
        kind: 'compare',
        methods: [first.method, second.method],
        ...(c.seed === undefined ? {} : { seed: c.seed }),
      },
    });
  }
  for (const a of input.attentionChecks) {
    const swap = rng.bernoulli(0.5);
    items.push({
      prompt: a.prompt,
      images: swap ? [a.wrong, a.correct] : [a.correct, a.wrong],
      key: { kind: 'attention', correct: swap ? 1 : 0 },
    });
  }
  // Ids are given after shuffling, so neither an id nor a position tells a check from a comparison.
  const order = rng.sample(items, items.length);
  const digits = Math.max(2, String(order.length).length);

  const files: Record<string, Uint8Array> = {};
  const pairs: StudyManifest['pairs'] = [];
  const keyPairs: Record<string, KeyPair> = {};
  order.forEach((item, i) => {
    const id = `q${String(i + 1).padStart(digits, '0')}`;
    const paths = item.images.map((bytes, slot) => {
      const image = decodeImage(bytes, { source: `study pair "${item.prompt}" image ${slot}` });
      const big = upscaleNearest(image, scaleFor(Math.max(image.width, image.height), displaySize));
      // Named by a keyed hash of the slot, never the content or method, so names reveal nothing.
      const file = `images/${sha256(`${nonce}:${id}:${slot}`).slice(0, 16)}.png`;
      files[file] = encodePng(big);
      return file;
    }) as [string, string];
    pairs.push({ id, prompt: item.prompt, images: paths });
    keyPairs[id] = item.key;
  });

  const key: StudyKey = {
    format: KEY_FORMAT,
    version: 1,
    studyId,
    runId: input.runId,
    nonce,
    methods,
    pairs: keyPairs,
  };
  const keyBytes = new TextEncoder().encode(`${JSON.stringify(key, null, 2)}\n`);
  const manifest: StudyManifest = {
    format: MANIFEST_FORMAT,
    version: 1,
    studyId,
    title: input.title ?? 'Which image is better?',
    question: input.question ?? DEFAULT_QUESTION,
    keySha256: sha256(keyBytes),
    pairs,
  };
  const text = new TextEncoder();
  for (const name of PAGE_FILES) files[name] = new Uint8Array(fs.readFileSync(path.join(PAGE_DIR, name)));
  files['study.json'] = text.encode(`${JSON.stringify(manifest, null, 2)}\n`);
  files['study-data.js'] = text.encode(studyDataScript(manifest));
  return {
    studyId,
    files,
    key: keyBytes,
    comparisons: input.comparisons.length,
    attentionChecks: input.attentionChecks.length,
  };
}

/**
 * The manifest as a script assigning `window.DRO_STUDY`. JSON is valid JavaScript; `<`, `>`, `&`
 * and the two line separators are written as \u escapes anyway so no prompt can read as markup or
 * end a line if the file is ever inlined or viewed as HTML.
 */
export function studyDataScript(manifest: StudyManifest): string {
  const json = JSON.stringify(manifest).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `// The study's pairs, generated by dro study export; read by study.js.\nwindow.DRO_STUDY = ${json};\n`;
}
