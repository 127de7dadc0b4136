/**
 * A learned preference model for the built-in world: the role PickScore plays for Pick-a-Pic.
 * Trained with the Bradley-Terry loss on preference pairs, it scores (image, prompt) pairs.
 *
 * Architecture (convolutions and products are engine/ops, fast to train on wasm):
 *   image: x in [0, 1] resized to r x r (default 16), centered (x - 0.5), plus two coordinate
 *     channels (x, y in [-0.5, 0.5]) so that pooled features can still say where things are;
 *     conv3x3(5->c1) relu -> conv3x3/2(c1->c2) relu -> conv3x3(c2->c2) relu -> conv3x3/2(c2->c3) relu
 *     -> [mean, max] over locations -> linear(2 c3 -> d) relu = image feature v
 *   prompt: bag of words over the world's vocabulary, t = sum of the words' learned vectors (d),
 *     computed as a one-hot matmul (engine/ops embeddingLookup) with padding masked out
 *   score: s = <v, t> + mlp(v), mlp = linear(d -> hidden) relu -> linear(hidden -> 1)
 * The dot product lets each word select the image features that matter for it (a color, a shape);
 * mlp(v) is what an image is worth regardless of the prompt (e.g. sharpness). The prompt-blind
 * variant (`promptInput: false`) is the same network without t: s = mlp(v), the baseline that
 * shows how much of the preferences the prompt explains. A bag of words ignores word order, so
 * "a red circle and a blue square" and "a blue circle and a red square" look alike to it.
 *
 * Loss, for a pair (image 0, image 1) with label y = label_0 (1 = image 0 chosen, 0.5 = tie):
 *   d = s_0 - s_1;  L = -(y logsigmoid(d) + (1 - y) logsigmoid(-d)),
 * which is -logsigmoid(s_w - s_l) for decided pairs. Ties are kept as 0.5 targets by default
 * (`ties: 'half'`: they pull the two scores together) or dropped (`ties: 'skip'`).
 *
 * Deterministic: weights are initialized from a seeded Rng and batches are shuffled by it; on the
 * wasm backend the same seed gives bit-identical weights in every process.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { decodeImage } from '../data/image-codec';
import { COLOR_NAMES, RELATIONS, SHAPE_CLASSES, numberWord, plural } from '../world/world';
import { readSafetensors, serializeSafetensors, type SafetensorsFile } from '../io/safetensors';
import { conv2d, conv2dDown, embeddingLookup, linear } from '../ops';
import { Rng } from '../rng';
import { checkBatch, resizeToFloat } from './reward-model';
import type { ImageBatch, RewardImage, RewardModel } from './reward-model';

export const PREFERENCE_MODEL_NAME = 'world-preference';
export const PREFERENCE_MODEL_VERSION = '1';

/** Makes variable and temp-file names unique within the process. */
let id = 0;

/** Adam learning rates: training from a seeded initialization, and fine-tuning given weights. */
export const PREFERENCE_LR = { scratch: 3e-3, fineTune: 1e-3 } as const;

export interface PreferenceModelConfig {
  /** Input side in pixels; images are resized to it. */
  resolution: number;
  /** Channels of the three conv stages. */
  channels: [number, number, number];
  /** Words per prompt; longer prompts are truncated. */
  maxWords: number;
  /** Size of the image feature and of the word vectors. */
  featureDim: number;
  /** Hidden size of the score head. */
  hidden: number;
  /** False gives the prompt-blind baseline. */
  promptInput: boolean;
  /**
   * Adds a vector per (word, position) to the bag of words, so that word order counts: "a red
   * circle and a blue square" and "a blue circle and a red square" differ, as do "a circle left of
   * a square" and "a square left of a circle". Absent in configs saved before it existed (false).
   */
  wordOrder?: boolean;
  /** Vocabulary; index 0 is the unknown word, index 1 padding. */
  vocab: string[];
}

