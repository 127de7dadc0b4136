/**
 * Import of a study's downloaded answers: validate every file against study.json and the key, drop
 * participants who fail attention checks, and compute human win rates per method pair with Wilson
 * 95% intervals.
 *
 * Validation is all-or-nothing: the first problem throws a StudyImportError naming the file and the
 * problem, before any result exists, so the caller never writes a report from part of the answers.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { HumanStudyRow, HumanStudySummary } from '../report/report-data';
import { wilsonInterval } from '../stats/wilson';
import type { StudyKey, StudyManifest, StudyResults } from './study-format';
import {
  StudyKey as StudyKeySchema,
  StudyManifest as ManifestSchema,
  StudyResults as ResultsSchema,
} from './study-format';
import { describeZodError } from './study-format';

/** A named file's bytes; the name is what error messages show (give the path that was read). */
export interface NamedFile {
  name: string;
  bytes: Uint8Array;
}

/** A study file that cannot be used; `file` is the name it was given under. */
export class StudyImportError extends Error {
  override readonly name = 'StudyImportError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export interface StudyImportOptions {
  /** Wrong attention-check answers a participant may give and still count. Default 0. */
  maxAttentionErrors?: number;
  /**
   * A participant whose median answer time (`ms` of the answers: from showing a pair to the
   * choice) is below this is flagged as implausibly fast. Flagged participants still count; the
   * caller reports them. Default DEFAULT_MIN_MEDIAN_ANSWER_MS; 0 flags nobody.
   */
  minMedianAnswerMs?: number;
  /**
   * The run the answers are imported into: a key exported from another run is refused (the study
   * id and the key's digest in study.json bind the study to its run).
   */
  runId?: string;
}

/** Below this median time per answer a participant is flagged (looking at two images and a prompt). */
export const DEFAULT_MIN_MEDIAN_ANSWER_MS = 800;

export interface ParticipantOutcome {
  participantId: string;
  file: string;
  attentionCorrect: number;
  attentionTotal: number;
  /** False when the participant failed the attention checks and was dropped. */
  kept: boolean;
  /** Median of the answers' `ms`; undefined when fewer than half of the answers carry one. */
  medianAnswerMs?: number;
  /** True when medianAnswerMs is below the threshold: implausibly fast answers. */
  fast: boolean;
}

/** One answer as imported: the pair and the method (or, for a check, whether it was right). */
export interface ImportedAnswer {
  participantId: string;
  pairId: string;
  /** The chosen image path, exactly as the page recorded it. */
  choice: string;
  /** Method of the chosen image; undefined for attention checks. */
  method?: string;
  /** For attention checks: whether the choice was the known right one. */
  correct?: boolean;
}

export interface StudyImport {
  studyId: string;
  runId: string;
  participants: ParticipantOutcome[];
  /** The participants flagged for implausibly fast answers (kept or not), in file order. */
  fast: ParticipantOutcome[];
  /** The threshold the flags used. */
  minMedianAnswerMs: number;
  /** Every answer of every participant, kept or not, in file order. */
  answers: ImportedAnswer[];
  /** Win rates over the kept participants, method pairs in the key's method order. */
  rows: HumanStudyRow[];
  /** What the run report shows. */
  summary: HumanStudySummary;
}

