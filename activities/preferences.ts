/**
 * The preference stage: the run's preference set as one Pick-a-Pic v2 parquet artifact.
 *
 * - `simulatePreferences` (built-in world): prompts from the world's generator, two base-model
 *   generations per prompt with distinct seeds, simulated users choose (engine/world/simulate).
 *   With `data.generators` each image comes from a pool of generators drawn by share, and the
 *   `model_0` / `model_1` columns name them; with `data.promptSplit` 'hash' only training prompts
 *   are used (docs/world.md).
 * - `importPreferences` (`pickapic` shards or a caption `folder`): validates every row
 *   (`data.onBadRow`), writes the accepted ones and names each skipped row by file and row.
 *   A folder holds single images, not comparisons: each image becomes a row showing it twice
 *   (`are_different` false, a tie), which ranking can score but a preference model cannot learn.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import * as path from 'node:path';
import type { BackendPreference } from '../engine/backend';
import type { InferenceRuntimePreference } from '../engine/onnx/runtime';
import type { RgbImageF32 } from '../engine/data/image';
import { folderPreferenceRows, importCaptionFolder } from '../engine/data/folder-import';
import {
  encodePickapicParquet,
  pickapicRowStats,
  readPickapicBytes,
  readPickapicShards,
  toPickapicWriteRow,
  type PickapicRow,
  type PickapicWriteRow,
} from '../engine/data/pickapic';
import { fromModelSpace } from '../engine/world/pretraining-corpus';
import { type PromptMetadata } from '../engine/world/world';
import { preferencePrompts } from '../engine/world/prompt-split';
import { drawGenerators, standInGenerator, type PoolGenerator } from '../engine/world/generator-pool';
import { feedbackStats, simulateFeedback } from '../engine/world/simulate';
import { generateImages } from '../engine/generate';
import { decodeModelBundle } from '../engine/io/model-bundle';
import type { DiffusionModel } from '../engine/training/diffusion-model';
import { Rng } from '../engine/rng';
import type { ArtifactRef } from '../storage/artifact-store';
import { isUri, parseArtifactUri } from '../storage/uri';
import { activityLogger } from './common';
import {
  PIPELINE_ERRORS,
  badInput,
  checkPositiveInt,
  checkRef,
  checkRunId,
  finished,
  heartbeat,
  permanentFailure,
  putArtifact,
  readArtifact,
  readSource,
  outputKey,
  stageCall,
  stageSeed,
  useBackend,
  type StageDeps,
  type StageOutput,
} from './stage';

export interface SimulatePreferencesInput extends StageOutput {
  seed: number;
  /** Model bundle that generates the compared images. */
  baseModel: ArtifactRef;
  /** Prompts to simulate (config `data.prompts`); one comparison each. */
  prompts: number;
  /** Solver steps per generation. */
  steps: number;
  guidanceScale: number;
  backend?: BackendPreference;
  /** Runtime of the UNet while generating (config `workers.inferenceRuntime`). Default `auto`. */
  inferenceRuntime?: InferenceRuntimePreference;
  /**
   * The pool each compared image is drawn from by share (config `data.generators`); its names go
   * into `model_0` / `model_1`. Absent: the base model draws every image (`simulated`).
   */
  generators?: PoolGenerator[];
  /** Config `data.promptSplit`: 'hash' uses the world's training prompts only. Absent: 'none'. */
  promptSplit?: 'none' | 'hash';
}

export interface ImportPreferencesInput extends StageOutput {
  source: 'pickapic' | 'folder';
  /** Parquet shards (files, directories of .parquet, file:// or s3:// URIs) or one folder. */
  paths: string[];
  onBadRow: 'skip' | 'fail';
}

/** A row that was left out, named by file and 0-based row. */
export interface BadRow {
  file: string;
  row: number;
  field: string;
  reason: string;
}

