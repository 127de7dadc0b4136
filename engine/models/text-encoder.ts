/**
 * CLIP text encoder (transformers' CLIPTextModel, same parameter names):
 * token + position embeddings -> pre-LN transformer layers with a causal mask and a quick_gelu (or
 * gelu) MLP -> final_layer_norm. Returns last_hidden_state [B, L, hidden_size], the UNet's
 * cross-attention context. The token lookup is a one-hot matmul so the table can be trained on wasm.
 * A pipeline's `text_encoder/` folder (transformers' config.json and weights) loads through
 * `engine/io/diffusers-pipeline.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { embeddingLookup } from '../ops';
import { attention, CLIP_ATTENTION, dense, geluErf, layerNorm, quickGelu } from '../nn/layers';
import { ParameterSet, type ParamSpec } from '../nn/params';
import type { Rng } from '../rng';

export interface TextEncoderConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  /** Default 1e-5 (CLIP). */
  layer_norm_eps: number;
  /** MLP activation. Default 'quick_gelu' (OpenAI CLIP, SD1.5); 'gelu' is the exact erf GELU (OpenCLIP). */
  hidden_act?: TextEncoderActivation;
}

export const TEXT_ENCODER_ACTIVATIONS = ['quick_gelu', 'gelu'] as const;
export type TextEncoderActivation = (typeof TEXT_ENCODER_ACTIVATIONS)[number];

/**
 * Tensors a transformers checkpoint may hold that are not parameters: older versions saved the
 * constant position-id buffer (0..max_position_embeddings-1), which loaders skip.
 */
export const TEXT_ENCODER_BUFFERS: readonly string[] = [
  'text_model.embeddings.position_ids',
  'embeddings.position_ids',
];

/**
 * The engine's (and transformers 4's) name for a stored CLIPTextModel key: transformers 5 saves
 * the keys without the `text_model.` prefix that SD1.5's files carry; both load.
 */
export function canonicalTextEncoderKey(key: string): string {
  return key.startsWith('text_model.') ? key : `text_model.${key}`;
}

/** Text encoder for the built-in world; `vocab_size` comes from its tokenizer. */
export function demoTextEncoderConfig(vocabSize: number, maxLength = 16, hiddenSize = 64): TextEncoderConfig {
  return {
    vocab_size: vocabSize,
    hidden_size: hiddenSize,
    intermediate_size: hiddenSize * 4,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    max_position_embeddings: maxLength,
    layer_norm_eps: 1e-5,
  };
}

/** openai/clip-vit-large-patch14 text tower, as used by SD1.5 (for listing only). */
export const SD15_TEXT_ENCODER: TextEncoderConfig = {
  vocab_size: 49408,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  max_position_embeddings: 77,
  layer_norm_eps: 1e-5,
};

export function textEncoderParamSpecs(c: TextEncoderConfig): ParamSpec[] {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new Error(
      `TextEncoderConfig.hidden_size ${c.hidden_size} not divisible by ${c.num_attention_heads} heads`,
    );
  }
  if (c.hidden_act !== undefined && !TEXT_ENCODER_ACTIVATIONS.includes(c.hidden_act)) {
    throw new Error(
      `TextEncoderConfig.hidden_act ${JSON.stringify(c.hidden_act)} is not supported (${TEXT_ENCODER_ACTIVATIONS.join(', ')})`,
    );
  }
  const d = c.hidden_size;
  const specs: ParamSpec[] = [
    { name: 'text_model.embeddings.token_embedding.weight', shape: [c.vocab_size, d], kind: 'embedding' },
    {
      name: 'text_model.embeddings.position_embedding.weight',
      shape: [c.max_position_embeddings, d],
      kind: 'embedding',
    },
  ];
  const linear = (name: string, cin: number, cout: number) => {
    specs.push({ name: `${name}.weight`, shape: [cout, cin], kind: 'linear', fanIn: cin });
    specs.push({ name: `${name}.bias`, shape: [cout], kind: 'bias', fanIn: cin });
  };
  const norm = (name: string) => {
    specs.push({ name: `${name}.weight`, shape: [d], kind: 'norm_weight' });
    specs.push({ name: `${name}.bias`, shape: [d], kind: 'norm_bias' });
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `text_model.encoder.layers.${i}`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) linear(`${p}.self_attn.${proj}`, d, d);
    norm(`${p}.layer_norm1`);
    linear(`${p}.mlp.fc1`, d, c.intermediate_size);
    linear(`${p}.mlp.fc2`, c.intermediate_size, d);
    norm(`${p}.layer_norm2`);
  }
  norm('text_model.final_layer_norm');
  return specs;
}

