import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../engine/rng';
import {
  COLOR_NAMES,
  SHAPE_CLASSES,
  TAGS,
  MetadataParseError,
  PromptMetadata,
  generatePrompt,
  generatePrompts,
  generateSuite,
  parseMetadataJsonl,
  relativePosition,
  toMetadataJsonl,
} from '../../engine/world/world';

describe('Rng streams of the world', () => {
  test('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.uniform());
    assert.deepEqual(
      xs,
      Array.from({ length: 5 }, () => b.uniform()),
    );
    assert.notDeepEqual(
      xs,
      Array.from({ length: 5 }, () => c.uniform()),
    );
  });

  test('uniform and normal draws have the right moments', () => {
    const r = new Rng('moments');
    let s = 0;
    let s2 = 0;
    let u = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
      u += r.uniform();
    }
    assert.ok(Math.abs(s / n) < 0.03);
    assert.ok(Math.abs(s2 / n - 1) < 0.04);
    assert.ok(Math.abs(u / n - 0.5) < 0.01);
  });

  test('a string seed names a stream, and fork derives one without advancing the parent', () => {
    const named = new Rng('corpus:0');
    assert.equal(named.uniform(), new Rng('corpus:0').uniform());
    assert.notEqual(new Rng('corpus:0').uniform(), new Rng('corpus:1').uniform());
    const parent = new Rng(7);
    const before = parent.state();
    const a = parent.fork('scene-1');
    assert.deepEqual(parent.state(), before);
    assert.equal(a.uniform(), parent.fork('scene-1').uniform());
    assert.notEqual(parent.fork('scene-1').uniform(), parent.fork('scene-2').uniform());
  });

  test('choice, sample, intBetween and bernoulli stay in range and cover it', () => {
    const rng = new Rng('helpers');
    const items = ['a', 'b', 'c', 'd', 'e'] as const;
    const seen = new Set<string>();
    const ends = new Set<number>();
    let heads = 0;
    for (let i = 0; i < 2000; i++) {
      seen.add(rng.choice(items));
      const k = rng.intBetween(2, 4);
      assert.ok(k >= 2 && k <= 4);
      ends.add(k);
      const picked = rng.sample(items, 3);
      assert.equal(new Set(picked).size, 3);
      assert.ok(picked.every((x) => items.includes(x)));
      if (rng.bernoulli(0.25)) heads++;
    }
    assert.equal(seen.size, items.length);
    assert.deepEqual([...ends].sort(), [2, 3, 4]);
    assert.ok(Math.abs(heads / 2000 - 0.25) < 0.04, `bernoulli(0.25) gave ${heads / 2000}`);
    assert.throws(() => rng.sample(items, 6), /cannot take 6 of 5/);
    assert.throws(() => rng.choice([]), /empty list/);
  });
});