export interface PreferencesResult {
  /** Pick-a-Pic v2 parquet with every accepted comparison. */
  preferences: ArtifactRef;
  rows: number;
  /** Distinct prompts. */
  prompts: number;
  skipped: number;
  /** Up to 20 of the skipped rows. */
  badRows: BadRow[];
  /** Comparisons where the two images differ (the usable preference pairs). */
  comparisons: number;
  /** Images per generator, when the images came from a pool (`data.generators`). */
  generators?: Record<string, number>;
}

/** Reads a preference parquet artifact of the run (validated when it was written). */
export async function readPreferenceRows(
  deps: StageDeps,
  ref: ArtifactRef,
  images: 'signature' | 'decode' = 'signature',
): Promise<PickapicRow[]> {
  const bytes = await readArtifact(deps.store, ref);
  const result = await stageCall('preference set', () =>
    readPickapicBytes(bytes, ref.uri, { onBadRow: 'fail', images, minImageSide: 1 }),
  );
  return result.rows;
}

/** The local parquet files a `data.paths` entry names; remote objects are fetched into `tmp`. */
async function shardFiles(deps: StageDeps, entry: string, tmp: string, index: number): Promise<string[]> {
  let local: string | undefined;
  if (!isUri(entry)) local = path.resolve(entry);
  else if (entry.startsWith('file:')) {
    const parsed = await stageCall(`data.paths[${index}]`, () => Promise.resolve(parseArtifactUri(entry)));
    if (parsed.scheme === 'file') local = parsed.path;
  }
  if (local === undefined) {
    const file = path.join(tmp, `shard-${index}.parquet`);
    await fs.writeFile(file, await readSource(deps.store, entry, `data.paths[${index}]`));
    return [file];
  }
  let stat;
  try {
    stat = await fs.stat(local);
  } catch {
    throw permanentFailure(`data.paths[${index}]: ${entry} does not exist`, PIPELINE_ERRORS.sourceNotFound);
  }
  if (!stat.isDirectory()) return [local];
  const names = (await fs.readdir(local)).filter((n) => n.endsWith('.parquet')).sort();
  if (names.length === 0)
    throw permanentFailure(
      `data.paths[${index}]: directory ${entry} holds no .parquet shards`,
      PIPELINE_ERRORS.sourceNotFound,
    );
  return names.map((n) => path.join(local, n));
}

function fromDone(done: {
  ref: ArtifactRef;
  metadata: { extra?: Record<string, unknown> };
}): PreferencesResult {
  const extra = done.metadata.extra ?? {};
  return {
    preferences: done.ref,
    rows: Number(extra.rows),
    prompts: Number(extra.prompts),
    skipped: Number(extra.skipped ?? 0),
    badRows: (extra.badRows ?? []) as BadRow[],
    comparisons: Number(extra.comparisons),
    ...(extra.generators !== undefined && { generators: extra.generators as Record<string, number> }),
  };
}

/** The pool as the activity received it, checked; every problem names its `data.generators` field. */
function checkPool(generators: unknown): PoolGenerator[] {
  const field = 'data.generators';
  if (!Array.isArray(generators) || generators.length === 0)
    throw badInput(`${field} must list at least one generator`);
  const names = new Map<string, number>();
  let total = 0;
  generators.forEach((g: Partial<PoolGenerator> | null, i) => {
    const at = `${field}[${i}]`;
    if (typeof g !== 'object' || g === null) throw badInput(`${at} must be an object`);
    if (typeof g.name !== 'string' || g.name === '') throw badInput(`${at}.name must be a non-empty string`);
    const first = names.get(g.name);
    if (first !== undefined)
      throw badInput(`${at}.name '${g.name}' repeats ${field}[${first}].name: generator names must differ`);
    names.set(g.name, i);
    if (typeof g.share !== 'number' || !Number.isFinite(g.share) || g.share < 0)
      throw badInput(`${at}.share must be a finite number >= 0, got ${JSON.stringify(g.share)}`);
    total += g.share;
    if (g.kind === 'bundle') {
      if (typeof g.path !== 'string' || g.path === '') throw badInput(`${at}.path must name a model bundle`);
    } else if (g.kind === 'stand-in') {
      for (const p of ['pWrong', 'distractorProb'] as const)
        if (typeof g[p] !== 'number' || !(g[p] >= 0 && g[p] <= 1))
          throw badInput(`${at}.${p} must be a probability, got ${JSON.stringify(g[p])}`);
      if (!Array.isArray(g.levels) || g.levels.length === 0)
        throw badInput(`${at}.levels must list at least one degradation level`);
    } else if (g.kind !== 'base')
      throw badInput(`${at}.kind must be 'base', 'stand-in' or 'bundle', got ${JSON.stringify(g.kind)}`);
  });
  if (!(total > 0))
    throw badInput(`${field}: the shares sum to ${total}; give at least one generator a positive share`);
  return generators as PoolGenerator[];
}

