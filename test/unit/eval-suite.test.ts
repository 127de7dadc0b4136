import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TAGS, generateSuite, toMetadataJsonl } from '../../engine/world/world';
import { EvalSuiteError, buildWorldSuite, normalizePrompt, parseSuite } from '../../engine/eval/suite';

const good = toMetadataJsonl(generateSuite({ seed: 'suite-test', perTag: 2 }).slice(0, 3));

describe('parseSuite', () => {
  test('reads a GenEval metadata file from text or bytes, CRLF and BOM included', () => {
    const fromText = parseSuite(good, 'suite.jsonl');
    assert.equal(fromText.length, 3);
    const bytes = new TextEncoder().encode(`\ufeff${good.replace(/\n/g, '\r\n')}\n`);
    assert.deepEqual(parseSuite(bytes, 'suite.jsonl'), fromText);
  });

  test('a malformed line is named by file and 1-based line number', () => {
    const text = `${good}\n{"tag": "colors", "include": [\n`;
    assert.throws(
      () => parseSuite(text, 'prompts/eval.jsonl'),
      (err: unknown) =>
        err instanceof EvalSuiteError &&
        err.file === 'prompts/eval.jsonl' &&
        err.line === 5 &&
        /^prompts\/eval\.jsonl line 5: malformed JSON/.test(err.message),
    );
  });

  test('an unknown tag names the tag and lists the known ones', () => {
    const line =
      '{"tag": "texture", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"}';
    assert.throws(
      () => parseSuite(`${good}${line}\n`, 's.jsonl'),
      /s\.jsonl line 4: unknown tag "texture" \(known tags: single_object/,
    );
  });

  test('an unknown class or color names the clause', () => {
    const cls =
      '{"tag": "two_object", "include": [{"class": "circle", "count": 1}, {"class": "dog", "count": 1}], "prompt": "a photo of a circle and a dog"}';
    assert.throws(
      () => parseSuite(cls, 's.jsonl'),
      /s\.jsonl line 1: include\.1\.class: unknown class "dog"/,
    );
    const color =
      '{"tag": "colors", "include": [{"class": "circle", "count": 1, "color": "teal"}], "prompt": "a photo of a teal circle"}';
    assert.throws(
      () => parseSuite(`\n${color}`, 's.jsonl'),
      /s\.jsonl line 2: include\.0\.color: unknown color "teal"/,
    );
  });

  test('other schema problems name the field', () => {
    const noPrompt = '{"tag": "single_object", "include": [{"class": "circle", "count": 1}]}';
    assert.throws(() => parseSuite(noPrompt, 's.jsonl'), /s\.jsonl line 1: field prompt:/);
    assert.throws(() => parseSuite('[1, 2]', 's.jsonl'), /s\.jsonl line 1: a line must be a JSON object/);
  });

  test('an empty suite is an error naming the file', () => {
    assert.throws(() => parseSuite('\n  \n', 'empty.jsonl'), /empty\.jsonl: the suite is empty/);
    assert.throws(
      () => parseSuite(new Uint8Array([0xff, 0xfe, 0x00]), 'bin.jsonl'),
      /bin\.jsonl: not valid UTF-8/,
    );
  });
});

describe('buildWorldSuite', () => {
  const all = generateSuite({ seed: 'eval-seed', perTag: 10 });

  test('without training overlap it keeps every drawn prompt, tags taking turns', () => {
    const suite = buildWorldSuite({ seed: 'eval-seed', perTag: 10, trainingPrompts: [] });
    assert.equal(suite.drawn, all.length);
    assert.equal(suite.excluded, 0);
    assert.deepEqual(
      [...suite.prompts].sort((x, y) => x.prompt.localeCompare(y.prompt)),
      [...all].sort((x, y) => x.prompt.localeCompare(y.prompt)),
    );
    assert.deepEqual(
      suite.prompts.slice(0, 6).map((p) => p.tag),
      [...TAGS],
    );
  });

  test('training prompts are excluded and counted per tag', () => {
    const training = [
      all.find((p) => p.tag === 'counting')!.prompt,
      // Compared after normalization: case and spacing do not hide a training prompt.
      `  ${all
        .find((p) => p.tag === 'position')!
        .prompt.toUpperCase()
        .replace(/ /g, '  ')} `,
      ...all.filter((p) => p.tag === 'single_object').map((p) => p.prompt),
      'a photo of something not in the suite',
    ];
    const suite = buildWorldSuite({ seed: 'eval-seed', perTag: 10, trainingPrompts: training });
    const singles = all.filter((p) => p.tag === 'single_object').length;
    assert.equal(suite.excluded, singles + 2);
    assert.equal(suite.excludedPerTag.counting, 1);
    assert.equal(suite.excludedPerTag.position, 1);
    assert.equal(suite.excludedPerTag.single_object, singles);
    assert.equal(suite.excludedPerTag.colors, 0);
    assert.equal(suite.prompts.length, all.length - suite.excluded);
    assert.deepEqual(suite.missingTags, ['single_object']);
    const kept = new Set(suite.prompts.map((p) => normalizePrompt(p.prompt)));
    for (const t of training) assert.ok(!kept.has(normalizePrompt(t)), `${t} kept`);
  });

  test('a prompt limit keeps tags balanced', () => {
    const suite = buildWorldSuite({ seed: 'eval-seed', perTag: 10, prompts: 12, trainingPrompts: [] });
    assert.equal(suite.prompts.length, 12);
    for (const tag of TAGS) assert.equal(suite.prompts.filter((p) => p.tag === tag).length, 2, tag);
  });

  test('nothing left after exclusion is an error', () => {
    assert.throws(
      () => buildWorldSuite({ seed: 'eval-seed', perTag: 10, trainingPrompts: all.map((p) => p.prompt) }),
      /built-in suite \(seed eval-seed\): all \d+ drawn prompts occur in the training data/,
    );
  });
});