describe('prompt metadata', () => {
  test('each tag has GenEval structure', () => {
    const rng = new Rng(1);
    for (let i = 0; i < 300; i++) {
      const tag = TAGS[i % TAGS.length]!;
      const m = generatePrompt(rng, tag);
      assert.equal(m.tag, tag);
      assert.ok(PromptMetadata.safeParse(m).success, JSON.stringify(m));
      const inc = m.include;
      switch (tag) {
        case 'single_object':
          assert.equal(inc.length, 1);
          assert.equal(inc[0]!.count, 1);
          assert.equal(m.prompt, `a photo of a ${inc[0]!.class}`);
          break;
        case 'two_object':
          assert.equal(inc.length, 2);
          assert.notEqual(inc[0]!.class, inc[1]!.class);
          assert.equal(m.prompt, `a photo of a ${inc[0]!.class} and a ${inc[1]!.class}`);
          break;
        case 'counting': {
          const n = inc[0]!.count;
          assert.ok(n >= 2 && n <= 4);
          // GenEval: exclude N+1 of the same class, i.e. exactly N.
          assert.deepEqual(m.exclude, [{ class: inc[0]!.class, count: n + 1 }]);
          assert.equal(
            m.prompt,
            `a photo of ${['', '', 'two', 'three', 'four'][n]} ${inc[0]!.class}${inc[0]!.class === 'cross' ? 'es' : 's'}`,
          );
          break;
        }
        case 'colors':
          assert.equal(inc.length, 1);
          assert.ok(COLOR_NAMES.includes(inc[0]!.color!));
          assert.equal(m.prompt, `a photo of a ${inc[0]!.color} ${inc[0]!.class}`);
          break;
        case 'position':
          // "A rel B": include[0] is B, include[1] is A positioned relative to group 0.
          assert.equal(inc.length, 2);
          assert.equal(inc[1]!.position![1], 0);
          assert.equal(m.prompt, `a photo of a ${inc[1]!.class} ${inc[1]!.position![0]} a ${inc[0]!.class}`);
          break;
        case 'color_attr':
          assert.equal(inc.length, 2);
          assert.notEqual(inc[0]!.class, inc[1]!.class);
          assert.notEqual(inc[0]!.color, inc[1]!.color);
          assert.equal(
            m.prompt,
            `a photo of a ${inc[0]!.color} ${inc[0]!.class} and a ${inc[1]!.color} ${inc[1]!.class}`,
          );
          break;
      }
    }
  });

  test('generation is deterministic from the seed', () => {
    assert.deepEqual(generatePrompts(9, 60), generatePrompts(9, 60));
    assert.notDeepEqual(generatePrompts(9, 60), generatePrompts(10, 60));
  });

  test('suite covers every class once as single object and is de-duplicated', () => {
    const suite = generateSuite({ seed: 43, perTag: 40 });
    const singles = suite.filter((m) => m.tag === 'single_object').map((m) => m.include[0]!.class);
    assert.deepEqual(singles, [...SHAPE_CLASSES]);
    const keys = suite.map((m) => JSON.stringify(m));
    assert.equal(new Set(keys).size, keys.length);
    for (const tag of TAGS)
      assert.ok(
        suite.some((m) => m.tag === tag),
        tag,
      );
  });

  test('jsonl round trip keeps GenEval key order and position tuples', () => {
    const prompts = generatePrompts(3, 30);
    const text = toMetadataJsonl(prompts);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 30);
    for (const line of lines) {
      const keys = Object.keys(JSON.parse(line) as object);
      assert.equal(keys[0], 'tag');
      assert.equal(keys[keys.length - 1], 'prompt');
    }
    assert.match(text, /"position":\["(left of|right of|above|below)",0\]/);
    assert.deepEqual(parseMetadataJsonl(text), prompts);
  });

  test('parse errors name the source, line and field', () => {
    const good = toMetadataJsonl(generatePrompts(1, 2));
    assert.throws(
      () => parseMetadataJsonl(`${good}{oops\n`, 'm.jsonl'),
      (e: Error) => e instanceof MetadataParseError && /m\.jsonl line 3: invalid JSON/.test(e.message),
    );
    const badClass =
      '{"tag":"single_object","include":[{"class":"dog","count":1}],"prompt":"a photo of a dog"}';
    assert.throws(() => parseMetadataJsonl(badClass, 'm.jsonl'), /m\.jsonl line 1: field include\.0\.class/);
    const badTarget =
      '{"tag":"position","include":[{"class":"circle","count":1,"position":["above",0]}],"prompt":"x"}';
    assert.throws(() => parseMetadataJsonl(badTarget), /field include\.0\.position/);
  });
});

describe('relativePosition (GenEval rule)', () => {
  test('matches hand-computed cases', () => {
    // A directly left of B with a wide gap.
    assert.deepEqual([...relativePosition([0, 10, 4, 14], [20, 10, 24, 14]).relations], ['left of']);
    // A above-right diagonal: dx, dy both about 0.7 after shrinking -> two relations.
    const diag = relativePosition([20, 0, 24, 4], [0, 20, 4, 24]).relations;
    assert.ok(diag.has('right of') && diag.has('above'));
    // Nearly overlapping centers: offsets shrink to zero -> no relation.
    assert.equal(relativePosition([0, 0, 10, 10], [1, 1, 11, 11]).relations.size, 0);
    // Mostly vertical offset: "below" only; |dx| stays under 0.5.
    assert.deepEqual([...relativePosition([2, 20, 6, 24], [0, 0, 4, 4]).relations], ['below']);
  });
});
