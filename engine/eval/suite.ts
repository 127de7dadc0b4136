/**
 * GenEval evaluation suites: the prompts and metadata an evaluation judges images against.
 *
 * Two sources:
 * - `parseSuite`: a user's GenEval-format `evaluation_metadata.jsonl` (text or bytes). Every problem
 *   is an `EvalSuiteError` naming the file and the 1-based line: malformed JSON, an unknown tag, a
 *   class or color outside the built-in world's vocabulary (the judge only knows those), a bad field,
 *   a prompt longer than `MAX_SUITE_PROMPT_CHARS`, an empty suite.
 * - `buildWorldSuite`: the built-in world's suite, drawn by `generateSuite` from its own seed, with
 *   every prompt that also occurs in the training data removed and counted, so reported accuracy is
 *   on prompts the model never trained on.
 */
import { COLOR_NAMES, PromptMetadata, SHAPE_CLASSES, TAGS, generateSuite } from '../world/world';
import type { Tag } from '../world/world';
import { MAX_SUITE_PROMPT_CHARS } from '../data/text-limits';

/** A suite file or the built-in suite is unusable; the message names the file and the line. Permanent. */
export class EvalSuiteError extends Error {
  override readonly name = 'EvalSuiteError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    detail: string,
  ) {
    super(`${file}${line === undefined ? '' : ` line ${line}`}: ${detail}`);
  }
}

const TAG_SET = new Set<string>(TAGS);
const CLASS_SET = new Set<string>(SHAPE_CLASSES);
const COLOR_SET = new Set<string>(COLOR_NAMES);

/** Describes vocabulary errors in plain words before the schema's generic messages. */
function vocabularyProblem(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'a line must be a JSON object';
  const obj = json as Record<string, unknown>;
  if (typeof obj.tag === 'string' && !TAG_SET.has(obj.tag))
    return `unknown tag "${obj.tag}" (known tags: ${TAGS.join(', ')})`;
  for (const key of ['include', 'exclude'] as const) {
    const clauses = obj[key];
    if (!Array.isArray(clauses)) continue;
    for (const [i, clause] of clauses.entries()) {
      if (typeof clause !== 'object' || clause === null) continue;
      const c = clause as Record<string, unknown>;
      if (typeof c.class === 'string' && !CLASS_SET.has(c.class))
        return `${key}.${i}.class: unknown class "${c.class}" (the built-in world's classes: ${SHAPE_CLASSES.join(', ')})`;
      if (typeof c.color === 'string' && !COLOR_SET.has(c.color))
        return `${key}.${i}.color: unknown color "${c.color}" (the built-in world's colors: ${COLOR_NAMES.join(', ')})`;
    }
  }
  return undefined;
}

/**
 * Parses GenEval `evaluation_metadata.jsonl` content. `file` names the source in errors. Blank lines
 * are skipped (line numbers still count them); a UTF-8 byte-order mark and CRLF line ends are
 * accepted. Throws `EvalSuiteError` on the first bad line, or when the suite has no prompt.
 */
export function parseSuite(content: string | Uint8Array, file: string): PromptMetadata[] {
  let text: string;
  if (typeof content === 'string') text = content;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(content);
    } catch {
      throw new EvalSuiteError(file, undefined, 'not valid UTF-8 text');
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const prompts: PromptMetadata[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      throw new EvalSuiteError(file, i + 1, `malformed JSON (${(err as Error).message})`);
    }
    const problem = vocabularyProblem(json);
    if (problem !== undefined) throw new EvalSuiteError(file, i + 1, problem);
    const parsed = PromptMetadata.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length ? issue.path.join('.') : '(line)';
      throw new EvalSuiteError(file, i + 1, `field ${where}: ${issue?.message ?? 'invalid'}`);
    }
    if (parsed.data.prompt.length > MAX_SUITE_PROMPT_CHARS)
      throw new EvalSuiteError(
        file,
        i + 1,
        `field prompt: ${parsed.data.prompt.length} characters, more than the ${MAX_SUITE_PROMPT_CHARS} a suite prompt may have`,
      );
    prompts.push(parsed.data);
  });
  if (prompts.length === 0) throw new EvalSuiteError(file, undefined, 'the suite is empty (no prompt lines)');
  return prompts;
}

/** How prompts are compared with training prompts: case, surrounding and repeated spaces ignored. */
export function normalizePrompt(prompt: string): string {
  return prompt.trim().replace(/\s+/g, ' ').toLowerCase();
}

export interface WorldSuiteOptions {
  /**
   * Seed of the suite's prompt stream. Use a label no training stage uses (e.g. `geneval-suite:<root
   * seed>`), so the draw is independent of every training prompt draw.
   */
  seed: number | string;
  /** Prompts kept (config `eval.genevalPrompts`); the tags take turns so they stay balanced. Default: all. */
  prompts?: number;
  /** Draws per tag before de-duplication (`generateSuite`'s perTag). Default 100. */
  perTag?: number;
  /** Every prompt the models trained on (preference captions, corpus captions); these are excluded. */
  trainingPrompts: Iterable<string>;
}

