/**
 * `dro study export` / `dro study import`: a blinded pairwise study of a run's evaluation samples,
 * as static files people open in a browser, and the import of their answers.
 *
 * Where things go (in the artifact store, under the run's records, unless `--out` names a folder):
 *
 *   runs/<runId>/studies/<studyId>/study/              the folder to hand out (open index.html)
 *   runs/<runId>/studies/<studyId>/study-key.json      the unblinding key, beside it, never inside
 *   runs/<runId>/studies/<studyId>/imports/<NNNN>/     one version per import: every answer file so
 *                                                      far (results.json), human-study.json, report.*
 *
 * Imports are cumulative: each one reads the answer files of the newest version, adds the files
 * given (a file imported before is recognised by its digest and skipped), and writes the next version.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { decodeEvaluationSamples } from '../../activities/evaluation';
import type { EvaluationDocument, EvaluationSamples } from '../../activities/evaluation';
import type { RunReport } from '../../contracts/pipeline';
import { toUint8 } from '../../engine/data/image';
import { encodePng } from '../../engine/data/image-codec';
import { renderReport } from '../../engine/report';
import { Rng } from '../../engine/rng';
import {
  attentionChecks,
  countComparisons,
  DEFAULT_MIN_MEDIAN_ANSWER_MS,
  exportStudy,
  importStudyResults,
  KEY_FILE_NAME,
  loadStudy,
  selectComparisons,
  type NamedFile,
  type StudyImport,
} from '../../engine/study';
import { MAX_RESULTS_FILE_BYTES } from '../../engine/study/study-format';
import { renderScene, sceneForMetadata } from '../../engine/world/render';
import { parseWorldPrompt } from '../../engine/world/world-prompts';
import { LocalArtifactStore, openStore, type ArtifactStore } from '../../storage';
import { escapeControl } from '../terminal-text';
import { readJson, runEvaluation } from './eval';
import { reportFromEvaluation, writeFiles } from '../../activities/evaluation-report';
import { loadConfig } from './run';
import { checkRunIdRef, runRecordsKey } from '../run-ids';

export class StudyCommandError extends Error {
  override name = 'StudyCommandError';
}

/** The largest study.json or key an import reads (a 10,000-pair study's study.json is about 2 MB). */
const MAX_STUDY_FILE_BYTES = 64 * 1024 * 1024;
const RESULTS_FORMAT = 'dro-study-import@1';
const STUDY_ID = /^study-[0-9a-f]{12}$/;

/** Where a run's studies are kept in the store. */
export function studiesKey(runId: string): string {
  return `${runRecordsKey(runId)}/studies`;
}

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message);
}

/**
 * A local file's bytes, at most `limit` of them: the size is checked before anything is read, so
 * a huge file (or a device or FIFO) is refused without being read. Errors name the file as given.
 */
export function readBoundedFile(file: string, limit: number, what = 'file'): Uint8Array {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new StudyCommandError(`${file}: cannot read it (${errorCode(err)})`);
  }
  if (!stat.isFile()) throw new StudyCommandError(`${file}: not a regular file`);
  if (stat.size > limit)
    throw new StudyCommandError(
      `${file}: ${mib(stat.size)}, more than the ${mib(limit)} a ${what} may have; not read`,
    );
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new StudyCommandError(`${file}: cannot read it (${errorCode(err)})`);
  }
  try {
    // One byte more than the stat said tells a file that grew meanwhile.
    const buf = Buffer.alloc(stat.size + 1);
    let n = 0;
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n !== stat.size) throw new StudyCommandError(`${file}: changed while it was read; try again`);
    return new Uint8Array(buf.buffer, buf.byteOffset, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a store artifact after checking its size. */
async function readStoreBounded(store: ArtifactStore, key: string, limit: number): Promise<NamedFile> {
  const head = await store.head(key);
  if (!head) throw new StudyCommandError(`${store.baseUri}/${key}: not in the store`);
  if (head.ref.size > limit)
    throw new StudyCommandError(`${head.ref.uri}: ${mib(head.ref.size)}, more than ${mib(limit)}; not read`);
  return { name: head.ref.uri, bytes: await store.get(key) };
}

/** Where a store key is, for people: a path for the local store, else its URI. */
function shown(store: ArtifactStore, key: string): string {
  return store instanceof LocalArtifactStore ? store.pathOf(key) : `${store.baseUri}/${key}`;
}

/** A whole number option in [min, max], or a clear error naming it. */
function intOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new StudyCommandError(`${name} ${JSON.stringify(value)}: use a whole number from ${min} to ${max}`);
  return n;
}

