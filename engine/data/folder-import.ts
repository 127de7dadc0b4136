/**
 * Expert demonstrations from a plain folder of images and captions.
 *
 * Two layouts are accepted:
 * - sidecar (default): every image `<stem>.png|.jpg|.jpeg` has a caption file `<stem>.txt` next to
 *   it (UTF-8, one caption; surrounding whitespace trimmed). e.g. `0001.png` + `0001.txt`.
 * - manifest: a `metadata.jsonl` file (the Hugging Face imagefolder convention) with one line per
 *   image, `{"file_name": "0001.png", "text": "a photo of a red circle"}`; when present it is
 *   authoritative and `.txt` files are ignored.
 * Other files are ignored. Every problem is an error naming the offending file (and line):
 * an image without caption, a caption without image, an empty caption, two images with one stem,
 * a manifest line that is not JSON or names a missing file, an undecodable or too-small image.
 * Items come back sorted by file name, so the order does not depend on the file system.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { RgbImage } from './image';
import { decodeImage, encodePng } from './image-codec';
import type { PickapicWriteRow } from './pickapic';
import { MAX_CAPTION_BYTES } from './text-limits';

export interface FolderItem {
  /** File name of the image within the folder. */
  fileName: string;
  caption: string;
  image: RgbImage;
}

export interface FolderImportOptions {
  /** Smallest accepted image side. Default 16. */
  minImageSide?: number;
}

/** Largest files read: image, caption, manifest. Bigger ones are refused before they are read. */
export const FOLDER_FILE_LIMITS = {
  imageBytes: 256 * 1024 * 1024,
  captionBytes: MAX_CAPTION_BYTES,
  manifestBytes: 64 * 1024 * 1024,
} as const;

