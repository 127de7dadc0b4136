/**
 * safetensors reading and writing, without TF.js.
 *
 * File layout: an unsigned 64-bit little-endian header length N, then N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the
 * data section (offsets are relative to byte 8 + N). Tensors are little-endian, row-major.
 *
 * We read F32, F16 and BF16 (decoded by hand to float32) and write F32 or F16. The reader rejects
 * anything a careful writer would not produce: offsets that are not contiguous from 0 in header
 * order (sorted by offset), a byte size that disagrees with shape * dtype size, a data section
 * shorter or longer than the last offset. Errors name the file and, where there is one, the tensor.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const READ_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type SafetensorsDtype = (typeof READ_DTYPES)[number];
export type WriteDtype = 'F32' | 'F16';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** One tensor; `data` always holds float32 values in row-major order. `dtype` is the stored type. */
export interface NamedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** Thrown for a malformed or unsupported safetensors file; `file` and `tensor` locate the problem. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    detail: string,
  ) {
    super(`${file}${tensor === undefined ? '' : `: tensor '${tensor}'`}: ${detail}`);
  }
}

/** Thrown by `assertFinite` for a tensor holding NaN or +-Infinity. */
export class NonFiniteTensorError extends Error {
  override name = 'NonFiniteTensorError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    readonly index: number,
    readonly value: number,
  ) {
    super(`${file}: tensor '${tensor}' holds ${value} at flat index ${index}`);
  }
}

// ---- half-precision codecs -------------------------------------------------------------------

/** IEEE 754 binary16 bits -> number (exact). */
export function f16BitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits -> number: the high half of a float32 (exact). */
export function bf16BitsToFloat(h: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setUint32(0, (h & 0xffff) << 16);
  return buf.getFloat32(0);
}

/** number -> binary16 bits, round to nearest even; overflow gives +-Infinity, NaN a quiet NaN. */
export function floatToF16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -14) {
    // Subnormal (or zero): units of 2^-24, ties to even.
    return sign | roundHalfEven(a * 2 ** 24);
  }
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a)
    exp -= 1; // log2 can round up just below a power of two
  else if (2 ** (exp + 1) <= a) exp += 1;
  let mant = roundHalfEven((a / 2 ** exp - 1) * 1024);
  if (mant === 1024) {
    mant = 0;
    exp += 1;
  }
  if (exp > 15) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | mant;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return x % 1 === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- reading ----------------------------------------------------------------------------------

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates the header in `bytes`. `dataLength` is the size of the data section when `bytes`
 * holds only the header (read from disk); by default the data section is the rest of `bytes`.
 */
function parseHeader(
  file: string,
  bytes: Uint8Array,
  dataLength?: number,
): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  if (bytes.byteLength < 8)
    throw new SafetensorsError(
      file,
      undefined,
      `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      file,
      undefined,
      `header length ${n} is more than the ${MAX_HEADER_BYTES} bytes allowed`,
    );
  }
  if (n > BigInt(bytes.byteLength - 8)) {
    throw new SafetensorsError(
      file,
      undefined,
      `header length ${n} runs past the end of the ${bytes.byteLength}-byte file`,
    );
  }
  const headerLen = Number(n);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    throw new SafetensorsError(
      file,
      undefined,
      `header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  if (!isRecord(json)) throw new SafetensorsError(file, undefined, 'header JSON is not an object');

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(raw) || Object.values(raw).some((v) => typeof v !== 'string')) {
        throw new SafetensorsError(file, undefined, '__metadata__ must map strings to strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (!isRecord(raw)) throw new SafetensorsError(file, name, 'header entry is not an object');
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string' || !(READ_DTYPES as readonly string[]).includes(dtype)) {
      throw new SafetensorsError(
        file,
        name,
        `unsupported dtype ${JSON.stringify(dtype)} (readable: ${READ_DTYPES.join(', ')})`,
      );
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
      throw new SafetensorsError(
        file,
        name,
        `shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      offsets.some((o) => !Number.isSafeInteger(o) || (o as number) < 0)
    ) {
      throw new SafetensorsError(
        file,
        name,
        `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin)
      throw new SafetensorsError(file, name, `data_offsets [${begin}, ${end}] end before they begin`);
    const dims = shape as number[];
    const expected = dims.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        file,
        name,
        `data_offsets span ${end - begin} bytes but shape [${dims.join(', ')}] of ${dtype} needs ${expected}`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: dims, begin, end });
  }

  // Sorted by offset, the tensors must tile the data section from 0 with no gap or overlap.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) {
      const other = sorted.find((o) => o !== e && o.begin < e.end && e.begin < o.end);
      throw new SafetensorsError(
        file,
        e.name,
        `data_offsets [${e.begin}, ${e.end}] overlap tensor '${other?.name ?? '?'}'`,
      );
    }
    if (e.begin > cursor)
      throw new SafetensorsError(
        file,
        e.name,
        `data_offsets begin at ${e.begin}, leaving a gap after byte ${cursor}`,
      );
    cursor = e.end;
  }
  const dataStart = 8 + headerLen;
  const dataLen = dataLength ?? bytes.byteLength - dataStart;
  if (dataLen < cursor) {
    const cut = sorted.find((e) => e.end > dataLen);
    throw new SafetensorsError(
      file,
      cut?.name,
      `file is truncated: data section has ${dataLen} bytes, tensors need ${cursor}`,
    );
  }
  if (dataLen > cursor)
    throw new SafetensorsError(file, undefined, `${dataLen - cursor} extra bytes after the last tensor`);
  return { entries, metadata, dataStart };
}