function parseJson<T>(file: NamedFile, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.bytes));
  } catch (err) {
    throw new StudyImportError(file.name, `not a JSON ${what} (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new StudyImportError(file.name, `not a valid ${what}: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * Reads study.json and the key and checks they belong together (digest, study id, pair ids) and,
 * with `runId`, that the key was exported from that run.
 */
export function loadStudy(
  manifestFile: NamedFile,
  keyFile: NamedFile,
  options: { runId?: string } = {},
): { manifest: StudyManifest; key: StudyKey } {
  const manifest = parseJson(manifestFile, ManifestSchema, 'study.json (dro-study)');
  const digest = createHash('sha256').update(keyFile.bytes).digest('hex');
  if (digest !== manifest.keySha256) {
    throw new StudyImportError(
      keyFile.name,
      `SHA-256 ${digest} differs from the key digest ${manifest.keySha256} recorded in ${manifestFile.name}: the key was edited or belongs to another study`,
    );
  }
  const key = parseJson(keyFile, StudyKeySchema, 'study key (dro-study-key)');
  if (key.studyId !== manifest.studyId) {
    throw new StudyImportError(
      keyFile.name,
      `study id "${key.studyId}" is not ${manifestFile.name}'s "${manifest.studyId}"`,
    );
  }
  const keyIds = Object.keys(key.pairs).sort();
  const pageIds = manifest.pairs.map((p) => p.id).sort();
  if (keyIds.join() !== pageIds.join()) {
    throw new StudyImportError(keyFile.name, `pair ids do not match those of ${manifestFile.name}`);
  }
  if (options.runId !== undefined && key.runId !== options.runId) {
    throw new StudyImportError(
      keyFile.name,
      `study ${key.studyId} was exported from run "${key.runId}", not "${options.runId}": its answers belong to run ${key.runId}`,
    );
  }
  return { manifest, key };
}

/**
 * Validates and scores result files. Each file must be this study's (study id), answer every pair
 * exactly once with one of the pair's two images, and come from a participant no other file comes
 * from. Throws StudyImportError on the first problem.
 */
export function importStudyResults(
  manifestFile: NamedFile,
  keyFile: NamedFile,
  resultFiles: readonly NamedFile[],
  options: StudyImportOptions = {},
): StudyImport {
  const { manifest, key } = loadStudy(manifestFile, keyFile, options);
  if (resultFiles.length === 0) throw new StudyImportError('(results)', 'no result files given');
  const maxErrors = options.maxAttentionErrors ?? 0;
  const minMedianMs = options.minMedianAnswerMs ?? DEFAULT_MIN_MEDIAN_ANSWER_MS;
  if (!(minMedianMs >= 0 && Number.isFinite(minMedianMs)))
    throw new RangeError(`minMedianAnswerMs: ${minMedianMs} is not a time in ms`);
  const pairs = new Map(manifest.pairs.map((p) => [p.id, p]));

  const seenParticipant = new Map<string, string>();
  const perFile: { file: string; results: StudyResults }[] = [];
  for (const file of resultFiles) {
    const results = parseJson(file, ResultsSchema, 'study result (dro-study-results)');
    if (results.studyId !== manifest.studyId) {
      throw new StudyImportError(
        file.name,
        `study id "${results.studyId}" is not this study's "${manifest.studyId}" (answers to another study?)`,
      );
    }
    const earlier = seenParticipant.get(results.participantId);
    if (earlier !== undefined) {
      throw new StudyImportError(
        file.name,
        `participant "${results.participantId}" answered twice (also in ${earlier}); keep one file`,
      );
    }
    seenParticipant.set(results.participantId, file.name);
    const answered = new Map<string, number>();
    results.answers.forEach((a, i) => {
      const pair = pairs.get(a.pairId);
      if (!pair) throw new StudyImportError(file.name, `answers[${i}]: unknown pair id "${a.pairId}"`);
      const first = answered.get(a.pairId);
      if (first !== undefined) {
        throw new StudyImportError(
          file.name,
          `answers[${i}]: duplicate answer to pair ${a.pairId} (first at answers[${first}])`,
        );
      }
      answered.set(a.pairId, i);
      if (!pair.images.includes(a.choice)) {
        throw new StudyImportError(
          file.name,
          `answers[${i}]: choice "${a.choice}" is not one of pair ${a.pairId}'s images`,
        );
      }
    });
    const missing = manifest.pairs.filter((p) => !answered.has(p.id)).map((p) => p.id);
    if (missing.length) {
      throw new StudyImportError(
        file.name,
        `no answer to ${missing.length} of ${manifest.pairs.length} pairs (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''})`,
      );
    }
    perFile.push({ file: file.name, results });
  }

  const participants: ParticipantOutcome[] = [];
  const answers: ImportedAnswer[] = [];
  const wins = new Map<string, { a: string; b: string; winsA: number; total: number }>();
  const methodRank = new Map(key.methods.map((m, i) => [m, i]));
  for (const { file, results } of perFile) {
    let attentionCorrect = 0;
    let attentionTotal = 0;
    const own: ImportedAnswer[] = [];
    for (const a of results.answers) {
      const pair = pairs.get(a.pairId) as StudyManifest['pairs'][number];
      const slot = pair.images.indexOf(a.choice) as 0 | 1;
      const k = key.pairs[a.pairId] as StudyKey['pairs'][string];
      if (k.kind === 'attention') {
        attentionTotal++;
        if (slot === k.correct) attentionCorrect++;
        own.push({
          participantId: results.participantId,
          pairId: a.pairId,
          choice: a.choice,
          correct: slot === k.correct,
        });
      } else {
        own.push({
          participantId: results.participantId,
          pairId: a.pairId,
          choice: a.choice,
          method: k.methods[slot],
        });
      }
    }
    const kept = attentionTotal - attentionCorrect <= maxErrors;
    const medianAnswerMs = medianTime(results.answers);
    participants.push({
      participantId: results.participantId,
      file,
      attentionCorrect,
      attentionTotal,
      kept,
      ...(medianAnswerMs === undefined ? {} : { medianAnswerMs }),
      fast: medianAnswerMs !== undefined && medianAnswerMs < minMedianMs,
    });
    answers.push(...own);
    if (!kept) continue;
    for (const a of own) {
      if (a.method === undefined) continue;
      const k = key.pairs[a.pairId] as Extract<StudyKey['pairs'][string], { kind: 'compare' }>;
      const [m0, m1] = k.methods;
      // Rows read "a vs b" with a listed before b in the key's method order.
      const [a0, b0] =
        (methodRank.get(m0) ?? Infinity) <= (methodRank.get(m1) ?? Infinity) ? [m0, m1] : [m1, m0];
      const id = `${a0}\u0000${b0}`;
      const w = wins.get(id) ?? { a: a0, b: b0, winsA: 0, total: 0 };
      w.total++;
      if (a.method === a0) w.winsA++;
      wins.set(id, w);
    }
  }
  const rows: HumanStudyRow[] = [...wins.values()]
    .sort(
      (x, y) =>
        (methodRank.get(x.a) ?? 0) - (methodRank.get(y.a) ?? 0) ||
        (methodRank.get(x.b) ?? 0) - (methodRank.get(y.b) ?? 0),
    )
    .map((w) => ({ ...w, winRate: w.winsA / w.total, ci95: wilsonInterval(w.winsA, w.total) }));
  const keptCount = participants.filter((p) => p.kept).length;
  return {
    studyId: manifest.studyId,
    runId: key.runId,
    participants,
    fast: participants.filter((p) => p.fast),
    minMedianAnswerMs: minMedianMs,
    answers,
    rows,
    summary: {
      studyId: manifest.studyId,
      participants: keptCount,
      dropped: participants.length - keptCount,
      rows,
    },
  };
}

/** Median `ms` of the answers that carry a finite, non-negative one, if at least half do. */
function medianTime(answers: readonly StudyResults['answers'][number][]): number | undefined {
  const times = answers
    .map((a) => a.ms)
    .filter((ms): ms is number => ms !== undefined && Number.isFinite(ms) && ms >= 0)
    .sort((a, b) => a - b);
  if (times.length === 0 || times.length * 2 < answers.length) return undefined;
  const mid = times.length >> 1;
  return times.length % 2 === 1 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
}
