import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { worldTokenizer } from '../../engine/world/world-text';
import { decodeImageDataset, encodeImageDataset } from '../../engine/io/image-dataset';
import { decodeModelBundle, encodeModelBundle, exportDiffusersUnet } from '../../engine/io/model-bundle';
import { parseSafetensors, serializeSafetensors } from '../../engine/io/safetensors';
import { CLIPTextModel, demoTextEncoderConfig } from '../../engine/models/text-encoder';
import { UNet2DConditionModel } from '../../engine/models/unet';
import { TINY_UNET } from '../../engine/models/unet-config';
import { Rng } from '../../engine/rng';
import type { DiffusionModel } from '../../engine/training/diffusion-model';

let model: DiffusionModel;

before(async () => {
  await initBackend('wasm');
  const tokenizer = worldTokenizer();
  model = {
    tokenizer,
    text: CLIPTextModel.create(demoTextEncoderConfig(tokenizer.vocabSize, 16, 32), new Rng(1), false),
    unet: UNet2DConditionModel.create(TINY_UNET, new Rng(2), false),
  };
});

after(() => {
  model.unet.dispose();
  model.text.dispose();
});

function predict(m: DiffusionModel): Float32Array {
  return tf.tidy(() => {
    const x = new Rng(3).normalTensor([1, 8, 8, 4]) as tf.Tensor4D;
    const ids = tf.tensor2d(m.tokenizer.encodeBatch(['a photo of a red circle']), [1, 16], 'int32');
    return m.unet.predict(x, [500], m.text.encode(ids)).dataSync() as Float32Array;
  });
}

describe('model bundle', () => {
  test('round trip gives the same predictions and tokenizer', () => {
    const loaded = decodeModelBundle(encodeModelBundle(model), 'bundle');
    assert.deepEqual(predict(loaded), predict(model));
    assert.deepEqual(
      loaded.tokenizer.encode('a photo of two rings'),
      model.tokenizer.encode('a photo of two rings'),
    );
    loaded.unet.dispose();
    loaded.text.dispose();
  });

  test('UNet weights given to the encoder replace the model own', () => {
    const other = UNet2DConditionModel.create(TINY_UNET, new Rng(9), false);
    const weights = other.params.getWeights();
    const loaded = decodeModelBundle(encodeModelBundle(model, weights));
    assert.deepEqual(predict(loaded), predict({ ...model, unet: other }));
    tf.dispose([...weights.values()]);
    for (const m of [other, loaded.unet, loaded.text]) m.dispose();
  });

  test('a missing tensor, a NaN and a foreign file are refused by name', () => {
    const file = parseSafetensors(encodeModelBundle(model));
    const without = new Map(file.tensors);
    without.delete('unet/conv_in.weight');
    assert.throws(
      () => decodeModelBundle(serializeSafetensors(without, { metadata: file.metadata }), 'm.safetensors'),
      /m\.safetensors: unet: .*conv_in\.weight/,
    );
    const nan = new Map(file.tensors);
    const t = nan.get('unet/conv_out.bias')!;
    nan.set('unet/conv_out.bias', { ...t, data: Float32Array.from(t.data, (v, i) => (i === 1 ? NaN : v)) });
    assert.throws(
      () => decodeModelBundle(serializeSafetensors(nan, { metadata: file.metadata }), 'n.safetensors'),
      /n\.safetensors: tensor 'unet\/conv_out\.bias' holds NaN/,
    );
    assert.throws(
      () => decodeModelBundle(exportDiffusersUnet(model), 'unet.safetensors'),
      /not a model bundle/,
    );
  });

  test('the diffusers export has plain state-dict keys in PyTorch layout', () => {
    const file = parseSafetensors(exportDiffusersUnet(model));
    assert.deepEqual(file.tensors.get('conv_in.weight')!.shape, [32, 4, 3, 3]);
    assert.equal(file.tensors.size, model.unet.params.names.length);
  });
});

describe('image dataset', () => {
  test('round trip keeps prompts, images, ids and scores', () => {
    const ds = {
      height: 2,
      width: 2,
      channels: 3,
      examples: [
        { prompt: 'a', image: new Float32Array(12).fill(0.5) },
        { prompt: 'b', image: new Float32Array(12).fill(-0.25) },
      ],
      ids: ['u1', 'u2'],
      scores: [0.9, 0.1],
    };
    const back = decodeImageDataset(encodeImageDataset(ds, { k: '2' }));
    assert.deepEqual(back.examples, ds.examples);
    assert.deepEqual(back.ids, ds.ids);
    assert.deepEqual(back.scores, ds.scores);
    assert.equal(back.metadata.k, '2');
  });

  test('an image of the wrong size is refused with its index', () => {
    assert.throws(
      () =>
        encodeImageDataset({
          height: 2,
          width: 2,
          channels: 3,
          examples: [{ prompt: 'a', image: new Float32Array(5) }],
        }),
      /example 0/,
    );
  });
});