/** A tensor as the header describes it, before any data is read. */
export interface TensorHeader {
  dtype: SafetensorsDtype;
  shape: number[];
}

/** What a safetensors header declares: tensor names, dtypes and shapes, and `__metadata__`. */
export interface SafetensorsHeader {
  tensors: Map<string, TensorHeader>;
  metadata: Record<string, string>;
}

/**
 * Largest header accepted, as the reference implementation (100 MB): a header length above it
 * is a corrupt or hostile file, rejected before the header is read.
 */
export const MAX_HEADER_BYTES = 100_000_000;

function toHeader(entries: HeaderEntry[], metadata: Record<string, string>): SafetensorsHeader {
  return {
    tensors: new Map(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape }])),
    metadata,
  };
}

/** Validates the header of a safetensors file held in memory without decoding any tensor. */
export function parseSafetensorsHeader(bytes: Uint8Array, file = '<buffer>'): SafetensorsHeader {
  const { entries, metadata } = parseHeader(file, bytes);
  return toHeader(entries, metadata);
}

/**
 * Reads and validates only the header of a safetensors file on disk (the data section is checked
 * for its length, not read), so a multi-gigabyte file costs a few reads.
 */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const size = (await handle.stat()).size;
    const prefix = new Uint8Array(8);
    const { bytesRead } = await handle.read(prefix, 0, 8, 0);
    if (bytesRead < 8)
      throw new SafetensorsError(
        file,
        undefined,
        `file is ${size} bytes, shorter than the 8-byte header length`,
      );
    const n = new DataView(prefix.buffer).getBigUint64(0, true);
    if (n > BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
      throw new SafetensorsError(
        file,
        undefined,
        n > BigInt(MAX_HEADER_BYTES)
          ? `header length ${n} is more than the ${MAX_HEADER_BYTES} bytes allowed`
          : `header length ${n} runs past the end of the ${size}-byte file`,
      );
    }
    const headerBytes = new Uint8Array(8 + Number(n));
    headerBytes.set(prefix);
    await handle.read(headerBytes, 8, Number(n), 8);
    const { entries, metadata } = parseHeader(file, headerBytes, size - 8 - Number(n));
    return toHeader(entries, metadata);
  } catch (err) {
    if (err instanceof SafetensorsError) throw err;
    throw new SafetensorsError(
      file,
      undefined,
      `cannot read file (${err instanceof Error ? err.message : String(err)})`,
    );
  } finally {
    await handle?.close();
  }
}

function decode(entry: HeaderEntry, bytes: Uint8Array, dataStart: number): Float32Array {
  const start = dataStart + entry.begin;
  const count = (entry.end - entry.begin) / DTYPE_BYTES[entry.dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, entry.end - entry.begin);
  const out = new Float32Array(count);
  switch (entry.dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = f16BitsToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bf16BitsToFloat(view.getUint16(i * 2, true));
      break;
  }
  return out;
}

