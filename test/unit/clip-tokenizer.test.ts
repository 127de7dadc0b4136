import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ClipTokenizer } from '../../engine/models/clip-tokenizer';
import { TokenizerError } from '../../engine/models/tokenizer';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
const TOKENIZER_DIR = path.join(FIXTURES, 'tiny-sd', 'tokenizer');

interface Case {
  prompt: string;
  input_ids: number[];
  token_ids: number[];
  tokens: string[];
  decoded: string;
}
const expected = JSON.parse(
  readFileSync(path.join(FIXTURES, 'tiny-sd-parity', 'tokenizer.json'), 'utf8'),
) as {
  model_max_length: number;
  vocab_size: number;
  cases: Case[];
};

const vocab = readFileSync(path.join(TOKENIZER_DIR, 'vocab.json'), 'utf8');
const merges = readFileSync(path.join(TOKENIZER_DIR, 'merges.txt'), 'utf8');
const tokenizer = ClipTokenizer.fromSources({ vocab, merges }, { maxLength: expected.model_max_length });

describe('CLIP BPE tokenizer equals transformers (tiny-sd fixture)', () => {
  test('vocabulary size and special ids', () => {
    assert.equal(tokenizer.vocabSize, expected.vocab_size);
    const first = expected.cases[0]!.input_ids;
    assert.equal(tokenizer.bosId, first[0]);
    // SD pads with eos: the first prompt's padding is eos repeated.
    assert.equal(tokenizer.eosId, first[first.length - 1]);
    assert.equal(tokenizer.padId, tokenizer.eosId);
  });

  for (const c of expected.cases) {
    const label = JSON.stringify(c.prompt.length > 40 ? `${c.prompt.slice(0, 40)}...` : c.prompt);
    test(`ids of ${label}`, () => {
      assert.deepEqual(tokenizer.tokenize(c.prompt), c.tokens, 'BPE tokens');
      assert.deepEqual(tokenizer.tokenIds(c.prompt), c.token_ids, 'ids without specials');
      assert.deepEqual(tokenizer.encode(c.prompt), c.input_ids, 'padded, truncated ids');
      assert.equal(tokenizer.decode(c.input_ids), c.decoded, 'decoded text');
    });
  }

  test('the fixture covers truncation: a prompt longer than model_max_length ends in eos', () => {
    const long = expected.cases.find((c) => c.token_ids.length > expected.model_max_length - 2);
    assert.ok(long, 'fixture has a long prompt');
    const ids = tokenizer.encode(long.prompt);
    assert.equal(ids.length, expected.model_max_length);
    assert.equal(ids[ids.length - 1], tokenizer.eosId);
    assert.deepEqual(ids.slice(1, -1), long.token_ids.slice(0, expected.model_max_length - 2));
  });

  test("overflow 'error' names the prompt and the counts", () => {
    const long = 'word '.repeat(80);
    assert.throws(
      () => tokenizer.encode(long, 'error'),
      (e: Error) => e instanceof TokenizerError && /has 240 tokens, more than the 75/.test(e.message),
    );
    // Exactly 75 tokens fit.
    const fits = tokenizer.encode('a '.repeat(75), 'error');
    assert.equal(fits[76], tokenizer.eosId);
  });

  test('encodeBatch is row-major [prompts, maxLength]', () => {
    const batch = tokenizer.encodeBatch(['a red circle', '']);
    assert.equal(batch.length, 2 * 77);
    assert.deepEqual(Array.from(batch.subarray(77)), tokenizer.encode(''));
  });
});

/** test/fixtures/clip-tokenizer-parity/cases.json, written by make_cases.py beside it. */
const edge = JSON.parse(readFileSync(path.join(FIXTURES, 'clip-tokenizer-parity', 'cases.json'), 'utf8')) as {
  model_max_length: number;
  cases: Omit<Case, 'decoded'>[];
  sweep: { template: string; ranges: [number, number][]; token_ids: number[][] };
};

