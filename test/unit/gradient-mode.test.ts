import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { conv2d, conv2dDown, linear, setGradientMode } from '../../engine/ops';
import { Rng } from '../../engine/rng';

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function valueAndGrads(f: (x: tf.Tensor4D, w: tf.Tensor) => tf.Tensor, x: tf.Tensor4D, w: tf.Tensor) {
  const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(f(xx as tf.Tensor4D, ww))));
  return { y: f(x, w), grads: g([x, w]) };
}

before(async () => {
  await initBackend('cpu');
});

after(() => setGradientMode('custom'));

describe('gradient mode', () => {
  const rng = new Rng(4);
  const x = rng.normalTensor([2, 6, 6, 3]) as tf.Tensor4D;
  const w3 = rng.normalTensor([3, 3, 3, 5]);
  const wl = rng.normalTensor([3, 4]);
  const cases: Array<[string, (x: tf.Tensor4D, w: tf.Tensor) => tf.Tensor, tf.Tensor]> = [
    ['conv2d', (xx, ww) => conv2d(xx, ww as tf.Tensor4D), w3],
    ['conv2dDown', (xx, ww) => conv2dDown(xx, ww as tf.Tensor4D), w3],
    ['linear', (xx, ww) => linear(xx, ww as tf.Tensor2D), wl],
  ];
  for (const [name, f, w] of cases) {
    test(`${name}: the plain autodiff ops give the custom ops' values and gradients`, () => {
      setGradientMode('custom');
      const custom = valueAndGrads(f, x, w);
      setGradientMode('autodiff');
      const plain = valueAndGrads(f, x, w);
      setGradientMode('custom');
      assert.ok(maxDiff(custom.y, plain.y) < 1e-4);
      custom.grads.forEach((g, i) => assert.ok(maxDiff(g, plain.grads[i]!) < 1e-3, `${name} gradient ${i}`));
    });
  }
});

describe('gradient mode kernels', () => {
  test("'autodiff' runs the backend's own convolution gradients, 'custom' avoids them", async () => {
    const rng = new Rng(5);
    const x = rng.normalTensor([1, 4, 4, 2]) as tf.Tensor4D;
    const w = rng.normalTensor([3, 3, 2, 2]) as tf.Tensor4D;
    const kernels = async () =>
      (
        await tf.profile(() =>
          tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D)))([
            x,
            w,
          ]),
        )
      ).kernelNames;
    setGradientMode('autodiff');
    const plain = await kernels();
    setGradientMode('custom');
    const custom = await kernels();
    assert.ok(plain.includes('Conv2DBackpropFilter'), plain.join());
    assert.ok(
      !custom.includes('Conv2DBackpropFilter') && !custom.includes('Conv2DBackpropInput'),
      custom.join(),
    );
  });
});
