/**
 * Memory and compute plan of Diffusion-DRO on Stable Diffusion 1.5, computed from its configs (the
 * engine's SD15_UNET, SD15_VAE and SD15_TEXT_ENCODER, which are runwayml/stable-diffusion-v1-5's
 * config.json files): parameter counts, weight and optimizer bytes, an activation estimate per
 * sample at 64x64 latents, and FLOPs per training step. docs/latent-models.md quotes its output.
 *
 *   npx tsx tools/sd15-budget.ts [--batch 4] [--sampler-steps 20] [--buffer-batch 4]
 */
import { parseArgs } from 'node:util';
import { unetForwardFlops, unetTrainingFlops } from '../engine/models/flops';
import { SD15_TEXT_ENCODER, textEncoderParamSpecs } from '../engine/models/text-encoder';
import { headsFor, SD15_UNET, type UNetConfig } from '../engine/models/unet-config';
import { unetParamSpecs } from '../engine/models/unet-params';
import { vaeParamSpecs } from '../engine/models/vae';
import { SD15_VAE } from '../engine/models/vae-config';

const count = (specs: { shape: number[] }[]) =>
  specs.reduce((a, s) => a + s.shape.reduce((p, d) => p * d, 1), 0);

/**
 * Values kept for the backward pass of one sample (float elements), walking the UNet as
 * ../engine/models/flops.ts does. Per op the input it differentiates against is counted:
 * GroupNorm + SiLU keep 3 maps (input, normalized, activated), a conv its input, a resnet
 * 3*cin + 5*cout maps; a transformer block 35 ch-wide maps plus its attention probabilities
 * (scores and softmax, heads x tokens^2 each, self-attention; heads x tokens x 77 cross-attention).
 */
function activationElements(
  c: UNetConfig,
  side: number,
  contextLength: number,
  attentionMatrices = true,
): number {
  let total = 0;
  const resnet = (hw: number, cin: number, cout: number) => (total += hw * (3 * cin + 5 * cout));
  const transformer = (hw: number, ch: number, heads: number) =>
    (total += 35 * ch * hw + (attentionMatrices ? 2 * heads * hw * hw + 4 * heads * hw * contextLength : 0));
  const boc = c.block_out_channels;
  const n = boc.length;
  let hw = side * side;
  total += c.in_channels * hw;
  let out = boc[0]!;
  c.down_block_types.forEach((type, i) => {
    const inCh = out;
    out = boc[i]!;
    for (let j = 0; j < c.layers_per_block; j++) {
      resnet(hw, j === 0 ? inCh : out, out);
      if (type === 'CrossAttnDownBlock2D') transformer(hw, out, headsFor(c, i));
    }
    if (i < n - 1) {
      total += out * hw;
      hw /= 4;
    }
  });
  resnet(hw, boc[n - 1]!, boc[n - 1]!);
  transformer(hw, boc[n - 1]!, headsFor(c, n - 1));
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
      if (type === 'CrossAttnUpBlock2D') transformer(hw, out, headsFor(c, n - 1 - i));
    }
    if (i < n - 1) {
      hw *= 4;
      total += out * hw;
    }
  });
  total += 3 * boc[0]! * hw;
  return total;
}

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '4' },
    'sampler-steps': { type: 'string', default: '20' },
    'buffer-batch': { type: 'string', default: '4' },
  },
});
const batch = Number(values.batch);
const samplerSteps = Number(values['sampler-steps']);
const bufferBatch = Number(values['buffer-batch']);
const GB = 1e9;
const unet = count(unetParamSpecs(SD15_UNET));
const vae = count(vaeParamSpecs(SD15_VAE));
const text = count(textEncoderParamSpecs(SD15_TEXT_ENCODER));
const side = SD15_UNET.sample_size;
const ctx = SD15_TEXT_ENCODER.max_position_embeddings;
const act = activationElements(SD15_UNET, side, ctx);
const actFused = activationElements(SD15_UNET, side, ctx, false);
const shape = (b: number) => ({ batch: b, height: side, width: side, contextLength: ctx });

const rows: [string, string][] = [];
const row = (k: string, v: string) => rows.push([k, v]);
row('UNet parameters', unet.toLocaleString('en-US'));
row('VAE parameters', vae.toLocaleString('en-US'));
row('text encoder parameters', text.toLocaleString('en-US'));
row('UNet weights fp32 / bf16', `${((unet * 4) / GB).toFixed(2)} GB / ${((unet * 2) / GB).toFixed(2)} GB`);
row('VAE + text encoder fp32', `${(((vae + text) * 4) / GB).toFixed(2)} GB`);
// phi, EMA, ref, policy, gradient accumulator, this micro-step's gradients, Adam m and v.
row(
  'DRO training state fp32 (8 UNet-sized tensors: phi, EMA, ref, policy, accumulated grads, grads, AdamW m, v)',
  `${((8 * unet * 4) / GB).toFixed(2)} GB`,
);
row(
  'mixed precision: fp32 phi (master), EMA, accumulated grads, AdamW m, v; bf16 ref, policy, grads',
  `${((5 * unet * 4 + 3 * unet * 2) / GB).toFixed(2)} GB`,
);
row(`activations per sample at ${side}x${side} latents (fp32)`, `${((act * 4) / GB).toFixed(2)} GB`);
row(
  '  of which attention probabilities (gone with fused / memory-efficient attention)',
  `${(((act - actFused) * 4) / GB).toFixed(2)} GB`,
);
row(
  `activations of one DRO micro-step (batch ${batch}: ${2 * batch} samples, expert + policy, fp32 / bf16)`,
  `${((2 * batch * act * 4) / GB).toFixed(1)} GB / ${((2 * batch * act * 2) / GB).toFixed(1)} GB`,
);
row('UNet forward per sample', `${(unetForwardFlops(SD15_UNET, shape(1)) / 1e12).toFixed(3)} TFLOP`);
row(
  `DRO micro-step: phi fwd+bwd + ref fwd on ${2 * batch} samples`,
  `${((unetTrainingFlops(SD15_UNET, shape(2 * batch)) + unetForwardFlops(SD15_UNET, shape(2 * batch))) / 1e12).toFixed(2)} TFLOP`,
);
row(
  `buffer refill: ${bufferBatch} trajectories x ${samplerSteps} solver steps (guidance 1)`,
  `${(unetForwardFlops(SD15_UNET, shape(bufferBatch * samplerSteps)) / 1e12).toFixed(2)} TFLOP`,
);
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
