/**
 * FLOP counts (2 per multiply-add) of the UNet's convolutions and matrix products, the work that
 * dominates its cost; norms, activations and softmax are left out. A training step costs about 3x
 * the forward (the backward computes an input and a weight gradient per product).
 */
import { type UNetConfig, validateUNetConfig } from './unet-config';

export interface FlopShape {
  batch: number;
  height: number;
  width: number;
  /** Number of text tokens in the cross-attention context. */
  contextLength: number;
}

export function unetForwardFlops(c: UNetConfig, s: FlopShape): number {
  validateUNetConfig(c);
  let flops = 0;
  const conv = (hw: number, cin: number, cout: number, k: number) =>
    (flops += 2 * s.batch * hw * k * k * cin * cout);
  const mm = (rows: number, cin: number, cout: number) => (flops += 2 * rows * cin * cout);
  const temb = c.block_out_channels[0]! * 4;
  const resnet = (hw: number, cin: number, cout: number) => {
    conv(hw, cin, cout, 3);
    mm(s.batch, temb, cout);
    conv(hw, cout, cout, 3);
    if (cin !== cout) conv(hw, cin, cout, 1);
  };
  const transformer = (hw: number, ch: number) => {
    const tokens = s.batch * hw;
    conv(hw, ch, ch, 1);
    mm(tokens, ch, 3 * ch); // self-attention q, k, v
    flops += 2 * 2 * s.batch * hw * hw * ch; // scores and weighted sum
    mm(tokens, ch, ch);
    mm(tokens, ch, ch); // cross-attention q
    mm(s.batch * s.contextLength, c.cross_attention_dim, 2 * ch); // k, v
    flops += 2 * 2 * s.batch * hw * s.contextLength * ch;
    mm(tokens, ch, ch);
    mm(tokens, ch, 8 * ch); // GEGLU projection
    mm(tokens, 4 * ch, ch);
    conv(hw, ch, ch, 1);
  };

  const boc = c.block_out_channels;
  const n = boc.length;
  let hw = s.height * s.width;
  mm(s.batch, boc[0]!, temb);
  mm(s.batch, temb, temb);
  conv(hw, c.in_channels, boc[0]!, 3);
  let out = boc[0]!;
  c.down_block_types.forEach((type, i) => {
    const inCh = out;
    out = boc[i]!;
    for (let j = 0; j < c.layers_per_block; j++) {
      resnet(hw, j === 0 ? inCh : out, out);
      if (type === 'CrossAttnDownBlock2D') transformer(hw, out);
    }
    if (i < n - 1) {
      hw /= 4;
      conv(hw, out, out, 3);
    }
  });
  resnet(hw, boc[n - 1]!, boc[n - 1]!);
  transformer(hw, boc[n - 1]!);
  resnet(hw, boc[n - 1]!, boc[n - 1]!);
  const rev = [...boc].reverse();
  out = rev[0]!;
  c.up_block_types.forEach((type, i) => {
    const prevOut = out;
    out = rev[i]!;
    const inCh = rev[Math.min(i + 1, n - 1)]!;
    for (let j = 0; j <= c.layers_per_block; j++) {
      const skip = j === c.layers_per_block ? inCh : out;
      resnet(hw, (j === 0 ? prevOut : out) + skip, out);
      if (type === 'CrossAttnUpBlock2D') transformer(hw, out);
    }
    if (i < n - 1) {
      hw *= 4;
      conv(hw, out, out, 3);
    }
  });
  conv(hw, boc[0]!, c.out_channels, 3);
  return flops;
}

/** Forward plus backward (input and weight gradients). */
export function unetTrainingFlops(c: UNetConfig, s: FlopShape): number {
  return 3 * unetForwardFlops(c, s);
}
