import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '../../engine/backend';
import { encodePng } from '../../engine/data/image-codec';
import { encodePickapicParquet, type PickapicWriteRow } from '../../engine/data/pickapic';
import { encodeImageDataset } from '../../engine/io/image-dataset';
import { decodeLatentImageSet, decodeLatentPairSet, encodeImages } from '../../engine/latent/latent-data';
import { importDiffusersFolder } from '../../engine/latent/latent-model';
import { encodeTrainingLatents, overlongPrompts } from '../../engine/latent/training-latents';
import { Rng } from '../../engine/rng';
import { disposeModel, type DiffusionModel } from '../../engine/training/diffusion-model';
import { TrainingInputError } from '../../engine/training/errors';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');
const SHA = 'ab12cd34' + '0'.repeat(56);

let model: DiffusionModel;
before(async () => {
  await initBackend('wasm');
  ({ model } = await importDiffusersFolder(FIXTURE));
});
after(() => disposeModel(model));

function pixels(n: number, side: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.fillUniform(new Float32Array(side * side * 3), -1, 1));
}

function solidPng(value: number, side: number): Uint8Array {
  return encodePng({ width: side, height: side, data: new Uint8Array(side * side * 3).fill(value) });
}

describe('encodeTrainingLatents', () => {
  test('images: seeded from the source digest, encoding recorded, prompts kept', async () => {
    const side = model.latent!.imageSize;
    const images = pixels(3, side, 5);
    const source = encodeImageDataset({
      height: side,
      width: side,
      channels: 3,
      examples: images.map((image, i) => ({ prompt: `p${i}`, image })),
    });
    const got = await encodeTrainingLatents(model, 'images', source, { uri: 'experts', sha256: SHA }, true);
    assert.deepEqual(got.prompts, ['p0', 'p1', 'p2']);
    assert.deepEqual(got.overlong, []);
    const set = decodeLatentImageSet(got.bytes, 'x');
    assert.deepEqual(set.encoding, {
      mode: 'sample',
      seed: 0xab12cd34,
      flips: true,
      vaeSha256: model.latent!.vaeSha256,
      sourceSha256: SHA,
      scalingFactor: model.latent!.vae.config.scaling_factor,
      truncatedPrompts: 0,
    });
    const want = await encodeImages(
      model.latent!.vae,
      images,
      { height: side, width: side, channels: 3 },
      {
        mode: 'sample',
        seed: 0xab12cd34,
        flips: true,
      },
    );
    assert.deepEqual(set.examples[1]!.image, want.latents[1]);
    assert.deepEqual(set.examples[2]!.flipped, want.flipped![2]);
    // The same inputs give the same bytes.
    const again = await encodeTrainingLatents(model, 'images', source, { uri: 'experts', sha256: SHA }, true);
    assert.deepEqual(again.bytes, got.bytes);
  });

  test('images of another size are refused with the resolution to set', async () => {
    const side = model.latent!.imageSize;
    const source = encodeImageDataset({
      height: side * 2,
      width: side * 2,
      channels: 3,
      examples: pixels(1, side * 2, 1).map((image) => ({ prompt: 'p', image })),
    });
    await assert.rejects(
      () =>
        encodeTrainingLatents(model, 'images', source, { uri: 'experts.safetensors', sha256: SHA }, false),
      (err: unknown) =>
        err instanceof TrainingInputError &&
        err.message.startsWith(`experts.safetensors: expert images are ${side * 2}x${side * 2}x3;`) &&
        err.message.endsWith(`set model.resolution to ${side}`),
    );
  });

  test('pairs: winner first, ties left out, images resized to the VAE size', async () => {
    const side = model.latent!.imageSize;
    const row = (i: number, label0: number): PickapicWriteRow => ({
      caption: `prompt ${i}`,
      image_0_uid: `u${i}-0`,
      image_1_uid: `u${i}-1`,
      jpg_0: solidPng(20 * i, side * 2),
      jpg_1: solidPng(250 - 20 * i, side * 2),
      label_0: label0,
      label_1: 1 - label0,
      user_id: 0,
      ranking_id: i,
    });
    const source = encodePickapicParquet([row(0, 0), row(1, 0.5), row(2, 1)], { validate: false });
    const got = await encodeTrainingLatents(model, 'pairs', source, { uri: 'prefs', sha256: SHA }, false);
    assert.deepEqual(got.prompts, ['prompt 0', 'prompt 2']);
    const set = decodeLatentPairSet(got.bytes, 'x');
    assert.equal(set.pairs.length, 2);
    assert.equal(set.encoding.flips, false);
    const solid = (v: number) => new Float32Array(side * side * 3).fill((v / 255) * 2 - 1);
    const want = await encodeImages(
      model.latent!.vae,
      [solid(250), solid(0), solid(40), solid(210)],
      { height: side, width: side, channels: 3 },
      { mode: 'sample', seed: 0xab12cd34, flips: false },
    );
    for (const [i, p] of set.pairs.entries()) {
      const close = (a: Float32Array, b: Float32Array) => a.every((x, k) => Math.abs(x - b[k]!) < 1e-4);
      assert.ok(close(p.winner, want.latents[2 * i]!), `winner of pair ${i}`);
      assert.ok(close(p.loser, want.latents[2 * i + 1]!), `loser of pair ${i}`);
    }
  });

  test('a preference set of ties only is refused', async () => {
    const side = model.latent!.imageSize;
    const tie: PickapicWriteRow = {
      caption: 'c',
      image_0_uid: 'a',
      image_1_uid: 'b',
      jpg_0: solidPng(1, side),
      jpg_1: solidPng(2, side),
      label_0: 0.5,
      label_1: 0.5,
      user_id: 0,
      ranking_id: 0,
    };
    await assert.rejects(
      () =>
        encodeTrainingLatents(
          model,
          'pairs',
          encodePickapicParquet([tie], { validate: false }),
          { uri: 'prefs', sha256: SHA },
          false,
        ),
      (err: unknown) =>
        err instanceof TrainingInputError && err.message === 'prefs: no preference pair without a tie',
    );
  });

  test('overlongPrompts names distinct prompts the tokenizer truncates', () => {
    const room = model.tokenizer.config.maxLength - 2;
    const long = Array.from({ length: room + 1 }, () => 'a').join(' ');
    assert.deepEqual(overlongPrompts(model, ['short', long, long]), [long]);
  });
});
