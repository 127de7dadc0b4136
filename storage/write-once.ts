/**
 * The write-once rule shared by every store: a put to a key that already holds a committed
 * artifact returns that artifact when the new bytes are the same (a retried write), and is refused
 * when they differ, so a reference to an artifact can never come to point at other bytes.
 */
import type { ArtifactData, ArtifactRef, PutOptions } from './artifact-store';
import { digestStream, sha256Hex, type ContentDigest } from './digest';
import { ArtifactExistsError } from './errors';

/** Digest of what a put was given; consumes a stream. */
export async function digestOf(data: ArtifactData): Promise<ContentDigest> {
  return data instanceof Uint8Array ? { sha256: sha256Hex(data), size: data.byteLength } : digestStream(data);
}

/** What a put over the committed artifact `existing` returns, or throws ArtifactExistsError. */
export async function settleExisting(
  existing: ArtifactRef,
  data: ArtifactData,
  options: Pick<PutOptions, 'ifExists'>,
): Promise<ArtifactRef> {
  if (options.ifExists === 'keep') return existing;
  const digest = await digestOf(data);
  return sameOrRefuse(existing, digest);
}

export function sameOrRefuse(existing: ArtifactRef, digest: ContentDigest): ArtifactRef {
  if (digest.sha256 === existing.sha256 && digest.size === existing.size) return existing;
  throw new ArtifactExistsError(existing.uri, existing.sha256, digest.sha256);
}
