/**
 * Word-level tokenizer for the built-in world: lower-cased words and punctuation marks, each a
 * vocabulary entry. Sequences are [bos, words..., eos, pad...] of exactly `maxLength`, as CLIP's.
 */
export interface WordTokenizerConfig {
  /** Ordinary words; ids follow the special tokens in this order. */
  words: string[];
  /** Total sequence length including bos and eos. */
  maxLength: number;
  bosToken: string;
  eosToken: string;
  /** Padding token; SD's CLIP tokenizer pads with its eos token, which is allowed here too. */
  padToken: string;
  /** Token for words outside the vocabulary; without one, such words are an error. */
  unkToken?: string;
}

export const DEFAULT_SPECIAL_TOKENS = {
  bosToken: '<|startoftext|>',
  eosToken: '<|endoftext|>',
  padToken: '<|endoftext|>',
} as const;

/** A prompt cannot be tokenized (too long, or an unknown word without an unk token). */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** Bounds of a tokenizer config read from a file. */
export const TOKENIZER_LIMITS = { words: 1_000_000, wordLength: 256, maxLength: 1024 } as const;

/**
 * Checks that `value` is a WordTokenizerConfig (as parsed from JSON) within the bounds above;
 * throws TokenizerError naming the key.
 */
export function validateWordTokenizerConfig(value: unknown): WordTokenizerConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TokenizerError(`tokenizer config must be an object, got ${JSON.stringify(value)}`);
  const c = value as Record<string, unknown>;
  const L = TOKENIZER_LIMITS;
  if (!Array.isArray(c.words)) throw new TokenizerError('tokenizer words must be a list of strings');
  if (c.words.length > L.words)
    throw new TokenizerError(`tokenizer words has ${c.words.length} entries, at most ${L.words}`);
  c.words.forEach((w, i) => {
    if (typeof w !== 'string' || w === '' || w.length > L.wordLength)
      throw new TokenizerError(`tokenizer words[${i}] must be a string of 1-${L.wordLength} characters`);
  });
  if (
    typeof c.maxLength !== 'number' ||
    !Number.isInteger(c.maxLength) ||
    c.maxLength < 2 ||
    c.maxLength > L.maxLength
  )
    throw new TokenizerError(
      `tokenizer maxLength must be an integer in [2, ${L.maxLength}], got ${JSON.stringify(c.maxLength)}`,
    );
  for (const key of ['bosToken', 'eosToken', 'padToken', 'unkToken'] as const) {
    const t = c[key];
    if (t === undefined && key === 'unkToken') continue;
    if (typeof t !== 'string' || t === '' || t.length > L.wordLength)
      throw new TokenizerError(`tokenizer ${key} must be a string of 1-${L.wordLength} characters`);
  }
  return value as WordTokenizerConfig;
}

export class WordTokenizer {
  readonly vocab: string[];
  private readonly ids = new Map<string, number>();
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number | undefined;

  constructor(readonly config: WordTokenizerConfig) {
    validateWordTokenizerConfig(config);
    const specials = [config.bosToken, config.eosToken, config.padToken, config.unkToken].filter(
      (t): t is string => t !== undefined,
    );
    this.vocab = [];
    for (const tok of [...specials, ...config.words]) {
      if (!this.ids.has(tok)) {
        this.ids.set(tok, this.vocab.length);
        this.vocab.push(tok);
      } else if (!specials.includes(tok)) {
        throw new TokenizerError(`duplicate vocabulary word '${tok}'`);
      }
    }
    this.bosId = this.ids.get(config.bosToken)!;
    this.eosId = this.ids.get(config.eosToken)!;
    this.padId = this.ids.get(config.padToken)!;
    this.unkId = config.unkToken === undefined ? undefined : this.ids.get(config.unkToken);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Splits into lower-case words and single punctuation marks. */
  static split(prompt: string): string[] {
    return prompt.toLowerCase().match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
  }

  /** Token ids of exactly `maxLength`. */
  encode(prompt: string): number[] {
    const words = WordTokenizer.split(prompt);
    const room = this.config.maxLength - 2;
    if (words.length > room) {
      throw new TokenizerError(
        `prompt "${prompt}" has ${words.length} tokens, more than the ${room} that fit in maxLength ${this.config.maxLength}`,
      );
    }
    const body = words.map((w) => {
      const id = this.ids.get(w) ?? this.unkId;
      if (id === undefined)
        throw new TokenizerError(`prompt "${prompt}": word '${w}' is not in the vocabulary`);
      return id;
    });
    const out = [this.bosId, ...body, this.eosId];
    while (out.length < this.config.maxLength) out.push(this.padId);
    return out;
  }

  /** Row-major [prompts.length, maxLength] ids. */
  encodeBatch(prompts: readonly string[]): Int32Array {
    const L = this.config.maxLength;
    const out = new Int32Array(prompts.length * L);
    prompts.forEach((p, i) => out.set(this.encode(p), i * L));
    return out;
  }

  decode(ids: readonly number[]): string {
    return ids
      .filter((id) => id !== this.bosId && id !== this.eosId && id !== this.padId)
      .map((id) => this.vocab[id] ?? `<${id}>`)
      .join(' ');
  }
}
