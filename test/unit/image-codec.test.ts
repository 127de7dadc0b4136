import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { toUint8 } from '../../engine/data/image';
import { renderScene } from '../../engine/world/render';
import {
  ImageDecodeError,
  ImageTooSmallError,
  decodeImage,
  encodeJpeg,
  encodePng,
  sniffImageFormat,
} from '../../engine/data/image-codec';

const image = toUint8(
  renderScene({
    objects: [
      { class: 'ring', color: 'purple', cx: 0.3, cy: 0.4, size: 0.4 },
      { class: 'triangle', color: 'yellow', cx: 0.72, cy: 0.6, size: 0.35 },
    ],
  }),
);

describe('image codec', () => {
  test('PNG round trip is lossless', () => {
    const bytes = encodePng(image);
    assert.equal(sniffImageFormat(bytes), 'png');
    const back = decodeImage(bytes);
    assert.equal(back.width, 24);
    assert.equal(back.height, 24);
    assert.deepEqual(Array.from(back.data), Array.from(image.data));
  });

  test('JPEG round trip is close at quality 95', () => {
    const bytes = encodeJpeg(image, 95);
    assert.equal(sniffImageFormat(bytes), 'jpeg');
    const back = decodeImage(bytes);
    assert.equal(back.data.length, image.data.length);
    let sum = 0;
    for (let i = 0; i < image.data.length; i++) sum += Math.abs(back.data[i]! - image.data[i]!);
    assert.ok(sum / image.data.length < 6, String(sum / image.data.length));
  });

  test('transparent PNG pixels are composited over the matte', () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data = Buffer.from([255, 0, 0, 255, 0, 0, 255, 0]);
    const bytes = new Uint8Array(PNG.sync.write(png));
    assert.deepEqual(Array.from(decodeImage(bytes).data), [255, 0, 0, 255, 255, 255]);
    assert.deepEqual(Array.from(decodeImage(bytes, { matte: [0, 0, 0] }).data), [255, 0, 0, 0, 0, 0]);
  });

  test('undecodable bytes name the source', () => {
    const check = (bytes: Uint8Array, detail: RegExp) =>
      assert.throws(
        () => decodeImage(bytes, { source: 'shard.parquet row 3 jpg_0' }),
        (e: Error) =>
          e instanceof ImageDecodeError &&
          e.message.startsWith('shard.parquet row 3 jpg_0: undecodable image') &&
          detail.test(e.message),
      );
    check(new Uint8Array(), /empty/);
    check(new TextEncoder().encode('hello world'), /signature/);
    check(encodePng(image).slice(0, 40), /PNG/);
    const jpg = encodeJpeg(image);
    const corrupt = jpg.slice();
    corrupt.fill(0, 20, 200);
    check(corrupt, /JPEG/);
  });

  test('images below the minimum side are rejected with their size', () => {
    assert.throws(
      () => decodeImage(encodePng(image), { source: 'a.png', minSide: 32 }),
      (e: Error) =>
        e instanceof ImageTooSmallError &&
        e.message === 'a.png: image 24x24 is smaller than the minimum side 32',
    );
  });
});
