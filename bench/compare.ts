/**
 * Side-by-side comparison of two benchmark reports: the engine's TF.js rows (bench/run.ts) against
 * a peer's rows for the same configs (bench/torch_reference.py). Rows are matched by config; both
 * sides must have timed the same work (batch, size, FLOP counts), else the ratios would mislead.
 */
import { BENCH_OPS, type BenchOp, type OpFlops } from './spec';

export class BenchCompareError extends Error {
  override name = 'BenchCompareError';
}

export interface ReportRow {
  backend: string;
  gradients?: string;
  config: string;
  batch: number;
  size: number;
  /** Median milliseconds per operation; null where the side did not time it. */
  ms: Record<BenchOp, number | null>;
  /** Median process CPU milliseconds per operation (optional in a report); null where absent. */
  cpuMs: Record<BenchOp, number | null>;
  flops: OpFlops;
}

export interface BenchReport {
  file: string;
  rows: ReportRow[];
}

/** The report field holding each operation's milliseconds. */
export const MS_FIELD: Record<BenchOp, string> = {
  forward: 'forwardMs',
  sftStep: 'sftStepMs',
  droStep: 'droStepMs',
  sample20: 'sample20Ms',
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a report's JSON text; every error names the file and the field. */
export function parseBenchReport(text: string, file: string): BenchReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new BenchCompareError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(data)) throw new BenchCompareError(`${file}: expected a JSON object at the top level`);
  const rawRows = data.rows;
  if (!Array.isArray(rawRows) || rawRows.length === 0)
    throw new BenchCompareError(`${file}: field 'rows' must be a non-empty list`);
  const rows = rawRows.map((raw: unknown, i): ReportRow => {
    const where = `${file}: rows[${i}]`;
    if (!isRecord(raw)) throw new BenchCompareError(`${where} must be an object`);
    const str = (key: string): string => {
      const v = raw[key];
      if (typeof v !== 'string' || v === '')
        throw new BenchCompareError(`${where}.${key} must be a non-empty string, got ${JSON.stringify(v)}`);
      return v;
    };
    const posInt = (key: string): number => {
      const v = raw[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
        throw new BenchCompareError(`${where}.${key} must be a positive integer, got ${JSON.stringify(v)}`);
      return v;
    };
    const backend = str('backend');
    const config = str('config');
    const batch = posInt('batch');
    const size = posInt('size');
    const ms = {} as Record<BenchOp, number | null>;
    for (const op of BENCH_OPS) {
      const key = MS_FIELD[op];
      const v = raw[key];
      if (v === null || v === undefined) ms[op] = null;
      else if (typeof v === 'number' && Number.isFinite(v) && v > 0) ms[op] = v;
      else
        throw new BenchCompareError(
          `${where}.${key} must be a positive number of milliseconds or null, got ${JSON.stringify(v)}`,
        );
    }
    const cpuMs = { forward: null, sftStep: null, droStep: null, sample20: null } as Record<
      BenchOp,
      number | null
    >;
    const rawCpu = raw.cpuMs;
    if (rawCpu !== undefined && rawCpu !== null) {
      if (!isRecord(rawCpu))
        throw new BenchCompareError(`${where}.cpuMs must be an object of milliseconds per operation`);
      for (const op of BENCH_OPS) {
        const v = rawCpu[op];
        if (v === null || v === undefined) continue;
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
          throw new BenchCompareError(
            `${where}.cpuMs.${op} must be a positive number of milliseconds or null, got ${JSON.stringify(v)}`,
          );
        cpuMs[op] = v;
      }
    }
    const rawFlops = raw.flops;
    if (!isRecord(rawFlops))
      throw new BenchCompareError(`${where}.flops must be an object with the FLOP count of each operation`);
    const flops = {} as OpFlops;
    for (const op of BENCH_OPS) {
      const v = rawFlops[op];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
        throw new BenchCompareError(
          `${where}.flops.${op} must be a positive number, got ${JSON.stringify(v)}`,
        );
      flops[op] = v;
    }
    const gradients = raw.gradients;
    if (gradients !== undefined && typeof gradients !== 'string')
      throw new BenchCompareError(`${where}.gradients must be a string, got ${JSON.stringify(gradients)}`);
    return {
      backend,
      ...(gradients === undefined ? {} : { gradients }),
      config,
      batch,
      size,
      ms,
      cpuMs,
      flops,
    };
  });
  return { file, rows };
}

