/**
 * The peer-benchmark comparison (bench/compare.ts) on small synthetic reports, and the spec that
 * both benchmark sides read their work and FLOP counts from (bench/spec.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BenchCompareError,
  compareReports,
  formatComparison,
  parseBenchReport,
  type ComparisonRow,
} from '../../bench/compare';
import { BATCH, benchSpec, CONTEXT_LENGTH, opFlops } from '../../bench/spec';
import { unetForwardFlops } from '../../engine/models/flops';
import { UNET_CONFIGS } from '../../engine/models/unet-config';

type Ms = [number | null, number | null, number | null, number | null];

function row(backend: string, config: string, ms: Ms, flopsPerForward: number, extra = {}) {
  return {
    backend,
    config,
    batch: config === 'tiny' ? 2 : 4,
    size: config === 'tiny' ? 8 : 16,
    forwardMs: ms[0],
    sftStepMs: ms[1],
    droStepMs: ms[2],
    sample20Ms: ms[3],
    flops: {
      forward: flopsPerForward,
      sftStep: 3 * flopsPerForward,
      droStep: 8 * flopsPerForward,
      sample20: 20 * flopsPerForward,
    },
    ...extra,
  };
}

const TINY_F = 1e8;
const DEMO_F = 4e8;

function oursText(): string {
  return JSON.stringify({
    rows: [
      row('wasm', 'tiny', [30, 90, 400, 700], TINY_F, {
        cpuMs: { forward: 24, sftStep: 80, droStep: null, sample20: 600 },
      }),
      row('wasm', 'demo', [80, 250, 1200, 2000], DEMO_F),
      row('cpu', 'tiny', [300, 9000, null, null], TINY_F, { gradients: 'autodiff' }),
    ],
  });
}

function peerText(
  rows: unknown[] = [
    // Listed in the other order: matching goes by config, not by position.
    row('torch-cpu-1t', 'demo', [40, 100, 300, 1000], DEMO_F),
    row('torch-cpu-1t', 'tiny', [10, 45, 200, 350], TINY_F, {
      cpuMs: { forward: 8, sftStep: 40, droStep: 190, sample20: 300 },
    }),
  ],
): string {
  return JSON.stringify({ torch: '2.x', threads: 1, rows });
}

function find(rows: ComparisonRow[], backend: string, config: string, op: string): ComparisonRow {
  const r = rows.find((x) => x.backend === backend && x.config === config && x.op === op);
  assert.ok(r, `no comparison row ${backend} ${config} ${op}`);
  return r;
}

describe('compareReports', () => {
  const ours = parseBenchReport(oursText(), 'ours.json');
  const peer = parseBenchReport(peerText(), 'peer.json');
  const c = compareReports(ours, peer);

  test('matches rows by config and divides ours by peer', () => {
    assert.equal(find(c.rows, 'wasm', 'tiny', 'forward').ratio, 30 / 10);
    assert.equal(find(c.rows, 'wasm', 'tiny', 'sftStep').ratio, 90 / 45);
    assert.equal(find(c.rows, 'wasm', 'tiny', 'droStep').ratio, 400 / 200);
    assert.equal(find(c.rows, 'wasm', 'tiny', 'sample20').ratio, 700 / 350);
    assert.equal(find(c.rows, 'wasm', 'demo', 'forward').ratio, 80 / 40);
    assert.equal(find(c.rows, 'wasm', 'demo', 'droStep').ratio, 1200 / 300);
    assert.equal(find(c.rows, 'wasm', 'demo', 'sample20').peerBackend, 'torch-cpu-1t');
  });

  test('GFLOP/s divides each side by the same FLOP count of the operation', () => {
    const r = find(c.rows, 'wasm', 'demo', 'sftStep');
    // 3 forwards of 4e8 FLOPs: 1.2e9 FLOPs in 250 ms = 4.8 GFLOP/s; in 100 ms = 12 GFLOP/s.
    assert.ok(Math.abs(r.oursGflops! - 4.8) < 1e-12);
    assert.ok(Math.abs(r.peerGflops! - 12) < 1e-12);
    const s = find(c.rows, 'wasm', 'tiny', 'sample20');
    // 20 forwards of 1e8 in 350 ms.
    assert.ok(Math.abs(s.peerGflops! - 2e9 / 350 / 1e6) < 1e-12);
  });

  test('CPU-time ratios where both sides report CPU time, none where either lacks it', () => {
    const fwd = find(c.rows, 'wasm', 'tiny', 'forward');
    assert.equal(fwd.oursCpuMs, 24);
    assert.equal(fwd.peerCpuMs, 8);
    assert.equal(fwd.cpuRatio, 24 / 8);
    assert.equal(find(c.rows, 'wasm', 'tiny', 'sample20').cpuRatio, 600 / 300);
    assert.equal(find(c.rows, 'wasm', 'tiny', 'droStep').cpuRatio, null);
    // The demo rows carry no CPU times on either side.
    assert.equal(find(c.rows, 'wasm', 'demo', 'forward').cpuRatio, null);
  });

  test('a row the engine did not time has no ratio; the baseline keeps its own label', () => {
    const r = find(c.rows, 'cpu/autodiff', 'tiny', 'droStep');
    assert.equal(r.oursMs, null);
    assert.equal(r.ratio, null);
    assert.equal(r.oursGflops, null);
    assert.equal(r.peerMs, 200);
    assert.equal(find(c.rows, 'cpu/autodiff', 'tiny', 'sftStep').ratio, 9000 / 45);
  });

  test('one comparison row per (backend, config, operation)', () => {
    assert.equal(c.rows.length, 3 * 4);
    assert.deepEqual(c.unmatched, []);
  });

  test('configs without a peer row are listed, not invented', () => {
    const onlyTiny = parseBenchReport(peerText([row('torch', 'tiny', [10, 45, 200, 350], TINY_F)]), 'p.json');
    const d = compareReports(ours, onlyTiny);
    assert.deepEqual(d.unmatched, ['demo']);
    assert.ok(d.rows.every((r) => r.config === 'tiny'));
    assert.match(formatComparison(d), /no peer row for: demo/);
  });

  test('different work on the two sides is an error naming the config and the field', () => {
    const otherFlops = parseBenchReport(
      peerText([row('torch', 'tiny', [10, 45, 200, 350], 2 * TINY_F)]),
      'p.json',
    );
    assert.throws(
      () => compareReports(ours, otherFlops),
      (err: Error) => {
        assert.ok(err instanceof BenchCompareError);
        assert.match(err.message, /config 'tiny': flops\.forward .*ours\.json.*p\.json/);
        return true;
      },
    );
    const otherBatch = parseBenchReport(
      peerText([{ ...row('torch', 'tiny', [10, 45, 200, 350], TINY_F), batch: 4 }]),
      'p.json',
    );
    assert.throws(
      () => compareReports(ours, otherBatch),
      /config 'tiny': batch 2 in ours\.json but 4 in p\.json/,
    );
  });

  test('two peer rows for one config are ambiguous', () => {
    const dup = parseBenchReport(
      peerText([row('a', 'tiny', [1, 1, 1, 1], TINY_F), row('b', 'tiny', [2, 2, 2, 2], TINY_F)]),
      'p.json',
    );
    assert.throws(() => compareReports(ours, dup), /p\.json: 2 rows for config 'tiny'/);
  });
});

describe('formatComparison', () => {
  test('prints both sides, the ratio and GFLOP/s on one line per row', () => {
    const text = formatComparison(
      compareReports(parseBenchReport(oursText(), 'o'), parseBenchReport(peerText(), 'p')),
    );
    const lines = text.split('\n');
    assert.match(lines[0]!, /ours ms .* peer ms .* ours\/peer .* ours GFLOP\/s .* peer GFLOP\/s/);
    const demoFwd = lines.find((l) => /\| wasm +\| torch-cpu-1t \| demo +\| forward /.test(l));
    assert.ok(demoFwd, text);
    const cells = demoFwd.split('|').map((s) => s.trim());
    // ours 80 ms, peer 40 ms, 2x; 4e8 FLOPs: 5 and 10 GFLOP/s.
    assert.deepEqual(cells.slice(5, 10), ['80.0', '40.0', '2.00x', '5.00', '10.00']);
    const missing = lines.find((l) => /cpu\/autodiff .* droStep/.test(l))!;
    assert.deepEqual(
      missing
        .split('|')
        .map((s) => s.trim())
        .slice(5, 8),
      ['-', '200.0', '-'],
    );
  });
});

describe('parseBenchReport', () => {
  const bad = (text: string, pattern: RegExp) =>
    assert.throws(
      () => parseBenchReport(text, 'peer.json'),
      (err: Error) => {
        assert.ok(err instanceof BenchCompareError, String(err));
        assert.match(err.message, pattern);
        return true;
      },
    );

  test('rejects what is not a report, naming the file and the field', () => {
    bad('{not json', /^peer\.json: not valid JSON/);
    bad('[]', /^peer\.json: expected a JSON object/);
    bad('{}', /^peer\.json: field 'rows' must be a non-empty list/);
    bad(
      peerText([row('t', 'tiny', [10, 'fast' as never, 1, 1], TINY_F)]),
      /^peer\.json: rows\[0\]\.sftStepMs must be/,
    );
    bad(
      peerText([row('t', 'tiny', [10, 1, 1, 1], TINY_F), row('t', 'demo', [-1, 1, 1, 1], DEMO_F)]),
      /rows\[1\]\.forwardMs/,
    );
    bad(
      peerText([{ ...row('t', 'tiny', [1, 1, 1, 1], TINY_F), flops: undefined }]),
      /rows\[0\]\.flops must be an object/,
    );
    const noSample = row('t', 'tiny', [1, 1, 1, 1], TINY_F);
    delete (noSample.flops as Partial<typeof noSample.flops>).sample20;
    bad(peerText([noSample]), /rows\[0\]\.flops\.sample20 must be a positive number/);
    bad(
      peerText([{ ...row('t', 'tiny', [1, 1, 1, 1], TINY_F), config: '' }]),
      /rows\[0\]\.config must be a non-empty string/,
    );
    bad(
      peerText([row('t', 'tiny', [1, 1, 1, 1], TINY_F, { cpuMs: { forward: 'x' } })]),
      /rows\[0\]\.cpuMs\.forward must be a positive number/,
    );
    bad(
      peerText([{ ...row('t', 'tiny', [1, 1, 1, 1], TINY_F), batch: 2.5 }]),
      /rows\[0\]\.batch must be a positive integer/,
    );
  });

  test('null milliseconds (an untimed row) are kept as null', () => {
    const r = parseBenchReport(peerText([row('t', 'tiny', [5, null, null, 7], TINY_F)]), 'p');
    assert.deepEqual(r.rows[0]!.ms, { forward: 5, sftStep: null, droStep: null, sample20: 7 });
  });
});

describe('bench spec', () => {
  test('carries the engine configs unchanged, with the FLOP count of each timed operation', () => {
    const spec = benchSpec(() => 1);
    for (const name of ['tiny', 'demo'] as const) {
      const c = spec.configs[name]!;
      assert.deepEqual(c.unet, UNET_CONFIGS[name]);
      assert.equal(c.batch, BATCH[name]);
      const f = unetForwardFlops(UNET_CONFIGS[name], {
        batch: BATCH[name],
        height: UNET_CONFIGS[name].sample_size,
        width: UNET_CONFIGS[name].sample_size,
        contextLength: CONTEXT_LENGTH,
      });
      // forward; SFT = forward + backward (3x); DRO = phi forward + backward on 2B plus ref forward on 2B; 20 forwards.
      assert.deepEqual(c.flops, { forward: f, sftStep: 3 * f, droStep: 2 * 3 * f + 2 * f, sample20: 20 * f });
      assert.deepEqual(opFlops(UNET_CONFIGS[name], BATCH[name]), c.flops);
    }
    // Survives a JSON round trip unchanged: the Python side reads exactly these numbers.
    assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
  });
});
