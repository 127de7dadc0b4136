/**
 * What a reader of the run report looks at first: the DRO hinge's terms per update (one line per
 * term, a legend, axis labels and a caption), GenEval's per-tag counts with their Wilson intervals,
 * the tags the suite left out with why, which run computed each reused stage, and links to those
 * runs' reports.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { droTermPoints, linkedRuns } from '../../activities/report';
import type { RunReport } from '../../contracts/pipeline';
import { suiteExclusions, tagCounts, withTagCounts } from '../../engine/eval/report-detail';
import { excludedTags } from '../../engine/eval/suite';
import { escapeHtml, escapeMarkdown, safeRelativeHref } from '../../engine/report/escape';
import { renderReport, type ReportData } from '../../engine/report';
import { wilsonInterval } from '../../engine/stats';
import { generateSuite, TAGS, type PromptMetadata } from '../../engine/world/world';
import { LocalArtifactStore } from '../../storage';

const HOSTILE = `<img src=x onerror="alert(1)"> | *tag*`;
const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

/** Vertex count of each `<path d="...">` of an SVG, in order. */
const pathVertices = (svg: string): number[] =>
  [...svg.matchAll(/<path d="([^"]*)"/g)].map((m) => ((m[1] as string).match(/[ML]/g) ?? []).length);

function data(extra: Partial<ReportData> = {}): ReportData {
  return {
    runId: 'run-new',
    name: 'demo',
    config: { name: 'demo' },
    configHash: 'abc',
    stages: [
      { stage: 'base', wallSeconds: 0, cacheHit: true, fromRun: 'run-old' },
      { stage: 'sft', wallSeconds: 0, cacheHit: true, fromRun: 'run-older' },
      { stage: 'dro', wallSeconds: 51, cacheHit: false },
    ],
    artifacts: [],
    geneval: [],
    winRates: [],
    lossCurves: [],
    ...extra,
  };
}

describe('DRO terms per update', () => {
  const points = [8, 16, 24, 32, 40].map((step, i) => ({
    step,
    diff: 0.01 - i * 0.004,
    expertDiff: -0.002 * i,
    policyDiff: 0.001 * i,
    hingeOpen: 1 - i * 0.2,
  }));
  const files = renderReport(data({ droTerms: { margin: 0.001, points } }));

  test('one line per term with a point per update, the -margin line, a legend and axis labels', () => {
    const svg = text(files['dro-terms.svg']);
    assert.deepEqual(pathVertices(svg), [5, 5, 5, 2], 'diff, Le - Le0, Lp - Lp0, then -margin');
    for (const label of ['>diff<', '>Le - Le0<', '>Lp - Lp0<', '>-margin<', '>step<', '>error difference<'])
      assert.ok(svg.includes(label), `${label} in the plot`);
    const open = text(files['dro-hinge-open.svg']);
    assert.deepEqual(pathVertices(open), [5]);
    assert.ok(open.includes('>share of samples<') && open.includes('>1<') && open.includes('>0<'));
  });

  test('both reports show the plots and say what each term means', () => {
    const html = text(files['report.html']);
    const md = text(files['report.md']);
    assert.ok(html.includes('<h2>DRO terms</h2>'));
    assert.equal(html.match(/<path /g)?.length, 5, 'both plots inline');
    assert.ok(md.includes('](dro-terms.svg)') && md.includes('](dro-hinge-open.svg)'));
    for (const [doc, esc] of [
      [html, escapeHtml],
      [md, escapeMarkdown],
    ] as const) {
      for (const words of [
        'mean(max(0, diff + margin)) with margin 0.001',
        'Le - Le0: how much worse (above 0) or better (below 0)',
        "Lp - Lp0: the same on the policy's own samples",
        'diff = (Le - Le0) - (Lp - Lp0)',
        'The hinge-open plot is the share of samples still open.',
      ])
        assert.ok(doc.includes(esc(words)), words);
    }
  });

  test('a summary without the hinge-open share still plots the other terms', () => {
    const old = points.map((p) => ({ step: p.step, diff: p.diff, expertDiff: p.expertDiff }));
    const f = renderReport(data({ droTerms: { points: old } }));
    assert.deepEqual(pathVertices(text(f['dro-terms.svg'])), [5, 5]);
    assert.equal(f['dro-hinge-open.svg'], undefined);
    assert.equal(renderReport(data({ droTerms: { points: [] } }))['dro-terms.svg'], undefined);
  });

  test("the terms are read from the DRO summary's history rows", () => {
    const history = [
      { step: 4, loss: 0.1, diff: 0.2, expertDiff: -0.1, policyDiff: 0.3, hingeOpen: 0.75, lr: 1e-4 },
      { step: 8, loss: 0.1, diff: 0.1 },
      { loss: 0.2, diff: 0.3 },
    ];
    assert.deepEqual(droTermPoints(history), [
      { step: 4, diff: 0.2, expertDiff: -0.1, policyDiff: 0.3, hingeOpen: 0.75 },
      { step: 8, diff: 0.1 },
    ]);
  });
});

