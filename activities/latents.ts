/**
 * Training data of a latent model: the expert set (or the preference pairs) encoded once by the
 * model's VAE into a latent-set artifact, stored under a key derived from what determines it (VAE
 * weights, source artifact, flips), so SFT, DRO and every chunk and retry of them read the same
 * latents instead of encoding again. The artifact is digest-verified like any other.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import {
  decodeLatentImageSet,
  decodeLatentPairSet,
  type LatentImageSet,
  type LatentPairSet,
} from '../engine/latent/latent-data';
import { encodeTrainingLatents, LATENT_MODE } from '../engine/latent/training-latents';
import type { DiffusionModel } from '../engine/training/diffusion-model';
import { TrainingInputError } from '../engine/training/errors';
import type { Logger } from '../infra/logger';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import { storeCall } from './common';

export interface LatentData {
  data: { images?: LatentImageSet; pairs?: LatentPairSet };
  /** The latent-set artifact. */
  ref: ArtifactRef;
  /** Whether it was found already encoded. */
  reused: boolean;
}

/** `latents/<images|pairs>/<vae:16>-<source:16>-sample[-flip].safetensors`. */
export function latentSetKey(
  kind: 'images' | 'pairs',
  vaeSha256: string,
  sourceSha256: string,
  flips: boolean,
): string {
  return `latents/${kind}/${vaeSha256.slice(0, 16)}-${sourceSha256.slice(0, 16)}-${LATENT_MODE}${flips ? '-flip' : ''}.safetensors`;
}

function beat(details: Record<string, unknown>): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (tests): nothing to heartbeat.
  }
}

/**
 * The latent training data of `ref` (an expert image set for SFT/DRO, a preference parquet for
 * DPO) for a latent model: read when an earlier stage or attempt encoded it, else encoded now and
 * stored.
 */
export async function latentTrainingData(
  store: ArtifactStore,
  log: Logger,
  model: DiffusionModel,
  kind: 'images' | 'pairs',
  ref: ArtifactRef,
  flips: boolean,
): Promise<LatentData> {
  const latent = model.latent;
  if (!latent) throw new Error('latentTrainingData needs a latent model');
  const key = latentSetKey(kind, latent.vaeSha256, ref.sha256, flips);
  const head = await storeCall(() => store.head(key));
  if (head) {
    const bytes = await storeCall(() => store.get(head.ref.uri, head.ref.sha256));
    const set =
      kind === 'images'
        ? decodeLatentImageSet(bytes, head.ref.uri)
        : decodeLatentPairSet(bytes, head.ref.uri);
    const e = set.encoding;
    if (e.vaeSha256 !== latent.vaeSha256 || e.sourceSha256 !== ref.sha256 || e.flips !== flips)
      throw new TrainingInputError(
        `${head.ref.uri} holds latents of other inputs; remove it to encode again`,
      );
    log.info({ latents: head.ref.uri, sha256: head.ref.sha256 }, 'latent training data reused');
    return {
      data: kind === 'images' ? { images: set as LatentImageSet } : { pairs: set as LatentPairSet },
      ref: head.ref,
      reused: true,
    };
  }

  const source = await storeCall(() => store.get(ref.uri, ref.sha256));
  const started = performance.now();
  const progress = (done: number, total: number) => beat({ phase: 'encoding latents', done, total });
  const { bytes, prompts, overlong } = await encodeTrainingLatents(model, kind, source, ref, flips, progress);
  if (overlong.length > 0)
    log.warn(
      { prompts: overlong.length, first: overlong[0], maxLength: model.tokenizer.config.maxLength },
      'prompts longer than the tokenizer allows are truncated (eos kept last), as transformers truncation=True does',
    );
  const put = await storeCall(() =>
    store.put(key, bytes, {
      kind: 'latent-set',
      producer: 'encodeLatents',
      inputs: [ref.sha256],
      extra: {
        vaeSha256: latent.vaeSha256,
        mode: LATENT_MODE,
        flips,
        images: prompts.length * (kind === 'pairs' ? 2 : 1),
      },
      // Two stages encoding the same data at once write the same bytes; the first one stands.
      ifExists: 'keep',
    }),
  );
  const ms = Math.round(performance.now() - started);
  log.info(
    { latents: put.uri, sha256: put.sha256, images: prompts.length, ms },
    'training data encoded into latents',
  );
  const decoded =
    kind === 'images' ? decodeLatentImageSet(bytes, put.uri) : decodeLatentPairSet(bytes, put.uri);
  return {
    data: kind === 'images' ? { images: decoded as LatentImageSet } : { pairs: decoded as LatentPairSet },
    ref: { uri: put.uri, sha256: put.sha256, size: put.size },
    reused: false,
  };
}

/**
 * The local folder a `model.baseCheckpoint` names when it is a diffusers pipeline folder (a
 * directory holding model_index.json, as a path or file:// URI); undefined for anything else.
 */
export async function diffusersFolderOf(uri: string): Promise<string | undefined> {
  let dir: string;
  if (uri.startsWith('file://')) dir = fileURLToPath(uri);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return undefined;
  else dir = path.resolve(uri);
  try {
    if (!(await fsp.stat(dir)).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  return dir;
}
