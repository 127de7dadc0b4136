/**
 * The content-addressed stage cache. A stage's key is the SHA-256 of (stage name, stage version,
 * canonical JSON of the config slice it reads, its input artifacts' digests, the digests of the
 * user-given files it reads). Its outputs live under `stages/<stage>/<key:16>/<generation>/`, so a
 * changed input never lands on an existing key. When a stage finishes, an entry
 * `cache/<stage>/<key>/<time>-<execution>.json` (outputs, details, producing run) is written last;
 * a lookup takes the newest entry whose every output still hashes to its recorded digest.
 *
 * Generations: `a` for the normal computation, so a run killed half-way and started again (the same
 * key) finds the shards and checkpoints it already wrote; `r-<execution>` when the user forces a
 * stage to run again or the cached outputs were found corrupt, so nothing written is replaced.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../config/config-hash';
import {
  stageCacheLookups,
  stageCompletions,
  stageSeconds,
  type ReuseOutcome,
} from '../infra/pipeline-metrics';
import { storeForUri } from '../storage';
import type { ArtifactRef } from '../storage/artifact-store';
import { digestFile } from '../storage/digest';
import { ArtifactNotFoundError, DigestMismatchError, StoreError } from '../storage/errors';
import { isUri, parseArtifactUri } from '../storage/uri';
import { activityLogger, keySegment, storeCall } from './common';
import { badInput, encodeJson, permanentFailure, PIPELINE_ERRORS, type StageDeps } from './stage';

export interface StageLookupInput {
  runId: string;
  stage: string;
  version: number;
  slice: unknown;
  inputs: Record<string, ArtifactRef>;
  /** User-given files, folders or URIs the stage reads. */
  external: string[];
  /** Run the stage again even when a valid entry exists. */
  force: boolean;
  /** Unique id of this workflow execution: names a forced generation. */
  execution: string;
}

/** What a finished stage recorded: its output artifacts and small details for people and reports. */
export interface StageOutcome {
  outputs: Record<string, ArtifactRef>;
  /** JSON details the stage returned besides its artifacts (counts, accuracy, ...). */
  details: Record<string, unknown>;
  note?: string;
}

export interface CacheEntry extends StageOutcome {
  format: 'dro-pipeline/stage-cache@1';
  stage: string;
  version: number;
  key: string;
  /** The pipeline run that computed it. */
  runId: string;
  createdAt: string;
}

export interface StageLookupResult {
  key: string;
  /** Where the stage writes its outputs when it runs. */
  out: string;
  hit?: CacheEntry;
  /** Why a cached entry was not used (corrupt or missing outputs), for the run's record. */
  rejected?: string;
}

export interface StageCommitInput extends StageOutcome {
  runId: string;
  stage: string;
  version: number;
  key: string;
  execution: string;
}

export const CACHE_ENTRY_FORMAT = 'dro-pipeline/stage-cache@1';

export function stageCacheKey(
  input: Pick<StageLookupInput, 'stage' | 'version' | 'slice' | 'inputs'>,
  external: Record<string, string>,
): string {
  const inputs = Object.fromEntries(Object.entries(input.inputs).map(([k, ref]) => [k, ref.sha256]));
  return createHash('sha256')
    .update(
      canonicalJson({ stage: input.stage, version: input.version, slice: input.slice, inputs, external }),
    )
    .digest('hex');
}

export function stageOutPrefix(stage: string, key: string, generation: string): string {
  return `stages/${stage}/${key.slice(0, 16)}/${keySegment(generation)}`;
}

/** Cached outputs up to this size are re-hashed on a cache hit; larger ones are checked by metadata. */
export const VERIFY_BYTES_UP_TO = 64 * 1024 * 1024;

/**
 * SHA-256 of a file, or of a folder as the sorted list of (relative path, file digest). Files are
 * streamed: a multi-gigabyte checkpoint is hashed without being held in memory.
 */
