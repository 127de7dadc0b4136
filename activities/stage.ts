/**
 * What every stage activity of the pipeline shares: artifact keys under `runs/<runId>/<stage>/`,
 * reading user-given sources (file paths, file:// and s3:// URIs), heartbeats, seeds derived from
 * the run's root seed, and the mapping of permanent engine errors to non-retryable failures with
 * stable types.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { initBackend, type BackendPreference } from '../engine/backend';
import type { Logger } from '../infra/logger';
import { storeForUri } from '../storage';
import type { ArtifactMetadata, ArtifactRef, ArtifactStore, PutOptions } from '../storage/artifact-store';
import { isPermanent, StoreError } from '../storage/errors';
import { isUri, parseArtifactUri } from '../storage/uri';
import { ENGINE_PERMANENT_ERRORS } from '../contracts/errors';
import { keySegment, storeCall } from './common';
import { readWholeFile } from '../storage/bounded-read';

export interface StageDeps {
  store: ArtifactStore;
  logger: Logger;
}

/** Stable failure types of the pipeline's stage activities (engine error names pass through as is). */
export const PIPELINE_ERRORS = {
  /** The activity input or the config value it came from cannot work. */
  badInput: 'PipelineBadInput',
  /** A user-given file, folder or URI does not exist or cannot be read. */
  sourceNotFound: 'PipelineSourceNotFound',
} as const;

/** Engine errors that retrying cannot fix: their class name becomes the failure type. */
const PERMANENT_ENGINE_ERRORS: ReadonlySet<string> = new Set(ENGINE_PERMANENT_ERRORS);

/** A non-retryable failure with a stable type. */
export function permanentFailure(message: string, type: string, cause?: Error): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true, ...(cause ? { cause } : {}) });
}

export function badInput(message: string): ApplicationFailure {
  return permanentFailure(message, PIPELINE_ERRORS.badInput);
}

/**
 * Runs a stage body: permanent store and engine errors become non-retryable failures (type =
 * error class), anything else stays retryable.
 */
export async function stageCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    if (err instanceof StoreError && isPermanent(err)) {
      throw permanentFailure(`${what}: ${err.message}`, err.type, err);
    }
    if (err instanceof Error && PERMANENT_ENGINE_ERRORS.has(err.name)) {
      throw permanentFailure(`${what}: ${err.message}`, err.name, err);
    }
    throw err;
  }
}

/** `runs/<runId>/<stage>/<name>`: where a stage writes its artifacts. */
export function runKey(runId: string, stage: string, name: string): string {
  return `runs/${keySegment(runId)}/${stage}/${name}`;
}

/** What every stage activity's input carries about where it writes. */
export interface StageOutput {
  runId: string;
  /**
   * Key prefix of the stage's outputs, from the stage cache (`stages/<stage>/<key>/<generation>`).
   * Default: `runs/<runId>/<stage>`.
   */
  out?: string;
}

/** The key of output `name` of a stage activity. */
export function outputKey(input: StageOutput, stage: string, name: string): string {
  if (input.out === undefined) return runKey(input.runId, stage, name);
  if (typeof input.out !== 'string' || !/^[A-Za-z0-9._=+@,~/-]+$/.test(input.out) || input.out.includes('..'))
    throw badInput(`field "out" must be an artifact key prefix, got ${JSON.stringify(input.out)}`);
  return `${input.out}/${name}`;
}

export function checkRunId(runId: unknown): string {
  if (typeof runId !== 'string' || runId.trim() === '')
    throw badInput('field "runId" must be a non-empty string');
  return runId;
}

export function checkPositiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw badInput(`field "${field}" must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

export function checkRef(ref: unknown, field: string): ArtifactRef {
  const r = ref as Partial<ArtifactRef> | undefined;
  if (!r || typeof r.uri !== 'string' || typeof r.sha256 !== 'string' || typeof r.size !== 'number')
    throw badInput(`field "${field}" must be an artifact reference {uri, sha256, size}`);
  return r as ArtifactRef;
}

/** The committed artifact under `key`, if an earlier attempt finished it. */
export async function finished(
  store: ArtifactStore,
  key: string,
): Promise<{ ref: ArtifactRef; metadata: ArtifactMetadata } | undefined> {
  return storeCall(() => store.head(key));
}

export async function putArtifact(
  store: ArtifactStore,
  key: string,
  bytes: Uint8Array,
  options: PutOptions,
): Promise<ArtifactRef> {
  const ref = await storeCall(() => store.put(key, bytes, options));
  return { uri: ref.uri, sha256: ref.sha256, size: ref.size };
}

/** Reads and verifies an artifact of the run's store. */
export async function readArtifact(store: ArtifactStore, ref: ArtifactRef): Promise<Uint8Array> {
  return storeCall(() => store.get(ref.uri, ref.sha256));
}

/** A JSON artifact written by `encodeJson`, digest-verified. */
export async function readJsonArtifact<T>(store: ArtifactStore, ref: ArtifactRef): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await readArtifact(store, ref))) as T;
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Sends a heartbeat with `details` (throttled by the SDK) and stops the activity if it was cancelled
 * (a cancelled run, or its worker shutting down on Ctrl-C): long loops call this between batches, so
 * they end within one batch instead of running to completion.
 */
export function heartbeat(details: unknown): void {
  const ctx = Context.current();
  ctx.heartbeat(details);
  if (ctx.cancellationSignal.aborted) {
    const reason: unknown = ctx.cancellationSignal.reason;
    throw reason instanceof Error ? reason : new CancelledFailure(String(reason ?? 'activity cancelled'));
  }
}

/** A 32-bit seed for one use (`label`) of the run's root seed, so stages draw independent streams. */
export function stageSeed(rootSeed: number, label: string): number {
  return createHash('sha256').update(`${rootSeed}:${label}`).digest().readUInt32LE(0);
}

export async function useBackend(backend: BackendPreference | undefined): Promise<void> {
  await initBackend(backend ?? 'auto');
}

/**
 * Reads a user-given source: a plain path or file:// URI (a file without a store companion is
 * fine), an artifact of the run's store, or an s3:// object written by the artifact store.
 * `field` names the config field in errors.
 */
export async function readSource(store: ArtifactStore, source: string, field: string): Promise<Uint8Array> {
  if (source.startsWith(`${store.baseUri}/`)) return storeCall(() => store.get(source));
  let file: string | undefined;
  if (!isUri(source)) file = path.resolve(source);
  else {
    const parsed = await stageCall(field, () => Promise.resolve(parseArtifactUri(source)));
    if (parsed.scheme === 'file') file = parsed.path;
  }
  if (file !== undefined) {
    try {
      return await readWholeFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EACCES')
        throw permanentFailure(
          `${field}: cannot read ${source} (${code === 'ENOENT' ? 'no such file' : code})`,
          PIPELINE_ERRORS.sourceNotFound,
        );
      throw err;
    }
  }
  return stageCall(field, () => storeForUri(source).get(source));
}