/** Every word the world's prompt templates use. */
export function worldVocabulary(): string[] {
  const words = new Set<string>(['a', 'an', 'photo', 'of', 'and']);
  for (const c of SHAPE_CLASSES) words.add(c).add(plural(c));
  for (const c of COLOR_NAMES) words.add(c);
  for (const r of RELATIONS) for (const w of r.split(' ')) words.add(w);
  for (let n = 0; n <= 10; n++) words.add(numberWord(n));
  return ['<unk>', '<pad>', ...[...words].sort()];
}

export function defaultPreferenceConfig(
  overrides: Partial<PreferenceModelConfig> = {},
): PreferenceModelConfig {
  return {
    resolution: 16,
    channels: [16, 24, 32],
    maxWords: 12,
    featureDim: 32,
    hidden: 32,
    promptInput: true,
    wordOrder: true,
    vocab: worldVocabulary(),
    ...overrides,
  };
}

interface ParamShape {
  name: string;
  shape: number[];
  /** Fan-in for He initialization; 0 means zeros. */
  fanIn: number;
}

function paramShapes(c: PreferenceModelConfig): ParamShape[] {
  const [c1, c2, c3] = c.channels;
  const d = c.featureDim;
  const list: ParamShape[] = [
    { name: 'image.conv1.weight', shape: [3, 3, 5, c1], fanIn: 45 },
    { name: 'image.conv1.bias', shape: [c1], fanIn: 0 },
    { name: 'image.down1.weight', shape: [3, 3, c1, c2], fanIn: 9 * c1 },
    { name: 'image.down1.bias', shape: [c2], fanIn: 0 },
    { name: 'image.conv2.weight', shape: [3, 3, c2, c2], fanIn: 9 * c2 },
    { name: 'image.conv2.bias', shape: [c2], fanIn: 0 },
    { name: 'image.down2.weight', shape: [3, 3, c2, c3], fanIn: 9 * c2 },
    { name: 'image.down2.bias', shape: [c3], fanIn: 0 },
    { name: 'image.proj.weight', shape: [2 * c3, d], fanIn: 2 * c3 },
    { name: 'image.proj.bias', shape: [d], fanIn: 0 },
  ];
  if (c.promptInput) {
    list.push({ name: 'text.embedding', shape: [c.vocab.length, d], fanIn: 4 * d });
    if (c.wordOrder)
      list.push({ name: 'text.positional', shape: [c.maxWords * c.vocab.length, d], fanIn: 16 * d });
  }
  list.push(
    { name: 'head.fc1.weight', shape: [d, c.hidden], fanIn: d },
    { name: 'head.fc1.bias', shape: [c.hidden], fanIn: 0 },
    { name: 'head.fc2.weight', shape: [c.hidden, 1], fanIn: c.hidden },
    { name: 'head.fc2.bias', shape: [1], fanIn: 0 },
  );
  return list;
}

function validateConfig(c: PreferenceModelConfig): void {
  if (!Number.isInteger(c.resolution) || c.resolution < 8 || c.resolution % 4 !== 0)
    throw new RangeError(
      `preference model: resolution must be a multiple of 4 and >= 8, got ${c.resolution}`,
    );
  for (const [k, v] of Object.entries({
    maxWords: c.maxWords,
    featureDim: c.featureDim,
    hidden: c.hidden,
    ...Object.fromEntries(c.channels.map((ch, i) => [`channels[${i}]`, ch])),
  })) {
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`preference model: ${k} must be a positive integer, got ${v}`);
  }
  if (c.vocab.length < 3 || c.vocab[0] !== '<unk>' || c.vocab[1] !== '<pad>')
    throw new RangeError('preference model: vocab must start with <unk>, <pad> and hold words');
}

/** Starting weights that do not fit the preference model to be trained. */
export class PreferenceWeightsError extends Error {
  override name = 'PreferenceWeightsError';
}

/**
 * The weights of a saved preference model (safetensors with its config in the metadata, as
 * `serializeWeights` writes it) when they fit the model `expected` configures: same vocabulary (a
 * word id must mean the same word), same parameter names and shapes. Throws a
 * PreferenceWeightsError naming the first difference.
 */
