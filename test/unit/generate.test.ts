import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { generateImages } from '../../engine/generate';
import type { DiffusionModel } from '../../engine/training/diffusion-model';
import { tinyWorldModel } from '../harness/tiny-models';

let model: DiffusionModel;

before(async () => {
  await initBackend('wasm');
  model = tinyWorldModel();
});

after(() => {
  model.unet.dispose();
  model.text.dispose();
});

describe('generateImages', () => {
  test('an image depends on its seed, not on its batch', async () => {
    const prompts = ['a photo of a red circle', 'a photo of a blue square', 'a photo of a red circle'];
    const opts = { steps: 4, guidanceScale: 3 };
    const together = await generateImages(model, prompts, { ...opts, seeds: [7, 8, 9], batchSize: 3 });
    const alone = await generateImages(model, [prompts[1]!], { ...opts, seeds: [8] });
    assert.deepEqual(Array.from(alone[0]!), Array.from(together[1]!));
    // Same prompt, other seed: another image.
    assert.notDeepEqual(Array.from(together[0]!), Array.from(together[2]!));
    assert.equal(together[0]!.length, 8 * 8 * 4);
  });

  test('leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    await generateImages(model, ['a photo of a ring'], { seeds: [1], steps: 3, guidanceScale: 2 });
    assert.equal(tf.memory().numTensors, before);
  });
});
