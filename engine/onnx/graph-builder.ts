/**
 * Builds an ONNX graph node by node with generated value names, so an exporter reads like the
 * forward pass it mirrors: `const h = g.op('Conv', [x, w, b], attrs)`.
 */
import type { OnnxAttribute, OnnxGraph, OnnxInitializer, OnnxNode, OnnxValueInfo } from '../io/onnx-writer';

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private counter = 0;

  /** A value name not used before, derived from `hint`. */
  fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Adds one node with a single output and returns the output's name. */
  op(opType: string, inputs: string[], attributes: OnnxAttribute[] = [], hint = opType): string {
    return this.opN(opType, inputs, 1, attributes, hint)[0]!;
  }

  /** Adds one node with `outputs` outputs. */
  opN(
    opType: string,
    inputs: string[],
    outputs: number,
    attributes: OnnxAttribute[] = [],
    hint = opType,
  ): string[] {
    const names = Array.from({ length: outputs }, (_, i) =>
      this.fresh(outputs === 1 ? hint : `${hint}_${i}`),
    );
    this.nodes.push({ opType, inputs, outputs: names, attributes });
    return names;
  }

  /** A float32 initializer. */
  weight(name: string, dims: number[], data: Float32Array): string {
    const unique = this.fresh(name);
    this.initializers.push({ name: unique, dtype: 'float32', dims, data });
    return unique;
  }

  /** An int64 vector constant (shapes, axes, split sizes), shared by every node that uses it. */
  ints(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(`const_i64_${values.join('_').replace(/-/g, 'm')}`);
      this.initializers.push({
        name,
        dtype: 'int64',
        dims: [values.length],
        data: BigInt64Array.from(values.map((v) => BigInt(v))),
      });
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 constant of shape `dims` (a scalar by default), shared like `ints`. */
  floats(values: readonly number[], dims: number[] = []): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_f32');
      this.initializers.push({ name, dtype: 'float32', dims, data: Float32Array.from(values) });
      this.constants.set(key, name);
    }
    return name;
  }

  graph(name: string, inputs: OnnxValueInfo[], outputs: OnnxValueInfo[]): OnnxGraph {
    return { name, nodes: this.nodes, inputs, outputs, initializers: this.initializers };
  }
}
