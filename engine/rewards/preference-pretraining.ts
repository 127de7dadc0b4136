/**
 * Image-text pretraining of the preference model, the role CLIP's pretraining plays for PickScore:
 * a hundred preference pairs cannot teach a network from scratch what "three red triangles" looks
 * like, but they can fine-tune one that already relates images to captions.
 *
 * Data: the world's captioned scenes (the kind of data the base model is pretrained on), each with
 * its true caption and a contradicting one of the same template (another count, color, class,
 * relation, or swapped colors), rendered and degraded at a random level as generated samples are.
 * Objective, for a batch of N scenes with image features v_i, true captions p_i and contradicting
 * captions n_i (scores s(i, c) = <v_i, t_c>, the preference model's prompt term):
 *   image -> text: softmax cross-entropy of s(i, .) over the 2N captions {p_j} and {n_j}, target p_i;
 *   text -> image: softmax cross-entropy of s(., p_j) over the N images, target image j.
 * The contradicting captions are the hard negatives that make counts, colors and positions matter;
 * the in-batch ones make the classes matter. The prompt-blind head (mlp(v)) is left at its
 * initialization: only preference pairs say what an image is worth regardless of the prompt.
 *
 * Deterministic: scenes, degradations and the initialization are functions of `seed`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../rng';
import { renderScene, sampleCaptionedScene } from '../world/render';
import { PERTURB_LEVELS, perturb } from '../world/perturb';
import type { PerturbLevel } from '../world/perturb';
import { PreferenceModel, type PreferenceModelConfig } from './preference-model';

export interface PretrainOptions {
  seed: number;
  /** Optimizer steps. Default 600. */
  steps?: number;
  /** Scenes per step. Default 64. */
  batchSize?: number;
  /** Adam learning rate. Default 3e-3. */
  lr?: number;
  onProgress?: (info: {
    step: number;
    steps: number;
    loss: number;
    accuracy: number;
    seconds: number;
  }) => void;
}

export interface PretrainResult {
  model: PreferenceModel;
  /** Mean loss of each block of 50 steps. */
  losses: number[];
  /** Share of scenes in the last block whose true caption scores above the contradicting one. */
  hardNegativeAccuracy: number;
  seconds: number;
}

const LEVELS: readonly (PerturbLevel | null)[] = [
  null,
  PERTURB_LEVELS.mild,
  PERTURB_LEVELS.moderate,
  PERTURB_LEVELS.strong,
];

/** Prompt-term scores [images, captions]: <v_i, t_c>. */
function promptScores(model: PreferenceModel, x: tf.Tensor4D, captions: number[][]): tf.Tensor2D {
  return tf.tidy(() => {
    const v = model.imageFeatures(x);
    const t = model.textFeatures(captions);
    return tf.matMul(v, t, false, true) as tf.Tensor2D;
  });
}

export async function pretrainPreferenceModel(
  config: PreferenceModelConfig,
  options: PretrainOptions,
): Promise<PretrainResult> {
  if (!config.promptInput)
    throw new RangeError('pretrainPreferenceModel: a prompt-blind model has no text to pretrain');
  const start = Date.now();
  const steps = options.steps ?? 600;
  const batch = options.batchSize ?? 64;
  if (!Number.isInteger(steps) || steps < 1)
    throw new RangeError(`pretrainPreferenceModel: steps must be >= 1, got ${steps}`);
  if (!Number.isInteger(batch) || batch < 2)
    throw new RangeError(`pretrainPreferenceModel: batchSize must be >= 2, got ${batch}`);
  const rng = new Rng(`preference-pretraining:${options.seed}`);
  const model = new PreferenceModel(config, { seed: rng.nextUint32() });
  const vars = [...model.params.entries()].filter(([name]) => !name.startsWith('head.')).map(([, v]) => v);
  const optimizer = tf.train.adam(options.lr ?? 3e-3);
  const r = config.resolution;
  const size = r * r * 3;
  const losses: number[] = [];
  let blockLoss = 0;
  let blockRight = 0;
  let blockCount = 0;
  let hardNegativeAccuracy = NaN;
  try {
    for (let step = 0; step < steps; step++) {
      const pixels = new Float32Array(batch * size);
      const positives: number[][] = [];
      const negatives: number[][] = [];
      for (let i = 0; i < batch; i++) {
        const c = sampleCaptionedScene(rng, { pWrong: 1, pPartial: 0 });
        const level = rng.choice(LEVELS);
        const clean = renderScene(c.scene, { resolution: r });
        pixels.set((level ? perturb(clean, level, rng) : clean).data, i * size);
        positives.push(model.tokenize(c.metadata.prompt));
        negatives.push(model.tokenize(c.caption));
      }
      const x = tf.tensor4d(pixels, [batch, r, r, 3]);
      const targets = tf.oneHot(tf.range(0, batch, 1, 'int32'), 2 * batch);
      const targetsT = tf.oneHot(tf.range(0, batch, 1, 'int32'), batch);
      let right = 0;
      const loss = optimizer.minimize(
        () => {
          const s = promptScores(model, x, [...positives, ...negatives]);
          const i2t = tf.losses.softmaxCrossEntropy(targets, s);
          const t2i = tf.losses.softmaxCrossEntropy(
            targetsT,
            tf.transpose(tf.slice(s, [0, 0], [batch, batch])),
          );
          const diag = tf.sub(
            tf.sum(tf.mul(s, targets), 1),
            tf.sum(tf.mul(s, tf.concat([tf.zerosLike(targetsT), targetsT], 1)), 1),
          );
          right = tf.sum(tf.cast(tf.greater(diag, 0), 'float32')).dataSync()[0]!;
          return tf.add(i2t, t2i) as tf.Scalar;
        },
        true,
        vars,
      );
      blockLoss += (await (loss as tf.Scalar).data())[0]!;
      blockRight += right;
      blockCount++;
      tf.dispose([loss as tf.Scalar, x, targets, targetsT]);
      if (blockCount === 50 || step === steps - 1) {
        losses.push(blockLoss / blockCount);
        hardNegativeAccuracy = blockRight / (blockCount * batch);
        options.onProgress?.({
          step: step + 1,
          steps,
          loss: blockLoss / blockCount,
          accuracy: hardNegativeAccuracy,
          seconds: (Date.now() - start) / 1000,
        });
        blockLoss = 0;
        blockRight = 0;
        blockCount = 0;
      }
    }
  } finally {
    optimizer.dispose();
  }
  model.weightsChanged();
  return { model, losses, hardNegativeAccuracy, seconds: (Date.now() - start) / 1000 };
}
