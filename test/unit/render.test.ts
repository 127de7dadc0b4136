import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../engine/rng';
import {
  BACKGROUND_RGB,
  COLOR_NAMES,
  COLOR_RGB,
  generatePrompts,
  relativePosition,
  relationStrength,
} from '../../engine/world/world';
import { objectBox, renderScene, sampleCaptionedScene, sceneForMetadata } from '../../engine/world/render';
import type { Scene } from '../../engine/world/render';
import { judgeDetections } from '../../engine/world/geneval';
import type { Detection } from '../../engine/world/detector';

function pixel(img: { width: number; data: Float32Array }, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [0, 1, 2].map((c) => Math.round(img.data[i + c]! * 255));
}

/** Detections read straight off the scene (no detector involved). */
function truthDetections(scene: Scene, res: number): Detection[] {
  return scene.objects
    .map((o) => {
      const box = objectBox(o, res);
      return {
        class: o.class,
        color: o.color,
        box,
        center: [o.cx * res, o.cy * res] as [number, number],
        area: o.size ** 2,
        score: 1,
        errors: {} as Detection['errors'],
      };
    })
    .sort((a, b) => b.area - a.area);
}

describe('renderScene', () => {
  test('paints exact colors inside, background outside, coverage mixes at edges', () => {
    // A square covering pixels [4, 12) exactly, and one whose left edge cuts pixel 16 in half.
    const img = renderScene(
      {
        objects: [
          { class: 'square', color: 'red', cx: 8 / 24, cy: 8 / 24, size: 8 / 24 },
          { class: 'square', color: 'blue', cx: 20.5 / 24, cy: 8 / 24, size: 8 / 24 },
        ],
      },
      { resolution: 24 },
    );
    assert.deepEqual(pixel(img, 6, 6), [...COLOR_RGB.red]);
    assert.deepEqual(pixel(img, 0, 23), [...BACKGROUND_RGB]);
    assert.deepEqual(pixel(img, 3, 6), [...BACKGROUND_RGB]);
    assert.deepEqual(pixel(img, 4, 6), [...COLOR_RGB.red]);
    const half = [0, 1, 2].map((c) => Math.round((COLOR_RGB.blue[c]! + BACKGROUND_RGB[c]!) / 2));
    assert.deepEqual(pixel(img, 16, 6), half);
  });

  test('shapes differ: a ring has a background hole, a triangle an empty top corner', () => {
    const ring = renderScene(
      { objects: [{ class: 'ring', color: 'green', cx: 0.5, cy: 0.5, size: 0.8 }] },
      { resolution: 32 },
    );
    assert.deepEqual(pixel(ring, 16, 16), [...BACKGROUND_RGB]);
    assert.deepEqual(pixel(ring, 16, 5), [...COLOR_RGB.green]);
    const tri = renderScene(
      { objects: [{ class: 'triangle', color: 'white', cx: 0.5, cy: 0.5, size: 0.8 }] },
      { resolution: 32 },
    );
    assert.deepEqual(pixel(tri, 5, 5), [...BACKGROUND_RGB]);
    assert.deepEqual(pixel(tri, 5, 26), [...COLOR_RGB.white]);
  });

  test('palette: every color/background mix is nearer its two ends than any other color', () => {
    const all = [...COLOR_NAMES.map((c) => COLOR_RGB[c]), BACKGROUND_RGB];
    for (const name of COLOR_NAMES) {
      const c = COLOR_RGB[name];
      for (let t = 0; t <= 1; t += 0.05) {
        const p = [0, 1, 2].map((k) => t * c[k]! + (1 - t) * BACKGROUND_RGB[k]!);
        const d = all.map((q) => Math.hypot(...[0, 1, 2].map((k) => p[k]! - q[k]!)));
        const nearest = d.indexOf(Math.min(...d));
        assert.ok(all[nearest] === c || all[nearest] === BACKGROUND_RGB, `${name} at t=${t.toFixed(2)}`);
      }
    }
  });

  test('rejects bad options', () => {
    assert.throws(() => renderScene({ objects: [] }, { resolution: 2 }), /resolution/);
    assert.throws(() => renderScene({ objects: [] }, { supersample: 0 }), /supersample/);
  });
});