export class CLIPTextModel {
  private constructor(
    readonly config: TextEncoderConfig,
    readonly params: ParameterSet,
  ) {}

  static create(config: TextEncoderConfig, rng: Rng, trainable = true): CLIPTextModel {
    return new CLIPTextModel(config, ParameterSet.create(textEncoderParamSpecs(config), rng, trainable));
  }

  /** A model around existing parameters (which must have been built from the same config). */
  static fromParameters(config: TextEncoderConfig, params: ParameterSet): CLIPTextModel {
    const want = textEncoderParamSpecs(config).map((s) => s.name);
    const have = params.names;
    if (want.length !== have.length || want.some((n, i) => n !== have[i])) {
      throw new Error('parameter set does not match the text encoder config');
    }
    return new CLIPTextModel(config, params);
  }

  clone(trainable = this.params.trainable): CLIPTextModel {
    return new CLIPTextModel(this.config, this.params.clone(trainable));
  }

  dispose(): void {
    this.params.dispose();
  }

  /** ids: int32 [B, L] (L <= max_position_embeddings) -> last_hidden_state [B, L, hidden_size]. */
  encode(ids: tf.Tensor2D): tf.Tensor3D {
    const c = this.config;
    if (ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new Error(`text encoder input must be int32 [B, L], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    }
    const [b, len] = ids.shape;
    if (len > c.max_position_embeddings) {
      throw new Error(
        `text encoder input length ${len} exceeds max_position_embeddings ${c.max_position_embeddings}`,
      );
    }
    return tf.tidy(() => {
      const p = this.params;
      const tok = embeddingLookup(ids, p.get('text_model.embeddings.token_embedding.weight') as tf.Tensor2D);
      const pos = tf.slice(p.get('text_model.embeddings.position_embedding.weight'), [0, 0], [len, -1]);
      let h = tf.add(tok, pos);
      const causal = causalMask(len);
      const act = c.hidden_act === 'gelu' ? geluErf : quickGelu;
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const prefix = `text_model.encoder.layers.${i}`;
        const a = attention(
          p,
          `${prefix}.self_attn`,
          layerNorm(p, `${prefix}.layer_norm1`, h, c.layer_norm_eps),
          c.num_attention_heads,
          CLIP_ATTENTION,
          undefined,
          causal,
        );
        h = tf.add(h, a);
        const m = dense(p, `${prefix}.mlp.fc1`, layerNorm(p, `${prefix}.layer_norm2`, h, c.layer_norm_eps));
        h = tf.add(h, dense(p, `${prefix}.mlp.fc2`, act(m)));
      }
      const out = layerNorm(p, 'text_model.final_layer_norm', h, c.layer_norm_eps);
      return tf.reshape(out, [b, len, c.hidden_size]);
    });
  }
}

/** Additive mask: 0 on and below the diagonal, a large negative number above (exp underflows to 0). */
function causalMask(len: number): tf.Tensor2D {
  const m = new Float32Array(len * len);
  for (let i = 0; i < len; i++) for (let j = i + 1; j < len; j++) m[i * len + j] = -1e9;
  return tf.tensor2d(m, [len, len]);
}