/**
 * Checks an `--out` folder before anything is computed: it and its key file must not exist, and
 * the folder above must exist and be writable.
 */
function checkOut(out: string): { dir: string; keyFile: string } {
  const dir = path.resolve(out);
  const keyFile = `${dir}-key.json`;
  for (const target of [dir, keyFile]) {
    if (fs.existsSync(target) || isLink(target))
      throw new StudyCommandError(
        `--out ${out}: ${target} already exists; give a folder that does not exist yet (nothing was written)`,
      );
  }
  const parent = path.dirname(dir);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(parent);
  } catch (err) {
    throw new StudyCommandError(`--out ${out}: cannot use the folder ${parent} (${errorCode(err)})`);
  }
  if (!stat.isDirectory()) throw new StudyCommandError(`--out ${out}: ${parent} is not a folder`);
  try {
    fs.accessSync(parent, fs.constants.W_OK);
  } catch (err) {
    throw new StudyCommandError(
      `--out ${out}: cannot write in ${parent} (${errorCode(err)}); nothing was written`,
    );
  }
  return { dir, keyFile };
}

function isLink(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Writes the study folder and key under --out: a temporary folder renamed into place. */
function writeToFolder(dir: string, keyFile: string, files: Record<string, Uint8Array>, key: Uint8Array) {
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    // Folder by folder: a recursive mkdir can spin forever where mkdir fails with ENOENT (/proc).
    fs.mkdirSync(tmp);
    for (const [rel, bytes] of Object.entries(files)) {
      const parts = rel.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const sub = path.join(tmp, ...parts.slice(0, i));
        if (!fs.existsSync(sub)) fs.mkdirSync(sub);
      }
      fs.writeFileSync(path.join(tmp, rel), bytes);
    }
    fs.writeFileSync(`${keyFile}.tmp-${process.pid}`, key, { flag: 'wx' });
    fs.renameSync(tmp, dir);
    fs.renameSync(`${keyFile}.tmp-${process.pid}`, keyFile);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(`${keyFile}.tmp-${process.pid}`, { force: true });
    throw new StudyCommandError(
      `--out ${dir}: cannot write the study there (${errorCode(err)}); nothing was written`,
    );
  }
}

/** Writes the study folder and key under the run's records in the store. */
async function writeToStore(
  store: ArtifactStore,
  prefix: string,
  files: Record<string, Uint8Array>,
  key: Uint8Array,
): Promise<void> {
  const written: string[] = [];
  try {
    for (const [rel, bytes] of Object.entries(files)) {
      await store.put(`${prefix}/study/${rel}`, bytes, { kind: 'study-page', producer: 'dro study export' });
      written.push(`${prefix}/study/${rel}`);
    }
    // Last: a study whose key exists is complete.
    await store.put(`${prefix}/${KEY_FILE_NAME}`, key, { kind: 'study-key', producer: 'dro study export' });
  } catch (err) {
    for (const k of written) await store.delete(k).catch(() => undefined);
    throw err;
  }
}

/** The studies exported under a run's records: ids of those with a key. */
async function storedStudies(store: ArtifactStore, runId: string): Promise<string[]> {
  const prefix = `${studiesKey(runId)}/`;
  return (await store.list(prefix))
    .filter((k) => k.endsWith(`/${KEY_FILE_NAME}`))
    .map((k) => k.slice(prefix.length).split('/')[0]!)
    .filter((id) => STUDY_ID.test(id))
    .sort();
}

