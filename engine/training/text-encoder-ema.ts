/**
 * A checkpoint of a run that trained the text encoder (`trainTextEncoder`) holds the encoder's EMA
 * weights in its `ema` group under `text_encoder/<name>`, next to the UNet's. Exporting that run's
 * model must take the encoder from there too, or the exported UNet would be paired with the
 * untrained encoder it was never trained with.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorToWrite } from '../io/safetensors';
import type { CLIPTextModel } from '../models/text-encoder';
import { TrainingInputError } from './errors';

/** Prefix of the text encoder's parameters in the optimizer, EMA and checkpoint groups. */
export const TEXT_ENCODER_PREFIX = 'text_encoder/';

/**
 * The text encoder's EMA weights (TF.js layout, the encoder's own names) from a checkpoint's `ema`
 * group, or undefined when the run kept the encoder frozen. A group with some but not all of the
 * encoder's tensors, or one of the wrong size, is an error naming `source` and the tensor.
 */
export function textEncoderEmaFromGroup(
  group: ReadonlyMap<string, TensorToWrite>,
  text: CLIPTextModel,
  source = 'checkpoint',
): Map<string, tf.Tensor> | undefined {
  const present = [...group.keys()].filter((k) => k.startsWith(TEXT_ENCODER_PREFIX));
  if (present.length === 0) return undefined;
  const out = new Map<string, tf.Tensor>();
  try {
    for (const name of text.params.names) {
      const want = text.params.get(name);
      const t = group.get(`${TEXT_ENCODER_PREFIX}${name}`);
      if (!t || t.data.length !== want.size) {
        throw new TrainingInputError(
          `${source}: EMA tensor '${TEXT_ENCODER_PREFIX}${name}' is missing or does not fit the text encoder`,
        );
      }
      out.set(name, tf.tensor(t.data, want.shape, 'float32'));
    }
  } catch (err) {
    tf.dispose([...out.values()]);
    throw err;
  }
  return out;
}
