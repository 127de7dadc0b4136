/**
 * Where the per-step parameter updates (AdamW, EMA, gradient clipping) run, and how they reach the
 * values. On backends whose tensors live in host memory a JS loop over every parameter's values is
 * far cheaper than a dozen kernel calls per parameter tensor, each with tens of microseconds of
 * fixed cost on wasm. Elsewhere the values would cross to the host and back every step, so the
 * updates stay kernels there.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `auto`: host loop on host-memory backends, kernels elsewhere; `host`/`kernels` force one. */
export type UpdateRoute = 'auto' | 'host' | 'kernels';

const HOST_MEMORY_BACKENDS: ReadonlySet<string> = new Set(['wasm', 'cpu']);

export function runsOnHost(route: UpdateRoute): boolean {
  return route === 'host' || (route === 'auto' && HOST_MEMORY_BACKENDS.has(tf.getBackend()));
}

/** The wasm backend's own accessors for tensor memory (public methods of its backend class). */
interface WasmHeap {
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  dataIdMap: { has(dataId: object): boolean };
}

function wasmHeap(): WasmHeap | undefined {
  return tf.getBackend() === 'wasm' ? (tf.backend() as unknown as WasmHeap) : undefined;
}

/**
 * Read-only access to a float32 tensor's values. On wasm a view of the tensor's own memory: no
 * copy, and no garbage for the JS heap (copies of every parameter each step, several times over,
 * cost more in garbage collection than in copying). A view is valid until the next tensor
 * allocation, which may move the wasm heap; nothing may write through it.
 */
function readView(heap: WasmHeap | undefined, t: tf.Tensor): Float32Array {
  if (heap && t.dtype === 'float32' && heap.dataIdMap.has(t.dataId)) return heap.typedArrayFromHeap(t);
  return t.dataSync() as Float32Array;
}

/** Calls `use` with read-only views of each tensor's values in turn. */
export function forEachValues(tensors: Iterable<tf.Tensor>, use: (values: Float32Array) => void): void {
  const heap = wasmHeap();
  for (const t of tensors) use(readView(heap, t));
}

/**
 * A new float32 tensor of `shape` whose values `fill` writes, every one of them, given read-only
 * views of `inputs`' values. On wasm the output is allocated in the wasm heap first and the views
 * are taken after, so that no allocation moves the heap under them.
 */
export function mapValues(
  inputs: readonly tf.Tensor[],
  shape: number[],
  fill: (ins: Float32Array[], out: Float32Array) => void,
): tf.Tensor {
  const heap = wasmHeap();
  if (heap) {
    const info = heap.makeOutput(shape, 'float32');
    const ins = inputs.map((t) => readView(heap, t));
    fill(ins, heap.typedArrayFromHeap(info));
    return tf.engine().makeTensorFromTensorInfo(info);
  }
  // cpu: dataSync hands out the backend's own arrays, and tf.tensor adopts `out` without a copy.
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fill(
    inputs.map((t) => t.dataSync() as Float32Array),
    out,
  );
  return tf.tensor(out, shape, 'float32');
}

/** Replaces a variable's values with the tensor `values` (same shape), which it then owns. */
export function assignTensor(variable: tf.Variable, values: tf.Tensor): void {
  variable.assign(values);
  values.dispose();
}