/** study.json and the key an import reads: from a folder, or by study id from the run's records. */
async function locateStudy(
  store: ArtifactStore,
  runId: string,
  study: string | undefined,
  keyOption: string | undefined,
): Promise<{ manifest: NamedFile; key: NamedFile }> {
  const keyFrom = (file: string) => ({
    name: file,
    bytes: readBoundedFile(file, MAX_STUDY_FILE_BYTES, 'study key'),
  });
  if (study !== undefined && fs.existsSync(study)) {
    const dir = path.resolve(study);
    if (!fs.statSync(dir).isDirectory())
      throw new StudyCommandError(`--study ${study}: not a folder (give the exported study folder)`);
    const manifest = {
      name: path.join(study, 'study.json'),
      bytes: readBoundedFile(path.join(study, 'study.json'), MAX_STUDY_FILE_BYTES, 'study.json'),
    };
    if (keyOption !== undefined) return { manifest, key: keyFrom(keyOption) };
    // Beside the folder: <dir>-key.json (--out), or study-key.json next to the store's study/ folder.
    const candidates = [`${dir}-key.json`, path.join(path.dirname(dir), KEY_FILE_NAME)];
    const found = candidates.find((f) => fs.existsSync(f));
    if (!found)
      throw new StudyCommandError(
        `--study ${study}: no key beside it (looked for ${candidates.join(' and ')}); give it with --key`,
      );
    return { manifest, key: keyFrom(found) };
  }
  let id = study;
  if (id === undefined) {
    const ids = await storedStudies(store, runId);
    if (ids.length !== 1)
      throw new StudyCommandError(
        ids.length === 0
          ? `run ${runId} has no exported study in ${store.baseUri}/${studiesKey(runId)}/; give the study folder with --study`
          : `run ${runId} has ${ids.length} studies (${ids.join(', ')}); choose one with --study <id>`,
      );
    id = ids[0]!;
  } else if (!STUDY_ID.test(id) || !(await storedStudies(store, runId)).includes(id)) {
    throw new StudyCommandError(
      `--study ${study}: no such folder, and no study of that id in run ${runId}'s records (${store.baseUri}/${studiesKey(runId)}/)`,
    );
  }
  const prefix = `${studiesKey(runId)}/${id}`;
  return {
    manifest: await readStoreBounded(store, `${prefix}/study/study.json`, MAX_STUDY_FILE_BYTES),
    key:
      keyOption !== undefined
        ? keyFrom(keyOption)
        : await readStoreBounded(store, `${prefix}/${KEY_FILE_NAME}`, MAX_STUDY_FILE_BYTES),
  };
}

/** One answer file as a version of an import keeps it. */
interface StoredResultFile {
  file: string;
  sha256: string;
  text: string;
}

interface StoredResults {
  format: typeof RESULTS_FORMAT;
  studyId: string;
  runId: string;
  version: number;
  files: StoredResultFile[];
}

