/**
 * A minimal ONNX model writer: a hand-written protobuf encoder for the few messages an inference
 * graph needs (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto with
 * tensor types, OperatorSetIdProto). Field numbers follow onnx/onnx.proto. Used to export the UNet
 * for onnxruntime (engine/onnx) and to build reference reward models with known outputs.
 *
 * Weights are stored inline (raw_data), so a model must stay under protobuf's 2 GiB message limit;
 * larger models would need ONNX external data, which this writer does not produce.
 */

export type OnnxDtype = 'float32' | 'int32' | 'int64';

/** TensorProto.DataType codes. */
export const ONNX_DTYPE_CODE: Record<OnnxDtype, number> = { float32: 1, int32: 6, int64: 7 };
const DTYPE_CODE = ONNX_DTYPE_CODE;

/** protobuf's hard limit on one serialized message. */
export const ONNX_MAX_BYTES = 2 ** 31 - 1;

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
  | { name: string; floats: number[] }
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
  /** Default: the IR version that introduced `opset` (7 for 13, 8 for 14-18, 9 for 19-20, 10 for 21). */
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

  /** Packed repeated 32-bit floats. */
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
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

function irVersionOf(opset: number): number {
  if (opset <= 13) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function checkDims(what: string, dims: readonly number[], count: number): void {
  const size = dims.reduce((a, d) => a * d, 1);
  if (dims.some((d) => !Number.isInteger(d) || d < 0) || size !== count)
    throw new RangeError(`onnx writer: ${what} has dims [${dims.join(', ')}] but ${count} values`);
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** raw_data is little-endian whatever the host; on little-endian hosts it is the array's own bytes. */
function littleEndianBytes(t: OnnxInitializer): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const raw = new Uint8Array(t.data.byteLength);
  const view = new DataView(raw.buffer);
  t.data.forEach((v: number | bigint, i: number) => {
    if (t.dtype === 'float32') view.setFloat32(i * 4, v as number, true);
    else if (t.dtype === 'int32') view.setInt32(i * 4, v as number, true);
    else view.setBigInt64(i * 8, v as bigint, true);
  });
  return raw;
}

function tensorProto(w: Writer, t: OnnxInitializer): void {
  checkDims(`initializer '${t.name}'`, t.dims, t.data.length);
  const expected = t.dtype === 'float32' ? Float32Array : t.dtype === 'int32' ? Int32Array : BigInt64Array;
  if (!(t.data instanceof expected))
    throw new TypeError(
      `onnx writer: initializer '${t.name}' is ${t.dtype} but its data is a ${t.data.constructor.name}`,
    );
  w.packed(1, t.dims).int(2, DTYPE_CODE[t.dtype]).string(8, t.name).bytes(9, littleEndianBytes(t));
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
  // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7.
  if ('int' in a) w.int(3, a.int).int(20, 2);
  else if ('ints' in a) w.packed(8, a.ints).int(20, 7);
  else if ('float' in a) w.float(2, a.float).int(20, 1);
  else if ('floats' in a) w.packedFloats(7, a.floats).int(20, 6);
  else w.string(4, a.string).int(20, 3);
}

/** Serialized ModelProto bytes, loadable by onnxruntime. */
export function encodeOnnxModel(graph: OnnxGraph, options: OnnxModelOptions = {}): Uint8Array {
  const weightBytes = (graph.initializers ?? []).reduce((n, t) => n + t.data.byteLength, 0);
  if (weightBytes > ONNX_MAX_BYTES)
    throw new RangeError(
      `onnx writer: graph '${graph.name}' has ${weightBytes} bytes of initializers, over the 2 GiB limit of one ONNX protobuf`,
    );
  const w = new Writer();
  const opset = options.opset ?? 13;
  w.int(1, options.irVersion ?? irVersionOf(opset));
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
  w.message(8, (o) => o.string(1, '').int(2, opset));
  return w.finish();
}