async function digestPath(file: string): Promise<string> {
  const stat = await fs.stat(file);
  if (stat.isFile()) return (await digestFile(file)).sha256;
  const entries = (await fs.readdir(file, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
  const hash = createHash('sha256');
  for (const entry of entries) {
    const { sha256: digest } = await digestFile(entry);
    hash.update(`${path.relative(file, entry)}\0${digest}\n`);
  }
  return hash.digest('hex');
}

/** Content digest of a user-given source; names the source when it cannot be read. */
export async function digestSource(source: string): Promise<string> {
  try {
    if (!isUri(source)) return await digestPath(path.resolve(source));
    const parsed = parseArtifactUri(source);
    if (parsed.scheme === 'file') return await digestPath(parsed.path);
    // An object the artifact store wrote carries its digest; the stage verifies the bytes it reads.
    const head = await storeForUri(source).head(source);
    if (!head) throw new ArtifactNotFoundError(source);
    return head.ref.sha256;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code === 'ENOENT' ||
      code === 'ENOTDIR' ||
      code === 'EACCES' ||
      (err instanceof StoreError && err.type === 'ArtifactNotFoundError')
    )
      throw permanentFailure(
        `cannot read ${source} (${code === 'ENOENT' ? 'no such file or folder' : (code ?? (err as Error).message)})`,
        PIPELINE_ERRORS.sourceNotFound,
      );
    throw err;
  }
}

/** Every artifact reference inside an outcome. */
export function outcomeRefs(outcome: StageOutcome): ArtifactRef[] {
  return Object.values(outcome.outputs);
}

function parseEntry(bytes: Uint8Array, where: string): CacheEntry | string {
  try {
    const entry = JSON.parse(new TextDecoder().decode(bytes)) as CacheEntry;
    if (entry.format !== CACHE_ENTRY_FORMAT || typeof entry.outputs !== 'object')
      return `${where}: not a cache entry`;
    return entry;
  } catch (err) {
    return `${where}: ${(err as Error).message}`;
  }
}

/**
 * When each stage that is being computed was looked up, so its commit can tell how long it took.
 * Lookup and commit run on the I/O queue, usually in one process; a commit whose lookup ran in
 * another process (or before a restart) adds no time. Bounded: a stage that fails never commits.
 */
const computing = new Map<string, number>();
const MAX_COMPUTING = 1000;

function computingKey(runId: string, stage: string, key: string): string {
  return `${runId}\u0000${stage}\u0000${key}`;
}

function stageFinished(stage: string, outcome: ReuseOutcome, startedMs: number): void {
  stageSeconds.inc({ stage, outcome }, (performance.now() - startedMs) / 1000);
  stageCompletions.inc({ stage, outcome });
}

function lookedUp(input: StageLookupInput, result: StageLookupResult, startedMs: number): StageLookupResult {
  const outcome: ReuseOutcome = result.hit ? 'reused' : 'computed';
  stageCacheLookups.inc({ stage: input.stage, outcome });
  if (result.hit) stageFinished(input.stage, outcome, startedMs);
  else {
    if (computing.size >= MAX_COMPUTING) computing.delete(computing.keys().next().value!);
    computing.set(computingKey(input.runId, input.stage, result.key), startedMs);
  }
  return result;
}

export function createStageCacheActivities(deps: StageDeps) {
  const { store } = deps;

  /** Re-hashes every output of an entry; a description of the first problem, or undefined. */
  async function verifyOutputs(entry: CacheEntry): Promise<string | undefined> {
    for (const [role, ref] of Object.entries(entry.outputs)) {
      try {
        // Large outputs (models, checkpoints with optimizer state) are checked against what the
        // store recorded at commit; their bytes are verified by whoever reads them. Small ones are
        // re-hashed here, so a damaged one is recomputed instead of failing the next stage.
        if (ref.size > VERIFY_BYTES_UP_TO) {
          const head = await storeCall(() => store.head(ref.uri));
          if (!head) throw new ArtifactNotFoundError(ref.uri);
          if (head.ref.sha256 !== ref.sha256 || head.ref.size !== ref.size)
            return `output '${role}' ${ref.uri}: the store records ${head.ref.sha256.slice(0, 12)} (${head.ref.size} bytes), the cache entry ${ref.sha256.slice(0, 12)} (${ref.size} bytes)`;
          continue;
        }
        await store.get(ref.uri, ref.sha256);
      } catch (err) {
        if (
          err instanceof DigestMismatchError ||
          (err instanceof StoreError && err.type === 'ArtifactNotFoundError')
        )
          return `output '${role}' ${ref.uri}: ${err.message}`;
        throw err;
      }
    }
    return undefined;
  }

  return {
    /** The stage's cache key, where it writes, and a verified cached outcome if there is one. */
    async lookupStage(input: StageLookupInput): Promise<StageLookupResult> {
      const startedMs = performance.now();
      const log = activityLogger(deps.logger);
      if (typeof input.stage !== 'string' || !/^[a-z]+$/.test(input.stage))
        throw badInput(`field "stage" must be a stage name, got ${JSON.stringify(input.stage)}`);
      const external: Record<string, string> = {};
      for (const source of input.external) external[source] = await digestSource(source);
      const key = stageCacheKey(input, external);
      const normal: StageLookupResult = { key, out: stageOutPrefix(input.stage, key, 'a') };
      const forced = (rejected?: string): StageLookupResult => ({
        key,
        out: stageOutPrefix(input.stage, key, `r-${input.execution}`),
        ...(rejected !== undefined && { rejected }),
      });
      if (input.force) return lookedUp(input, forced(), startedMs);
      const keys = (await storeCall(() => store.list(`cache/${input.stage}/${key}/`))).reverse();
      let rejected: string | undefined;
      for (const entryKey of keys) {
        const entry = parseEntry(await storeCall(() => store.get(entryKey)), entryKey);
        if (typeof entry === 'string') {
          rejected ??= entry;
          continue;
        }
        const problem = await verifyOutputs(entry);
        if (problem === undefined) {
          log.info({ stage: input.stage, key, from: entry.runId }, 'stage cache hit');
          return lookedUp(input, { ...normal, hit: entry }, startedMs);
        }
        log.warn({ stage: input.stage, key, problem }, 'cached stage output is corrupt; computing it again');
        rejected ??= `cached outputs of run ${entry.runId} are unusable: ${problem}`;
      }
      // Outputs of the normal generation may be the corrupt ones: compute into a fresh generation.
      return lookedUp(input, rejected !== undefined ? forced(rejected) : normal, startedMs);
    },

    /** Records a finished stage; written last, so an entry always names complete outputs. */
    async commitStage(input: StageCommitInput): Promise<void> {
      const entry: CacheEntry = {
        format: CACHE_ENTRY_FORMAT,
        stage: input.stage,
        version: input.version,
        key: input.key,
        runId: input.runId,
        createdAt: new Date().toISOString(),
        outputs: input.outputs,
        details: input.details,
        ...(input.note !== undefined && { note: input.note }),
      };
      const name = `${String(Date.now()).padStart(15, '0')}-${keySegment(input.execution)}.json`;
      await storeCall(() =>
        store.put(`cache/${input.stage}/${input.key}/${name}`, encodeJson(entry), {
          kind: 'stage-cache-entry',
          producer: 'commitStage',
          inputs: outcomeRefs(input).map((r) => r.sha256),
          extra: { stage: input.stage, runId: input.runId },
        }),
      );
      const lookup = computingKey(input.runId, input.stage, input.key);
      const startedMs = computing.get(lookup);
      if (startedMs !== undefined) {
        computing.delete(lookup);
        stageFinished(input.stage, 'computed', startedMs);
      }
    },
  };
}
