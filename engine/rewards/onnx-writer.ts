/**
 * Reference ONNX reward models with known outputs, so the ONNX reward path can be tested without
 * exporting a real network. The generic writer lives in ../io/onnx-writer (re-exported here).
 */
import { encodeOnnxModel, ONNX_DTYPE_CODE, type OnnxInitializer, type OnnxNode } from '../io/onnx-writer';

export * from '../io/onnx-writer';

export interface LinearRewardSpec {
  height: number;
  width: number;
  /** Token ids per prompt. */
  seqLen: number;
  /** Pixel weights, [3, height, width] (broadcast over the batch). */
  pixelWeights: Float32Array;
  /** Token weights, [seqLen]. */
  tokenWeights: Float32Array;
  pixelInput?: string;
  idsInput?: string;
  output?: string;
  /** Output shape: [N] (default) or [N, 1]. */
  outputRank?: 1 | 2;
  /** Declare fixed input sizes (default) or symbolic ones. */
  staticShapes?: boolean;
}

/**
 * A reference reward: score = ReduceMean(pixel_values * W) + ReduceSum(Cast(input_ids) * v), with
 * pixel_values float32 [N, 3, H, W] and input_ids int64 [N, L]. Its outputs are easy to compute by
 * hand, so it checks the whole preprocessing and batching path of an ONNX reward.
 */
export function linearRewardOnnx(spec: LinearRewardSpec): Uint8Array {
  const { height: h, width: w, seqLen: l } = spec;
  const px = spec.pixelInput ?? 'pixel_values';
  const ids = spec.idsInput ?? 'input_ids';
  const out = spec.output ?? 'scores';
  const fixed = spec.staticShapes ?? true;
  const rank2 = spec.outputRank === 2;
  const nodes: OnnxNode[] = [
    { opType: 'Mul', inputs: [px, 'W'], outputs: ['weighted'] },
    {
      opType: 'ReduceMean',
      inputs: ['weighted'],
      outputs: ['pixel_score'],
      attributes: [
        { name: 'axes', ints: [1, 2, 3] },
        { name: 'keepdims', int: 0 },
      ],
    },
    {
      opType: 'Cast',
      inputs: [ids],
      outputs: ['ids_float'],
      attributes: [{ name: 'to', int: ONNX_DTYPE_CODE.float32 }],
    },
    { opType: 'Mul', inputs: ['ids_float', 'v'], outputs: ['weighted_ids'] },
    {
      opType: 'ReduceSum',
      inputs: ['weighted_ids', 'sum_axes'],
      outputs: ['token_score'],
      attributes: [{ name: 'keepdims', int: 0 }],
    },
    { opType: 'Add', inputs: ['pixel_score', 'token_score'], outputs: [rank2 ? 'score_flat' : out] },
  ];
  if (rank2) nodes.push({ opType: 'Unsqueeze', inputs: ['score_flat', 'unsqueeze_axes'], outputs: [out] });
  const initializers: OnnxInitializer[] = [
    { name: 'W', dtype: 'float32', dims: [1, 3, h, w], data: spec.pixelWeights },
    { name: 'v', dtype: 'float32', dims: [1, l], data: spec.tokenWeights },
    { name: 'sum_axes', dtype: 'int64', dims: [1], data: BigInt64Array.from([1n]) },
  ];
  if (rank2)
    initializers.push({ name: 'unsqueeze_axes', dtype: 'int64', dims: [1], data: BigInt64Array.from([1n]) });
  return encodeOnnxModel({
    name: 'linear_reward',
    nodes,
    initializers,
    inputs: [
      { name: px, dtype: 'float32', shape: ['N', 3, fixed ? h : 'H', fixed ? w : 'W'] },
      { name: ids, dtype: 'int64', shape: ['N', fixed ? l : 'L'] },
    ],
    outputs: [{ name: out, dtype: 'float32', shape: rank2 ? ['N', 1] : ['N'] }],
  });
}
