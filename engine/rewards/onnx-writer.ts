/**
 * A minimal ONNX model writer: a hand-written protobuf encoder for the few messages a small
 * inference graph needs (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto with tensor types, OperatorSetIdProto). Field numbers follow onnx/onnx.proto.
 * Used to build reference reward models with known outputs, so the ONNX reward path can be
 * tested without exporting a real network.
 */

export type OnnxDtype = 'float32' | 'int32' | 'int64';

/** TensorProto.DataType codes. */
const DTYPE_CODE: Record<OnnxDtype, number> = { float32: 1, int32: 6, int64: 7 };

export interface OnnxInitializer {
  name: string;
  dtype: OnnxDtype;
  dims: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDtype;
  /** Numbers are fixed sizes, strings symbolic ones (e.g. 'N'). */
  shape: (number | string)[];
}

export type OnnxAttribute =
  | { name: string; int: number }
  | { name: string; ints: number[] }
  | { name: string; float: number }
  | { name: string; string: string };

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: OnnxAttribute[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers?: OnnxInitializer[];
}

export interface OnnxModelOptions {
  /** Default opset 13 (ReduceSum takes axes as an input, ReduceMean as an attribute). */
  opset?: number;
  /** Default 7, the IR version of opset 13. */
  irVersion?: number;
  producerName?: string;
}

/** Protobuf wire-format writer. */
class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  /** Unsigned or two's-complement (64-bit) varint. */
  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: 0 | 2 | 5): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated varints. */
  packed(field: number, values: readonly (number | bigint)[]): this {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function checkDims(what: string, dims: readonly number[], count: number): void {
  const size = dims.reduce((a, d) => a * d, 1);
  if (dims.some((d) => !Number.isInteger(d) || d < 0) || size !== count)
    throw new RangeError(`onnx writer: ${what} has dims [${dims.join(', ')}] but ${count} values`);
}

function tensorProto(w: Writer, t: OnnxInitializer): void {
  checkDims(`initializer '${t.name}'`, t.dims, t.data.length);
  const expected = t.dtype === 'float32' ? Float32Array : t.dtype === 'int32' ? Int32Array : BigInt64Array;
  if (!(t.data instanceof expected))
    throw new TypeError(
      `onnx writer: initializer '${t.name}' is ${t.dtype} but its data is a ${t.data.constructor.name}`,
    );
  const raw = new Uint8Array(t.data.byteLength);
  const view = new DataView(raw.buffer);
  t.data.forEach((v: number | bigint, i: number) => {
    if (t.dtype === 'float32') view.setFloat32(i * 4, v as number, true);
    else if (t.dtype === 'int32') view.setInt32(i * 4, v as number, true);
    else view.setBigInt64(i * 8, v as bigint, true);
  });
  w.packed(1, t.dims).int(2, DTYPE_CODE[t.dtype]).string(8, t.name).bytes(9, raw);
}

function valueInfo(w: Writer, v: OnnxValueInfo): void {
  w.string(1, v.name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, DTYPE_CODE[v.dtype]).message(2, (shape) => {
        for (const d of v.shape)
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
}

function attribute(w: Writer, a: OnnxAttribute): void {
  w.string(1, a.name);
  // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, INTS 7.
  if ('int' in a) w.int(3, a.int).int(20, 2);
  else if ('ints' in a) w.packed(8, a.ints).int(20, 7);
  else if ('float' in a) w.float(2, a.float).int(20, 1);
  else w.string(4, a.string).int(20, 3);
}

/** Serialized ModelProto bytes, loadable by onnxruntime. */
export function encodeOnnxModel(graph: OnnxGraph, options: OnnxModelOptions = {}): Uint8Array {
  const w = new Writer();
  w.int(1, options.irVersion ?? 7);
  w.string(2, options.producerName ?? 'dro-pipeline');
  w.message(7, (g) => {
    graph.nodes.forEach((node, i) => {
      g.message(1, (n) => {
        for (const input of node.inputs) n.string(1, input);
        for (const output of node.outputs) n.string(2, output);
        n.string(3, node.name ?? `${node.opType}_${i}`);
        n.string(4, node.opType);
        for (const a of node.attributes ?? []) n.message(5, (m) => attribute(m, a));
      });
    });
    g.string(2, graph.name);
    for (const t of graph.initializers ?? []) g.message(5, (m) => tensorProto(m, t));
    for (const v of graph.inputs) g.message(11, (m) => valueInfo(m, v));
    for (const v of graph.outputs) g.message(12, (m) => valueInfo(m, v));
  });
  w.message(8, (o) => o.string(1, '').int(2, options.opset ?? 13));
  return w.finish();
}

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
      attributes: [{ name: 'to', int: DTYPE_CODE.float32 }],
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
