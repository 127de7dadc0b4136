import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import { conv2d, conv2dDown, linear, batchMatmul, embeddingLookup } from '../../engine/ops';
import { Rng } from '../../engine/rng';

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]!));
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

/** Gradients of sum(f(inputs) * r) for a fixed random r, so every output element matters. */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], rng: Rng): tf.Tensor[] {
  const probe = tf.tidy(() => f(...inputs));
  const r = rng.normalTensor(probe.shape);
  probe.dispose();
  const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)))(inputs);
  r.dispose();
  return g;
}

function compare(
  name: string,
  custom: (...xs: tf.Tensor[]) => tf.Tensor,
  reference: (...xs: tf.Tensor[]) => tf.Tensor,
  shapes: number[][],
  tol: number,
): void {
  const rng = new Rng(7);
  const inputs = shapes.map((s) => rng.normalTensor(s));
  const y1 = custom(...inputs);
  const y0 = reference(...inputs);
  assert.ok(maxRelDiff(y1, y0) < tol, `${name}: forward differs`);
  const g1 = gradsOf(custom, inputs, new Rng(3));
  const g0 = gradsOf(reference, inputs, new Rng(3));
  g1.forEach((g, i) => {
    const d = maxRelDiff(g, g0[i]!);
    assert.ok(d < tol, `${name}: gradient of input ${i} differs by ${d}`);
  });
  tf.dispose([...inputs, y1, y0, ...g1, ...g0]);
}

const pad1 = (x: tf.Tensor) =>
  tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);

describe('custom-gradient ops match autodiff of the plain ops (cpu backend)', () => {
  before(async () => {
    await initBackend('cpu');
  });

  test('conv2d 3x3 same, with bias', () => {
    compare(
      'conv3x3',
      (x, w, b) => conv2d(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D),
      (x, w, b) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b!),
      [[2, 6, 5, 3], [3, 3, 3, 4], [4]],
      1e-5,
    );
  });

  test('conv2d 1x1 (matmul path)', () => {
    compare(
      'conv1x1',
      (x, w) => conv2d(x as tf.Tensor4D, w as tf.Tensor4D),
      (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'),
      [
        [2, 4, 3, 5],
        [1, 1, 5, 6],
      ],
      1e-5,
    );
  });

  for (const [h, w] of [
    [8, 8],
    [7, 5],
  ] as const) {
    test(`conv2dDown 3x3 stride 2 symmetric pad on ${h}x${w}`, () => {
      compare(
        'down',
        (x, k, b) => conv2dDown(x as tf.Tensor4D, k as tf.Tensor4D, b as tf.Tensor1D),
        (x, k, b) => tf.add(tf.conv2d(pad1(x) as tf.Tensor4D, k as tf.Tensor4D, 2, 'valid'), b!),
        [[2, h, w, 3], [3, 3, 3, 4], [4]],
        1e-5,
      );
    });
  }

  test('conv2dDown pads symmetrically (differs from TF.js same padding)', () => {
    const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
    const k = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
    // Top-left output sees a 2x2 corner of ones with symmetric padding; 'same' pads bottom/right only.
    assert.deepEqual(Array.from(conv2dDown(x, k).dataSync()), [4, 6, 6, 9]);
    assert.deepEqual(Array.from(tf.conv2d(x, k, 2, 'same').dataSync()), [9, 6, 6, 4]);
  });

  test('linear on rank-3 input with bias', () => {
    compare(
      'linear',
      (x, w, b) => linear(x!, w as tf.Tensor2D, b as tf.Tensor1D),
      (x, w, b) => tf.add(tf.reshape(tf.matMul(tf.reshape(x!, [-1, 5]), w!), [2, 3, 4]), b!),
      [[2, 3, 5], [5, 4], [4]],
      1e-5,
    );
  });

  test('batchMatmul', () => {
    compare(
      'bmm',
      (a, b) => batchMatmul(a as tf.Tensor3D, b as tf.Tensor3D),
      (a, b) => tf.matMul(a!, b!),
      [
        [3, 4, 5],
        [3, 5, 2],
      ],
      1e-5,
    );
  });

  test('batchMatmul with transposed b', () => {
    compare(
      'bmmT',
      (a, b) => batchMatmul(a as tf.Tensor3D, b as tf.Tensor3D, true),
      (a, b) => tf.matMul(a!, tf.transpose(b!, [0, 2, 1])),
      [
        [3, 4, 5],
        [3, 2, 5],
      ],
      1e-5,
    );
  });

  test('embedding lookup gradient equals a gather gradient', () => {
    const ids = tf.tensor2d(
      [
        [0, 2, 2],
        [4, 1, 0],
      ],
      [2, 3],
      'int32',
    );
    compare(
      'embedding',
      (t) => embeddingLookup(ids, t as tf.Tensor2D),
      (t) => tf.gather(t!, ids),
      [[5, 3]],
      1e-6,
    );
    ids.dispose();
  });

  test('linear rejects mismatched weight with a clear error', () => {
    assert.throws(() => linear(tf.zeros([2, 3]), tf.zeros([4, 5]) as tf.Tensor2D), /3 features.*\[4, 5\]/);
  });
});

