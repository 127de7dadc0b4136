// Side effect: wasm's Identity shares its input's buffer instead of copying it.
import './wasm-identity';

export { conv2d, conv2dDown } from './conv2d';
export { linear, matmul2d, batchMatmul } from './linear';
export { embeddingLookup, embeddingGather } from './embedding';
export { upsampleNearest2x } from './upsample';
export { groupNorm, layerNorm } from './norm';
export { setGradientMode, gradientMode, type GradientMode } from './gradient-mode';
