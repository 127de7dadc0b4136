/**
 * `--model NAME=URI` arguments of `dro eval` and `dro schedule create`: parsed with one set of
 * rules and imported into the store the same way, streamed, so a multi-gigabyte bundle costs a few
 * header reads and one pass that hashes and copies it.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PipelineConfig } from '../config/schemas';
import type { EvalModelInput } from '../contracts/evaluation';
import { checkModelBundleHeader } from '../engine/io/model-bundle';
import { readSafetensorsHeader } from '../engine/io/safetensors';
import { digestFile, storeForUri, type ArtifactStore } from '../storage';
import { isUri } from '../storage/uri';

/** A `--model` argument that cannot be used; main prints the message and exits 1. */
export class ModelArgError extends Error {
  override name = 'ModelArgError';
}

/** Reserved for the built-in world's detector reward among an evaluation's rewards. */
const RESERVED_NAME = 'detector';

/** `NAME=URI` pairs of `--model`, checked for unique names. */
export function parseModelArgs(args: readonly string[]): { name: string; uri: string }[] {
  if (args.length === 0) throw new ModelArgError('give at least one --model NAME=URI');
  const seen = new Set<string>();
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : '';
    const uri = eq > 0 ? arg.slice(eq + 1) : '';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || uri === '')
      throw new ModelArgError(
        `--model ${JSON.stringify(arg)}: use NAME=URI, NAME of letters, digits, '.', '_' or '-'`,
      );
    if (name === RESERVED_NAME)
      throw new ModelArgError(`--model ${arg}: the name "detector" is reserved for the detector reward`);
    if (seen.has(name)) throw new ModelArgError(`--model ${name}: given twice`);
    seen.add(name);
    return { name, uri };
  });
}

/**
 * The artifact a `--model` URI names, checked to exist now. An artifact of the configured store is
 * used where it is; a local file (checked to be a model bundle) or an artifact of another store is
 * streamed into the store under a content-addressed key, so workers read it like any artifact.
 */
export async function importModelArg(
  store: ArtifactStore,
  config: PipelineConfig,
  model: { name: string; uri: string },
  producer: string,
): Promise<EvalModelInput> {
  const what = `--model ${model.name}`;
  const { name, uri } = model;
  if (uri.startsWith(`${store.baseUri}/`)) {
    const head = await store.head(uri);
    if (head) return { name, model: head.ref };
    if (!uri.startsWith('file://'))
      throw new ModelArgError(`${what}: ${uri} does not exist in the store ${store.baseUri}`);
  }
  const options = { kind: 'model-bundle', producer };
  const importKey = (sha256: string) => `imports/${sha256.slice(0, 32)}/model.safetensors`;
  if (isUri(uri) && !uri.startsWith('file://')) {
    const source = storeForUri(uri, config.storage);
    const head = await source.head(uri);
    if (!head) throw new ModelArgError(`${what}: ${uri} does not exist`);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dro-model-'));
    try {
      const file = path.join(dir, 'model.safetensors');
      await source.getToFile(uri, file, head.ref.sha256);
      await checkModelFile(file, uri, what);
      return { name, model: await store.putFile(importKey(head.ref.sha256), file, options) };
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  const file = uri.startsWith('file://') ? fileURLToPath(uri) : path.resolve(uri);
  let stat;
  try {
    stat = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelArgError(
      `${what}: ${uri} does not exist (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`,
    );
  }
  if (!stat.isFile()) throw new ModelArgError(`${what}: ${uri} is not a file`);
  await checkModelFile(file, uri, what);
  const digest = await digestFile(file);
  return { name, model: await store.putFile(importKey(digest.sha256), file, options) };
}

/** Reads only the safetensors header, so a multi-gigabyte file costs a few reads. */
async function checkModelFile(file: string, uri: string, what: string): Promise<void> {
  try {
    checkModelBundleHeader(await readSafetensorsHeader(file), uri);
  } catch (err) {
    throw new ModelArgError(`${what}: ${(err as Error).message.replace(file, uri)}`);
  }
}