describe('custom-gradient ops on the wasm backend', () => {
  test('conv and down-conv gradients run on wasm and agree with cpu', async () => {
    const rng = new Rng(11);
    const xs = rng.fillNormal(new Float32Array(2 * 8 * 8 * 3));
    const ws = rng.fillNormal(new Float32Array(3 * 3 * 3 * 4));
    const run = () => {
      const x = tf.tensor4d(xs, [2, 8, 8, 3]);
      const w = tf.tensor4d(ws, [3, 3, 3, 4]);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.square(
            conv2dDown(
              conv2d(a as tf.Tensor4D, b as tf.Tensor4D),
              tf.slice(tf.transpose(b, [0, 1, 3, 2]), [0, 0, 0, 0], [3, 3, 4, 3]) as tf.Tensor4D,
            ),
          ),
        ),
      )([x, w]);
      const out = g.map((t) => Array.from(t.dataSync()));
      tf.dispose([x, w, ...g]);
      return out;
    };
    await initBackend('cpu');
    const onCpu = run();
    await initBackend('wasm');
    const onWasm = run();
    await initBackend('cpu');
    onCpu.forEach((g, i) => {
      const scale = Math.max(...g.map(Math.abs));
      const diff = Math.max(...g.map((v, j) => Math.abs(v - onWasm[i]![j]!)));
      assert.ok(diff / scale < 1e-4, `gradient ${i} differs between cpu and wasm by ${diff / scale}`);
    });
  });
});

describe('nearest x2 upsampling', () => {
  test('repeats each pixel 2x2 and its gradient sums the block (vs autodiff of concatenations)', async () => {
    await initBackend('cpu');
    const { upsampleNearest2x } = await import('../../engine/ops');
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    assert.deepEqual(
      Array.from(upsampleNearest2x(x).dataSync()),
      [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
    );
    compare(
      'upsample',
      (a) => upsampleNearest2x(a as tf.Tensor4D),
      (a) => {
        const rows = tf.reshape(
          tf.concat([tf.reshape(a!, [2, 3, 1, 2, 5]), tf.reshape(a!, [2, 3, 1, 2, 5])], 2),
          [12, 2, 1, 5],
        );
        return tf.reshape(tf.concat([rows, rows], 2), [2, 6, 4, 5]);
      },
      [[2, 3, 2, 5]],
      1e-6,
    );
    x.dispose();
  });
});

describe('normalization with closed-form gradients', () => {
  const plainGroupNorm = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, groups: number, eps: number) => {
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const r = tf.reshape(x, [n, h * w, groups, c / groups]);
    const { mean, variance } = tf.moments(r, [1, 3], true);
    const y = tf.reshape(tf.div(tf.sub(r, mean), tf.sqrt(tf.add(variance, eps))), [n, h, w, c]);
    return tf.add(tf.mul(y, g), b);
  };

  test('groupNorm matches autodiff of the plain formula', async () => {
    await initBackend('cpu');
    const { groupNorm } = await import('../../engine/ops');
    compare(
      'groupNorm',
      (x, g, b) => groupNorm(x as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, 3, 1e-5),
      (x, g, b) => plainGroupNorm(x!, g!, b!, 3, 1e-5),
      [[2, 3, 4, 6], [6], [6]],
      1e-5,
    );
  });

  test('layerNorm matches autodiff of the plain formula', async () => {
    await initBackend('cpu');
    const { layerNorm } = await import('../../engine/ops');
    compare(
      'layerNorm',
      (x, g, b) => layerNorm(x!, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5),
      (x, g, b) => {
        const { mean, variance } = tf.moments(x!, [2], true);
        return tf.add(tf.mul(tf.div(tf.sub(x!, mean), tf.sqrt(tf.add(variance, 1e-5))), g!), b!);
      },
      [[2, 5, 8], [8], [8]],
      1e-5,
    );
  });
});