/** Reads a file after checking its size against `limit`; errors name the file. */
async function readBounded(file: string, limit: number, what: string): Promise<Buffer> {
  let size: number;
  try {
    size = (await fs.stat(file)).size;
  } catch (err) {
    throw new FolderImportError(
      file,
      `cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  if (size > limit)
    throw new FolderImportError(file, `${what} is ${size} bytes, more than the ${limit} allowed`);
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new FolderImportError(
      file,
      `cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** A folder that does not follow the layout. Permanent. */
export class FolderImportError extends Error {
  override readonly name = 'FolderImportError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);
export const MANIFEST_NAME = 'metadata.jsonl';

async function loadImage(file: string, minSide: number): Promise<RgbImage> {
  const bytes = await readBounded(file, FOLDER_FILE_LIMITS.imageBytes, 'image');
  try {
    return decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      source: file,
      minSide,
    });
  } catch (err) {
    throw new FolderImportError(file, (err as Error).message.replace(`${file}: `, ''));
  }
}

async function captionPairs(dir: string, names: string[]): Promise<{ fileName: string; caption: string }[]> {
  const manifest = path.join(dir, MANIFEST_NAME);
  if (names.includes(MANIFEST_NAME)) {
    const text = (await readBounded(manifest, FOLDER_FILE_LIMITS.manifestBytes, 'manifest')).toString('utf8');
    const seen = new Set<string>();
    const pairs: { fileName: string; caption: string }[] = [];
    text.split('\n').forEach((raw, i) => {
      const where = `${manifest} line ${i + 1}`;
      if (raw.trim() === '') return;
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        throw new FolderImportError(where, 'not valid JSON');
      }
      const rec = json as { file_name?: unknown; text?: unknown };
      if (typeof rec.file_name !== 'string' || rec.file_name === '')
        throw new FolderImportError(where, 'field file_name missing');
      if (typeof rec.text !== 'string' || rec.text.trim() === '')
        throw new FolderImportError(where, 'field text missing or empty');
      if (rec.file_name.includes('/') || rec.file_name.includes('\\')) {
        throw new FolderImportError(
          where,
          `file_name ${rec.file_name} must name a file in the folder itself`,
        );
      }
      if (!IMAGE_EXT.has(path.extname(rec.file_name).toLowerCase())) {
        throw new FolderImportError(where, `file_name ${rec.file_name} is not a .png/.jpg/.jpeg image`);
      }
      if (!names.includes(rec.file_name))
        throw new FolderImportError(where, `image ${rec.file_name} does not exist`);
      if (seen.has(rec.file_name)) throw new FolderImportError(where, `image ${rec.file_name} listed twice`);
      seen.add(rec.file_name);
      pairs.push({ fileName: rec.file_name, caption: rec.text.trim() });
    });
    if (pairs.length === 0) throw new FolderImportError(manifest, 'no entries');
    return pairs;
  }
  const images = new Map<string, string>();
  const captions = new Set<string>();
  for (const name of names) {
    const ext = path.extname(name).toLowerCase();
    const stem = name.slice(0, name.length - ext.length);
    if (IMAGE_EXT.has(ext)) {
      const prior = images.get(stem);
      if (prior !== undefined)
        throw new FolderImportError(
          path.join(dir, name),
          `two images share the stem ${stem} (also ${prior})`,
        );
      images.set(stem, name);
    } else if (ext === '.txt') {
      captions.add(stem);
    }
  }
  for (const stem of captions) {
    if (!images.has(stem))
      throw new FolderImportError(path.join(dir, `${stem}.txt`), 'caption without an image of the same name');
  }
  const pairs: { fileName: string; caption: string }[] = [];
  for (const [stem, fileName] of images) {
    const captionFile = path.join(dir, `${stem}.txt`);
    if (!captions.has(stem))
      throw new FolderImportError(path.join(dir, fileName), `image without caption file ${stem}.txt`);
    const caption = (await readBounded(captionFile, FOLDER_FILE_LIMITS.captionBytes, 'caption'))
      .toString('utf8')
      .trim();
    if (caption === '') throw new FolderImportError(captionFile, 'empty caption');
    pairs.push({ fileName, caption });
  }
  if (pairs.length === 0)
    throw new FolderImportError(dir, 'no images (.png/.jpg/.jpeg with .txt captions, or metadata.jsonl)');
  return pairs;
}

/**
 * The folder's image/caption pairs with the layout and captions validated but no image read:
 * what a pre-flight check counts. Sorted by file name.
 */
export async function listCaptionFolder(dir: string): Promise<{ fileName: string; caption: string }[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch (err) {
    throw new FolderImportError(dir, `cannot read folder (${(err as Error).message})`);
  }
  names.sort();
  return captionPairs(dir, names);
}

/** Reads and validates a folder of image/caption pairs (see the layouts above). */
export async function importCaptionFolder(
  dir: string,
  options: FolderImportOptions = {},
): Promise<FolderItem[]> {
  const pairs = await listCaptionFolder(dir);
  pairs.sort((a, b) => (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0));
  const minSide = options.minImageSide ?? 16;
  const items: FolderItem[] = [];
  for (const p of pairs) {
    items.push({
      fileName: p.fileName,
      caption: p.caption,
      image: await loadImage(path.join(dir, p.fileName), minSide),
    });
  }
  return items;
}

/**
 * A folder's items as Pick-a-Pic rows: single images, not comparisons, so each row shows its image
 * twice as a tie (`are_different` false), which ranking can score but a preference model cannot
 * learn from. Images are stored as PNG; ids are `folder-<file name>`.
 */
export function folderPreferenceRows(items: readonly FolderItem[]): PickapicWriteRow[] {
  return items.map((item, i) => {
    const png = encodePng(item.image);
    const uid = `folder-${item.fileName}`;
    return {
      caption: item.caption,
      image_0_uid: uid,
      image_1_uid: uid,
      jpg_0: png,
      jpg_1: png,
      label_0: 0.5,
      label_1: 0.5,
      user_id: 0,
      ranking_id: i,
    };
  });
}
