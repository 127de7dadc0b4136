/**
 * The built-in world's text side: the closed vocabulary every prompt and caption is written in, and
 * the tokenizer over it that the world's text encoder uses.
 */
import { DEFAULT_SPECIAL_TOKENS, WordTokenizer } from '../models/tokenizer';
import { COLOR_NAMES, RELATIONS, SHAPE_CLASSES, plural } from './world';

const NUMBERS = ['one', 'two', 'three', 'four', 'five'];
const FRAME = ['a', 'an', 'photo', 'of', 'and', 'shape'];

/** Every word a world prompt or caption may contain, in a fixed order (token ids depend on it). */
export function worldWords(): string[] {
  const words = [
    ...FRAME,
    ...NUMBERS,
    ...SHAPE_CLASSES,
    ...SHAPE_CLASSES.map(plural),
    ...COLOR_NAMES,
    ...RELATIONS.flatMap((r) => r.split(' ')),
  ];
  return [...new Set(words)];
}

/** Longest world prompt ("a photo of a purple triangle and a white square") plus bos/eos, with room. */
export const WORLD_MAX_TOKENS = 16;

export function worldTokenizer(maxLength = WORLD_MAX_TOKENS): WordTokenizer {
  return new WordTokenizer({ words: worldWords(), maxLength, ...DEFAULT_SPECIAL_TOKENS });
}
