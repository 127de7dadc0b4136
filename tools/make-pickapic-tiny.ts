/**
 * Writes test/fixtures/pickapic-tiny/train-00000.parquet: a small Pick-a-Pic v2 shard with real
 * JPEG and PNG image bytes of several sizes, for pipeline runs on a real-format model
 * (config/tiny-sd.json). Each row shows two seeded drawings for one caption naming a colour; the
 * image whose disk has that colour is chosen, two rows are ties, and one caption is longer than
 * CLIP's 77 tokens (it is truncated, as transformers' truncation=True does).
 *
 *   npx tsx tools/make-pickapic-tiny.ts [out.parquet]
 */
import path from 'node:path';
import type { RgbImage } from '../engine/data/image';
import { encodeJpeg, encodePng } from '../engine/data/image-codec';
import { writePickapicParquet, type PickapicWriteRow } from '../engine/data/pickapic';
import { Rng } from '../engine/rng';

const COLORS: Record<string, [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 180, 60],
  blue: [40, 70, 220],
  yellow: [230, 210, 40],
};
const THINGS = ['ball', 'balloon', 'flower', 'sun', 'planet', 'button'];
const SIZES: Array<[number, number, 'jpeg' | 'png']> = [
  [16, 16, 'png'],
  [24, 24, 'jpeg'],
  [32, 32, 'jpeg'],
  [20, 20, 'png'],
];
const ROWS = 24;

function draw(rng: Rng, w: number, h: number, color: [number, number, number]): RgbImage {
  const data = new Uint8Array(w * h * 3);
  const bg = [rng.int(60, 200), rng.int(60, 200), rng.int(60, 200)];
  const cx = w * (0.3 + 0.4 * rng.uniform());
  const cy = h * (0.3 + 0.4 * rng.uniform());
  const r = Math.min(w, h) * (0.2 + 0.15 * rng.uniform());
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r;
      const shade = 0.8 + (0.2 * y) / h;
      for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = inside ? color[c]! : Math.round(bg[c]! * shade);
    }
  return { width: w, height: h, data };
}

async function main(): Promise<void> {
  const out = process.argv[2] ?? path.join('test', 'fixtures', 'pickapic-tiny', 'train-00000.parquet');
  const rng = new Rng(20_260_101);
  const names = Object.keys(COLORS);
  const rows: PickapicWriteRow[] = [];
  for (let i = 0; i < ROWS; i++) {
    const want = names[i % names.length]!;
    const other = names[(i + 1 + rng.int(0, names.length - 1)) % names.length]!;
    const thing = THINGS[rng.int(0, THINGS.length)]!;
    let caption = `a ${want} ${thing} on a plain background`;
    if (i === 5)
      caption +=
        ', ' +
        Array.from({ length: 40 }, (_, k) => `detail ${k}`).join(' and ') +
        ', highly detailed, sharp focus';
    const [w, h, format] = SIZES[i % SIZES.length]!;
    const good = draw(rng, w, h, COLORS[want]!);
    const bad = draw(rng, w, h, COLORS[other]!);
    const enc = (img: RgbImage) => (format === 'png' ? encodePng(img) : encodeJpeg(img, 92));
    const goodFirst = rng.uniform() < 0.5;
    const tie = i === 7 || i === 13;
    const [img0, img1] = goodFirst ? [good, bad] : [bad, good];
    rows.push({
      caption,
      image_0_uid: `tiny-${i}-0`,
      image_1_uid: `tiny-${i}-1`,
      jpg_0: enc(img0),
      jpg_1: enc(img1),
      label_0: tie ? 0.5 : goodFirst ? 1 : 0,
      label_1: tie ? 0.5 : goodFirst ? 0 : 1,
      user_id: 1000 + (i % 5),
      ranking_id: 500 + i,
      model_0: 'drawing',
      model_1: 'drawing',
      created_at: new Date(Date.UTC(2026, 0, 1 + i)),
    });
  }
  await writePickapicParquet(out, rows);
  console.log(`${out}: ${rows.length} rows`);
}

void main();
