/**
 * Pools the GenEval results of several runs of one experiment (different seeds) into one table, with
 * the same paired tests the evaluation stage reports for one run: one seed's 36 prompts x 4 images
 * cannot separate methods a few points apart, three seeds' 432 images can come closer.
 *
 *   npx tsx tools/pool-evaluations.ts [--baseline base] <evaluation.json> <evaluation.json> ...
 *
 * (paths, or the file:// URIs `dro runs show` prints as `eval.evaluation`)
 *
 * Each `evaluation.json` is an evaluation stage's record (its `results` name each method's
 * results.jsonl by file URI). Images are matched within a run on (prompt, seed) as the stage does;
 * runs are kept apart, so an image is compared only with the same slot of the same run.
 *
 * The simulated users' utility (each results row's `utility`, recorded since evaluation@2) is
 * pooled too: per method the mean over all pooled images with a 95% bootstrap interval that
 * resamples prompts (a prompt = one prompt of one run), and per pair of methods the head-to-head
 * over prompts: win rate (per prompt the mean utility of its images), paired t-test p and a
 * bootstrap 95% interval of the mean difference. Runs without utilities (older evaluations, or
 * GenEval skipped) leave the utility out, saying so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareGeneval, summarizeGeneval, type GenevalResultRow } from '../engine/eval/geneval-summary';
import { summarizeUtility, type UtilitySummary } from '../engine/eval/utility-summary';
import { TAGS } from '../engine/world/world';

interface EvaluationRecord {
  runId: string;
  results: Record<string, { uri: string }>;
}

function resultsPath(uri: string, evaluationFile: string): string {
  if (uri.startsWith('file:')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri))
    throw new Error(`${evaluationFile}: results ${uri} is not a local file`);
  return path.resolve(path.dirname(evaluationFile), uri);
}

function readRows(file: string): GenevalResultRow[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as GenevalResultRow;
      } catch (err) {
        throw new Error(`${file} line ${i + 1}: ${(err as Error).message}`);
      }
    });
}

/** A pooled results row: which run (index in the pooled list) it came from. */
export type PooledRow = GenevalResultRow & { run: number };

/**
 * Concatenates each method's rows over runs; seeds of different runs overlap, so each run's seeds
 * move to their own range and an image pairs only with the same slot of the same run.
 */
export function poolRuns(
  runs: ReadonlyArray<Record<string, readonly GenevalResultRow[]>>,
): Map<string, PooledRow[]> {
  const pooled = new Map<string, PooledRow[]>();
  runs.forEach((run, runIndex) => {
    for (const [method, rows] of Object.entries(run)) {
      const moved = rows.map((r) => ({ ...r, run: runIndex, seed: runIndex * 1e9 + r.seed }));
      pooled.set(method, [...(pooled.get(method) ?? []), ...moved]);
    }
  });
  const methods = [...pooled.keys()];
  for (const m of methods) {
    if (runs.some((run) => !(m in run))) throw new Error(`method ${m} was not evaluated in every run`);
  }
  return pooled;
}

/**
 * The users' utility over the pooled runs: per method the mean over all its images (95% bootstrap
 * interval over prompts), per pair the head-to-head over prompts, a prompt being one prompt of one
 * run. `methods` orders the rows; a pair (A, B) has A listed before B. Returns why not, as a
 * string, when some row carries no utility.
 */
export function poolUtility(
  pooled: ReadonlyMap<string, readonly PooledRow[]>,
  options: { methods: readonly string[]; seed?: number | string; resamples?: number },
): UtilitySummary | string {
  const missing = new Set<number>();
  for (const rows of pooled.values())
    for (const r of rows) if (typeof r.utility !== 'number') missing.add(r.run);
  if (missing.size)
    return `no utility in the results of run ${[...missing]
      .sort((a, b) => a - b)
      .map((r) => r + 1)
      .join(', ')} (evaluated before utilities were recorded, or GenEval was skipped)`;
  const images = new Map(
    options.methods.map((m) => [
      m,
      (pooled.get(m) ?? []).map((r) => ({ unit: `${r.run}:${r.promptIndex}`, utility: r.utility! })),
    ]),
  );
  return summarizeUtility(images, {
    methods: options.methods,
    seed: options.seed ?? 'pool:utility',
    ...(options.resamples === undefined ? {} : { resamples: options.resamples }),
  });
}

