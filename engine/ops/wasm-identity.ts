/**
 * A copy-free Identity kernel for the wasm backend. While the gradient tape records, tfjs-core
 * clones every tensor a gradient will need (an Identity call each, about 950 in a demo UNet training
 * step), and wasm's own Identity copies the values: 60 MB of copies per step for tensors that never
 * change, since TF.js tensors are immutable and a variable's assign swaps its buffer rather than
 * writing into it. The wasm backend counts references per buffer (its Reshape shares its input's),
 * so sharing the buffer is enough, as the cpu backend's Identity does.
 */
import * as tf from '@tensorflow/tfjs-core';
// Registers the wasm kernels, so that the one below replaces theirs rather than the other way round.
import '@tensorflow/tfjs-backend-wasm';

interface RefCountingBackend {
  incRef(dataId: object): void;
}

const copying = tf.getKernel(tf.Identity, 'wasm');
if (copying) {
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({
    kernelName: tf.Identity,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      // Strings live outside the wasm heap; the backend's kernel handles them.
      if (x.dtype === 'string') return copying.kernelFunc(args);
      (args.backend as unknown as RefCountingBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}