describe('GenEval per tag: n and 95% intervals', () => {
  const summary = {
    perTag: {
      counting: { correct: 33, total: 40, accuracy: 0.825, ci95: wilsonInterval(33, 40) },
      position: { correct: 0, total: 8, accuracy: 0 },
    },
  };
  const rows = withTagCounts(
    [
      { method: 'base', perTag: { counting: 0.5, position: 0 }, overall: 0.25, meanScore: 0.4 },
      { method: 'dro', perTag: { counting: 0.825, position: 0 }, overall: 0.41, meanScore: 0.5 },
    ],
    {
      dro: summary,
      base: { perTag: { counting: { correct: 20, total: 40 }, position: { correct: 0, total: 8 } } },
    },
  );

  test("each row shows the method's correct / n, accuracy and Wilson interval", () => {
    const [lo, hi] = wilsonInterval(33, 40);
    assert.deepEqual(tagCounts(summary).counting, { correct: 33, total: 40, ci95: [lo, hi] });
    // Without a stored interval the Wilson interval is computed: 0 of 8 still has an upper bound.
    assert.deepEqual(tagCounts(summary).position?.ci95, wilsonInterval(0, 8));
    const f = renderReport(data({ geneval: rows }));
    const ci = (a: number, b: number): string => `[${a.toFixed(2)}, ${b.toFixed(2)}]`;
    const counting = ['0.50 ' + ci(...wilsonInterval(20, 40)) + ' (20/40)', `0.82 ${ci(lo, hi)} (33/40)`];
    const position = `0.00 ${ci(...wilsonInterval(0, 8))} (0/8)`;
    const html = text(f['report.html']);
    assert.ok(html.includes('GenEval per tag: accuracy, 95% interval and images judged'), 'title');
    assert.ok(html.includes('<th>Tag</th><th class="num">base</th><th class="num">dro</th>'), 'methods');
    assert.ok(
      html.includes(
        `<td>Counting</td><td class="num">${counting[0]}</td><td class="num">${counting[1]}</td>`,
      ),
      'counting: accuracy, interval and n of each method',
    );
    assert.ok(html.includes(`<td>Position</td><td class="num">${position}</td>`), 'an interval at 0 of 8');
    const md = text(f['report.md']);
    assert.ok(md.includes(`| Counting | ${counting.map(escapeMarkdown).join(' | ')} |`), md);
    assert.ok(md.includes(`| Position | ${escapeMarkdown(position)} | ${escapeMarkdown(position)} |`));
  });
});

describe('excluded tags with their reason', () => {
  const all = generateSuite({ seed: 'eval-seed', perTag: 10 });
  const count = (tag: string): number => all.filter((p) => p.tag === tag).length;
  const perTag = (f: (tag: string) => number): Record<string, number> =>
    Object.fromEntries(TAGS.map((t) => [t, f(t)]));

  test('the suite says why each tag without GenEval prompts has none', () => {
    const singles = count('single_object');
    const kept: PromptMetadata[] = all.filter((p) => p.tag !== 'single_object' && p.tag !== 'colors');
    const suite = {
      prompts: kept,
      drawnPerTag: { ...perTag(count), colors: 0 } as Record<(typeof TAGS)[number], number>,
      excludedPerTag: perTag((t) => (t === 'single_object' ? singles : 0)) as Record<
        (typeof TAGS)[number],
        number
      >,
    };
    assert.deepEqual(excludedTags(suite, kept.length, 'the suite file'), [
      { tag: 'single_object', reason: `all ${singles} of its prompts occur in the training data` },
      { tag: 'colors', reason: 'no prompt of this tag in the suite file' },
    ]);
    const firstTwo = excludedTags(suite, 2, 'the suite file').find((e) => e.tag === 'position');
    assert.equal(firstTwo?.reason, "eval.genevalPrompts (2) was reached before this tag's turn");
  });

  test('the report shows each excluded tag with its reason, escaped', () => {
    const genevalSuite = suiteExclusions({
      source: HOSTILE,
      drawn: 40,
      excludedPerTag: { single_object: 5, counting: 1 },
      missingTags: ['single_object'],
      excludedTags: [
        { tag: 'single_object', reason: 'all 5 of its prompts occur in the training data' },
        { tag: 'position', reason: HOSTILE },
      ],
    });
    const geneval = [{ method: 'dro', perTag: { counting: 0.5 }, overall: 0.5, meanScore: 0.5 }];
    const f = renderReport(data({ geneval, genevalSuite }));
    const html = text(f['report.html']);
    const md = text(f['report.md']);
    for (const doc of [html, md]) {
      assert.ok(doc.includes('GenEval: excluded prompts and tags'));
      assert.ok(doc.includes('yes: all 5 of its prompts occur in the training data'), 'single object');
      assert.ok(doc.includes('(6 of 40 distinct prompts)'), 'the removal count');
      assert.ok(!doc.includes('<img src=x'), 'hostile text escaped');
      assert.ok(doc.includes('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'));
    }
    assert.match(html, /<td>Counting<\/td><td class="num">1<\/td><td>no<\/td>/);
    assert.match(html, /<td>Position<\/td><td class="num">0<\/td><td>yes: &lt;img/);
  });

  test('an evaluation recorded before the reasons gets them from its counts', () => {
    const old = suiteExclusions({
      source: 'built-in',
      drawn: 30,
      excludedPerTag: { single_object: 5 },
      missingTags: ['single_object', 'position'],
    });
    assert.deepEqual(old.excludedTags, [
      {
        tag: 'single_object',
        reason: 'its 5 drawn prompts that occur in the training data were removed',
      },
      { tag: 'position', reason: 'no GenEval prompt of this tag was selected' },
    ]);
  });
});