export interface ComparisonRow {
  /** The engine's backend, with '/autodiff' for the plain-gradient baseline. */
  backend: string;
  peerBackend: string;
  config: string;
  op: BenchOp;
  oursMs: number | null;
  peerMs: number | null;
  /** ours / peer wall time: above 1 the engine is slower. */
  ratio: number | null;
  oursCpuMs: number | null;
  peerCpuMs: number | null;
  /** ours / peer process CPU time. */
  cpuRatio: number | null;
  oursGflops: number | null;
  peerGflops: number | null;
}

export interface Comparison {
  rows: ComparisonRow[];
  /** Configs of ours without a peer row. */
  unmatched: string[];
}

function gflops(flops: number, ms: number | null): number | null {
  return ms === null ? null : flops / ms / 1e6;
}

function ratioOf(a: number | null, b: number | null): number | null {
  return a !== null && b !== null ? a / b : null;
}

/** Relative tolerance for FLOP counts: both sides export them from the same TS function. */
const FLOP_TOLERANCE = 1e-9;

export function compareReports(ours: BenchReport, peer: BenchReport): Comparison {
  const rows: ComparisonRow[] = [];
  const unmatched: string[] = [];
  for (const row of ours.rows) {
    const matches = peer.rows.filter((p) => p.config === row.config);
    if (matches.length > 1)
      throw new BenchCompareError(
        `${peer.file}: ${matches.length} rows for config '${row.config}', expected one`,
      );
    const p = matches[0];
    if (!p) {
      if (!unmatched.includes(row.config)) unmatched.push(row.config);
      continue;
    }
    for (const key of ['batch', 'size'] as const) {
      if (row[key] !== p[key])
        throw new BenchCompareError(
          `config '${row.config}': ${key} ${row[key]} in ${ours.file} but ${p[key]} in ${peer.file}; the two sides timed different work`,
        );
    }
    for (const op of BENCH_OPS) {
      const a = row.flops[op];
      const b = p.flops[op];
      if (Math.abs(a - b) > FLOP_TOLERANCE * Math.max(a, b))
        throw new BenchCompareError(
          `config '${row.config}': flops.${op} ${a} in ${ours.file} but ${b} in ${peer.file}; the two sides count different work`,
        );
    }
    const backend = row.gradients === 'autodiff' ? `${row.backend}/autodiff` : row.backend;
    for (const op of BENCH_OPS) {
      const oursMs = row.ms[op];
      const peerMs = p.ms[op];
      rows.push({
        backend,
        peerBackend: p.backend,
        config: row.config,
        op,
        oursMs,
        peerMs,
        ratio: ratioOf(oursMs, peerMs),
        oursCpuMs: row.cpuMs[op],
        peerCpuMs: p.cpuMs[op],
        cpuRatio: ratioOf(row.cpuMs[op], p.cpuMs[op]),
        oursGflops: gflops(row.flops[op], oursMs),
        peerGflops: gflops(p.flops[op], peerMs),
      });
    }
  }
  return { rows, unmatched };
}

function num(v: number | null, digits: number): string {
  return v === null ? '-' : v.toFixed(digits);
}

/** A Markdown table, one line per (backend, config, operation). */
export function formatComparison(c: Comparison): string {
  const header = [
    'ours',
    'peer',
    'config',
    'row',
    'ours ms',
    'peer ms',
    'ours/peer',
    'ours GFLOP/s',
    'peer GFLOP/s',
    'ours cpu ms',
    'peer cpu ms',
    'cpu ours/peer',
  ];
  const times = (v: number | null) => (v === null ? '-' : `${v.toFixed(2)}x`);
  const lines = c.rows.map((r) => [
    r.backend,
    r.peerBackend,
    r.config,
    r.op,
    num(r.oursMs, 1),
    num(r.peerMs, 1),
    times(r.ratio),
    num(r.oursGflops, 2),
    num(r.peerGflops, 2),
    num(r.oursCpuMs, 1),
    num(r.peerCpuMs, 1),
    times(r.cpuRatio),
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, k) => Math.max(...all.map((l) => l[k]!.length)));
  const fmt = (l: string[]) => `| ${l.map((cell, k) => cell.padEnd(widths[k]!)).join(' | ')} |`;
  const out = [fmt(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...lines.map(fmt)];
  if (c.unmatched.length > 0) out.push(`no peer row for: ${c.unmatched.join(', ')}`);
  return out.join('\n');
}
