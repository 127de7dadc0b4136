/**
 * How much text one caption may hold, wherever captions come from (a Pick-a-Pic parquet row, a
 * caption file of an image folder). The text encoder reads 77 tokens; a megabyte is far past any
 * real caption and small enough that an error quoting the row stays readable.
 */
export const MAX_CAPTION_BYTES = 1024 * 1024;

/**
 * Longest prompt of an evaluation suite line, in characters. GenEval's prompts are a few words;
 * a prompt travels inside workflow payloads and error messages, which have size limits of their own.
 */
export const MAX_SUITE_PROMPT_CHARS = 4096;

/** UTF-8 length of `text` without encoding it. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
