import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Box, ColorName, PromptMetadata, ShapeClass } from '../../engine/world/world';
import { renderScene } from '../../engine/world/render';
import type { SceneObject } from '../../engine/world/render';
import { judgeDetections, judgeImage, scoreGenEval } from '../../engine/world/geneval';
import type { Detection } from '../../engine/world/detector';

/** A detection at box center (x, y) with side s, in pixels. */
function det(cls: ShapeClass, color: ColorName, x: number, y: number, s = 6): Detection {
  const box: Box = [x - s / 2, y - s / 2, x + s / 2, y + s / 2];
  return { class: cls, color, box, center: [x, y], area: s * s, score: 1, errors: {} as Detection['errors'] };
}

const counting3: PromptMetadata = {
  tag: 'counting',
  include: [{ class: 'circle', count: 3 }],
  exclude: [{ class: 'circle', count: 4 }],
  prompt: 'a photo of three circles',
};
const redSquare: PromptMetadata = {
  tag: 'colors',
  include: [{ class: 'square', count: 1, color: 'red' }],
  prompt: 'a photo of a red square',
};
const ringLeftOfCross: PromptMetadata = {
  tag: 'position',
  include: [
    { class: 'cross', count: 1 },
    { class: 'ring', count: 1, position: ['left of', 0] },
  ],
  prompt: 'a photo of a ring left of a cross',
};
const colorAttr: PromptMetadata = {
  tag: 'color_attr',
  include: [
    { class: 'triangle', count: 1, color: 'blue' },
    { class: 'circle', count: 1, color: 'yellow' },
  ],
  prompt: 'a photo of a blue triangle and a yellow circle',
};

describe('judgeDetections (GenEval rules)', () => {
  test('counting: exact count correct; too few and one extra incorrect', () => {
    const three = [det('circle', 'red', 4, 4), det('circle', 'blue', 14, 4), det('circle', 'red', 4, 14)];
    assert.equal(judgeDetections(three, counting3).correct, true);
    const two = judgeDetections(three.slice(0, 2), counting3);
    assert.equal(two.correct, false);
    assert.equal(two.reason, 'expected circle>=3, found 2');
    const four = judgeDetections([...three, det('circle', 'green', 14, 14)], counting3);
    assert.equal(four.correct, false);
    assert.equal(four.reason, 'expected circle<4, found 4');
    // Other classes do not count against the prompt.
    assert.equal(judgeDetections([...three, det('square', 'green', 14, 14)], counting3).correct, true);
  });

  test('colors: wrong color incorrect; only the top-ranked object of the class is checked', () => {
    assert.equal(judgeDetections([det('square', 'red', 10, 10)], redSquare).correct, true);
    const wrong = judgeDetections([det('square', 'blue', 10, 10)], redSquare);
    assert.equal(wrong.correct, false);
    assert.match(wrong.reason, /expected red square>=1, found 0 red; and 1 blue/);
    // Largest first: a big blue square outranks a small red one.
    assert.equal(
      judgeDetections([det('square', 'blue', 6, 6, 8), det('square', 'red', 18, 18, 5)], redSquare).correct,
      false,
    );
    assert.equal(
      judgeDetections([det('square', 'red', 6, 6, 8), det('square', 'blue', 18, 18, 5)], redSquare).correct,
      true,
    );
    assert.equal(judgeDetections([det('circle', 'red', 10, 10)], redSquare).correct, false);
  });

  test('position: right side correct; swapped, vertical-only and missing target incorrect', () => {
    assert.equal(
      judgeDetections([det('cross', 'red', 18, 12), det('ring', 'blue', 5, 12)], ringLeftOfCross).correct,
      true,
    );
    const swapped = judgeDetections(
      [det('cross', 'red', 5, 12), det('ring', 'blue', 18, 12)],
      ringLeftOfCross,
    );
    assert.equal(swapped.correct, false);
    assert.equal(swapped.reason, 'expected ring left of target, found right of target');
    assert.equal(
      judgeDetections([det('cross', 'red', 12, 18), det('ring', 'blue', 11, 5)], ringLeftOfCross).correct,
      false,
    );
    const noTarget = judgeDetections([det('ring', 'blue', 5, 12)], ringLeftOfCross);
    assert.equal(noTarget.correct, false);
    assert.match(noTarget.reason, /expected cross>=1, found 0\nno target for ring to be left of/);
  });

  test('color_attr: swapped colors incorrect', () => {
    assert.equal(
      judgeDetections([det('triangle', 'blue', 5, 5), det('circle', 'yellow', 18, 18)], colorAttr).correct,
      true,
    );
    assert.equal(
      judgeDetections([det('triangle', 'yellow', 5, 5), det('circle', 'blue', 18, 18)], colorAttr).correct,
      false,
    );
  });

  test('continuous score is 1 exactly when correct and orders partial answers', () => {
    const full = judgeDetections(
      [det('circle', 'red', 4, 4), det('circle', 'red', 14, 4), det('circle', 'red', 4, 14)],
      counting3,
    );
    const two = judgeDetections([det('circle', 'red', 4, 4), det('circle', 'red', 14, 4)], counting3);
    const one = judgeDetections([det('circle', 'red', 4, 4)], counting3);
    const none = judgeDetections([], counting3);
    assert.equal(full.score, 1);
    assert.ok(1 > two.score && two.score > one.score && one.score > none.score && none.score >= 0);
    const swapped = judgeDetections(
      [det('cross', 'red', 5, 12), det('ring', 'blue', 18, 12)],
      ringLeftOfCross,
    );
    const vertical = judgeDetections(
      [det('cross', 'red', 12, 18), det('ring', 'blue', 11, 5)],
      ringLeftOfCross,
    );
    assert.ok(swapped.score < vertical.score && vertical.score < 1);
  });
});

describe('judgeImage', () => {
  test('renders judged end to end through the detector', () => {
    const obj = (cls: ShapeClass, color: ColorName, cx: number, cy: number): SceneObject => ({
      class: cls,
      color,
      cx,
      cy,
      size: 0.36,
    });
    const good = renderScene({ objects: [obj('cross', 'red', 0.75, 0.5), obj('ring', 'blue', 0.25, 0.5)] });
    const bad = renderScene({ objects: [obj('cross', 'red', 0.25, 0.5), obj('ring', 'blue', 0.75, 0.5)] });
    assert.equal(judgeImage(good, ringLeftOfCross).correct, true);
    assert.equal(judgeImage(bad, ringLeftOfCross).correct, false);
  });
});

describe('scoreGenEval', () => {
  test('overall is the unweighted mean of tag accuracies', () => {
    const results = [
      ...Array.from({ length: 4 }, (_, i) => ({ tag: 'counting' as const, correct: i < 1 })),
      ...Array.from({ length: 2 }, () => ({ tag: 'colors' as const, correct: true })),
    ];
    const s = scoreGenEval(results);
    assert.equal(s.perTag.counting!.accuracy, 0.25);
    assert.equal(s.perTag.colors!.accuracy, 1);
    assert.equal(s.overall, 0.625);
    assert.equal(s.imageAccuracy, 3 / 6);
    assert.deepEqual(s.missingTags, ['single_object', 'two_object', 'position', 'color_attr']);
  });
});