/** Parses a whole safetensors file held in memory. `file` only names it in errors. */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsFile {
  const { entries, metadata, dataStart } = parseHeader(file, bytes);
  const tensors = new Map<string, NamedTensor>();
  for (const e of entries)
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(e, bytes, dataStart) });
  return { tensors, metadata };
}

export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new SafetensorsError(
      file,
      undefined,
      `cannot read file (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}

// ---- writing ----------------------------------------------------------------------------------

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
}

export interface WriteOptions {
  /** Stored dtype of every tensor. Default 'F32'. */
  dtype?: WriteDtype;
  /** `__metadata__` strings. */
  metadata?: Record<string, string>;
}

type TensorSource = ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>;

function entriesOf(tensors: TensorSource): [string, TensorToWrite][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

/**
 * Encodes tensors into safetensors bytes, in the order given. The header is padded with spaces to
 * a multiple of 8 bytes so the data section stays aligned, as the reference writer does.
 */
export function serializeSafetensors(
  tensors: TensorSource,
  options: WriteOptions = {},
  file = '<buffer>',
): Uint8Array {
  const { size, chunks } = safetensorsChunks(tensors, options, file);
  const out = new Uint8Array(size);
  let pos = 0;
  for (const chunk of chunks) {
    out.set(chunk, pos);
    pos += chunk.byteLength;
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/**
 * The bytes of `serializeSafetensors` as a header chunk followed by one chunk per tensor, with the
 * total size, so a model can be streamed to a file or an artifact store without assembling the
 * whole file in memory. F32 data on a little-endian machine is passed on as views of the tensors'
 * own arrays, without a copy; the arrays must not change until the chunks are consumed.
 */
export function safetensorsChunks(
  tensors: TensorSource,
  options: WriteOptions = {},
  file = '<buffer>',
): { size: number; chunks: Iterable<Uint8Array> } {
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16')
    throw new SafetensorsError(file, undefined, `cannot write dtype '${String(dtype)}' (F32 or F16)`);
  const list = entriesOf(tensors);
  const header: Record<string, unknown> = {};
  if (options.metadata) {
    for (const [k, v] of Object.entries(options.metadata)) {
      if (typeof v !== 'string')
        throw new SafetensorsError(file, undefined, `__metadata__ value of '${k}' is not a string`);
    }
    header.__metadata__ = options.metadata;
  }
  const width = DTYPE_BYTES[dtype];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError(file, name, 'name is reserved');
    if (t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new SafetensorsError(
        file,
        name,
        `shape [${t.shape.join(', ')}] is not a list of non-negative integers`,
      );
    }
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length)
      throw new SafetensorsError(
        file,
        name,
        `shape [${t.shape.join(', ')}] holds ${count} values, data has ${t.data.length}`,
      );
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * width] };
    offset += count * width;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  function* chunks(): Generator<Uint8Array> {
    yield head;
    for (const [, t] of list) {
      if (dtype === 'F32' && LITTLE_ENDIAN) {
        yield new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        continue;
      }
      const bytes = new Uint8Array(t.data.length * width);
      const view = new DataView(bytes.buffer);
      if (dtype === 'F32') t.data.forEach((v, i) => view.setFloat32(i * 4, v, true));
      else t.data.forEach((v, i) => view.setUint16(i * 2, floatToF16Bits(v), true));
      yield bytes;
    }
  }
  return { size: head.byteLength + offset, chunks: chunks() };
}

/** Writes a safetensors file atomically: a temporary file in the same folder, then a rename. */
export async function writeSafetensors(
  file: string,
  tensors: TensorSource,
  options: WriteOptions = {},
): Promise<void> {
  const bytes = serializeSafetensors(tensors, options, file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new SafetensorsError(
      file,
      undefined,
      `cannot write file (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

/** Throws `NonFiniteTensorError` naming the first tensor (and index) that holds NaN or Infinity. */
export function assertFinite(tensors: TensorSource, file: string): void {
  for (const [name, t] of entriesOf(tensors)) {
    const data = t.data;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) throw new NonFiniteTensorError(file, name, i, v);
    }
  }
}
