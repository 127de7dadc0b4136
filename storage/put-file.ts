/** `putFile` for any store: the file's bytes streamed through the store's own `put`. */
import fsp from 'node:fs/promises';
import type { ArtifactData, ArtifactRef, PutOptions } from './artifact-store';
import { validatePutOptions } from './metadata';

export async function putFileWith(
  put: (key: string, data: ArtifactData, options: PutOptions) => Promise<ArtifactRef>,
  key: string,
  file: string,
  options: PutOptions,
  chunkBytes: number,
): Promise<ArtifactRef> {
  validatePutOptions(key, options);
  // Opened first so that a missing source fails here, naming the file, before anything is written.
  const handle = await fsp.open(file, 'r');
  const stream = handle.createReadStream({ highWaterMark: chunkBytes });
  try {
    return await put(key, stream, options);
  } finally {
    // A put that keeps an existing artifact does not read the stream; close the file anyway.
    stream.destroy();
  }
}