describe('sceneForMetadata', () => {
  test('scenes satisfy their prompt under GenEval rules, with position margin and no overlap', () => {
    const rng = new Rng(5);
    for (const meta of generatePrompts(11, 1200)) {
      const scene = sceneForMetadata(meta, rng, { distractorProb: 0.3 });
      const judged = judgeDetections(truthDetections(scene, 24), meta);
      assert.ok(judged.correct, `${meta.prompt}: ${judged.reason}`);
      for (const o of scene.objects) {
        assert.ok(
          o.cx - o.size / 2 >= 0 &&
            o.cx + o.size / 2 <= 1 &&
            o.cy - o.size / 2 >= 0 &&
            o.cy + o.size / 2 <= 1,
        );
      }
      for (let i = 0; i < scene.objects.length; i++) {
        for (let j = i + 1; j < scene.objects.length; j++) {
          const a = objectBox(scene.objects[i]!, 1);
          const b = objectBox(scene.objects[j]!, 1);
          const apart = a[2] <= b[0] || b[2] <= a[0] || a[3] <= b[1] || b[3] <= a[1];
          assert.ok(apart, `${meta.prompt}: boxes overlap`);
        }
      }
      if (meta.tag === 'position') {
        const [rel] = meta.include[1]!.position!;
        const a = scene.objects.find((o) => o.class === meta.include[1]!.class)!;
        const b = scene.objects.find((o) => o.class === meta.include[0]!.class)!;
        const { dx, dy } = relativePosition(objectBox(a, 1), objectBox(b, 1));
        assert.ok(relationStrength(rel, dx, dy) >= 0.7, meta.prompt);
      }
      if (meta.tag === 'counting') {
        assert.equal(
          scene.objects.filter((o) => o.class === meta.include[0]!.class).length,
          meta.include[0]!.count,
        );
      }
    }
  });

  test('is deterministic from the seed', () => {
    const [meta] = generatePrompts(2, 1);
    assert.deepEqual(sceneForMetadata(meta!, new Rng(1)), sceneForMetadata(meta!, new Rng(1)));
  });
});

describe('sampleCaptionedScene', () => {
  test('caption kinds follow the configured probabilities; exact captions are the prompt', () => {
    const rng = new Rng(8);
    const counts = { exact: 0, partial: 0, wrong: 0 };
    const n = 1500;
    for (let i = 0; i < n; i++) {
      const s = sampleCaptionedScene(rng, { pWrong: 0.2, pPartial: 0.1 });
      counts[s.kind]++;
      if (s.kind === 'exact') assert.equal(s.caption, s.metadata.prompt);
      else assert.notEqual(s.caption, s.metadata.prompt, `${s.kind}: ${s.caption}`);
      const judged = judgeDetections(truthDetections(s.scene, 24), s.metadata);
      assert.ok(judged.correct, s.metadata.prompt);
    }
    assert.ok(Math.abs(counts.wrong / n - 0.2) < 0.035, JSON.stringify(counts));
    assert.ok(Math.abs(counts.partial / n - 0.1) < 0.03, JSON.stringify(counts));
  });

  test('wrong color_attr captions swap the two colors; bad probabilities are rejected', () => {
    const rng = new Rng(12);
    const s = sampleCaptionedScene(rng, { pWrong: 1, pPartial: 0, tags: ['color_attr'] });
    const [a, b] = s.metadata.include;
    assert.equal(s.caption, `a photo of a ${b!.color} ${a!.class} and a ${a!.color} ${b!.class}`);
    assert.throws(() => sampleCaptionedScene(rng, { pWrong: 0.7, pPartial: 0.7 }), /pWrong/);
  });
});