describe('reused stages and the runs they come from', () => {
  const linkedRunsData = data({
    linkedRuns: [
      {
        runId: 'run-old',
        relation: 'computed base (reused here)',
        report: '../../../run-old/executions/20260101T000000-aa/report.html',
      },
      { runId: 'run-older', relation: 'computed sft (reused here)' },
    ],
  });
  const files = renderReport(linkedRunsData);
  const html = text(files['report.html']);
  const md = text(files['report.md']);

  test('the stage table names the run that computed each reused stage, linked to its report', () => {
    const href = '../../../run-old/executions/20260101T000000-aa/report.html';
    assert.match(html, new RegExp(`<td>base</td>.*<td>yes</td><td><a href="${href}">run-old</a></td>`));
    assert.match(html, /<td>sft<\/td>.*<td>yes<\/td><td>run-older<\/td>/, 'no report: the id as text');
    assert.match(html, /<td>dro<\/td>.*<td>no<\/td><td>this run<\/td>/);
    assert.ok(md.includes(`| base | 0.0 s | yes | [run\\-old](${href}) |`), md);
    assert.ok(md.includes('| sft | 0.0 s | yes | run\\-older |'));
  });

  test("the runs table lists this run and each source run, with a link to the source's report", () => {
    assert.match(html, /<td>run-new<\/td><td>this run<\/td><td>this report<\/td>/);
    assert.match(
      html,
      /<td>run-old<\/td><td>computed base \(reused here\)<\/td><td><a href="[^"]+">report\.html<\/a><\/td>/,
    );
    assert.match(
      html,
      /<td>run-older<\/td><td>computed sft \(reused here\)<\/td><td>no report in this store/,
    );
    assert.ok(md.includes('| run\\-new | this run | this report |'));
  });

  test('the header names the runs that computed the reused stages, linked where there is a report', () => {
    const href = '../../../run-old/executions/20260101T000000-aa/report.html';
    assert.ok(
      html.includes(
        `<p class="meta">Reused stages computed by <a href="${href}"><code>run-old</code></a>, <code>run-older</code> (see Stages)</p>`,
      ),
    );
    assert.ok(md.includes(`- Reused stages computed by: [run\\-old](${href}), run\\-older`), md);
    const own = text(renderReport(data({ stages: [] }))['report.html']);
    assert.ok(!own.includes('Reused stages computed by'), 'nothing reused, no line');
  });

  test('only plain relative paths become links', () => {
    for (const bad of [
      'javascript:alert(1)',
      'https://example.com/report.html',
      '//example.com/report.html',
      '/etc/report.html',
      '../a/../../b/report.html',
      '../run"x/report.html',
      '../run/report.md',
    ])
      assert.equal(safeRelativeHref(bad), undefined, bad);
    const hostile = renderReport(
      data({ linkedRuns: [{ runId: 'run-old', relation: 'r', report: 'javascript:alert(1)//x.html' }] }),
    );
    for (const doc of [text(hostile['report.html']), text(hostile['report.md'])]) {
      assert.ok(!doc.includes('javascript:'), 'no script link');
    }
  });
});

describe('linkedRuns: the source runs of reused stages and their newest report', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'report-links-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const store = new LocalArtifactStore({ root: tmp });

  test('links the newest execution with a report; a run without one is listed unlinked', async () => {
    const put = (key: string): Promise<unknown> =>
      store.put(key, new TextEncoder().encode('<!doctype html>'), { kind: 'run-report-view', producer: 't' });
    await put('runs/run-old/executions/20260101T000000-aaaaaaaa/report.html');
    await put('runs/run-old/executions/20260102T000000-bbbbbbbb/report.html');
    await put('runs/run-old/executions/20260103T000000-cccccccc/manifest.json');
    const stage = (name: string, fromRun?: string): RunReport['stages'][number] =>
      ({
        stage: name,
        status: 'done',
        cache: { key: 'k', hit: fromRun !== undefined, ...(fromRun ? { fromRun } : {}) },
      }) as RunReport['stages'][number];
    const report = {
      runId: 'run-new',
      stages: [
        stage('base', 'run-old'),
        stage('pretrain', 'run-old'),
        stage('sft', 'run-gone'),
        stage('reward', 'run-new'),
        stage('dro'),
      ],
    } as RunReport;
    assert.deepEqual(await linkedRuns(store, report), [
      {
        runId: 'run-old',
        relation: 'computed base, pretrain (reused here)',
        report: '../../../run-old/executions/20260102T000000-bbbbbbbb/report.html',
      },
      { runId: 'run-gone', relation: 'computed sft (reused here)' },
    ]);
  });
});
