import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../engine/backend';
import { decodeModelBundle } from '../../engine/io/model-bundle';
import { UNET_CONFIGS, type UNetConfigName } from '../../engine/models/unet-config';
import {
  encodeInitialWorldModel,
  MIN_WORLD_RESOLUTION,
  worldUNetConfig,
  worldUNetProblem,
} from '../../engine/models/world-model';

describe('world model', () => {
  test('worldUNetConfig sets the resolution of a pixel-space configuration', () => {
    assert.deepEqual(worldUNetConfig('demo', 32), { ...UNET_CONFIGS.demo, sample_size: 32 });
  });

  test('worldUNetConfig refuses what the built-in world cannot train', () => {
    assert.equal(worldUNetProblem('demo', 32), undefined);
    const refused = (name: string, resolution: number, message: RegExp) => {
      assert.match(worldUNetProblem(name as UNetConfigName, resolution) ?? '', message);
      assert.throws(
        () => worldUNetConfig(name as UNetConfigName, resolution),
        (err: unknown) => err instanceof RangeError && message.test(err.message),
      );
    };
    refused('huge', 32, /^model\.unet: unknown UNet configuration 'huge'$/);
    refused(
      'sd15',
      64,
      /^model\.unet 'sd15' takes 4-channel latents; the built-in world trains in RGB pixel space/,
    );
    refused(
      'demo',
      MIN_WORLD_RESOLUTION - 8,
      /^model\.resolution 8: the built-in world needs at least 16 px/,
    );
    refused('demo', 16.5, /^model\.resolution 16\.5: the built-in world needs at least 16 px/);
    const factor = 2 ** (UNET_CONFIGS.demo.block_out_channels.length - 1);
    refused('demo', 16 + factor / 2, new RegExp(`must be divisible by ${factor} for model.unet 'demo'$`));
  });

  test('encodeInitialWorldModel is a bundle drawn from its seeds', async () => {
    await initBackend('cpu');
    const config = worldUNetConfig('demo', 16);
    const a = encodeInitialWorldModel(config, { unet: 1, text: 2 });
    assert.deepEqual(encodeInitialWorldModel(config, { unet: 1, text: 2 }), a);
    assert.notDeepEqual(encodeInitialWorldModel(config, { unet: 1, text: 3 }), a);
    const model = decodeModelBundle(a, 'initial');
    try {
      assert.equal(model.unet.config.sample_size, 16);
      assert.equal(model.text.config.hidden_size, config.cross_attention_dim);
      assert.equal(model.text.config.vocab_size, model.tokenizer.vocabSize);
    } finally {
      model.unet.dispose();
      model.text.dispose();
    }
  });
});
