import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { generateImages } from '../../engine/generate';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { worldTokenizer } from '../../engine/world/world-text';
import { Rng } from '../../engine/rng';
import type { DiffusionModel } from '../../engine/training/diffusion-model';

let model: DiffusionModel;

before(async () => {
  await initBackend('wasm');
  const tokenizer = worldTokenizer();
  model = {
    tokenizer,
    text: CLIPTextModel.create(
      demoTextEncoderConfig(tokenizer.vocabSize, 16, TINY_UNET.cross_attention_dim),
      new Rng(1),
      false,
    ),
    unet: UNet2DConditionModel.create(TINY_UNET, new Rng(2), false),
  };
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
