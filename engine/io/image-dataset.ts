/**
 * A set of prompted images (expert demonstrations, a pretraining corpus) as one artifact: a
 * safetensors file with `images` [N, H, W, C] float32 in model space and the prompts (plus optional
 * ids and scores) as JSON in `__metadata__`.
 */
import type { ImageDataset } from '../training/datasets';
import { TrainingInputError } from '../training/errors';
import { parseSafetensors, serializeSafetensors } from './safetensors';

export const IMAGE_DATASET_FORMAT = 'dro-pipeline/image-dataset@1';

export interface StoredImageDataset extends ImageDataset {
  /** Source ids of the images (e.g. Pick-a-Pic image uids), parallel to `examples`. */
  ids?: string[];
  /** Reward scores, parallel to `examples`. */
  scores?: number[];
}

export function encodeImageDataset(ds: StoredImageDataset, extra: Record<string, string> = {}): Uint8Array {
  const { height: h, width: w, channels: c } = ds;
  const size = h * w * c;
  const images = new Float32Array(ds.examples.length * size);
  ds.examples.forEach((ex, i) => {
    if (ex.image.length !== size)
      throw new TrainingInputError(`example ${i} has ${ex.image.length} values, expected ${size}`);
    images.set(ex.image, i * size);
  });
  const metadata: Record<string, string> = {
    ...extra,
    format: IMAGE_DATASET_FORMAT,
    prompts: JSON.stringify(ds.examples.map((e) => e.prompt)),
  };
  if (ds.ids) metadata.ids = JSON.stringify(ds.ids);
  if (ds.scores) metadata.scores = JSON.stringify(ds.scores);
  return serializeSafetensors(new Map([['images', { shape: [ds.examples.length, h, w, c], data: images }]]), {
    metadata,
  });
}

export function decodeImageDataset(
  bytes: Uint8Array,
  source = 'image dataset',
): StoredImageDataset & { metadata: Record<string, string> } {
  const file = parseSafetensors(bytes, source);
  if (file.metadata.format !== IMAGE_DATASET_FORMAT) {
    throw new TrainingInputError(
      `${source} is not an image dataset (format '${file.metadata.format ?? 'none'}')`,
    );
  }
  const images = file.tensors.get('images');
  if (!images || images.shape.length !== 4)
    throw new TrainingInputError(`${source}: no [N, H, W, C] 'images' tensor`);
  const [n, h, w, c] = images.shape as [number, number, number, number];
  const prompts = JSON.parse(file.metadata.prompts ?? '[]') as unknown;
  if (!Array.isArray(prompts) || prompts.length !== n || prompts.some((p) => typeof p !== 'string')) {
    throw new TrainingInputError(`${source}: __metadata__ 'prompts' must list ${n} strings`);
  }
  const size = h * w * c;
  return {
    height: h,
    width: w,
    channels: c,
    examples: (prompts as string[]).map((prompt, i) => ({
      prompt,
      image: images.data.slice(i * size, (i + 1) * size),
    })),
    ids: file.metadata.ids ? (JSON.parse(file.metadata.ids) as string[]) : undefined,
    scores: file.metadata.scores ? (JSON.parse(file.metadata.scores) as number[]) : undefined,
    metadata: file.metadata,
  };
}
