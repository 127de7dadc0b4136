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
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareGeneval, summarizeGeneval, type GenevalResultRow } from '../engine/eval/geneval-summary';
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

/**
 * Concatenates each method's rows over runs; seeds of different runs overlap, so each run's seeds
 * move to their own range and an image pairs only with the same slot of the same run.
 */
export function poolRuns(
  runs: ReadonlyArray<Record<string, readonly GenevalResultRow[]>>,
): Map<string, GenevalResultRow[]> {
  const pooled = new Map<string, GenevalResultRow[]>();
  runs.forEach((run, runIndex) => {
    for (const [method, rows] of Object.entries(run)) {
      const moved = rows.map((r) => ({ ...r, seed: runIndex * 1e9 + r.seed }));
      pooled.set(method, [...(pooled.get(method) ?? []), ...moved]);
    }
  });
  const methods = [...pooled.keys()];
  for (const m of methods) {
    if (runs.some((run) => !(m in run))) throw new Error(`method ${m} was not evaluated in every run`);
  }
  return pooled;
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
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
