/**
 * Pick-a-Pic v2 preference data (yuvalkirstain/pickapic_v2): parquet shards where each row is one
 * user's choice between two images generated for the same caption.
 *
 * Columns (as published): are_different, best_image_uid, caption, created_at, has_label,
 * image_0_uid, image_0_url, image_1_uid, image_1_url, jpg_0, jpg_1 (image bytes; JPEG, PNG also
 * accepted), label_0, label_1 (1 = chosen, 0.5 = tie), model_0, model_1, ranking_id, user_id,
 * num_example_per_prompt, __index_level_0__. The reader needs caption, image_{0,1}_uid,
 * jpg_{0,1}, label_{0,1}, user_id and ranking_id; the rest are optional and passed through.
 *
 * Rows are validated (caption and images present, images decodable and at least `minImageSide`
 * pixels, labels in {0, 0.5, 1} summing to 1). A bad row either fails the read with an error naming
 * file, row and field (`onBadRow: 'fail'`, the default) or is skipped and tallied by reason.
 * The writer produces the same schema, atomically, for simulated preference sets and fixtures.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  type AsyncBuffer,
  type FileMetaData,
} from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { RgbImage } from './image';
import { ImageDecodeError, ImageTooSmallError, decodeImage, sniffImageFormat } from './image-codec';
import { MAX_CAPTION_BYTES, utf8Length } from './text-limits';

export const PICKAPIC_REQUIRED_COLUMNS = [
  'caption',
  'image_0_uid',
  'image_1_uid',
  'jpg_0',
  'jpg_1',
  'label_0',
  'label_1',
  'user_id',
  'ranking_id',
] as const;

export const PICKAPIC_OPTIONAL_COLUMNS = [
  'are_different',
  'best_image_uid',
  'created_at',
  'has_label',
  'image_0_url',
  'image_1_url',
  'model_0',
  'model_1',
  'num_example_per_prompt',
] as const;

export type PreferenceLabel = 0 | 0.5 | 1;

export interface PickapicRow {
  caption: string;
  image_0_uid: string;
  image_1_uid: string;
  jpg_0: Uint8Array;
  jpg_1: Uint8Array;
  label_0: PreferenceLabel;
  label_1: PreferenceLabel;
  user_id: number;
  ranking_id: number;
  model_0?: string;
  model_1?: string;
  created_at?: Date;
  /** Decoded images, present when reading with `images: 'decode'`. */
  image_0?: RgbImage;
  image_1?: RgbImage;
  /** Where the row came from: shard path and 0-based row index. */
  file: string;
  row: number;
}

export type BadRowReason =
  | 'missing_caption'
  | 'caption_too_long'
  | 'missing_field'
  | 'missing_image'
  | 'undecodable_image'
  | 'image_too_small'
  | 'bad_label'
  | 'labels_not_summing_to_one';

/** A row that fails validation. Permanent: the data must be fixed or the row skipped. */
export class PickapicRowError extends Error {
  override readonly name = 'PickapicRowError';
  constructor(
    readonly file: string,
    readonly row: number,
    readonly field: string,
    readonly reason: BadRowReason,
    detail: string,
  ) {
    super(`${file} row ${row} field ${field}: ${reason} (${detail})`);
  }
}

/** The shard itself is unusable (not parquet, required column absent). */
export class PickapicFileError extends Error {
  override readonly name = 'PickapicFileError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

export interface ReadOptions {
  /** 'fail' (default) throws on the first bad row; 'skip' drops it and counts it. */
  onBadRow?: 'skip' | 'fail';
  /**
   * 'validate' (default) decodes each image to check it and returns the bytes; 'decode' also
   * returns the decoded pixels; 'signature' only checks the PNG/JPEG magic bytes (fast).
   */
  images?: 'validate' | 'decode' | 'signature';
  /** Smallest accepted image side in pixels. Default 16. */
  minImageSide?: number;
  /** Rows read per parquet request (bounds memory on large shards). Default 256. */
  batchRows?: number;
  /** Bad-row errors kept as examples in the report. Default 20. */
  maxExamples?: number;
}

export interface SkipReport {
  skipped: number;
  byReason: Partial<Record<BadRowReason, number>>;
  examples: PickapicRowError[];
}

export interface ReadResult extends SkipReport {
  rows: PickapicRow[];
}

const LABELS = new Set([0, 0.5, 1]);

/** What a value is, for messages: `null`, `string "1"`, `number 5`, `bytes (12)`. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Uint8Array) return `bytes (${value.length})`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'bigint') return `integer ${value}`;
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}

/** "empty or null" for a missing value, "a number 5, not text" for a value of the wrong type. */
function missingOrWrongType(value: unknown, expected: string): string {
  if (
    value === null ||
    value === undefined ||
    value === '' ||
    (value instanceof Uint8Array && value.length === 0)
  )
    return 'empty or null';
  return `${describeValue(value)}, not ${expected}`;
}

/** Physical parquet types each required column may have; anything else is refused by column. */
const COLUMN_TYPES: Record<(typeof PICKAPIC_REQUIRED_COLUMNS)[number], readonly string[]> = {
  caption: ['BYTE_ARRAY'],
  image_0_uid: ['BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY'],
  image_1_uid: ['BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY'],
  jpg_0: ['BYTE_ARRAY'],
  jpg_1: ['BYTE_ARRAY'],
  label_0: ['DOUBLE', 'FLOAT'],
  label_1: ['DOUBLE', 'FLOAT'],
  user_id: ['INT32', 'INT64'],
  ranking_id: ['INT32', 'INT64'],
};

function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder('utf-8', { fatal: false }).decode(value);
  return undefined;
}

function asBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'latin1'));
  return undefined;
}

function asInteger(value: unknown): number | undefined {
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  return undefined;
}

function asDate(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  if (typeof value === 'bigint') return new Date(Number(value / 1_000_000n));
  if (typeof value === 'number') return new Date(value);
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return new Date(value);
  return undefined;
}

/** Validates one raw parquet record; throws PickapicRowError naming the field. */
export function validatePickapicRecord(
  raw: Record<string, unknown>,
  file: string,
  row: number,
  options: Pick<ReadOptions, 'images' | 'minImageSide'> = {},
): PickapicRow {
  const fail = (field: string, reason: BadRowReason, detail: string): never => {
    throw new PickapicRowError(file, row, field, reason, detail);
  };
  const caption = asText(raw.caption);
  if (caption === undefined || caption.trim() === '')
    fail(
      'caption',
      'missing_caption',
      caption === undefined ? missingOrWrongType(raw.caption, 'text') : 'empty or null',
    );
  if (utf8Length(caption as string) > MAX_CAPTION_BYTES)
    fail(
      'caption',
      'caption_too_long',
      `${utf8Length(caption as string)} bytes, more than the ${MAX_CAPTION_BYTES} a caption may hold`,
    );
  const uids = (['image_0_uid', 'image_1_uid'] as const).map((field) => {
    const v = asText(raw[field]);
    if (v === undefined || v === '') fail(field, 'missing_field', missingOrWrongType(raw[field], 'text'));
    return v as string;
  });
  const ids = (['user_id', 'ranking_id'] as const).map((field) => {
    const v = asInteger(raw[field]);
    if (v === undefined) fail(field, 'missing_field', `${describeValue(raw[field])}, not an integer`);
    return v as number;
  });
  const mode = options.images ?? 'validate';
  const minSide = options.minImageSide ?? 16;
  const images = (['jpg_0', 'jpg_1'] as const).map((field) => {
    const bytes = asBytes(raw[field]);
    if (bytes === undefined || bytes.length === 0)
      fail(field, 'missing_image', missingOrWrongType(raw[field], 'image bytes'));
    const b = bytes as Uint8Array;
    if (mode === 'signature') {
      if (!sniffImageFormat(b)) fail(field, 'undecodable_image', 'neither PNG nor JPEG signature');
      return { bytes: b, decoded: undefined };
    }
    try {
      const decoded = decodeImage(b, { source: `${file} row ${row} ${field}`, minSide });
      return { bytes: b, decoded: mode === 'decode' ? decoded : undefined };
    } catch (err) {
      if (err instanceof ImageTooSmallError)
        fail(field, 'image_too_small', `${err.width}x${err.height} < ${minSide}`);
      if (err instanceof ImageDecodeError) fail(field, 'undecodable_image', err.message);
      throw err;
    }
  });
  const labels = (['label_0', 'label_1'] as const).map((field) => {
    const v = raw[field];
    if (typeof v !== 'number' || !LABELS.has(v))
      fail(field, 'bad_label', `must be the number 0, 0.5 or 1, got ${describeValue(v)}`);
    return v as PreferenceLabel;
  });
  const [l0, l1] = labels as [PreferenceLabel, PreferenceLabel];
  if (l0 + l1 !== 1) fail('label_0+label_1', 'labels_not_summing_to_one', `${l0} + ${l1}`);
  const [img0, img1] = images as [(typeof images)[0], (typeof images)[0]];
  const out: PickapicRow = {
    caption: caption as string,
    image_0_uid: uids[0] as string,
    image_1_uid: uids[1] as string,
    jpg_0: img0.bytes,
    jpg_1: img1.bytes,
    label_0: l0,
    label_1: l1,
    user_id: ids[0] as number,
    ranking_id: ids[1] as number,
    file,
    row,
  };
  const m0 = asText(raw.model_0);
  const m1 = asText(raw.model_1);
  const created = asDate(raw.created_at);
  if (m0 !== undefined) out.model_0 = m0;
  if (m1 !== undefined) out.model_1 = m1;
  if (created !== undefined) out.created_at = created;
  if (img0.decoded) out.image_0 = img0.decoded;
  if (img1.decoded) out.image_1 = img1.decoded;
  return out;
}

