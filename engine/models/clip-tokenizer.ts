/**
 * CLIP's byte-level BPE tokenizer (transformers' `CLIPTokenizer`), read from the `vocab.json` and
 * `merges.txt` of a diffusers pipeline's `tokenizer/` folder.
 *
 * encode(prompt), step by step as transformers 5's `CLIPTokenizer` (the `tokenizers` backend) does it:
 *  1. the special tokens (`<|startoftext|>`, `<|endoftext|>`) are cut out of the raw prompt first,
 *     wherever they stand (also right after punctuation), matched exactly (case-sensitively);
 *  2. each piece between them is cleaned without ftfy: Unicode NFC, every run of Unicode White_Space
 *     (U+0085 included, U+FEFF not) becomes one space, lower-casing code point by code point (so a
 *     word-final capital sigma becomes σ, not the final form ς);
 *  3. the pre-tokenizer regex splits words, single digits and punctuation runs ({@link CLIP_PATTERN}),
 *     then the byte-level pre-tokenizer's GPT-2 regex splits each piece again ({@link BYTE_LEVEL_PATTERN};
 *     it changes only a lower-cased "<|ENDOFTEXT|>", which is text, not the special token);
 *  4. each piece's UTF-8 bytes are mapped to printable characters (GPT-2's byte alphabet), `</w>` is
 *     appended to its last character and the merges are applied lowest rank first;
 *  5. bos + ids + eos, truncated to `model_max_length` (eos kept last) and padded with the pad token,
 *     which for Stable Diffusion is the eos token.
 *
 * Character classes come from this Node's Unicode tables: a letter or digit assigned in a Unicode
 * version newer than the `tokenizers` build knows (e.g. U+088F, Unicode 17) is a letter here and
 * punctuation there.
 */
import { TokenizerError } from './tokenizer';

/**
 * Unicode White_Space, what the `\s` of the tokenizers' Rust and Oniguruma regexes match. JavaScript's
 * `\s` differs: it takes U+FEFF and leaves out U+0085.
 */
const WHITE_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITE_SPACE_RUN = new RegExp(`[${WHITE_SPACE}]+`, 'gu');

/** transformers' CLIP pre-tokenizer pattern (applied to the cleaned, lower-cased text). */
export const CLIP_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WHITE_SPACE}\\p{L}\\p{N}]+`,
  'gu',
);

/** GPT-2's pattern, which CLIP's byte-level pre-tokenizer applies to each piece of CLIP_PATTERN. */
export const BYTE_LEVEL_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WHITE_SPACE}\\p{L}\\p{N}]+|[${WHITE_SPACE}]+(?![^${WHITE_SPACE}])|[${WHITE_SPACE}]+`,
  'gu',
);

const END_OF_WORD = '</w>';

/** GPT-2's reversible map from the 256 byte values to printable Unicode characters. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (const [a, b] of [
    [0x21, 0x7e],
    [0xa1, 0xac],
    [0xae, 0xff],
  ] as const)
    for (let i = a; i <= b; i++) printable.push(i);
  const map = new Array<string>(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + next++);
  }
  return map;
}

const BYTE_TO_CHAR = bytesToUnicode();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

export interface ClipTokenizerConfig {
  /** Sequence length of every encoded prompt, bos and eos included (SD1.5: 77). */
  maxLength: number;
  /** Default `<|startoftext|>`. */
  bosToken: string;
  /** Default `<|endoftext|>`. */
  eosToken: string;
  /** Stable Diffusion pads with its eos token `<|endoftext|>`. */
  padToken: string;
  /** Default `<|endoftext|>` (byte-level BPE only needs it for ids missing from a broken vocab). */
  unkToken: string;
}

export interface ClipTokenizerSources {
  /** vocab.json text: {token: id}. */
  vocab: string;
  /** merges.txt text: an optional `#version` line, then one `left right` merge per line. */
  merges: string;
  /** Names used in errors. Defaults `vocab.json` and `merges.txt`. */
  vocabFile?: string;
  mergesFile?: string;
}

/** What to do with a prompt that has more tokens than fit: transformers' truncation, or an error. */
export type Overflow = 'truncate' | 'error';