function printUtility(utility: UtilitySummary | string): void {
  if (typeof utility === 'string') {
    console.log(`\nusers' utility: not pooled, ${utility}`);
    return;
  }
  const f = (x: number): string => x.toFixed(3);
  console.log("\n| method | users' utility (95% CI) | images | prompts |");
  console.log('|---|---|---|---|');
  for (const m of utility.models)
    console.log(
      `| ${m.method} | ${f(m.mean)} (${f(m.ci95[0])}, ${f(m.ci95[1])}) | ${m.images} | ${m.prompts} |`,
    );
  console.log('\n| A vs B | utility win rate (W / T / L prompts) | mean A - B (95% CI) | paired t p |');
  console.log('|---|---|---|---|');
  for (const c of utility.comparisons)
    console.log(
      `| ${c.a} vs ${c.b} | ${(100 * c.winRate).toFixed(1)}% (${c.wins} / ${c.ties} / ${c.losses}) | ${f(c.meanA - c.meanB)} (${f(c.ci95[0])}, ${f(c.ci95[1])}) | ${c.pValue?.toPrecision(2) ?? '-'} |`,
    );
}

function main(): void {
  const args = process.argv.slice(2);
  let baseline = 'base';
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--baseline') baseline = args[++i] ?? baseline;
    else files.push(args[i]!);
  }
  if (files.length === 0) throw new Error('name one or more evaluation.json files');
  const runs: string[] = [];
  const pooled = poolRuns(
    files.map((arg) => {
      // `dro runs show` prints artifacts as file:// URIs; take those as they are printed.
      const file = arg.startsWith('file:') ? fileURLToPath(arg) : arg;
      const record = JSON.parse(fs.readFileSync(file, 'utf8')) as EvaluationRecord;
      runs.push(record.runId);
      return Object.fromEntries(
        Object.entries(record.results).map(([method, ref]) => [method, readRows(resultsPath(ref.uri, file))]),
      );
    }),
  );
  const methods = [...pooled.keys()];
  console.log(`runs: ${runs.join(', ')}`);
  const tags = TAGS.filter((t) => pooled.get(methods[0]!)!.some((r) => r.tag === t));
  console.log(`| method | ${tags.join(' | ')} | overall | mean score | images |`);
  console.log(`|---|${tags.map(() => '---').join('|')}|---|---|---|`);
  for (const m of methods) {
    const s = summarizeGeneval(pooled.get(m)!);
    const cells = tags.map((t) => (s.perTag[t]?.accuracy ?? NaN).toFixed(3));
    console.log(
      `| ${m} | ${cells.join(' | ')} | ${s.overall.toFixed(3)} | ${s.meanScore.toFixed(3)} | ${s.images} |`,
    );
  }
  console.log('\n| A vs B | overall A - B (95% CI) | McNemar p (A-only / B-only images) | mean score p |');
  console.log('|---|---|---|---|');
  const order = [baseline, ...methods.filter((m) => m !== baseline)];
  for (let i = 0; i < order.length; i++) {
    for (let j = 0; j < i; j++) {
      const [a, b] = [order[i]!, order[j]!];
      if (!pooled.has(a) || !pooled.has(b)) continue;
      const c = compareGeneval(pooled.get(a)!, pooled.get(b)!, { seed: `pool:${a}:${b}` });
      const ci = c.overallDiffCi95.map((v) => v.toFixed(3)).join(', ');
      console.log(
        `| ${a} vs ${b} | ${c.overallDiff.toFixed(3)} (${ci}) | ${c.mcnemar.pValue.toPrecision(2)} (${c.mcnemar.b} / ${c.mcnemar.c}) | ${c.meanScorePValue?.toPrecision(2) ?? '-'} |`,
      );
    }
  }
  // Rows in the table's method order; pairs later method first, as the GenEval comparisons above.
  const utility = poolUtility(pooled, { methods: [...order].reverse().filter((m) => pooled.has(m)) });
  if (typeof utility !== 'string') utility.models.reverse();
  printUtility(utility);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