/**
 * Streams the validated rows of one shard, in order. `report` (if given) receives skip counts.
 * Required columns missing from the schema fail immediately with PickapicFileError.
 */
export function iteratePickapicShard(
  file: string,
  options: ReadOptions = {},
  report: SkipReport = { skipped: 0, byReason: {}, examples: [] },
): AsyncGenerator<PickapicRow> {
  return iterateParquet(file, () => asyncBufferFromFile(file), options, report);
}

/**
 * Streams the validated rows of a shard held in memory (an artifact's bytes), in order; `name`
 * stands for the file in error messages.
 */
export function iteratePickapicBytes(
  bytes: Uint8Array,
  name: string,
  options: ReadOptions = {},
  report: SkipReport = { skipped: 0, byReason: {}, examples: [] },
): AsyncGenerator<PickapicRow> {
  return iterateParquet(name, () => Promise.resolve(exactArrayBuffer(bytes)), options, report);
}

/** The bytes as an ArrayBuffer of exactly their length (a parquet reader finds the footer at its end). */
function exactArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  )
    return bytes.buffer;
  return bytes.slice().buffer as ArrayBuffer;
}

async function* iterateParquet(
  file: string,
  open: () => Promise<AsyncBuffer>,
  options: ReadOptions,
  report: SkipReport,
): AsyncGenerator<PickapicRow> {
  let buffer;
  let metadata;
  try {
    buffer = await open();
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw new PickapicFileError(file, `not a readable parquet file (${(err as Error).message})`);
  }
  const columns = checkPickapicSchema(file, metadata);
  const groups = rowGroupSizes(file, metadata);
  const batch = options.batchRows ?? 256;
  const maxExamples = options.maxExamples ?? 20;
  let groupStart = 0;
  for (const groupRows of groups) {
    for (let offset = 0; offset < groupRows; offset += batch) {
      const start = groupStart + offset;
      const end = groupStart + Math.min(groupRows, offset + batch);
      const records = await parquetReadObjects({
        file: buffer,
        metadata,
        columns,
        rowStart: start,
        rowEnd: end,
        utf8: false,
      });
      // A footer that promises more rows than the pages hold must end the read, not spin on it.
      if (records.length !== end - start)
        throw new PickapicFileError(
          file,
          `rows ${start}-${end - 1} are declared in the footer but ${records.length} could be read`,
        );
      for (let i = 0; i < records.length; i++) {
        const row = start + i;
        try {
          yield validatePickapicRecord(records[i] as Record<string, unknown>, file, row, options);
        } catch (err) {
          if (!(err instanceof PickapicRowError) || (options.onBadRow ?? 'fail') === 'fail') throw err;
          report.skipped++;
          report.byReason[err.reason] = (report.byReason[err.reason] ?? 0) + 1;
          if (report.examples.length < maxExamples) report.examples.push(err);
        }
      }
      // Give timers, heartbeats and signal handlers a turn between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    groupStart += groupRows;
  }
}

/**
 * Checks that a shard's schema has every required column with a usable physical type; returns the
 * columns to read (required, then the optional ones present).
 */
export function checkPickapicSchema(file: string, metadata: Pick<FileMetaData, 'schema'>): string[] {
  const present = new Set(metadata.schema.map((el) => el.name));
  const missing = PICKAPIC_REQUIRED_COLUMNS.filter((c) => !present.has(c));
  if (missing.length) throw new PickapicFileError(file, `missing required column(s): ${missing.join(', ')}`);
  for (const column of PICKAPIC_REQUIRED_COLUMNS) {
    const el = metadata.schema.find((e) => e.name === column);
    const allowed = COLUMN_TYPES[column];
    if (el?.type === undefined || !allowed.includes(el.type)) {
      const isString = el?.converted_type === 'UTF8' || el?.logical_type?.type === 'STRING';
      const has =
        el?.type === undefined ? 'a group' : isString ? `string values (${el.type})` : `type ${el.type}`;
      throw new PickapicFileError(file, `column ${column} holds ${has}, expected ${allowed.join(' or ')}`);
    }
  }
  return [...PICKAPIC_REQUIRED_COLUMNS, ...PICKAPIC_OPTIONAL_COLUMNS.filter((c) => present.has(c))];
}

/**
 * Rows of each row group, checked against what the footer can vouch for: the file's row count
 * must equal the groups' sum, and no group may claim more rows than its column chunks hold values.
 */
export function rowGroupSizes(
  file: string,
  metadata: Pick<FileMetaData, 'num_rows' | 'row_groups'>,
): number[] {
  const sizes = metadata.row_groups.map((group, g) => {
    const rows = group.num_rows;
    for (const chunk of group.columns) {
      const values = chunk.meta_data?.num_values;
      // Flat columns hold one value (or null) per row.
      if (values !== undefined && values < rows && (chunk.meta_data?.path_in_schema.length ?? 0) === 1)
        throw new PickapicFileError(
          file,
          `row group ${g} claims ${rows} rows but column ${chunk.meta_data?.path_in_schema.join('.')} holds ${values} values`,
        );
    }
    if (rows < 0n || rows > BigInt(Number.MAX_SAFE_INTEGER))
      throw new PickapicFileError(file, `row group ${g} claims ${rows} rows`);
    return Number(rows);
  });
  const sum = sizes.reduce((a, b) => a + b, 0);
  if (BigInt(sum) !== metadata.num_rows)
    throw new PickapicFileError(
      file,
      `footer claims ${metadata.num_rows} rows but its row groups hold ${sum}`,
    );
  return sizes;
}

/** Rows a shard holds, from its footer alone; the schema and row groups are checked as the reader checks them. */
export async function countPickapicRows(file: string): Promise<number> {
  let metadata;
  try {
    metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
  } catch (err) {
    throw new PickapicFileError(file, `not a readable parquet file (${(err as Error).message})`);
  }
  checkPickapicSchema(file, metadata);
  return rowGroupSizes(file, metadata).reduce((a, b) => a + b, 0);
}

/** Reads and validates every row of the given shards, in order. */
export async function readPickapicShards(
  files: readonly string[],
  options: ReadOptions = {},
): Promise<ReadResult> {
  const report: SkipReport = { skipped: 0, byReason: {}, examples: [] };
  const rows: PickapicRow[] = [];
  for (const file of files) {
    for await (const row of iteratePickapicShard(file, options, report)) rows.push(row);
  }
  return { rows, ...report };
}

/** Reads and validates every row of one shard held in memory; `name` stands for the file in errors. */
export async function readPickapicBytes(
  bytes: Uint8Array,
  name: string,
  options: ReadOptions = {},
): Promise<ReadResult> {
  const report: SkipReport = { skipped: 0, byReason: {}, examples: [] };
  const rows: PickapicRow[] = [];
  for await (const row of iteratePickapicBytes(bytes, name, options, report)) rows.push(row);
  return { rows, ...report };
}

/** A row to write. Nullable fields let fixtures hold deliberately bad rows (with `validate: false`). */
export interface PickapicWriteRow {
  caption: string | null;
  image_0_uid: string;
  image_1_uid: string;
  jpg_0: Uint8Array | null;
  jpg_1: Uint8Array | null;
  label_0: number | null;
  label_1: number | null;
  user_id: number;
  ranking_id: number;
  model_0?: string;
  model_1?: string;
  created_at?: Date;
}

/** A row as read, ready to be written again (the decoded images and the source position dropped). */
export function toPickapicWriteRow(row: PickapicRow): PickapicWriteRow {
  const out: PickapicWriteRow = {
    caption: row.caption,
    image_0_uid: row.image_0_uid,
    image_1_uid: row.image_1_uid,
    jpg_0: row.jpg_0,
    jpg_1: row.jpg_1,
    label_0: row.label_0,
    label_1: row.label_1,
    user_id: row.user_id,
    ranking_id: row.ranking_id,
  };
  if (row.model_0 !== undefined) out.model_0 = row.model_0;
  if (row.model_1 !== undefined) out.model_1 = row.model_1;
  if (row.created_at !== undefined) out.created_at = row.created_at;
  return out;
}

/** Distinct captions, and comparisons of two different images (the usable preference pairs). */
export function pickapicRowStats(rows: readonly PickapicWriteRow[]): {
  prompts: number;
  comparisons: number;
} {
  return {
    prompts: new Set(rows.map((r) => r.caption)).size,
    comparisons: rows.filter((r) => r.image_0_uid !== r.image_1_uid).length,
  };
}

export interface WriteOptions {
  /** Validate each row as the reader would before writing (default true). */
  validate?: boolean;
  minImageSide?: number;
  /** Rows per row group. Default 1000 (keeps image-heavy groups moderate). */
  rowGroupSize?: number;
}

let tempCounter = 0;

/**
 * Writes rows as a Pick-a-Pic v2 shard with the published column set: derived columns are filled
 * the way the dataset fills them (best_image_uid is the chosen image or '' for a tie,
 * num_example_per_prompt counts rows sharing the caption). Written to a temporary file in the same
 * directory, then renamed, so a reader never sees a partial shard.
 */
export async function writePickapicParquet(
  file: string,
  rows: readonly PickapicWriteRow[],
  options: WriteOptions = {},
): Promise<void> {
  const bytes = encodePickapicParquet(rows, options, file);
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const temp = `${file}.tmp-${process.pid}-${tempCounter++}`;
  try {
    const handle = await fs.open(temp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
}

/**
 * The bytes of a Pick-a-Pic v2 shard holding `rows`, as writePickapicParquet writes them; `name`
 * stands for the file in validation errors.
 */
export function encodePickapicParquet(
  rows: readonly PickapicWriteRow[],
  options: WriteOptions = {},
  name = 'parquet',
): Uint8Array {
  if (options.validate ?? true) {
    rows.forEach((r, i) => {
      validatePickapicRecord({ ...r }, name, i, {
        images: 'validate',
        minImageSide: options.minImageSide ?? 16,
      });
    });
  }
  const perCaption = new Map<string | null, number>();
  for (const r of rows) perCaption.set(r.caption, (perCaption.get(r.caption) ?? 0) + 1);
  const col = <T>(f: (r: PickapicWriteRow, i: number) => T): T[] => rows.map(f);
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'are_different', data: col((r) => r.image_0_uid !== r.image_1_uid), type: 'BOOLEAN' },
      {
        name: 'best_image_uid',
        data: col((r) => (r.label_0 === 1 ? r.image_0_uid : r.label_1 === 1 ? r.image_1_uid : '')),
        type: 'STRING',
      },
      { name: 'caption', data: col((r) => r.caption), type: 'STRING' },
      { name: 'created_at', data: col((r) => r.created_at ?? new Date(0)), type: 'TIMESTAMP' },
      { name: 'has_label', data: col(() => true), type: 'BOOLEAN' },
      { name: 'image_0_uid', data: col((r) => r.image_0_uid), type: 'STRING' },
      { name: 'image_0_url', data: col(() => ''), type: 'STRING' },
      { name: 'image_1_uid', data: col((r) => r.image_1_uid), type: 'STRING' },
      { name: 'image_1_url', data: col(() => ''), type: 'STRING' },
      { name: 'jpg_0', data: col((r) => r.jpg_0), type: 'BYTE_ARRAY' },
      { name: 'jpg_1', data: col((r) => r.jpg_1), type: 'BYTE_ARRAY' },
      { name: 'label_0', data: col((r) => r.label_0), type: 'DOUBLE' },
      { name: 'label_1', data: col((r) => r.label_1), type: 'DOUBLE' },
      { name: 'model_0', data: col((r) => r.model_0 ?? ''), type: 'STRING' },
      { name: 'model_1', data: col((r) => r.model_1 ?? ''), type: 'STRING' },
      { name: 'ranking_id', data: col((r) => BigInt(r.ranking_id)), type: 'INT64' },
      { name: 'user_id', data: col((r) => BigInt(r.user_id)), type: 'INT64' },
      {
        name: 'num_example_per_prompt',
        data: col((r) => BigInt(perCaption.get(r.caption) ?? 1)),
        type: 'INT64',
      },
      { name: '__index_level_0__', data: col((_r, i) => BigInt(i)), type: 'INT64' },
    ],
    rowGroupSize: options.rowGroupSize ?? 1000,
  });
  return new Uint8Array(buffer);
}
