/**
 * Which gradients the convolution and matmul ops use. 'custom' (the default) is the set of
 * hand-written gradients that are fast on wasm; 'autodiff' runs the plain TF.js ops and lets TF.js
 * differentiate them, i.e. the backend's own Conv2DBackpropFilter/Input and flagged matmuls. The
 * benchmark uses 'autodiff' on the cpu backend as the baseline the custom path is measured against.
 */
export type GradientMode = 'custom' | 'autodiff';

let mode: GradientMode = 'custom';

export function setGradientMode(next: GradientMode): void {
  mode = next;
}

export function gradientMode(): GradientMode {
  return mode;
}