/**
 * A `bundle` generator: the model bundle at `source`, which must draw 3-channel `size`-px images
 * as the base does. `field` names the config entry in every error.
 */
async function loadGeneratorBundle(
  deps: StageDeps,
  source: string,
  field: string,
  size: number,
): Promise<DiffusionModel> {
  const bytes = await readSource(deps.store, source, field);
  const model = await stageCall(field, () => Promise.resolve(decodeModelBundle(bytes, source)));
  const c = model.unet.config;
  if (c.in_channels !== 3 || c.sample_size !== size) {
    model.unet.dispose();
    model.text.dispose();
    throw badInput(
      `${field}: ${source} draws ${c.in_channels}-channel ${c.sample_size} px images; the preference images are 3-channel ${size} px, as the base model draws them`,
    );
  }
  return model;
}

export function createPreferenceActivities(deps: StageDeps) {
  return {
    /** Simulated implicit feedback on base-model generations, as Pick-a-Pic v2 rows. */
    async simulatePreferences(input: SimulatePreferencesInput): Promise<PreferencesResult> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      checkRef(input.baseModel, 'baseModel');
      checkPositiveInt(input.prompts, 'prompts');
      checkPositiveInt(input.steps, 'steps');
      if (!(input.guidanceScale >= 0)) throw badInput(`field "guidanceScale" must be >= 0`);
      const pool = input.generators === undefined ? undefined : checkPool(input.generators);
      if (input.promptSplit !== undefined && input.promptSplit !== 'none' && input.promptSplit !== 'hash')
        throw badInput(`data.promptSplit must be 'none' or 'hash', got ${JSON.stringify(input.promptSplit)}`);
      const key = outputKey(input, 'preferences', 'pickapic.parquet');
      const done = await finished(deps.store, key);
      if (done) {
        log.info({ uri: done.ref.uri }, 'preference set already simulated');
        return fromDone(done);
      }
      await useBackend(input.backend);
      const model = await stageCall('base model', async () =>
        decodeModelBundle(await readArtifact(deps.store, input.baseModel), input.baseModel.uri),
      );
      try {
        const size = model.unet.config.sample_size;
        const prompts = preferencePrompts(
          `preferences:${stageSeed(input.seed, 'prompts')}`,
          input.prompts,
          input.promptSplit,
        );
        const index = new Map<PromptMetadata, number>(prompts.map((p, i) => [p, i]));
        const simSeed = stageSeed(input.seed, 'feedback') % 0x7fffffff;
        // The simulation asks for one image at a time; its seeds do not depend on the images, so a
        // dry run collects every (prompt, seed) and the model then generates them in batches.
        const wanted: { prompt: PromptMetadata; seed: number }[] = [];
        const blank: RgbImageF32 = { width: size, height: size, data: new Float32Array(size * size * 3) };
        await simulateFeedback(
          prompts,
          (prompt, seed) => {
            wanted.push({ prompt, seed });
            return blank;
          },
          { seed: simSeed },
        );
        const started = Date.now();
        const images = new Map<string, RgbImageF32>();
        const keyOf = (w: { prompt: PromptMetadata; seed: number }) => `${index.get(w.prompt)}:${w.seed}`;
        let doneBefore = 0;
        const progress = (doneImages: number) => {
          const total = wanted.length;
          const seconds = (Date.now() - started) / 1000;
          const rate = doneImages / Math.max(seconds, 1e-3);
          const p = {
            phase: 'generating',
            images: doneImages,
            total,
            imagesPerSecond: Number(rate.toFixed(2)),
            etaSeconds: Math.round((total - doneImages) / rate),
          };
          heartbeat(p);
          log.info(p, 'generating preference images');
        };
        /** The images `which` (indices into `wanted`) sampled from `from`. */
        const sample = async (from: DiffusionModel, which: readonly number[]) => {
          const generated = await generateImages(
            from,
            which.map((i) => wanted[i]!.prompt.prompt),
            {
              seeds: which.map((i) => wanted[i]!.seed),
              steps: input.steps,
              guidanceScale: input.guidanceScale,
              ...(input.inferenceRuntime !== undefined && { runtime: input.inferenceRuntime }),
              onRuntime: (choice) => log.info(choice, 'UNet inference runtime selected'),
              onProgress: (doneImages) => progress(doneBefore + doneImages),
            },
          );
          which.forEach((i, j) =>
            images.set(keyOf(wanted[i]!), { width: size, height: size, data: fromModelSpace(generated[j]!) }),
          );
          doneBefore += which.length;
        };
        // Which generator draws each image (absent: the base draws all of them).
        const names = new Map<string, string>();
        const counts: Record<string, number> = {};
        if (!pool)
          await sample(
            model,
            wanted.map((_, i) => i),
          );
        else {
          const drawn = drawGenerators(
            pool.map((g) => g.share),
            wanted.length,
            new Rng(`preferences-generators:${stageSeed(input.seed, 'generators')}`),
          );
          for (const [g, entry] of pool.entries()) {
            const which = drawn.flatMap((d, i) => (d === g ? [i] : []));
            counts[entry.name] = which.length;
            for (const i of which) names.set(keyOf(wanted[i]!), entry.name);
            if (which.length === 0) continue;
            if (entry.kind === 'base') await sample(model, which);
            else if (entry.kind === 'stand-in') {
              const draw = standInGenerator(entry, size);
              for (const i of which) images.set(keyOf(wanted[i]!), draw(wanted[i]!.prompt, wanted[i]!.seed));
              doneBefore += which.length;
              progress(doneBefore);
            } else {
              const bundle = await loadGeneratorBundle(deps, entry.path, `data.generators[${g}].path`, size);
              try {
                await sample(bundle, which);
              } finally {
                bundle.unet.dispose();
                bundle.text.dispose();
              }
            }
          }
        }
        const feedback = await simulateFeedback(
          prompts,
          (prompt, seed) => {
            const image = images.get(`${index.get(prompt)}:${seed}`);
            if (!image) throw new Error(`no generated image for prompt "${prompt.prompt}" seed ${seed}`);
            return image;
          },
          // Ids follow the seed, not the run, so the same inputs give the same bytes in any run.
          { seed: simSeed, uidPrefix: `sim${simSeed}-` },
        );
        if (pool)
          feedback.pairs.forEach((pair, i) => {
            const row = feedback.rows[i]!;
            row.model_0 = names.get(`${pair.promptIndex}:${pair.seeds[0]}`)!;
            row.model_1 = names.get(`${pair.promptIndex}:${pair.seeds[1]}`)!;
          });
        const { decisions, meanAlignment } = feedbackStats(feedback.pairs);
        const stats = pickapicRowStats(feedback.rows);
        const extra = {
          rows: feedback.rows.length,
          ...stats,
          skipped: 0,
          badRows: [],
          decisions,
          meanAlignment,
          generationSeconds: (Date.now() - started) / 1000,
          ...(pool && { generators: counts }),
        };
        const ref = await putArtifact(
          deps.store,
          key,
          encodePickapicParquet(feedback.rows, { validate: false }),
          {
            kind: 'pickapic-parquet',
            producer: 'simulatePreferences',
            inputs: [input.baseModel.sha256],
            extra,
          },
        );
        log.info({ uri: ref.uri, ...extra }, 'simulated preference set written');
        return {
          preferences: ref,
          rows: feedback.rows.length,
          ...stats,
          skipped: 0,
          badRows: [],
          ...(pool && { generators: counts }),
        };
      } finally {
        model.unet.dispose();
        model.text.dispose();
      }
    },

    /** Validates Pick-a-Pic shards or a caption folder and writes the accepted rows as one parquet. */
    async importPreferences(input: ImportPreferencesInput): Promise<PreferencesResult> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      if (input.source !== 'pickapic' && input.source !== 'folder')
        throw badInput(
          `data.source must be 'pickapic' or 'folder' here, got ${JSON.stringify(input.source)}`,
        );
      if (!Array.isArray(input.paths) || input.paths.length === 0)
        throw badInput(`data.source '${input.source}' needs at least one entry in data.paths`);
      if (input.onBadRow !== 'skip' && input.onBadRow !== 'fail')
        throw badInput(`data.onBadRow must be 'skip' or 'fail', got ${JSON.stringify(input.onBadRow)}`);
      const key = outputKey(input, 'preferences', 'pickapic.parquet');
      const done = await finished(deps.store, key);
      if (done) {
        log.info({ uri: done.ref.uri }, 'preference set already imported');
        return fromDone(done);
      }
      let rows: PickapicWriteRow[];
      let skipped = 0;
      let badRows: BadRow[] = [];
      const inputs: string[] = [];
      if (input.source === 'folder') {
        if (input.paths.length !== 1)
          throw badInput(
            `data.source 'folder' takes exactly one folder in data.paths, got ${input.paths.length}`,
          );
        const entry = input.paths[0]!;
        const dir = isUri(entry)
          ? await stageCall('data.paths[0]', async () => {
              const parsed = parseArtifactUri(entry);
              if (parsed.scheme !== 'file')
                throw badInput(`data.paths[0]: a folder must be local, got ${entry}`);
              return Promise.resolve(parsed.path);
            })
          : path.resolve(entry);
        const items = await stageCall('data.paths[0]', () => importCaptionFolder(dir));
        rows = folderPreferenceRows(items);
      } else {
        const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dro-import-'));
        try {
          const files: string[] = [];
          for (const [i, entry] of input.paths.entries())
            files.push(...(await shardFiles(deps, entry, tmp, i)));
          heartbeat({ phase: 'reading shards', files: files.length });
          const result = await stageCall('data.paths', () =>
            readPickapicShards(files, { onBadRow: input.onBadRow, images: 'validate' }),
          );
          rows = result.rows.map(toPickapicWriteRow);
          skipped = result.skipped;
          badRows = result.examples.map((e) => ({
            file: e.file,
            row: e.row,
            field: e.field,
            reason: e.reason,
          }));
          for (const bad of badRows) log.warn(bad, 'bad preference row skipped');
          inputs.push(...files.map((f) => path.basename(f)));
        } finally {
          await fs.rm(tmp, { recursive: true, force: true });
        }
      }
      if (rows.length === 0)
        throw permanentFailure(
          `data.paths: no valid rows (${skipped} skipped; first: ${badRows[0] ? `${badRows[0].file} row ${badRows[0].row} ${badRows[0].reason}` : 'none'})`,
          'PickapicFileError',
        );
      const stats = pickapicRowStats(rows);
      const extra = {
        rows: rows.length,
        ...stats,
        skipped,
        badRows,
        source: input.source,
        paths: input.paths,
      };
      const ref = await putArtifact(deps.store, key, encodePickapicParquet(rows, { validate: false }), {
        kind: 'pickapic-parquet',
        producer: 'importPreferences',
        extra,
      });
      log.info({ uri: ref.uri, rows: rows.length, skipped, ...stats }, 'preference set imported');
      return { preferences: ref, rows: rows.length, ...stats, skipped, badRows };
    },
  };
}