export function checkPreferenceWeights(
  file: SafetensorsFile,
  source: string,
  expected: PreferenceModelConfig = defaultPreferenceConfig(),
): Map<string, Float32Array> {
  const fail = (why: string): never => {
    throw new PreferenceWeightsError(`${source}: ${why}`);
  };
  let saved: PreferenceModelConfig | undefined;
  try {
    saved = JSON.parse(file.metadata.config ?? 'null') as PreferenceModelConfig | undefined;
  } catch {
    fail('the preference-model config in __metadata__ is not JSON');
  }
  if (!saved || typeof saved !== 'object') return fail('no preference-model config in __metadata__');
  if (JSON.stringify(saved.vocab) !== JSON.stringify(expected.vocab))
    fail('its vocabulary differs from the preference model being trained');
  const weights = new Map<string, Float32Array>();
  for (const p of paramShapes(expected)) {
    const t = file.tensors.get(p.name);
    if (!t) fail(`weight '${p.name}' is missing`);
    else if (t.shape.join() !== p.shape.join())
      fail(`weight '${p.name}' has shape [${t.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    else weights.set(p.name, t.data);
  }
  for (const name of file.tensors.keys()) if (!weights.has(name)) fail(`unexpected weight '${name}'`);
  return weights;
}

export class PreferenceModel implements RewardModel {
  readonly name: string;
  readonly version = PREFERENCE_MODEL_VERSION;
  readonly params = new Map<string, tf.Variable>();
  private readonly wordIds: Map<string, number>;
  private digestCache: string | undefined;

  constructor(
    readonly config: PreferenceModelConfig,
    weights: ReadonlyMap<string, Float32Array> | { seed: number },
  ) {
    validateConfig(config);
    this.name = config.promptInput ? PREFERENCE_MODEL_NAME : `${PREFERENCE_MODEL_NAME}-prompt-blind`;
    this.wordIds = new Map(config.vocab.map((w, i) => [w, i]));
    const rng = 'seed' in weights ? new Rng(weights.seed as number) : undefined;
    for (const p of paramShapes(config)) {
      let data: Float32Array;
      if (rng) {
        data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
        if (p.fanIn > 0) rng.fillNormal(data, 0, Math.sqrt(2 / p.fanIn));
      } else {
        const given = (weights as ReadonlyMap<string, Float32Array>).get(p.name);
        const size = p.shape.reduce((a, b) => a * b, 1);
        if (!given) throw new Error(`preference model: weight '${p.name}' is missing`);
        if (given.length !== size)
          throw new Error(
            `preference model: weight '${p.name}' has ${given.length} values, expected ${size} for shape [${p.shape.join(', ')}]`,
          );
        data = given;
      }
      this.params.set(
        p.name,
        tf.variable(tf.tensor(data, p.shape, 'float32'), true, `pref/${p.name}/${id++}`),
      );
    }
  }

  get digest(): string {
    this.digestCache ??= `sha256:${createHash('sha256').update(this.serializeWeights()).digest('hex')}`;
    return this.digestCache;
  }

  /** Call after changing weights (training) so the digest reflects them. */
  weightsChanged(): void {
    this.digestCache = undefined;
  }

  private p<R extends tf.Rank>(name: string): tf.Tensor<R> {
    const v = this.params.get(name);
    if (!v) throw new Error(`preference model: no parameter '${name}'`);
    return v as unknown as tf.Tensor<R>;
  }

  /** [1, r, r, 2] maps of x and y in [-0.5, 0.5]: pooled features keep where things are. */
  private coordinates(): tf.Tensor4D {
    const r = this.config.resolution;
    const xy = new Float32Array(r * r * 2);
    for (let y = 0; y < r; y++)
      for (let x = 0; x < r; x++) {
        xy[(y * r + x) * 2] = (x + 0.5) / r - 0.5;
        xy[(y * r + x) * 2 + 1] = (y + 0.5) / r - 0.5;
      }
    return tf.tensor4d(xy, [1, r, r, 2]);
  }

  tokenize(prompt: string): number[] {
    const words = prompt.toLowerCase().split(/\s+/).filter(Boolean).slice(0, this.config.maxWords);
    const ids = words.map((w) => this.wordIds.get(w) ?? 0);
    while (ids.length < this.config.maxWords) ids.push(1);
    return ids;
  }

  /** [N, r, r, 3] in [0, 1] from any images. */
  pixels(images: ImageBatch): tf.Tensor4D {
    const r = this.config.resolution;
    const flat = new Float32Array(images.length * r * r * 3);
    images.forEach((img, i) => flat.set(resizeToFloat(img, r, r), i * r * r * 3));
    return tf.tensor4d(flat, [images.length, r, r, 3]);
  }

  /** Prompt vectors t [N, d]: the words' vectors summed (padding masked out), plus word order. */
  textFeatures(promptIds: number[][]): tf.Tensor2D {
    return tf.tidy(() => {
      const c = this.config;
      const n = promptIds.length;
      const ids = tf.tensor2d(promptIds.flat(), [n, c.maxWords], 'int32');
      const mask = tf.expandDims(tf.cast(tf.notEqual(ids, 1), 'float32'), 2);
      let t = tf.sum(tf.mul(embeddingLookup(ids, this.p('text.embedding')), mask), 1) as tf.Tensor2D;
      if (c.wordOrder) {
        // Word w at position i looks up row i * |vocab| + w.
        const v = c.vocab.length;
        const offsets = tf.range(0, c.maxWords * v, v, 'int32');
        const posIds = tf.add(ids, tf.expandDims(offsets, 0));
        const pos = embeddingLookup(posIds, this.p('text.positional'));
        t = tf.add(t, tf.sum(tf.mul(pos, mask), 1));
      }
      return t;
    });
  }

  /** Image features v [N, d] of images x [N, r, r, 3] in [0, 1]. */
  imageFeatures(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const n = x.shape[0];
      const input = tf.concat([tf.sub(x, 0.5), tf.tile(this.coordinates(), [n, 1, 1, 1])], 3) as tf.Tensor4D;
      let h = tf.relu(conv2d(input, this.p('image.conv1.weight'), this.p('image.conv1.bias')));
      h = tf.relu(conv2dDown(h, this.p('image.down1.weight'), this.p('image.down1.bias')));
      h = tf.relu(conv2d(h, this.p('image.conv2.weight'), this.p('image.conv2.bias')));
      h = tf.relu(conv2dDown(h, this.p('image.down2.weight'), this.p('image.down2.bias')));
      const pooled = tf.concat([tf.mean(h, [1, 2]), tf.max(h, [1, 2])], 1);
      return tf.relu(linear(pooled, this.p('image.proj.weight'), this.p('image.proj.bias'))) as tf.Tensor2D;
    });
  }

  /** Scores as a [N] tensor (differentiable with respect to the parameters). */
  forward(x: tf.Tensor4D, promptIds: number[][]): tf.Tensor1D {
    return tf.tidy(() => {
      const n = x.shape[0];
      const v = this.imageFeatures(x);
      const hid = tf.relu(linear(v, this.p('head.fc1.weight'), this.p('head.fc1.bias')));
      const prior = tf.reshape(linear(hid, this.p('head.fc2.weight'), this.p('head.fc2.bias')), [n]);
      if (!this.config.promptInput) return prior as tf.Tensor1D;
      return tf.add(prior, tf.sum(tf.mul(v, this.textFeatures(promptIds)), 1)) as tf.Tensor1D;
    });
  }

  async score(images: ImageBatch, prompts: readonly string[], batchSize = 64): Promise<number[]> {
    checkBatch(this.name, images, prompts);
    const out: number[] = [];
    for (let i = 0; i < images.length; i += batchSize) {
      const x = this.pixels(images.slice(i, i + batchSize));
      const s = this.forward(
        x,
        prompts.slice(i, i + batchSize).map((p) => this.tokenize(p)),
      );
      out.push(...(await s.data()));
      x.dispose();
      s.dispose();
    }
    return out;
  }

  weights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.params) out.set(name, v.dataSync() as Float32Array);
    return out;
  }

  serializeWeights(): Uint8Array {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.params)
      tensors.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
    return serializeSafetensors(tensors, { metadata: { config: JSON.stringify(this.config) } });
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}

/** Writes `config.json` and `weights.safetensors` into `dir` (each atomically). */
export async function savePreferenceModel(model: PreferenceModel, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const write = async (file: string, data: Uint8Array | string): Promise<void> => {
    const tmp = `${file}.tmp-${process.pid}-${id++}`;
    try {
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  };
  await write(path.join(dir, 'weights.safetensors'), model.serializeWeights());
  await write(
    path.join(dir, 'config.json'),
    `${JSON.stringify({ name: model.name, version: model.version, digest: model.digest, config: model.config }, null, 2)}\n`,
  );
}

export async function loadPreferenceModel(dir: string): Promise<PreferenceModel> {
  const configFile = path.join(dir, 'config.json');
  let parsed: { config?: PreferenceModelConfig; version?: string };
  try {
    parsed = JSON.parse(await fs.readFile(configFile, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new Error(`${configFile}: cannot read preference model config (${(err as Error).message})`);
  }
  if (!parsed.config) throw new Error(`${configFile}: field 'config' is missing`);
  if (parsed.version !== PREFERENCE_MODEL_VERSION)
    throw new Error(`${configFile}: version ${String(parsed.version)} is not ${PREFERENCE_MODEL_VERSION}`);
  const file = await readSafetensors(path.join(dir, 'weights.safetensors'));
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) weights.set(name, t.data);
  return new PreferenceModel(parsed.config, weights);
}

// ---- training ---------------------------------------------------------------------------------

/** One comparison: `label0` is 1 when image 0 was chosen, 0 when image 1 was, 0.5 for a tie. */
export interface PreferencePair {
  prompt: string;
  images: [RewardImage, RewardImage];
  label0: number;
}

/** Pairs from Pick-a-Pic rows (decoded images are used when present, else the bytes are decoded). */
export function preferencePairsFromRows(
  rows: readonly {
    caption: string | null;
    jpg_0: Uint8Array | null;
    jpg_1: Uint8Array | null;
    label_0: number | null;
    image_0_uid: string;
    image_0?: RewardImage;
    image_1?: RewardImage;
  }[],
): PreferencePair[] {
  return rows.map((r, i) => {
    if (r.caption === null || r.jpg_0 === null || r.jpg_1 === null || r.label_0 === null)
      throw new Error(`preference row ${i} (${r.image_0_uid}): caption, images and label_0 are required`);
    return {
      prompt: r.caption,
      images: [
        r.image_0 ?? decodeImage(r.jpg_0, { source: `row ${i} jpg_0` }),
        r.image_1 ?? decodeImage(r.jpg_1, { source: `row ${i} jpg_1` }),
      ],
      label0: r.label_0,
    };
  });
}

export interface TrainOptions {
  seed: number;
  epochs?: number;
  /** Pairs per step. Default 32. */
  batchSize?: number;
  /** Adam learning rate. Default 3e-3. */
  lr?: number;
  /** 'half' (default): ties are 0.5 targets; 'skip': ties are dropped. */
  ties?: 'half' | 'skip';
  /**
   * Starting weights (e.g. of `pretrainPreferenceModel`) instead of a seeded initialization: the
   * pairs then fine-tune a model that already relates images to prompts.
   */
  init?: ReadonlyMap<string, Float32Array>;
  onEpoch?: (info: { epoch: number; loss: number; seconds: number }) => void;
}

export interface TrainResult {
  model: PreferenceModel;
  /** Mean loss per epoch. */
  losses: number[];
  pairsUsed: number;
  seconds: number;
}

export async function trainPreferenceModel(
  pairs: readonly PreferencePair[],
  config: PreferenceModelConfig,
  options: TrainOptions,
): Promise<TrainResult> {
  const start = Date.now();
  const epochs = options.epochs ?? 12;
  const batchSize = options.batchSize ?? 32;
  pairs.forEach((p, i) => {
    if (![0, 0.5, 1].includes(p.label0))
      throw new RangeError(`preference pair ${i}: label0 must be 0, 0.5 or 1, got ${p.label0}`);
  });
  const used = options.ties === 'skip' ? pairs.filter((p) => p.label0 !== 0.5) : pairs.slice();
  if (used.length === 0) throw new RangeError('trainPreferenceModel: no usable preference pairs');
  const rng = new Rng(options.seed);
  const initSeed = rng.nextUint32();
  const model = new PreferenceModel(
    config,
    options.init ? new Map([...options.init].map(([k, v]) => [k, v.slice()])) : { seed: initSeed },
  );
  const optimizer = tf.train.adam(options.lr ?? PREFERENCE_LR.scratch);
  const vars = [...model.params.values()];
  // Pixels and token ids are prepared once; each step gathers its batch from them.
  const r = config.resolution;
  const px = new Float32Array(used.length * 2 * r * r * 3);
  used.forEach((p, i) => {
    px.set(resizeToFloat(p.images[0], r, r), 2 * i * r * r * 3);
    px.set(resizeToFloat(p.images[1], r, r), (2 * i + 1) * r * r * 3);
  });
  const ids = used.map((p) => model.tokenize(p.prompt));
  const losses: number[] = [];
  const order = used.map((_, i) => i);
  const size = r * r * 3;
  for (let epoch = 0; epoch < epochs; epoch++) {
    rng.shuffle(order);
    let total = 0;
    for (let b = 0; b < order.length; b += batchSize) {
      const idx = order.slice(b, b + batchSize);
      const n = idx.length;
      const batch = new Float32Array(2 * n * size);
      // Rows 0..n-1 hold image 0 of each pair, rows n..2n-1 image 1.
      idx.forEach((k, j) => {
        batch.set(px.subarray(2 * k * size, (2 * k + 1) * size), j * size);
        batch.set(px.subarray((2 * k + 1) * size, (2 * k + 2) * size), (n + j) * size);
      });
      const x = tf.tensor4d(batch, [2 * n, r, r, 3]);
      const y = tf.tensor1d(idx.map((k) => (used[k] as PreferencePair).label0));
      const promptIds = [...idx.map((k) => ids[k] as number[]), ...idx.map((k) => ids[k] as number[])];
      const loss = optimizer.minimize(
        () => {
          const s = model.forward(x, promptIds);
          const d = tf.sub(tf.slice(s, 0, n), tf.slice(s, n, n));
          // logsigmoid(d) = -softplus(-d): tf.logSigmoid's own gradient fails on the wasm backend.
          const l = tf.add(tf.mul(y, tf.softplus(tf.neg(d))), tf.mul(tf.sub(1, y), tf.softplus(d)));
          return tf.mean(l) as tf.Scalar;
        },
        true,
        vars,
      );
      total += (await (loss as tf.Scalar).data())[0]! * n;
      loss?.dispose();
      x.dispose();
      y.dispose();
    }
    losses.push(total / order.length);
    options.onEpoch?.({ epoch, loss: total / order.length, seconds: (Date.now() - start) / 1000 });
  }
  optimizer.dispose();
  model.weightsChanged();
  return { model, losses, pairsUsed: used.length, seconds: (Date.now() - start) / 1000 };
}

/** Share of decided pairs (ties excluded) whose chosen image the model scores higher. */
export async function pairwiseAccuracy(
  model: RewardModel,
  pairs: readonly PreferencePair[],
): Promise<{ accuracy: number; pairs: number }> {
  const decided = pairs.filter((p) => p.label0 !== 0.5);
  if (decided.length === 0) return { accuracy: NaN, pairs: 0 };
  const s0 = await model.score(
    decided.map((p) => p.images[0]),
    decided.map((p) => p.prompt),
  );
  const s1 = await model.score(
    decided.map((p) => p.images[1]),
    decided.map((p) => p.prompt),
  );
  let right = 0;
  decided.forEach((p, i) => {
    const d = (s0[i] as number) - (s1[i] as number);
    // An exact tie in scores counts as half right, as a coin flip would.
    right += d === 0 ? 0.5 : d > 0 === (p.label0 === 1) ? 1 : 0;
  });
  return { accuracy: right / decided.length, pairs: decided.length };
}
