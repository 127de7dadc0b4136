/**
 * Writes the built-in world's pretraining corpus as flat binary files, for pretraining the base
 * model with another framework on an accelerator (tools/pretrain_base_accelerated.py):
 *
 *   npx tsx tools/export-pretraining-corpus.ts --out /tmp/corpus --size 200000 --seed 0 \
 *     [--caption-noise 0.3] [--resolution 16] [--template models/world-base/base.safetensors]
 *
 * Files (all little-endian, row-major):
 * - images.u8.gz: gzip of N x H x W x 3 bytes, the rendered scenes quantized to 0..255 (the model's
 *   [-1, 1] space is byte / 127.5 - 1);
 * - tokens.u8.gz: gzip of N x L token ids of the captions (L = the tokenizer's maxLength);
 * - exact-tokens.u8.gz: N x L token ids of what each scene really shows, and kinds.u8.gz: N bytes,
 *   0 exact, 1 partial, 2 wrong caption; with them a trainer can lower the caption noise of the
 *   exported corpus (use the exact caption for a share of the noisy rows) without rendering again;
 * - corpus.json: N, H, W, L, the token ids of the empty prompt (for prompt dropout), the caption-kind
 *   counts, the corpus options, and the model bundle metadata (UNet, text encoder and tokenizer
 *   configs) copied from the template bundle, so the trained weights load into the engine unchanged.
 *
 * The scenes are those of `buildPretrainingCorpus` with the same options (same Rng stream), so a
 * corpus exported here and one built in-process hold the same images and captions.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Rng } from '../engine/rng';
import { renderScene, sampleCaptionedScene } from '../engine/world/render';
import { worldTokenizer } from '../engine/world/world-text';
import { parseSafetensorsHeader } from '../engine/io/safetensors';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

function writeTokens(into: Buffer, row: number, ids: readonly number[], L: number): void {
  if (ids.length !== L) throw new Error(`row ${row}: ${ids.length} tokens, expected ${L}`);
  for (let j = 0; j < L; j++) {
    if (ids[j]! > 255) throw new Error(`row ${row}: token id ${ids[j]} does not fit a byte`);
    into[row * L + j] = ids[j]!;
  }
}

function main(): void {
  const out = arg('out');
  const size = Number(arg('size', '200000'));
  const seed = Number(arg('seed', '0'));
  const captionNoise = Number(arg('caption-noise', '0.3'));
  const resolution = Number(arg('resolution', '16'));
  const template = arg('template', 'models/world-base/base.safetensors');
  if (!Number.isInteger(size) || size <= 0) throw new Error(`--size must be a positive integer, got ${size}`);
  fs.mkdirSync(out, { recursive: true });

  const tokenizer = worldTokenizer();
  const L = tokenizer.config.maxLength;
  const images = Buffer.alloc(size * resolution * resolution * 3);
  const tokens = Buffer.alloc(size * L);
  const exactTokens = Buffer.alloc(size * L);
  const kindCodes = Buffer.alloc(size);
  const KIND_CODE = { exact: 0, partial: 1, wrong: 2 } as const;
  const kinds: Record<string, number> = {};
  // Same stream as buildPretrainingCorpus, so both hold the same scenes for the same options.
  const rng = new Rng(`corpus:${seed}`);
  const t0 = Date.now();
  for (let i = 0; i < size; i++) {
    const c = sampleCaptionedScene(rng, { pWrong: captionNoise / 2, pPartial: captionNoise / 2 });
    const img = renderScene(c.scene, { resolution });
    const base = i * resolution * resolution * 3;
    for (let j = 0; j < img.data.length; j++) images[base + j] = Math.round(img.data[j]! * 255);
    writeTokens(tokens, i, tokenizer.encode(c.caption), L);
    writeTokens(exactTokens, i, tokenizer.encode(c.metadata.prompt), L);
    kindCodes[i] = KIND_CODE[c.kind];
    kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
    if ((i + 1) % 20000 === 0)
      console.log(`rendered ${i + 1}/${size} ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  fs.writeFileSync(path.join(out, 'images.u8.gz'), zlib.gzipSync(images, { level: 9 }));
  fs.writeFileSync(path.join(out, 'tokens.u8.gz'), zlib.gzipSync(tokens, { level: 9 }));
  fs.writeFileSync(path.join(out, 'exact-tokens.u8.gz'), zlib.gzipSync(exactTokens, { level: 9 }));
  fs.writeFileSync(path.join(out, 'kinds.u8.gz'), zlib.gzipSync(kindCodes, { level: 9 }));
  const header = parseSafetensorsHeader(new Uint8Array(fs.readFileSync(template)));
  const meta = {
    size,
    height: resolution,
    width: resolution,
    channels: 3,
    tokenLength: L,
    emptyPromptTokens: tokenizer.encode(''),
    kinds,
    corpus: { seed, size, captionNoise, resolution },
    bundleMetadata: header.metadata,
  };
  fs.writeFileSync(path.join(out, 'corpus.json'), `${JSON.stringify(meta, null, 2)}\n`);
  const mb = (f: string) => (fs.statSync(path.join(out, f)).size / 1e6).toFixed(1);
  console.log(
    `wrote ${out}: ${size} scenes (${JSON.stringify(kinds)}), images ${mb('images.u8.gz')} MB, ` +
      `tokens ${mb('tokens.u8.gz')} MB, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
}

main();
