/**
 * The metadata companion (`<key>.meta.json`) stored beside every artifact. It is written only after
 * the object is complete, so its presence is what commits an artifact: an object without it is the
 * leftover of an interrupted write and the store treats it as absent.
 */
import { z } from 'zod';
import type { ArtifactMetadata, ArtifactRef, PutOptions } from './artifact-store';
import type { ContentDigest } from './digest';

export const StoredMetadata = z.strictObject({
  kind: z.string(),
  producer: z.string(),
  inputs: z.array(z.string()),
  createdAt: z.string(),
  extra: z.record(z.string(), z.unknown()).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case hex SHA-256'),
  size: z.number().int().nonnegative(),
});
export type StoredMetadata = z.infer<typeof StoredMetadata>;

/** Builds the companion record for a completed write. */
export function buildStoredMetadata(
  options: PutOptions,
  digest: ContentDigest,
  now: Date = new Date(),
): StoredMetadata {
  return {
    kind: options.kind,
    producer: options.producer,
    inputs: options.inputs ?? [],
    createdAt: now.toISOString(),
    ...(options.extra !== undefined && { extra: options.extra }),
    sha256: digest.sha256,
    size: digest.size,
  };
}

/** Parses companion bytes; `where` names the file or object in the error. */
export function parseStoredMetadata(bytes: Uint8Array, where: string): StoredMetadata {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new Error(`Artifact metadata ${where} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = StoredMetadata.safeParse(json);
  if (!parsed.success) {
    throw new Error(`Artifact metadata ${where} is malformed: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export function encodeStoredMetadata(meta: StoredMetadata): Uint8Array {
  return Buffer.from(`${JSON.stringify(meta, null, 2)}\n`, 'utf8');
}

/** Splits a companion record into the ArtifactStore's `head()` shape. */
export function toHead(uri: string, meta: StoredMetadata): { ref: ArtifactRef; metadata: ArtifactMetadata } {
  const { sha256, size, ...metadata } = meta;
  return { ref: { uri, sha256, size }, metadata };
}

/** Rejects put options that would produce unusable metadata. */
export function validatePutOptions(key: string, options: PutOptions): void {
  for (const field of ['kind', 'producer'] as const) {
    if (typeof options[field] !== 'string' || options[field].trim() === '') {
      throw new TypeError(`put(${JSON.stringify(key)}): options.${field} must be a non-empty string`);
    }
  }
  for (const [i, input] of (options.inputs ?? []).entries()) {
    if (typeof input !== 'string' || input === '') {
      throw new TypeError(`put(${JSON.stringify(key)}): options.inputs[${i}] must be a non-empty string`);
    }
  }
}
