/**
 * Exports the engine's UNet2DConditionModel (../models/unet.ts) to an ONNX graph with its current
 * weights as initializers, for inference with onnxruntime.
 *
 * The graph mirrors the TF.js forward op for op, in NCHW (the layout of ONNX's Conv): the NHWC
 * sample is transposed on entry and the prediction transposed back, so callers keep the engine's
 * layout. Standard opset-17 operators only:
 * - GroupNorm: Reshape to [B, G, -1], InstanceNormalization (unit scale), Reshape back, then the
 *   per-channel affine (the form PyTorch's own exporter emits);
 * - LayerNorm: LayerNormalization; SiLU: x Sigmoid(x); exact GELU through Erf;
 * - attention: MatMul, Softmax, MatMul per head, the query scaled by 1/sqrt(d) first as in TF.js;
 * - upsampling: Resize nearest with asymmetric coordinates and floor, i.e. PyTorch's 'nearest'.
 *
 * Inputs: `sample` float32 [B, H, W, in_channels] (NHWC), `timestep` float32 [B],
 * `encoder_hidden_states` float32 [B, L, cross_attention_dim]. Output: `eps` [B, H, W, out_channels].
 */
import { encodeOnnxModel, type OnnxGraph } from '../io/onnx-writer';
import { timestepFrequencies } from '../models/timestep-embedding';
import type { UNet2DConditionModel } from '../models/unet';
import { headsFor, UNET_CONSTANTS } from '../models/unet-config';
import { GraphBuilder } from './graph-builder';

const K = UNET_CONSTANTS;
export const UNET_ONNX_OPSET = 17;

export const UNET_ONNX_IO = {
  sample: 'sample',
  timestep: 'timestep',
  context: 'encoder_hidden_states',
  output: 'eps',
} as const;

/** Reads a weight in the engine's TF.js layout. */
type WeightSource = (name: string) => { shape: number[]; data: Float32Array };

/** TF.js conv filter [kh, kw, I, O] -> ONNX/PyTorch [O, I, kh, kw]. */
function convFilter(shape: number[], src: Float32Array): { dims: number[]; data: Float32Array } {
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const out = new Float32Array(src.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++) {
        const from = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = src[from + o]!;
      }
  return { dims: [co, ci, kh, kw], data: out };
}

class UNetGraph {
  readonly g = new GraphBuilder();

  constructor(
    private readonly unet: UNet2DConditionModel,
    private readonly read: WeightSource,
  ) {}

  private has(name: string): boolean {
    return this.unet.params.has(name);
  }

  private param(name: string, dims?: number[]): string {
    const { shape, data } = this.read(name);
    return this.g.weight(name, dims ?? shape, data);
  }

  /** A per-channel vector as [C, 1, 1], broadcasting over NCHW. */
  private channelParam(name: string): string {
    const { shape } = this.read(name);
    return this.param(name, [shape[0]!, 1, 1]);
  }

  silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])], [], 'silu');
  }

  geluErf(x: string): string {
    const g = this.g;
    const erf = g.op('Erf', [g.op('Mul', [x, g.floats([Math.SQRT1_2])])]);
    return g.op('Mul', [g.op('Mul', [x, g.floats([0.5])]), g.op('Add', [erf, g.floats([1])])], [], 'gelu');
  }

  dense(prefix: string, x: string, bias = true): string {
    const y = this.g.op('MatMul', [x, this.param(`${prefix}.weight`)], [], prefix);
    return bias ? this.g.op('Add', [y, this.param(`${prefix}.bias`)], [], prefix) : y;
  }

  conv(prefix: string, x: string, stride = 1): string {
    const { shape, data } = this.read(`${prefix}.weight`);
    const f = convFilter(shape, data);
    const k = f.dims[2]!;
    const pad = stride === 1 ? (k - 1) / 2 : 1;
    return this.g.op(
      'Conv',
      [x, this.g.weight(`${prefix}.weight`, f.dims, f.data), this.param(`${prefix}.bias`)],
      [
        { name: 'kernel_shape', ints: [k, k] },
        { name: 'strides', ints: [stride, stride] },
        { name: 'pads', ints: [pad, pad, pad, pad] },
      ],
      prefix,
    );
  }

  groupNorm(prefix: string, x: string, groups: number, eps: number): string {
    const g = this.g;
    const grouped = g.op('Reshape', [x, g.ints([0, groups, -1])]);
    const ones = g.floats(new Array<number>(groups).fill(1), [groups]);
    const zeros = g.floats(new Array<number>(groups).fill(0), [groups]);
    const normed = g.op('InstanceNormalization', [grouped, ones, zeros], [{ name: 'epsilon', float: eps }]);
    const back = g.op('Reshape', [normed, g.op('Shape', [x])]);
    const scaled = g.op('Mul', [back, this.channelParam(`${prefix}.weight`)]);
    return g.op('Add', [scaled, this.channelParam(`${prefix}.bias`)], [], prefix);
  }

  layerNorm(prefix: string, x: string): string {
    return this.g.op(
      'LayerNormalization',
      [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)],
      [
        { name: 'axis', int: -1 },
        { name: 'epsilon', float: K.layerNormEps },
      ],
      prefix,
    );
  }

  /** [B, L, C] -> [B, heads, L, d] (or [B, heads, d, L] with `keysT`). */
  private splitHeads(x: string, heads: number, d: number, keysT = false): string {
    const g = this.g;
    const r = g.op('Reshape', [x, g.ints([0, 0, heads, d])]);
    return g.op('Transpose', [r], [{ name: 'perm', ints: keysT ? [0, 2, 3, 1] : [0, 2, 1, 3] }]);
  }

  attention(prefix: string, x: string, heads: number, channels: number, context?: string): string {
    const g = this.g;
    const kv = context ?? x;
    const d = channels / heads;
    const q = this.splitHeads(this.dense(`${prefix}.to_q`, x, false), heads, d);
    const kT = this.splitHeads(this.dense(`${prefix}.to_k`, kv, false), heads, d, true);
    const v = this.splitHeads(this.dense(`${prefix}.to_v`, kv, false), heads, d);
    const scores = g.op('MatMul', [g.op('Mul', [q, g.floats([1 / Math.sqrt(d)])]), kT]);
    const probs = g.op('Softmax', [scores], [{ name: 'axis', int: -1 }]);
    const out = g.op('Transpose', [g.op('MatMul', [probs, v])], [{ name: 'perm', ints: [0, 2, 1, 3] }]);
    return this.dense(`${prefix}.to_out.0`, g.op('Reshape', [out, g.ints([0, 0, channels])]));
  }

  transformerBlock(prefix: string, x: string, context: string, heads: number, channels: number): string {
    const g = this.g;
    let h = g.op('Add', [
      this.attention(`${prefix}.attn1`, this.layerNorm(`${prefix}.norm1`, x), heads, channels),
      x,
    ]);
    h = g.op('Add', [
      this.attention(`${prefix}.attn2`, this.layerNorm(`${prefix}.norm2`, h), heads, channels, context),
      h,
    ]);
    // GEGLU: the first half of the projection is the value, the second half the GELU gate.
    const proj = this.dense(`${prefix}.ff.net.0.proj`, this.layerNorm(`${prefix}.norm3`, h));
    const [value, gate] = g.opN('Split', [proj, g.ints([4 * channels, 4 * channels])], 2, [
      { name: 'axis', int: -1 },
    ]);
    const ff = this.dense(`${prefix}.ff.net.2`, g.op('Mul', [value!, this.geluErf(gate!)]));
    return g.op('Add', [ff, h]);
  }

  transformer2d(
    prefix: string,
    x: string,
    context: string,
    heads: number,
    groups: number,
    c: number,
  ): string {
    const g = this.g;
    const h = this.conv(
      `${prefix}.proj_in`,
      this.groupNorm(`${prefix}.norm`, x, groups, K.transformerNormEps),
    );
    const seq = g.op(
      'Transpose',
      [g.op('Reshape', [h, g.ints([0, c, -1])])],
      [{ name: 'perm', ints: [0, 2, 1] }],
    );
    const out = this.transformerBlock(`${prefix}.transformer_blocks.0`, seq, context, heads, c);
    const back = g.op('Reshape', [
      g.op('Transpose', [out], [{ name: 'perm', ints: [0, 2, 1] }]),
      g.op('Shape', [x]),
    ]);
    return g.op('Add', [this.conv(`${prefix}.proj_out`, back), x]);
  }

  resnet(prefix: string, x: string, tembAct: string, groups: number): string {
    const g = this.g;
    let h = this.silu(this.groupNorm(`${prefix}.norm1`, x, groups, K.resnetEps));
    h = this.conv(`${prefix}.conv1`, h);
    const t = g.op('Unsqueeze', [this.dense(`${prefix}.time_emb_proj`, tembAct), g.ints([2, 3])]);
    h = g.op('Add', [h, t]);
    h = this.silu(this.groupNorm(`${prefix}.norm2`, h, groups, K.resnetEps));
    h = this.conv(`${prefix}.conv2`, h);
    const shortcut = this.has(`${prefix}.conv_shortcut.weight`) ? this.conv(`${prefix}.conv_shortcut`, x) : x;
    return g.op('Add', [shortcut, h], [], prefix);
  }

  timestepEmbedding(t: string, dim: number): string {
    const g = this.g;
    if (!K.flipSinToCos || K.freqShift !== 0)
      throw new Error('UNet export assumes flip_sin_to_cos, freq_shift 0');
    const freqs = g.weight('time_proj.freqs', [1, dim / 2], timestepFrequencies(dim, K.freqShift));
    const args = g.op('Mul', [g.op('Unsqueeze', [t, g.ints([1])]), freqs]);
    return g.op(
      'Concat',
      [g.op('Cos', [args]), g.op('Sin', [args])],
      [{ name: 'axis', int: 1 }],
      'time_proj',
    );
  }

  build(): OnnxGraph {
    const c = this.unet.config;
    const g = this.g;
    const gn = c.norm_num_groups;
    const n = c.block_out_channels.length;
    const io = UNET_ONNX_IO;
    const sample = g.fresh(io.sample);
    const timestep = g.fresh(io.timestep);
    const context = g.fresh(io.context);
    g.fresh(io.output);

    let temb = this.dense(
      'time_embedding.linear_1',
      this.timestepEmbedding(timestep, c.block_out_channels[0]!),
    );
    temb = this.dense('time_embedding.linear_2', this.silu(temb));
    const tembAct = this.silu(temb);

    let h = this.conv('conv_in', g.op('Transpose', [sample], [{ name: 'perm', ints: [0, 3, 1, 2] }]));
    const skips: string[] = [h];
    c.down_block_types.forEach((type, i) => {
      const prefix = `down_blocks.${i}`;
      for (let j = 0; j < c.layers_per_block; j++) {
        h = this.resnet(`${prefix}.resnets.${j}`, h, tembAct, gn);
        if (type === 'CrossAttnDownBlock2D')
          h = this.transformer2d(
            `${prefix}.attentions.${j}`,
            h,
            context,
            headsFor(c, i),
            gn,
            c.block_out_channels[i]!,
          );
        skips.push(h);
      }
      if (i < n - 1) {
        h = this.conv(`${prefix}.downsamplers.0.conv`, h, 2);
        skips.push(h);
      }
    });

    const mid = c.block_out_channels[n - 1]!;
    h = this.resnet('mid_block.resnets.0', h, tembAct, gn);
    h = this.transformer2d('mid_block.attentions.0', h, context, headsFor(c, n - 1), gn, mid);
    h = this.resnet('mid_block.resnets.1', h, tembAct, gn);

    const reversed = [...c.block_out_channels].reverse();
    c.up_block_types.forEach((type, i) => {
      const prefix = `up_blocks.${i}`;
      const heads = headsFor(c, n - 1 - i);
      for (let j = 0; j <= c.layers_per_block; j++) {
        const skip = skips.pop();
        if (!skip) throw new Error('UNet skip connections exhausted (inconsistent config)');
        h = g.op('Concat', [h, skip], [{ name: 'axis', int: 1 }]);
        h = this.resnet(`${prefix}.resnets.${j}`, h, tembAct, gn);
        if (type === 'CrossAttnUpBlock2D')
          h = this.transformer2d(`${prefix}.attentions.${j}`, h, context, heads, gn, reversed[i]!);
      }
      if (i < n - 1) {
        const up = g.op(
          'Resize',
          [h, '', g.floats([1, 1, 2, 2], [4])],
          [
            { name: 'mode', string: 'nearest' },
            { name: 'coordinate_transformation_mode', string: 'asymmetric' },
            { name: 'nearest_mode', string: 'floor' },
          ],
        );
        h = this.conv(`${prefix}.upsamplers.0.conv`, up);
      }
    });

    h = this.silu(this.groupNorm('conv_norm_out', h, gn, K.resnetEps));
    h = this.conv('conv_out', h);
    g.nodes.push({
      opType: 'Transpose',
      inputs: [h],
      outputs: [io.output],
      attributes: [{ name: 'perm', ints: [0, 2, 3, 1] }],
    });
    return g.graph(
      'unet',
      [
        { name: io.sample, dtype: 'float32', shape: ['batch', 'height', 'width', c.in_channels] },
        { name: io.timestep, dtype: 'float32', shape: ['batch'] },
        { name: io.context, dtype: 'float32', shape: ['batch', 'sequence', c.cross_attention_dim] },
      ],
      [{ name: io.output, dtype: 'float32', shape: ['batch', 'height', 'width', c.out_channels] }],
    );
  }
}

/** The UNet as an ONNX graph holding copies of its current weights. */
export function unetOnnxGraph(unet: UNet2DConditionModel): OnnxGraph {
  const read: WeightSource = (name) => {
    const v = unet.params.get(name);
    return { shape: v.shape, data: v.dataSync() as Float32Array };
  };
  return new UNetGraph(unet, read).build();
}

/** Serialized ONNX model of the UNet with its current weights. */
export function exportUNetToOnnx(unet: UNet2DConditionModel): Uint8Array {
  return encodeOnnxModel(unetOnnxGraph(unet), { opset: UNET_ONNX_OPSET });
}