function parseVocab(text: string, file: string): Map<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TokenizerError(`${file}: must be an object mapping tokens to ids`);
  }
  const vocab = new Map<string, number>();
  const owner = new Map<number, string>();
  for (const [token, id] of Object.entries(json)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new TokenizerError(`${file}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}`);
    }
    const prev = owner.get(id as number);
    if (prev !== undefined) {
      throw new TokenizerError(
        `${file}: id ${id} is used by both ${JSON.stringify(prev)} and ${JSON.stringify(token)}`,
      );
    }
    owner.set(id as number, token);
    vocab.set(token, id as number);
  }
  return vocab;
}

function parseMerges(text: string, file: string, vocab: Map<string, number>): Map<string, number> {
  const ranks = new Map<string, number>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if ((i === 0 && line.startsWith('#version')) || line === '') return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new TokenizerError(`${file}: line ${i + 1} ${JSON.stringify(line)} is not 'left right'`);
    }
    const [left, right] = parts as [string, string];
    for (const piece of [left, right, left + right]) {
      if (!vocab.has(piece)) {
        throw new TokenizerError(
          `${file}: line ${i + 1} merges ${JSON.stringify(line)} but ${JSON.stringify(piece)} is not in the vocab`,
        );
      }
    }
    const key = `${left} ${right}`;
    if (!ranks.has(key)) ranks.set(key, ranks.size);
  });
  return ranks;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  private readonly idToToken: string[] = [];
  private readonly cache = new Map<string, string[]>();
  /** The special tokens, longest first: cut out of the raw prompt before any cleanup, exactly as written. */
  private readonly specials: RegExp;

  private constructor(
    readonly config: ClipTokenizerConfig,
    private readonly vocab: Map<string, number>,
    private readonly ranks: Map<string, number>,
    vocabFile: string,
  ) {
    if (!Number.isSafeInteger(config.maxLength) || config.maxLength < 2) {
      throw new TokenizerError(`model_max_length must be an integer >= 2, got ${config.maxLength}`);
    }
    const idOf = (field: string, token: string): number => {
      const id = vocab.get(token);
      if (id === undefined)
        throw new TokenizerError(`${vocabFile}: ${field} ${JSON.stringify(token)} is not in the vocab`);
      return id;
    };
    this.bosId = idOf('bos_token', config.bosToken);
    this.eosId = idOf('eos_token', config.eosToken);
    this.padId = idOf('pad_token', config.padToken);
    this.unkId = idOf('unk_token', config.unkToken);
    // Byte-level BPE can emit any single byte character, alone or ending a word.
    for (const c of BYTE_TO_CHAR) {
      for (const piece of [c, c + END_OF_WORD]) {
        if (!vocab.has(piece)) {
          throw new TokenizerError(
            `${vocabFile}: byte token ${JSON.stringify(piece)} is missing (a CLIP vocab holds all 512)`,
          );
        }
      }
    }
    for (const [token, id] of vocab) this.idToToken[id] = token;
    const specials = [
      ...new Set([config.bosToken, config.eosToken, config.padToken, config.unkToken]),
    ].filter((t) => t !== '');
    this.specials = new RegExp(
      specials
        .sort((a, b) => b.length - a.length)
        .map((t) => t.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
        .join('|'),
      'gu',
    );
  }

  /**
   * Builds a tokenizer from the two files' contents; throws `TokenizerError` naming the file for a
   * malformed vocab, a merge whose parts or result are not in the vocab, or a missing special token.
   */
  static fromSources(
    sources: ClipTokenizerSources,
    config: Partial<ClipTokenizerConfig> = {},
  ): ClipTokenizer {
    const vocabFile = sources.vocabFile ?? 'vocab.json';
    const vocab = parseVocab(sources.vocab, vocabFile);
    const ranks = parseMerges(sources.merges, sources.mergesFile ?? 'merges.txt', vocab);
    return new ClipTokenizer(
      {
        maxLength: config.maxLength ?? 77,
        bosToken: config.bosToken ?? '<|startoftext|>',
        eosToken: config.eosToken ?? '<|endoftext|>',
        padToken: config.padToken ?? '<|endoftext|>',
        unkToken: config.unkToken ?? '<|endoftext|>',
      },
      vocab,
      ranks,
      vocabFile,
    );
  }

  /** Number of ids (the text encoder's `vocab_size` must be at least this). */
  get vocabSize(): number {
    return this.idToToken.length;
  }

  /**
   * Cleanup step of the text between special tokens: NFC, runs of Unicode White_Space to one space,
   * lower-cased one code point at a time (as the tokenizers' Lowercase normalizer does: a final
   * capital sigma becomes σ; `String#toLowerCase` alone would give ς there).
   */
  static clean(text: string): string {
    return text
      .normalize('NFC')
      .replace(WHITE_SPACE_RUN, ' ')
      .replace(/\u03a3/g, '\u03c3')
      .toLowerCase();
  }

  /** The BPE tokens of a prompt, without bos/eos (e.g. `a photo` -> [`a</w>`, `photo</w>`]). */
  tokenize(prompt: string): string[] {
    const out: string[] = [];
    let from = 0;
    for (const special of prompt.matchAll(this.specials)) {
      this.tokenizeText(prompt.slice(from, special.index), out);
      out.push(special[0]);
      from = special.index + special[0].length;
    }
    this.tokenizeText(prompt.slice(from), out);
    return out;
  }

  /** Text without special tokens: cleanup, the two pre-tokenizer splits and BPE, appended to `out`. */
  private tokenizeText(text: string, out: string[]): void {
    if (text === '') return;
    for (const word of ClipTokenizer.clean(text).match(CLIP_PATTERN) ?? []) {
      for (const piece of word.match(BYTE_LEVEL_PATTERN) ?? []) {
        const bytes = new TextEncoder().encode(piece);
        let mapped = '';
        for (const b of bytes) mapped += BYTE_TO_CHAR[b]!;
        out.push(...this.bpe(mapped));
      }
    }
  }

  /** Ids of the prompt's tokens alone, without bos/eos, truncation or padding. */
  tokenIds(prompt: string): number[] {
    return this.tokenize(prompt).map((t) => this.vocab.get(t) ?? this.unkId);
  }

  /**
   * Exactly `maxLength` ids: bos, the prompt's ids, eos, then pad. A prompt with more than
   * `maxLength - 2` tokens is cut (eos stays last) with `overflow: 'truncate'` (the default, what
   * Stable Diffusion's pipelines do) or rejected with a `TokenizerError` with `'error'`.
   */
  encode(prompt: string, overflow: Overflow = 'truncate'): number[] {
    const room = this.config.maxLength - 2;
    let body = this.tokenIds(prompt);
    if (body.length > room) {
      if (overflow === 'error') {
        throw new TokenizerError(
          `prompt "${preview(prompt)}" has ${body.length} tokens, more than the ${room} that fit in model_max_length ${this.config.maxLength}`,
        );
      }
      body = body.slice(0, room);
    }
    const out = [this.bosId, ...body, this.eosId];
    while (out.length < this.config.maxLength) out.push(this.padId);
    return out;
  }

  /** Row-major [prompts.length, maxLength] ids. */
  encodeBatch(prompts: readonly string[], overflow: Overflow = 'truncate'): Int32Array {
    const L = this.config.maxLength;
    const out = new Int32Array(prompts.length * L);
    prompts.forEach((p, i) => out.set(this.encode(p, overflow), i * L));
    return out;
  }

  /** Text of ids, special tokens dropped (transformers' decode with skip_special_tokens). */
  decode(ids: readonly number[]): string {
    const specials = new Set([this.bosId, this.eosId, this.padId]);
    const text = ids
      .filter((id) => !specials.has(id))
      .map((id) => this.idToToken[id] ?? '')
      .join('');
    const pieces = text.split(END_OF_WORD);
    const decoder = new TextDecoder('utf-8');
    return pieces
      .map((p) => decoder.decode(Uint8Array.from([...p].map((c) => CHAR_TO_BYTE.get(c) ?? 0x3f))))
      .join(' ')
      .trim();
  }

  private bpe(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const chars = [...token];
    let word = [...chars.slice(0, -1), chars[chars.length - 1]! + END_OF_WORD];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      // Merge every non-overlapping occurrence of the pair, left to right, as transformers does.
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    if (this.cache.size < 10_000) this.cache.set(token, word);
    return word;
  }
}

function preview(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