/** The number of the newest version of a study's imports (0: none) and its answer files. */
async function previousImport(
  store: ArtifactStore,
  prefix: string,
): Promise<{ last: number; version: number; files: StoredResultFile[] }> {
  const keys = await store.list(`${prefix}/imports/`);
  const versions = [
    ...new Set(
      keys
        .map((k) => /\/imports\/(\d{4,})\//.exec(k)?.[1])
        .filter((v): v is string => v !== undefined)
        .map(Number),
    ),
  ].sort((a, b) => b - a);
  for (const v of versions) {
    const key = `${prefix}/imports/${versionName(v)}/results.json`;
    if (!keys.includes(key)) continue; // an interrupted import: its number is taken, its answers are not
    const stored = await readJson<StoredResults>(store, key);
    return { last: versions[0]!, version: v, files: stored.files };
  }
  return { last: versions[0] ?? 0, version: 0, files: [] };
}

/** The participant id of an answer file, if it is JSON with one. */
function participantOf(bytes: Uint8Array): string | undefined {
  try {
    const id = (JSON.parse(new TextDecoder().decode(bytes)) as { participantId?: unknown }).participantId;
    return typeof id === 'string' ? id.trim() : undefined;
  } catch {
    return undefined;
  }
}

const versionName = (v: number): string => String(v).padStart(4, '0');
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function printImport(
  imported: StudyImport,
  version: number,
  counts: { added: number; previous: number; skipped: number; left: number },
): void {
  const s = imported.summary;
  console.log(
    `Study ${s.studyId}, import version ${version}: ${counts.added} new answer ${counts.added === 1 ? 'file' : 'files'}` +
      (counts.previous ? ` + ${counts.previous} from version ${version - 1}` : '') +
      (counts.skipped ? ` (${counts.skipped} given again, already imported)` : '') +
      (counts.left ? `; ${counts.left} left out by --exclude` : ''),
  );
  console.log(`  ${s.participants} participants counted, ${s.dropped} dropped for failed attention checks`);
  for (const r of s.rows)
    console.log(
      `  ${r.a} vs ${r.b}: ${r.winsA}/${r.total} = ${(100 * r.winRate).toFixed(1)}% (95% CI ${(100 * r.ci95[0]).toFixed(1)}-${(100 * r.ci95[1]).toFixed(1)}%)`,
    );
  if (imported.fast.length > 0) {
    console.log(
      `Implausibly fast: ${imported.fast.length} ${imported.fast.length === 1 ? 'participant' : 'participants'} with a median time per answer below ${imported.minMedianAnswerMs} ms (counted above; \`--exclude <participant>\` in the next import leaves them out):`,
    );
    for (const p of imported.fast)
      console.log(
        `  ${escapeControl(p.participantId, false)}: median ${Math.round(p.medianAnswerMs ?? 0)} ms per answer (${escapeControl(p.file, false)})${p.kept ? '' : ', already dropped for attention checks'}`,
      );
  }
}

export function registerStudyCommands(program: Command): void {
  const study = program
    .command('study')
    .description('a blinded pairwise user study of a run (static files, no server)');
  study
    .command('export <runId>')
    .description(
      "write a study of the run's evaluation samples (index.html + images + study.json) and, beside it, its key; " +
        "by default under the run's records in the artifact store",
    )
    .option(
      '--pairs <n>',
      "comparison pairs (default: userStudy.prompts of the config, or every pair the run's evaluation has if fewer)",
    )
    .option('--methods <list>', 'methods to compare, comma-separated (default: all evaluated)')
    .option(
      '--out <dir>',
      "write the study to this new folder and its key to <dir>-key.json instead of the run's records",
    )
    .option('-c, --config <file>', 'config naming the artifact store (default: the embedded demo config)')
    .action(
      async (runId: string, options: { pairs?: string; methods?: string; out?: string; config?: string }) => {
        checkRunIdRef(runId);
        const asked =
          options.pairs === undefined ? undefined : intOption('--pairs', options.pairs, 1, 10_000);
        const out = options.out === undefined ? undefined : checkOut(options.out);
        const config = loadConfig(options.config);
        const store = openStore(config.storage);
        const { samples } = await runEvaluation(store, runId);
        const grid = decodeEvaluationSamples(await readJson<EvaluationSamples>(store, samples));
        const methods = options.methods
          ?.split(',')
          .map((m) => m.trim())
          .filter(Boolean);
        let available: number;
        try {
          available = countComparisons(grid, methods ? { methods } : {});
        } catch (err) {
          throw new StudyCommandError(`--methods ${options.methods ?? '(all)'}: ${(err as Error).message}`);
        }
        const methodCount = methods?.length ?? grid.methods.length;
        const has = `${available} comparison ${available === 1 ? 'pair' : 'pairs'} (${methodCount} methods, ${grid.prompts.length} prompts)`;
        if (asked !== undefined && asked > available)
          throw new StudyCommandError(
            `--pairs ${asked}: run ${runId}'s evaluation has ${has}; give at most ${available}, or leave --pairs out`,
          );
        const pairs = asked ?? Math.min(config.userStudy.prompts, available);
        const comparisons = selectComparisons(grid, {
          ...(methods && { methods }),
          pairs,
          seed: `${runId}:study`,
        });
        // Attention checks: a clean render of the prompt against noise, one per ten pairs (at least one).
        const rng = new Rng(`${runId}:attention`);
        const checkCount = Math.max(1, Math.round(comparisons.length * config.userStudy.attentionCheckRate));
        const renders = grid.prompts.slice(0, checkCount).map((prompt, i) => ({
          prompt,
          image: encodePng(
            toUint8(
              renderScene(sceneForMetadata(parseWorldPrompt(prompt), rng.fork(`scene-${i}`)), {
                resolution: 16,
              }),
            ),
          ),
        }));
        const exported = exportStudy({
          runId,
          comparisons,
          attentionChecks: attentionChecks(renders, { seed: `${runId}:noise` }),
          seed: `${runId}:order`,
          ...(methods && { methods }),
        });
        let open: string;
        let keyShown: string;
        if (out) {
          writeToFolder(out.dir, out.keyFile, exported.files, exported.key);
          open = path.join(out.dir, 'index.html');
          keyShown = out.keyFile;
        } else {
          const prefix = `${studiesKey(runId)}/${exported.studyId}`;
          await writeToStore(store, prefix, exported.files, exported.key);
          open = shown(store, `${prefix}/study/index.html`);
          keyShown = shown(store, `${prefix}/${KEY_FILE_NAME}`);
        }
        console.log(
          `Study ${exported.studyId}: ${comparisons.length} pairs + ${renders.length} attention ${renders.length === 1 ? 'check' : 'checks'}`,
        );
        if (asked === undefined)
          console.log(
            pairs < config.userStudy.prompts
              ? `Pairs:    ${pairs}, all that run ${runId}'s evaluation has (${methodCount} methods, ${grid.prompts.length} prompts); userStudy.prompts asks for ${config.userStudy.prompts}`
              : `Pairs:    ${pairs} (userStudy.prompts; the evaluation has ${has})`,
          );
        console.log(
          `Open:     ${open}${store instanceof LocalArtifactStore || out ? ' (works from file://, no server; hand out the folder it is in)' : ' (download the folder first)'}`,
        );
        console.log(`Key:      ${keyShown} (keep it apart from the study; \`dro study import\` needs it)`);
      },
    );

  study
    .command('import <runId> <results...>')
    .description(
      "validate participants' answer files, drop failed attention checks, flag implausibly fast participants, " +
        'write human win rates into a report; each import adds its files to the earlier ones as a new version',
    )
    .option(
      '--study <dir|id>',
      "the exported study folder, or the id of a study in the run's records (default: the run's only study)",
    )
    .option(
      '--key <file>',
      'the unblinding key (default: the study-key.json or <dir>-key.json beside the study)',
    )
    .option(
      '--min-median-ms <ms>',
      `flag participants whose median time per answer is below this (default ${DEFAULT_MIN_MEDIAN_ANSWER_MS}; 0: never)`,
    )
    .option(
      '--exclude <participant...>',
      'leave these participants out of this version (their files, given now or imported before)',
    )
    .option('-c, --config <file>', 'config naming the artifact store (default: the embedded demo config)')
    .action(
      async (
        runId: string,
        results: string[],
        options: { study?: string; key?: string; minMedianMs?: string; exclude?: string[]; config?: string },
      ) => {
        checkRunIdRef(runId);
        const config = loadConfig(options.config);
        const minMedianAnswerMs =
          options.minMedianMs === undefined
            ? (config.userStudy.minMedianAnswerMs ?? DEFAULT_MIN_MEDIAN_ANSWER_MS)
            : intOption('--min-median-ms', options.minMedianMs, 0, 600_000);
        const given = results.map((file) => ({
          name: file,
          bytes: readBoundedFile(file, MAX_RESULTS_FILE_BYTES, 'result file'),
        }));
        const store = openStore(config.storage);
        const located = await locateStudy(store, runId, options.study, options.key);
        // The study and its key belong together and to this run, before anything else is read.
        const { manifest } = loadStudy(located.manifest, located.key, { runId });
        const studyId = manifest.studyId;
        const prefix = `${studiesKey(runId)}/${studyId}`;
        const previous = await previousImport(store, prefix);
        const known = new Set(previous.files.map((f) => f.sha256));
        const added = given.filter((f) => !known.has(sha256(f.bytes)));
        const skipped = given.length - added.length;
        if (added.length === 0 && (options.exclude ?? []).length === 0) {
          console.log(
            `Study ${studyId}: all ${given.length} ${given.length === 1 ? 'file was' : 'files were'} imported before (version ${previous.version}); nothing new, nothing written`,
          );
          return;
        }
        const excluded = new Set(options.exclude ?? []);
        const keep = (bytes: Uint8Array): boolean => !excluded.has(participantOf(bytes) ?? '');
        const kept = previous.files.filter((f) => keep(new TextEncoder().encode(f.text)));
        const earlier: NamedFile[] = kept.map((f) => ({
          name: `${f.file} (import ${previous.version})`,
          bytes: new TextEncoder().encode(f.text),
        }));
        const addedKept = added.filter((f) => keep(f.bytes));
        const left = previous.files.length - kept.length + added.length - addedKept.length;
        if (excluded.size > 0 && left === 0)
          throw new StudyCommandError(
            `--exclude ${[...excluded].join(' ')}: no answer file of ${excluded.size === 1 ? 'that participant' : 'these participants'}, given or imported before`,
          );
        if (earlier.length + addedKept.length === 0)
          throw new StudyCommandError('--exclude: it leaves no answer file to import');
        const imported = importStudyResults(located.manifest, located.key, [...earlier, ...addedKept], {
          runId,
          minMedianAnswerMs,
        });
        const version = previous.last + 1;
        const { evaluation, samples, report } = await runEvaluation(store, runId);
        const doc = await readJson<EvaluationDocument>(store, evaluation);
        const base = report ? await readJson<RunReport>(store, report) : undefined;
        const data = reportFromEvaluation(runId, doc, await readJson<EvaluationSamples>(store, samples), {
          config: base?.config ?? {},
          artifacts: [{ role: 'eval/evaluation', uri: evaluation.uri, sha256: evaluation.sha256 }],
        });
        data.name = base?.name ?? runId;
        data.humanStudy = imported.summary;
        const stored: StoredResults = {
          format: RESULTS_FORMAT,
          studyId,
          runId,
          version,
          files: [
            ...kept,
            ...addedKept.map((f) => ({
              file: f.name,
              sha256: sha256(f.bytes),
              text: new TextDecoder().decode(f.bytes),
            })),
          ],
        };
        const human = {
          ...imported.summary,
          runId,
          version,
          minMedianAnswerMs: imported.minMedianAnswerMs,
          participantOutcomes: imported.participants,
          fastParticipants: imported.fast.map((p) => p.participantId),
          excludedParticipants: [...excluded],
        };
        const json = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
        const dir = `${prefix}/imports/${versionName(version)}`;
        const written = await writeFiles(store, dir, {
          ...renderReport(data),
          'human-study.json': json(human),
        });
        // Last: a version whose results.json exists is complete, and the next import builds on it.
        await store.put(`${dir}/results.json`, json(stored), {
          kind: 'study-results',
          producer: 'dro study import',
        });
        printImport(imported, version, { added: addedKept.length, previous: kept.length, skipped, left });
        console.log(`Report:   ${written['report.html']!.uri}`);
      },
    );
}
