/**
 * The run report: significance marks at their thresholds, escaping of hostile prompt text in
 * Markdown and HTML, an HTML page with no network reference, one SVG path per loss curve, and
 * nearest-neighbour grids that keep every source pixel exactly.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeImage, encodePng } from '../../engine/data/image-codec';
import type { RgbImage } from '../../engine/data/image';
import { Rng } from '../../engine/rng';
import type { ReportData } from '../../engine/report';
import { markdownTable } from '../../engine/report/markdown';
import {
  composeGrid,
  escapeMarkdown,
  formatRunTables,
  genevalRow,
  genevalTable,
  renderLinePlot,
  renderReport,
  significanceMark,
  upscaleNearest,
  winRateTable,
} from '../../engine/report';

const HOSTILE = `<script>alert("x")</script> a 'red' circle | *left* of [a](b) & more`;

function noiseImage(width: number, height: number, seed: number): RgbImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { width, height, data };
}

function fixture(): ReportData {
  const prompts = ['a red circle', HOSTILE, 'two blue squares'];
  const methods = ['base', 'sft', 'dro'];
  return {
    runId: 'run-2024-05-01-a1b2',
    name: 'demo',
    createdAt: '2024-05-01T12:00:00Z',
    config: { name: 'demo', train: { lr: 1e-4, steps: 64 }, world: { resolution: 16 } },
    configHash: '9f2c4e1d7a5b3c8e',
    baseline: 'base',
    stages: [
      { stage: 'base', wallSeconds: 1.2, cacheHit: false },
      { stage: 'pretrain', wallSeconds: 224, cacheHit: false },
      { stage: 'sft', wallSeconds: 18.4, cacheHit: true },
      { stage: 'dro', wallSeconds: 51, cacheHit: false },
    ],
    artifacts: [
      {
        role: 'sft/model',
        uri: 'file:///tmp/.dro/artifacts/runs/r1/sft/model.safetensors',
        sha256: 'a'.repeat(64),
      },
      {
        role: 'dro/model',
        uri: 's3://bucket/dro/runs/r1/dro/model.safetensors',
        sha256: '0123456789abcdef'.repeat(4),
      },
    ],
    reward: { name: 'preference-mlp', accuracy: 0.65, heldOutPairs: 26, ci95: [0.46, 0.8] },
    geneval: [
      {
        method: 'base',
        perTag: {
          single_object: 0.81,
          two_object: 0.4,
          counting: 0.3,
          colors: 0.55,
          position: 0.1,
          color_attr: 0.05,
        },
        overall: 0.368,
        meanScore: 0.512,
      },
      {
        method: 'sft',
        perTag: {
          single_object: 0.85,
          two_object: 0.46,
          counting: 0.33,
          colors: 0.6,
          position: 0.12,
          color_attr: 0.08,
        },
        overall: 0.407,
        meanScore: 0.55,
        pValueVsBaseline: 0.03,
      },
      {
        method: 'dro',
        perTag: {
          single_object: 0.9,
          two_object: 0.52,
          counting: 0.38,
          colors: 0.66,
          position: 0.15,
          color_attr: 0.11,
        },
        overall: 0.453,
        meanScore: 0.601,
        pValueVsBaseline: 0.004,
      },
    ],
    winRates: [
      {
        a: 'dro',
        b: 'base',
        reward: 'preference',
        winRate: 0.71,
        meanA: 0.62,
        meanB: 0.48,
        pValue: 0.0002,
        ci95: [0.08, 0.2],
      },
      {
        a: 'dro',
        b: 'base',
        reward: 'detector',
        winRate: 0.58,
        meanA: 0.55,
        meanB: 0.51,
        pValue: 0.2,
        ci95: [-0.02, 0.1],
      },
      {
        a: 'sft',
        b: 'base',
        reward: 'preference',
        winRate: 0.6,
        meanA: 0.55,
        meanB: 0.48,
        pValue: 0.02,
        ci95: [0.01, 0.13],
      },
    ],
    lossCurves: [
      {
        stage: 'pretrain',
        points: [0, 100, 200, 300, 400].map((s, i) => ({ step: s, loss: 0.3 / (i + 1) })),
      },
      { stage: 'sft', points: [4, 8, 12, 16].map((s) => ({ step: s, loss: 0.05 - s * 1e-3 })) },
      { stage: 'dro', points: [4, 8, 12, 16].map((s) => ({ step: s, loss: 4e-3 - s * 1e-4 })) },
    ],
    samples: {
      prompts,
      seeds: [11, 12, 13],
      methods: methods.map((method, m) => ({
        method,
        images: prompts.map((_, i) => encodePng(noiseImage(16, 16, 100 * m + i))),
      })),
    },
    humanStudy: {
      studyId: 'study-abc',
      participants: 9,
      dropped: 1,
      rows: [{ a: 'dro', b: 'sft', winsA: 70, total: 108, winRate: 70 / 108, ci95: [0.555, 0.731] }],
    },
  };
}

const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

describe('significance marks', () => {
  test('thresholds are strict: * below 0.05, ** below 0.01, *** below 0.001', () => {
    assert.equal(significanceMark(0.2), '');
    assert.equal(significanceMark(0.05), '');
    assert.equal(significanceMark(0.0499), '*');
    assert.equal(significanceMark(0.01), '*');
    assert.equal(significanceMark(0.0099), '**');
    assert.equal(significanceMark(0.001), '**');
    assert.equal(significanceMark(0.00099), '***');
    assert.equal(significanceMark(0), '***');
    assert.equal(significanceMark(undefined), '');
    assert.equal(significanceMark(Number.NaN), '');
    assert.equal(significanceMark(null), '');
  });

  test('the GenEval table marks the overall score; methods are rows, tags columns', () => {
    const t = genevalTable(fixture().geneval);
    assert.deepEqual(t.header, [
      'Method',
      'Single obj.',
      'Two obj.',
      'Counting',
      'Colors',
      'Position',
      'Color attr.',
      'Overall',
      'Mean score',
    ]);
    assert.deepEqual(
      t.rows.map((r) => [r[0], r[7]]),
      [
        ['base', '0.37'],
        ['sft', '0.41*'],
        ['dro', '0.45**'],
      ],
    );
  });

  test('a GenEval row keeps the tag accuracies of a scored summary', () => {
    const summary = {
      perTag: { counting: { accuracy: 0.25, correct: 1, total: 4 }, colors: undefined },
      overall: 0.25,
      meanScore: 0.4,
      imageAccuracy: 0.3,
    };
    const row = genevalRow('dro', summary, 0.02);
    assert.deepEqual(row, {
      method: 'dro',
      perTag: { counting: 0.25 },
      overall: 0.25,
      meanScore: 0.4,
      pValueVsBaseline: 0.02,
    });
  });

  test('the win-rate table has one column per reward and marks each cell by its p value', () => {
    const t = winRateTable(fixture().winRates);
    assert.deepEqual(t.header, ['Method', 'preference', 'detector']);
    assert.deepEqual(t.rows, [
      ['dro vs base', '71.0%***', '58.0%'],
      ['sft vs base', '60.0%*', '-'],
    ]);
  });

  test('the terminal tables are aligned columns', () => {
    const out = formatRunTables(fixture());
    const lines = out.split('\n');
    const header = lines.find((l) => l.startsWith('Method') && l.includes('Overall')) as string;
    const dro = lines.find((l) => l.startsWith('dro ') && l.includes('0.45**')) as string;
    assert.ok(header && dro, out);
    // Right-aligned numbers: the "Overall" column ends at the same character in both lines.
    const end = header.indexOf('Overall') + 'Overall'.length;
    assert.equal(dro.slice(0, end).trimEnd().endsWith('0.45**'), true, out);
    assert.match(out, /dro vs base +71\.0%\*\*\* +58\.0%/);
  });
});

describe('report files', () => {
  const files = renderReport(fixture());
  const md = text(files['report.md']);
  const html = text(files['report.html']);

  test('writes report.md, report.html, one grid per method and one plot per stage', () => {
    assert.deepEqual(Object.keys(files).sort(), [
      'grid-base.png',
      'grid-dro.png',
      'grid-sft.png',
      'loss-dro.svg',
      'loss-pretrain.svg',
      'loss-sft.svg',
      'report.html',
      'report.md',
    ]);
    for (const f of ['grid-dro.png', 'loss-sft.svg'])
      assert.ok(md.includes(`](${f})`), `report.md shows ${f}`);
  });

  test('a hostile prompt is escaped in Markdown', () => {
    assert.ok(!md.includes('<script'), 'no raw <script in report.md');
    assert.ok(md.includes('&lt;script&gt;'));
    assert.ok(md.includes('&quot;x&quot;') && md.includes('&#39;red&#39;'));
    assert.ok(md.includes('\\|') && md.includes('\\*left\\*') && md.includes('\\[a\\]'));
    assert.equal(escapeMarkdown('line one\nline two'), 'line one line two');
    // A "|" in a cell does not add a column: the row keeps its three cell separators plus edges.
    const table = markdownTable({ title: 't', header: ['Method', 'x'], rows: [[HOSTILE, '1']] });
    const row = table.split('\n').find((l) => l.includes('alert')) as string;
    assert.equal(row.replace(/\\\|/g, '').split('|').length, 4, row);
  });

  test('a hostile prompt is escaped in HTML, in text and in attributes', () => {
    assert.ok(!/<script/i.test(html), 'report.html has no script element');
    assert.ok(!html.includes(HOSTILE));
    assert.ok(
      html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; a &#39;red&#39; circle | *left*'),
    );
    const titles = [...html.matchAll(/ title="([^"]*)"/g)].map((m) => m[1] as string);
    assert.ok(
      titles.some((t) => t.startsWith('&lt;script&gt;')),
      'img title attributes carry the escaped prompt',
    );
  });

  test('the HTML page references nothing outside itself', () => {
    assert.doesNotMatch(html, /(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    assert.doesNotMatch(html, /https?:\/\//i);
    assert.doesNotMatch(html, /url\(/i);
    const srcs = [...html.matchAll(/\ssrc="([^"]*)"/g)].map((m) => m[1] as string);
    assert.equal(srcs.length, 9, 'one inline image per method and prompt');
    for (const s of srcs) assert.ok(s.startsWith('data:image/png;base64,'));
    assert.match(
      html,
      /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; img-src data:/,
    );
  });

  test('the report carries the config hash, every artifact with its SHA-256, stage times and reward accuracy', () => {
    for (const doc of [md, html]) {
      assert.ok(doc.includes('9f2c4e1d7a5b3c8e'));
      assert.ok(doc.includes('a'.repeat(64)) && doc.includes('0123456789abcdef'.repeat(4)));
      assert.ok(doc.includes('3 min 44 s'), 'pretrain wall time');
      assert.ok(doc.includes('65.0%'), 'reward accuracy');
    }
    assert.ok(html.includes('s3://bucket/dro/runs/r1/dro/model.safetensors'));
    assert.ok(html.includes('Wilson 95% CI') && html.includes('64.8%'), 'human study row');
  });

  test('the samples are the source pixels enlarged, at least 96 px', () => {
    const srcs = [...html.matchAll(/\ssrc="data:image\/png;base64,([^"]*)"/g)].map((m) => m[1] as string);
    const first = decodeImage(Buffer.from(srcs[0] as string, 'base64'));
    const source = noiseImage(16, 16, 0);
    assert.equal(first.width, 96);
    assert.deepEqual(first, upscaleNearest(source, 6));
  });
});

describe("the protocol's win rates, the per-reward-median extra and the users' utility", () => {
  const protocol = fixture().winRates.map((r) => ({ ...r, medianBy: 'preference' }));
  const perReward = fixture().winRates.map((r) => ({ ...r, medianBy: r.reward, winRate: 0.5 }));
  const data: ReportData = {
    ...fixture(),
    winRates: protocol,
    preferenceReward: 'preference',
    perRewardMedianWinRates: perReward,
    utility: {
      models: [
        { method: 'base', mean: 0.512, ci95: [0.48, 0.55], images: 48, prompts: 12 },
        { method: 'dro', mean: 0.634, ci95: [0.6, 0.67], images: 48, prompts: 12 },
      ],
      comparisons: [
        {
          a: 'dro',
          b: 'base',
          winRate: 0.75,
          wins: 8,
          ties: 2,
          losses: 2,
          meanA: 0.634,
          meanB: 0.512,
          pValue: 0.004,
          ci95: [0.05, 0.19],
          prompts: 12,
        },
      ],
    },
  };
  const files = renderReport(data);
  const md = text(files['report.md']);
  const html = text(files['report.html']);

  test('the report labels the protocol table and the per-reward-median extra apart', () => {
    for (const doc of [md, html]) {
      assert.ok(
        doc.includes('Win rate (median image by preference, the same image under every reward)'),
        'protocol',
      );
      assert.ok(doc.includes('median image chosen separately under each reward (extra table)'), 'extra');
    }
  });

  test("the users' utility: mean with interval per model, head to head with W / T / L, p and interval", () => {
    for (const doc of [md, html]) {
      assert.ok(doc.includes('Users&#39;') || doc.includes("Users'"), "users' utility title");
      assert.ok(doc.includes('0.634') && doc.includes('0.600, 0.670'), 'dro mean and interval');
      assert.ok(doc.includes('75.0%') && doc.includes('8 / 2 / 2') && doc.includes('0.050, 0.190'));
    }
    const out = formatRunTables(data);
    assert.match(out, /Users' utility/);
    assert.match(out, /dro vs base +75\.0%\*\* +8 \/ 2 \/ 2 +0\.634 +0\.512 +0\.004 +\[0\.050, 0\.190\]/);
    assert.doesNotMatch(out, /extra table/, 'the terminal shows the protocol only');
  });

  test('where the utility does not apply, the report and the terminal say why', () => {
    const skipped: ReportData = {
      ...data,
      utility: { skipped: 'a latent model draws other images', models: [], comparisons: [] },
    };
    const out = formatRunTables(skipped);
    assert.match(out, /Users' utility: not computed \(a latent model draws other images\)\./);
    const f = renderReport(skipped);
    assert.ok(text(f['report.md']).includes('not computed (a latent model draws other images)'));
    assert.ok(text(f['report.html']).includes('not computed (a latent model draws other images)'));
  });
});

describe('SVG plot', () => {
  test('one path per series, one vertex per finite point', () => {
    const series = [
      { label: 'a', points: [0, 1, 2, 3].map((x) => ({ x, y: x * x })) },
      { label: 'b', points: [0, 1, 2].map((x) => ({ x, y: 1 - x })) },
      {
        label: 'c',
        points: [
          { x: 0, y: 1 },
          { x: 1, y: Number.NaN },
          { x: 2, y: 2 },
        ],
      },
    ];
    const svg = renderLinePlot(series, { title: 'loss <&>', xLabel: 'step', yLabel: 'loss' });
    const paths = [...svg.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1] as string);
    assert.equal(paths.length, 3);
    assert.deepEqual(
      paths.map((d) => (d.match(/[ML]/g) ?? []).length),
      [4, 3, 2],
    );
    assert.ok(svg.includes('loss &lt;&amp;&gt;'));
    assert.ok(!svg.includes('NaN'));
  });

  test('each report plot file holds exactly its stage curve', () => {
    const files = renderReport(fixture());
    for (const stage of ['pretrain', 'sft', 'dro']) {
      const svg = text(files[`loss-${stage}.svg`]);
      assert.equal(svg.match(/<path /g)?.length, 1, stage);
      assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    }
    const html = text(renderReport(fixture())['report.html']);
    assert.equal(html.match(/<path /g)?.length, 3, 'three curves inline');
  });
});

describe('image grid', () => {
  test('pixel (x, y) of a cell is source pixel (x / scale, y / scale); gaps are background', () => {
    const images = [0, 1, 2].map((i) => noiseImage(5, 4, i));
    const scale = 3;
    const gap = 2;
    const columns = 2;
    const { image } = composeGrid(images, { scale, gap, columns, background: [1, 2, 3] });
    assert.equal(image.width, gap + columns * (5 * scale + gap));
    assert.equal(image.height, gap + 2 * (4 * scale + gap));
    const px = (im: RgbImage, x: number, y: number): number[] => [
      ...im.data.subarray((y * im.width + x) * 3, (y * im.width + x) * 3 + 3),
    ];
    images.forEach((src, i) => {
      const ox = gap + (i % columns) * (5 * scale + gap);
      const oy = gap + Math.floor(i / columns) * (4 * scale + gap);
      for (let y = 0; y < 4 * scale; y++) {
        for (let x = 0; x < 5 * scale; x++) {
          assert.deepEqual(px(image, ox + x, oy + y), px(src, Math.floor(x / scale), Math.floor(y / scale)));
        }
      }
    });
    assert.deepEqual(px(image, 0, 0), [1, 2, 3]);
    assert.deepEqual(px(image, gap + 5 * scale, gap), [1, 2, 3], 'gap between columns');
    // The empty fourth cell is background too.
    assert.deepEqual(px(image, image.width - gap - 1, image.height - gap - 1), [1, 2, 3]);
  });

  test('the report grid PNG of a method is its samples in prompt order', () => {
    const data = fixture();
    const grid = decodeImage(renderReport(data)['grid-sft.png'] as Uint8Array);
    const scale = 6;
    const sources = [0, 1, 2].map((i) => noiseImage(16, 16, 100 + i));
    assert.equal(grid.width, scale + 3 * (16 * scale + scale));
    sources.forEach((src, i) => {
      const ox = scale + i * (16 * scale + scale);
      for (const [x, y] of [
        [0, 0],
        [95, 95],
        [37, 61],
      ] as const) {
        const g = (scale + y) * grid.width + ox + x;
        const s = (Math.floor(y / scale) * 16 + Math.floor(x / scale)) * 3;
        assert.deepEqual([...grid.data.subarray(g * 3, g * 3 + 3)], [...src.data.subarray(s, s + 3)]);
      }
    });
  });

  test('bad input names the field', () => {
    const data = fixture();
    (data.samples as NonNullable<ReportData['samples']>).methods[1]?.images.pop();
    assert.throws(() => renderReport(data), /samples\.methods\[1\] \(sft\): 2 images for 3 prompts/);
    const bad = fixture();
    (bad.artifacts[0] as { sha256: string }).sha256 = 'xyz';
    assert.throws(() => renderReport(bad), /artifacts\[0\]\.sha256 \(sft\/model\)/);
  });
});