describe('CLIP tokenizer equals transformers on edge cases of user text', () => {
  const byPrompt = new Map(edge.cases.map((c) => [c.prompt, c]));
  const check = (prompt: string): void => {
    const c = byPrompt.get(prompt);
    assert.ok(c, `fixture case ${JSON.stringify(prompt)}`);
    assert.deepEqual(tokenizer.tokenize(c.prompt), c.tokens, 'BPE tokens');
    assert.deepEqual(tokenizer.tokenIds(c.prompt), c.token_ids, 'ids without specials');
    assert.deepEqual(tokenizer.encode(c.prompt), c.input_ids, 'padded ids');
  };

  test('a word-final capital sigma is lower-cased to σ, not ς', () => {
    check('ΑΣ');
    check('ΟΔΥΣΣΕΥΣ ΣΑΣ.');
    assert.deepEqual(tokenizer.tokenize('ΑΣ'), tokenizer.tokenize('ασ'));
    assert.notDeepEqual(tokenizer.tokenize('ΑΣ'), tokenizer.tokenize('ας'));
  });

  test('U+0085 is whitespace and U+FEFF is text', () => {
    check('a\u0085b');
    check('a\ufeffb');
    check('\ufeff');
    assert.deepEqual(tokenizer.tokenIds('a\u0085b'), tokenizer.tokenIds('a b'));
  });

  test('a special token right after punctuation is one token', () => {
    check('!<|endoftext|>');
    check('wow!<|endoftext|>');
    assert.deepEqual(tokenizer.tokenIds('!<|endoftext|>').slice(-1), [tokenizer.eosId]);
  });

  test('special tokens match case-sensitively: <|ENDOFTEXT|> is text', () => {
    check('<|ENDOFTEXT|>');
    check('<|EndOfText|>!');
    assert.ok(!tokenizer.tokenIds('<|ENDOFTEXT|>').includes(tokenizer.eosId));
  });

  for (const c of edge.cases) {
    // Test names show invisible and non-ASCII characters as \u escapes.
    const name = JSON.stringify(c.prompt).replace(
      /[^\x20-\x7e]/gu,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    test(`ids of ${name}`, () => check(c.prompt));
  }

  test(`"a" + c + "b" for every code point of ${edge.sweep.ranges.length} Unicode blocks`, () => {
    let i = 0;
    const wrong: string[] = [];
    for (const [lo, hi] of edge.sweep.ranges) {
      for (let cp = lo; cp <= hi; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        const want = edge.sweep.token_ids[i++]!;
        const got = tokenizer.tokenIds(edge.sweep.template.replace('{}', String.fromCodePoint(cp)));
        if (got.join() !== want.join())
          wrong.push(`U+${cp.toString(16).toUpperCase().padStart(4, '0')}: ${got} instead of ${want}`);
      }
    }
    assert.equal(i, edge.sweep.token_ids.length, 'one fixture entry per code point');
    assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} code points differ`);
  });
});

describe('CLIP tokenizer files are checked', () => {
  test('a merge whose result is not in the vocab is an error naming merges.txt and the line', () => {
    const bad = merges.replace(/\n$/, '') + '\nz q\n';
    const line = bad.split('\n').length - 1;
    assert.throws(
      () => ClipTokenizer.fromSources({ vocab, merges: bad }),
      (e: Error) =>
        e instanceof TokenizerError &&
        e.message.includes(`merges.txt: line ${line}`) &&
        e.message.includes('"zq"'),
    );
  });

  test('a merge line that is not a pair is an error', () => {
    assert.throws(
      () => ClipTokenizer.fromSources({ vocab, merges: '#version: 0.2\na b c\n' }),
      /line 2 "a b c"/,
    );
  });

  test('a vocab without the byte alphabet or the special tokens is an error naming vocab.json', () => {
    const parsed = JSON.parse(vocab) as Record<string, number>;
    const withoutEos = { ...parsed };
    delete withoutEos['<|endoftext|>'];
    assert.throws(
      () => ClipTokenizer.fromSources({ vocab: JSON.stringify(withoutEos), merges: '' }),
      /vocab.json: eos_token "<\|endoftext\|>" is not in the vocab/,
    );
    const withoutByte = { ...parsed };
    delete withoutByte['!</w>'];
    assert.throws(
      () => ClipTokenizer.fromSources({ vocab: JSON.stringify(withoutByte), merges: '' }),
      /byte token "!<\/w>" is missing/,
    );
    assert.throws(
      () => ClipTokenizer.fromSources({ vocab: '[1]', merges: '' }),
      /vocab.json: must be an object/,
    );
  });
});
