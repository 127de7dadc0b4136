/**
 * Training data of a latent model: the expert set (or the preference pairs) encoded once by the
 * model's VAE into a latent-set artifact, stored under a key derived from what determines it (VAE
 * weights, source artifact, flips), so SFT, DRO and every chunk and retry of them read the same
 * latents instead of encoding again. The artifact is digest-verified like any other.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { readPickapicShards } from '../engine/data/pickapic';
import { toModelSpace } from '../engine/data/pretraining-corpus';
import { decodeImageDataset } from '../engine/io/image-dataset';
import {
  decodeLatentImageSet,
  decodeLatentPairSet,
  encodeImages,
  encodeLatentImageSet,
  encodeLatentPairSet,
  type LatentEncoding,
  type LatentImageSet,
  type LatentPairSet,
} from '../engine/latent/latent-data';
import { resizeToFloat } from '../engine/rewards/reward-model';
import type { DiffusionModel } from '../engine/training/diffusion-model';
import { TrainingInputError } from '../engine/training/errors';
import type { Logger } from '../infra/logger';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import { storeCall } from './common';

/** How latents are drawn from the VAE posterior (see engine/latent/latent-data.ts). */
const MODE = 'sample' as const;

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
  return `latents/${kind}/${vaeSha256.slice(0, 16)}-${sourceSha256.slice(0, 16)}-${MODE}${flips ? '-flip' : ''}.safetensors`;
}

function beat(details: Record<string, unknown>): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (tests): nothing to heartbeat.
  }
}

/** Prompts with more tokens than the tokenizer allows: SD's pipelines truncate them (transformers' truncation=True). */
function overlong(model: DiffusionModel, prompts: readonly string[]): string[] {
  const tok = model.tokenizer as { tokenize?: (p: string) => string[] };
  if (!tok.tokenize) return [];
  const room = model.tokenizer.config.maxLength - 2;
  return [...new Set(prompts)].filter((p) => tok.tokenize!(p).length > room);
}

/** Winner/loser pixel images (HWC in [-1, 1], resized to `side`) of a Pick-a-Pic parquet; ties are skipped. */
async function readPairs(
  bytes: Uint8Array,
  source: string,
  side: number,
): Promise<{ prompt: string; winner: Float32Array; loser: Float32Array }[]> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dro-latent-pairs-'));
  const file = path.join(dir, 'pairs.parquet');
  try {
    await fsp.writeFile(file, bytes);
    const { rows } = await readPickapicShards([file], {
      images: 'decode',
      onBadRow: 'fail',
      minImageSide: 1,
    });
    return rows
      .filter((r) => r.label_0 !== 0.5)
      .map((row) => {
        const [win, lose] = row.label_0 === 1 ? [row.image_0!, row.image_1!] : [row.image_1!, row.image_0!];
        return {
          prompt: row.caption,
          winner: toModelSpace(resizeToFloat(win, side, side)),
          loser: toModelSpace(resizeToFloat(lose, side, side)),
        };
      });
  } catch (err) {
    if (err instanceof Error && /Pickapic/.test(err.name))
      throw new TrainingInputError(`${source}: ${err.message.replace(file, 'parquet')}`);
    throw err;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
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

  const side = latent.imageSize;
  const source = await storeCall(() => store.get(ref.uri, ref.sha256));
  // The seed of every image's posterior draw follows from the source's digest alone.
  const seed = Number.parseInt(ref.sha256.slice(0, 8), 16);
  const started = performance.now();
  const progress = (done: number, total: number) => beat({ phase: 'encoding latents', done, total });
  let bytes: Uint8Array;
  let prompts: string[];
  let encoding: LatentEncoding;
  if (kind === 'images') {
    const ds = decodeImageDataset(source, ref.uri);
    if (ds.height !== side || ds.width !== side || ds.channels !== 3)
      throw new TrainingInputError(
        `${ref.uri}: expert images are ${ds.height}x${ds.width}x${ds.channels}; the model's VAE encodes ${side}x${side} RGB ` +
          `images into its UNet's latents: set model.resolution to ${side}`,
      );
    prompts = ds.examples.map((e) => e.prompt);
    const enc = await encodeImages(
      latent.vae,
      ds.examples.map((e) => e.image),
      ds,
      {
        mode: MODE,
        seed,
        flips,
        onProgress: progress,
      },
    );
    encoding = {
      mode: MODE,
      seed,
      flips,
      vaeSha256: latent.vaeSha256,
      sourceSha256: ref.sha256,
      scalingFactor: latent.vae.config.scaling_factor,
    };
    const set: LatentImageSet = {
      space: 'latent',
      ...enc.shape,
      examples: prompts.map((prompt, i) => ({
        prompt,
        image: enc.latents[i]!,
        ...(enc.flipped ? { flipped: enc.flipped[i]! } : {}),
      })),
    };
    encoding.truncatedPrompts = overlong(model, prompts).length;
    bytes = encodeLatentImageSet(set, encoding);
  } else {
    const pairs = await readPairs(source, ref.uri, side);
    if (pairs.length === 0) throw new TrainingInputError(`${ref.uri}: no preference pair without a tie`);
    prompts = pairs.map((p) => p.prompt);
    // Winner and loser of pair i are images 2i and 2i + 1: each has its own posterior draw.
    const images = pairs.flatMap((p) => [p.winner, p.loser]);
    const enc = await encodeImages(
      latent.vae,
      images,
      { height: side, width: side, channels: 3 },
      {
        mode: MODE,
        seed,
        flips,
        onProgress: progress,
      },
    );
    encoding = {
      mode: MODE,
      seed,
      flips,
      vaeSha256: latent.vaeSha256,
      sourceSha256: ref.sha256,
      scalingFactor: latent.vae.config.scaling_factor,
      truncatedPrompts: overlong(model, prompts).length,
    };
    const set: LatentPairSet = {
      space: 'latent',
      ...enc.shape,
      pairs: pairs.map((p, i) => ({
        prompt: p.prompt,
        winner: enc.latents[2 * i]!,
        loser: enc.latents[2 * i + 1]!,
        ...(enc.flipped ? { winnerFlipped: enc.flipped[2 * i]!, loserFlipped: enc.flipped[2 * i + 1]! } : {}),
      })),
    };
    bytes = encodeLatentPairSet(set, encoding);
  }
  const long = overlong(model, prompts);
  if (long.length > 0)
    log.warn(
      { prompts: long.length, first: long[0], maxLength: model.tokenizer.config.maxLength },
      'prompts longer than the tokenizer allows are truncated (eos kept last), as transformers truncation=True does',
    );
  const put = await storeCall(() =>
    store.put(key, bytes, {
      kind: 'latent-set',
      producer: 'encodeLatents',
      inputs: [ref.sha256],
      extra: {
        vaeSha256: latent.vaeSha256,
        mode: MODE,
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
