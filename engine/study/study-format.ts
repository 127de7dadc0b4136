/**
 * The three files of a blinded study, as zod schemas:
 * - study.json (also embedded in the page as study-data.js): the pairs as the participant sees
 *   them, prompt and two opaque image paths each, with no method names and no hint of which pairs
 *   are attention checks; plus the SHA-256 of the key, so an edited key is caught on import.
 * - study-key.json (kept away from the page): which method made each image, which image of each
 *   attention check is correct, and a random nonce that makes the key's digest unguessable.
 * - study-results-<participant>.json: what the page downloads, one answer per pair.
 */
import { z } from 'zod';

export const MANIFEST_FORMAT = 'dro-study';
export const KEY_FORMAT = 'dro-study-key';
export const RESULTS_FORMAT = 'dro-study-results';

/**
 * Control, format (bidi overrides, zero-width), private-use, unassigned and line-separator
 * characters: a participant id is shown in terminals and reports, where these hide or rewrite text.
 */
const CONTROL = /[\p{C}\p{Zl}\p{Zp}]/u;

/** The largest result file an import reads (the answers to a 10,000-pair study take about 1.5 MB). */
export const MAX_RESULTS_FILE_BYTES = 8 * 1024 * 1024;

const PairId = z.string().regex(/^q\d{2,}$/, 'a pair id like "q07"');
const ImagePath = z.string().regex(/^images\/[0-9a-f]{16}\.png$/, 'a path like "images/<16 hex>.png"');

export const StudyManifest = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(1),
  studyId: z.string().min(1),
  title: z.string(),
  question: z.string(),
  /** SHA-256 (hex) of the exact bytes of study-key.json. */
  keySha256: z.string().regex(/^[0-9a-f]{64}$/),
  pairs: z.array(z.strictObject({ id: PairId, prompt: z.string(), images: z.tuple([ImagePath, ImagePath]) })),
});
export type StudyManifest = z.infer<typeof StudyManifest>;

export const KeyPair = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('compare'),
    /** Method of images[0] and images[1] of the pair in study.json. */
    methods: z.tuple([z.string().min(1), z.string().min(1)]),
    seed: z.number().optional(),
  }),
  z.strictObject({
    kind: z.literal('attention'),
    /** Index (0 or 1) in the pair's images of the correct answer. */
    correct: z.union([z.literal(0), z.literal(1)]),
  }),
]);
export type KeyPair = z.infer<typeof KeyPair>;

export const StudyKey = z.strictObject({
  format: z.literal(KEY_FORMAT),
  version: z.literal(1),
  studyId: z.string().min(1),
  runId: z.string(),
  /** 128 random bits (hex): without it the key's digest could be brute-forced from study.json. */
  nonce: z.string().regex(/^[0-9a-f]{32}$/),
  /** Methods in the order win rates are reported (row "a vs b" has a before b here). */
  methods: z.array(z.string().min(1)).min(1),
  pairs: z.record(PairId, KeyPair),
});
export type StudyKey = z.infer<typeof StudyKey>;

export const StudyAnswer = z.object({
  pairId: z.string(),
  /** Image path the participant chose. */
  choice: z.string(),
  left: z.string().optional(),
  right: z.string().optional(),
  /** 1-based screen number the pair was shown at. */
  position: z.number().int().optional(),
  /** Milliseconds from showing the pair to the choice. */
  ms: z.number().optional(),
});
export type StudyAnswer = z.infer<typeof StudyAnswer>;

export const StudyResults = z.object({
  format: z.literal(RESULTS_FORMAT),
  version: z.literal(1),
  studyId: z.string(),
  participantId: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(64)
    .refine((id) => !CONTROL.test(id), {
      error: (issue) => {
        const c = (issue.input as string).match(CONTROL)?.[0] ?? '';
        return `must not contain control or invisible characters (U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')})`;
      },
    }),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  answers: z.array(StudyAnswer),
});
export type StudyResults = z.infer<typeof StudyResults>;

/** "answers[3].choice: expected string" for the first problems zod found. */
export function describeZodError(error: z.ZodError, limit = 3): string {
  const parts = error.issues.slice(0, limit).map((issue) => {
    const where = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
      .join('');
    return `${where || '(top level)'}: ${issue.message}`;
  });
  const more = error.issues.length > limit ? ` (and ${error.issues.length - limit} more)` : '';
  return parts.join('; ') + more;
}