export interface WorldSuite {
  prompts: PromptMetadata[];
  /** Distinct prompts drawn before exclusion. */
  drawn: number;
  /** Distinct prompts drawn per tag, before exclusion. */
  drawnPerTag: Record<Tag, number>;
  /** Drawn prompts removed because they occur in the training data, in total and per tag. */
  excluded: number;
  excludedPerTag: Record<Tag, number>;
  /** The removed prompt texts, in draw order. */
  excludedPrompts: string[];
  /** Tags with no prompt left: the overall score then averages fewer than six tags. */
  missingTags: Tag[];
}

/**
 * The built-in world's GenEval suite without training prompts: `generateSuite({ seed, perTag })`,
 * minus every prompt in `trainingPrompts` (compared by `normalizePrompt`), then the remaining
 * prompts of each tag taken in turn (one of each tag per round, in GenEval's tag order, each in draw
 * order) until `prompts` are chosen. Throws `EvalSuiteError` when nothing is left.
 */
export function buildWorldSuite(options: WorldSuiteOptions): WorldSuite {
  const limit = options.prompts ?? Infinity;
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 1))
    throw new RangeError(`prompts must be a positive integer, got ${limit}`);
  const training = new Set<string>();
  for (const p of options.trainingPrompts) training.add(normalizePrompt(p));
  const drawn = generateSuite({ seed: options.seed, perTag: options.perTag });
  const suite = takeTurns(drawn, training, limit);
  if (suite.prompts.length === 0)
    throw new EvalSuiteError(
      `built-in suite (seed ${String(options.seed)})`,
      undefined,
      `all ${drawn.length} drawn prompts occur in the training data; nothing is left to evaluate`,
    );
  return suite;
}

/**
 * A given suite (from `parseSuite`) without training prompts, chosen as the built-in one is: tags
 * take turns, each in file order, until `limit` prompts are chosen. `training` holds normalized
 * prompts (`normalizePrompt`). Throws `EvalSuiteError` naming `file` when nothing is left.
 */
export function selectSuitePrompts(
  prompts: readonly PromptMetadata[],
  training: ReadonlySet<string>,
  limit: number,
  file: string,
): WorldSuite {
  const suite = takeTurns(prompts, training, limit);
  if (suite.prompts.length === 0)
    throw new EvalSuiteError(
      file,
      undefined,
      `all ${prompts.length} prompts occur in the training data; nothing is left to evaluate`,
    );
  return suite;
}

/** `candidates` minus the normalized `training` prompts, tags taking turns until `limit` are chosen. */
function takeTurns(
  candidates: readonly PromptMetadata[],
  training: ReadonlySet<string>,
  limit: number,
): WorldSuite {
  const excludedPerTag = Object.fromEntries(TAGS.map((t) => [t, 0])) as Record<Tag, number>;
  const drawnPerTag = Object.fromEntries(TAGS.map((t) => [t, 0])) as Record<Tag, number>;
  const excludedPrompts: string[] = [];
  const byTag = new Map<Tag, PromptMetadata[]>(TAGS.map((t) => [t, []]));
  for (const meta of candidates) {
    drawnPerTag[meta.tag]++;
    if (training.has(normalizePrompt(meta.prompt))) {
      excludedPerTag[meta.tag]++;
      excludedPrompts.push(meta.prompt);
    } else byTag.get(meta.tag)!.push(meta);
  }
  const prompts: PromptMetadata[] = [];
  for (let round = 0; prompts.length < limit; round++) {
    let took = false;
    for (const tag of TAGS) {
      const next = byTag.get(tag)![round];
      if (next === undefined || prompts.length >= limit) continue;
      prompts.push(next);
      took = true;
    }
    if (!took) break;
  }
  const present = new Set(prompts.map((p) => p.tag));
  return {
    prompts,
    drawn: candidates.length,
    drawnPerTag,
    excluded: excludedPrompts.length,
    excludedPerTag,
    excludedPrompts,
    missingTags: TAGS.filter((t) => !present.has(t)),
  };
}

/** A tag without GenEval prompts and why it has none, in words for the report. */
export interface ExcludedTag {
  tag: Tag;
  reason: string;
}

/**
 * Why each tag without a GenEval prompt has none, so a reader knows which tags the overall score
 * leaves out and whether the suite, the training data or the prompt limit took them. `source` names
 * where the prompts came from ("the suite file", "the held-out prompts"); `genevalPrompts` is how
 * many of the selection GenEval judges.
 */
export function excludedTags(
  suite: Pick<WorldSuite, 'prompts' | 'drawnPerTag' | 'excludedPerTag'>,
  genevalPrompts: number,
  source: string,
): ExcludedTag[] {
  const judged = new Set(suite.prompts.slice(0, genevalPrompts).map((p) => p.tag));
  return TAGS.filter((tag) => !judged.has(tag)).map((tag) => {
    const drawn = suite.drawnPerTag[tag];
    const excluded = suite.excludedPerTag[tag];
    if (drawn === 0) return { tag, reason: `no prompt of this tag in ${source}` };
    if (excluded === drawn)
      return {
        tag,
        reason:
          drawn === 1
            ? 'its only prompt occurs in the training data'
            : `all ${drawn} of its prompts occur in the training data`,
      };
    return {
      tag,
      reason: `eval.genevalPrompts (${genevalPrompts}) was reached before this tag's turn`,
    };
  });
}
