/**
 * The UNet's parameter list as a pure function of its config: names (diffusers state-dict keys, in
 * diffusers' registration order) and PyTorch shapes, without allocating any tensor.
 */
import type { ParamSpec } from '../nn/params';
import { type UNetConfig, validateUNetConfig } from './unet-config';

class SpecList {
  readonly specs: ParamSpec[] = [];
  conv(prefix: string, cin: number, cout: number, k: number): void {
    const fanIn = cin * k * k;
    this.specs.push({ name: `${prefix}.weight`, shape: [cout, cin, k, k], kind: 'conv', fanIn });
    this.specs.push({ name: `${prefix}.bias`, shape: [cout], kind: 'bias', fanIn });
  }
  linear(prefix: string, cin: number, cout: number, bias = true): void {
    this.specs.push({ name: `${prefix}.weight`, shape: [cout, cin], kind: 'linear', fanIn: cin });
    if (bias) this.specs.push({ name: `${prefix}.bias`, shape: [cout], kind: 'bias', fanIn: cin });
  }
  norm(prefix: string, c: number): void {
    this.specs.push({ name: `${prefix}.weight`, shape: [c], kind: 'norm_weight' });
    this.specs.push({ name: `${prefix}.bias`, shape: [c], kind: 'norm_bias' });
  }
}

function resnet(l: SpecList, prefix: string, cin: number, cout: number, temb: number): void {
  l.norm(`${prefix}.norm1`, cin);
  l.conv(`${prefix}.conv1`, cin, cout, 3);
  l.linear(`${prefix}.time_emb_proj`, temb, cout);
  l.norm(`${prefix}.norm2`, cout);
  l.conv(`${prefix}.conv2`, cout, cout, 3);
  if (cin !== cout) l.conv(`${prefix}.conv_shortcut`, cin, cout, 1);
}

function transformer(l: SpecList, prefix: string, c: number, crossDim: number): void {
  l.norm(`${prefix}.norm`, c);
  l.conv(`${prefix}.proj_in`, c, c, 1);
  const b = `${prefix}.transformer_blocks.0`;
  l.norm(`${b}.norm1`, c);
  for (const [attn, kvDim] of [
    ['attn1', c],
    ['attn2', crossDim],
  ] as const) {
    l.linear(`${b}.${attn}.to_q`, c, c, false);
    l.linear(`${b}.${attn}.to_k`, kvDim, c, false);
    l.linear(`${b}.${attn}.to_v`, kvDim, c, false);
    l.linear(`${b}.${attn}.to_out.0`, c, c);
    l.norm(`${b}.${attn === 'attn1' ? 'norm2' : 'norm3'}`, c);
  }
  l.linear(`${b}.ff.net.0.proj`, c, c * 8);
  l.linear(`${b}.ff.net.2`, c * 4, c);
  l.conv(`${prefix}.proj_out`, c, c, 1);
}

export function unetParamSpecs(config: UNetConfig): ParamSpec[] {
  validateUNetConfig(config);
  const l = new SpecList();
  const boc = config.block_out_channels;
  const n = boc.length;
  const temb = boc[0]! * 4;
  const cross = config.cross_attention_dim;

  l.conv('conv_in', config.in_channels, boc[0]!, 3);
  l.linear('time_embedding.linear_1', boc[0]!, temb);
  l.linear('time_embedding.linear_2', temb, temb);

  let out = boc[0]!;
  config.down_block_types.forEach((type, i) => {
    const inCh = out;
    out = boc[i]!;
    const p = `down_blocks.${i}`;
    if (type === 'CrossAttnDownBlock2D') {
      for (let j = 0; j < config.layers_per_block; j++) transformer(l, `${p}.attentions.${j}`, out, cross);
    }
    for (let j = 0; j < config.layers_per_block; j++)
      resnet(l, `${p}.resnets.${j}`, j === 0 ? inCh : out, out, temb);
    if (i < n - 1) l.conv(`${p}.downsamplers.0.conv`, out, out, 3);
  });

  const rev = [...boc].reverse();
  out = rev[0]!;
  config.up_block_types.forEach((type, i) => {
    const prevOut = out;
    out = rev[i]!;
    const inCh = rev[Math.min(i + 1, n - 1)]!;
    const p = `up_blocks.${i}`;
    const layers = config.layers_per_block + 1;
    if (type === 'CrossAttnUpBlock2D') {
      for (let j = 0; j < layers; j++) transformer(l, `${p}.attentions.${j}`, out, cross);
    }
    for (let j = 0; j < layers; j++) {
      const skip = j === layers - 1 ? inCh : out;
      const resIn = j === 0 ? prevOut : out;
      resnet(l, `${p}.resnets.${j}`, resIn + skip, out, temb);
    }
    if (i < n - 1) l.conv(`${p}.upsamplers.0.conv`, out, out, 3);
  });

  const mid = boc[n - 1]!;
  transformer(l, 'mid_block.attentions.0', mid, cross);
  resnet(l, 'mid_block.resnets.0', mid, mid, temb);
  resnet(l, 'mid_block.resnets.1', mid, mid, temb);

  l.norm('conv_norm_out', boc[0]!);
  l.conv('conv_out', boc[0]!, config.out_channels, 3);
  return l.specs;
}
