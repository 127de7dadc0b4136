/**
 * The blinded study in a real browser: headless Chromium (Debian's `chromium` package, never a
 * downloaded one) opens an exported study from a file:// URL, one participant answers every pair
 * with mouse and keyboard, a second one fails an attention check on purpose, both download their
 * answers, and the import reproduces exactly the answers given and drops the second participant.
 * The report page is opened the same way and must load with no network request.
 *
 * Screenshots of the study (start, pair 3, finish) and of the report are written to
 * test-artifacts/browser/ at the repository root (override with DRO_TEST_ARTIFACTS).
 * The test skips, saying why, only when no chromium binary is on the PATH.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { encodePng } from '../../engine/data/image-codec';
import { toUint8 } from '../../engine/data/image';
import { Rng } from '../../engine/rng';
import { renderScene, sceneForMetadata } from '../../engine/world/render';
import { generatePrompt, TAGS } from '../../engine/world/world';
import type { ReportData, SampleGrid } from '../../engine/report';
import { renderReport } from '../../engine/report';
import type { StudyImport, StudyKey, StudyManifest } from '../../engine/study';
import { attentionChecks, exportStudy, importStudyResults, selectComparisons } from '../../engine/study';

const ROOT = path.resolve(__dirname, '..', '..');
const ARTIFACTS = process.env.DRO_TEST_ARTIFACTS ?? path.join(ROOT, 'test-artifacts', 'browser');
const HOSTILE = `<script>alert("pwned")</script> a red circle & 'quotes'`;

function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch {
      // not on the PATH under this name
    }
  }
  return undefined;
}

/** Built-in-world samples: a clean render for "dro", lighter and heavier noise for the others. */
function worldSamples(): SampleGrid {
  const rng = new Rng('study-browser');
  const metas = TAGS.map((tag) => generatePrompt(rng.fork(tag), tag));
  const clean = metas.map((m, i) =>
    toUint8(renderScene(sceneForMetadata(m, rng.fork(`scene-${i}`)), { resolution: 16 })),
  );
  const noisy = (amount: number, label: string) =>
    clean.map((im, i) => {
      const r = new Rng(`${label}-${i}`);
      const data = im.data.map((v) => Math.max(0, Math.min(255, Math.round(v + amount * r.normal()))));
      return encodePng({ ...im, data });
    });
  const prompts = metas.map((m) => m.prompt);
  prompts[0] = HOSTILE;
  return {
    prompts,
    seeds: prompts.map((_, i) => 1000 + i),
    methods: [
      { method: 'dro', images: clean.map(encodePng) },
      { method: 'sft', images: noisy(25, 'sft') },
      { method: 'base', images: noisy(60, 'base') },
    ],
  };
}

/**
 * The few DOM members the page-side callbacks use: the project compiles without DOM typings.
 * (Callbacks, not strings: the study's CSP forbids the eval that string predicates need.)
 */
interface PageImage {
  complete: boolean;
  naturalWidth: number;
}
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): Iterable<PageImage>;
  images: Iterable<PageImage>;
};

interface GivenAnswer {
  participantId: string;
  pairId: string;
  choice: string;
}

const chromiumPath = findChromium();

describe(
  'blinded study in headless Chromium',
  { skip: chromiumPath ? false : 'no chromium binary on the PATH (apt-get install chromium)' },
  () => {
    let browser: Browser;
    let dir: string;
    let manifest: StudyManifest;
    let key: StudyKey;
    let keyBytes: Uint8Array;
    const samples = worldSamples();
    const given: GivenAnswer[] = [];
    const downloads: string[] = [];
    const pageProblems: string[] = [];

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-study-'));
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const comparisons = selectComparisons(samples, { seed: 3, pairs: 10 });
      const checks = attentionChecks(
        samples.prompts
          .slice(1, 3)
          .map((prompt, i) => ({ prompt, image: samples.methods[0]?.images[i + 1] as Uint8Array })),
        { seed: 3 },
      );
      const study = exportStudy({ runId: 'run-browser', comparisons, attentionChecks: checks, seed: 3 });
      for (const [name, bytes] of Object.entries(study.files)) {
        fs.mkdirSync(path.dirname(path.join(dir, 'study', name)), { recursive: true });
        fs.writeFileSync(path.join(dir, 'study', name), bytes);
      }
      keyBytes = study.key;
      fs.writeFileSync(path.join(dir, 'study-key.json'), keyBytes);
      manifest = JSON.parse(fs.readFileSync(path.join(dir, 'study', 'study.json'), 'utf8')) as StudyManifest;
      key = JSON.parse(Buffer.from(keyBytes).toString('utf8')) as StudyKey;
      browser = await chromium.launch({
        executablePath: chromiumPath as string,
        args: ['--no-sandbox', '--disable-gpu'],
      });
    });

    after(async () => {
      await browser?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    async function openPage(url: string): Promise<Page> {
      const context = await browser.newContext({
        acceptDownloads: true,
        viewport: { width: 1100, height: 860 },
      });
      const page = await context.newPage();
      page.on('dialog', (d) => {
        pageProblems.push(`dialog: ${d.message()}`);
        void d.dismiss();
      });
      page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') pageProblems.push(`console: ${msg.text()}`);
      });
      page.on('request', (req) => {
        if (!/^(file|data|blob):/.test(req.url())) pageProblems.push(`network request: ${req.url()}`);
      });
      await page.goto(url);
      return page;
    }

    /** Answers every pair: picks `favourite` on comparisons, the right image on checks except the `failCheck`-th. */
    async function participate(
      participantId: string,
      favourite: string,
      failCheck: number | undefined,
      shots: boolean,
    ): Promise<string[]> {
      const page = await openPage(pathToFileURL(path.join(dir, 'study', 'index.html')).href);
      await page.waitForSelector('#participant', { state: 'visible' });
      if (shots) await page.screenshot({ path: path.join(ARTIFACTS, 'study-start.png') });
      await page.fill('#participant', participantId);
      await page.keyboard.press('Enter');
      const n = manifest.pairs.length;
      const seenOrder: string[] = [];
      let checksSeen = 0;
      for (let i = 1; i <= n; i++) {
        await page.waitForFunction(
          (text) => document.getElementById('progress')?.textContent === text,
          `Pair ${i} of ${n}`,
        );
        const left = (await page.getAttribute('#image-left', 'src')) as string;
        const right = (await page.getAttribute('#image-right', 'src')) as string;
        await page.waitForFunction(() =>
          [...document.querySelectorAll('.choice img')].every((im) => im.complete && im.naturalWidth > 0),
        );
        const pair = manifest.pairs.find((p) => p.images.includes(left));
        assert.ok(pair, `left image ${left} belongs to a pair`);
        assert.deepEqual([left, right].sort(), [...pair.images].sort());
        assert.equal(await page.textContent('#prompt'), pair.prompt, 'the prompt shows as text, exactly');
        seenOrder.push(pair.id);
        const k = key.pairs[pair.id] as StudyKey['pairs'][string];
        let wanted: string;
        if (k.kind === 'attention') {
          const fail = checksSeen++ === failCheck;
          wanted = pair.images[fail ? 1 - k.correct : k.correct] as string;
        } else {
          const idx = k.methods.indexOf(favourite);
          wanted = pair.images[idx < 0 ? 0 : idx] as string;
        }
        if (shots && i === 3) await page.screenshot({ path: path.join(ARTIFACTS, 'study-pair.png') });
        const side = wanted === left ? 'left' : 'right';
        // Alternate mouse and keyboard so both ways of answering are exercised.
        if (i % 3 === 0) await page.click(`#choose-${side}`);
        else if (i % 3 === 1) await page.keyboard.press(side === 'left' ? 'ArrowLeft' : 'ArrowRight');
        else await page.keyboard.press(side === 'left' ? '1' : '2');
        given.push({ participantId, pairId: pair.id, choice: wanted });
      }
      await page.waitForSelector('#download', { state: 'visible' });
      assert.equal(await page.textContent('#done-summary'), `You answered all ${n} pairs.`);
      if (shots) await page.screenshot({ path: path.join(ARTIFACTS, 'study-done.png') });
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      assert.equal(download.suggestedFilename(), `study-results-${participantId}.json`);
      const saved = path.join(dir, download.suggestedFilename());
      await download.saveAs(saved);
      downloads.push(saved);
      await page.context().close();
      return seenOrder;
    }

    let result: StudyImport;

    test('two participants answer every pair and download their answers', async () => {
      const order1 = await participate('p01', 'dro', undefined, true);
      const order2 = await participate('p02', 'base', 0, false);
      assert.equal(order1.length, manifest.pairs.length);
      assert.notDeepEqual(order1, order2, 'each participant gets an own order');
      assert.deepEqual(pageProblems, [], 'no script error, CSP violation, dialog or network request');
    });

    test('the import reproduces exactly the answers given and drops the failing participant', () => {
      const read = (f: string) => ({ name: f, bytes: new Uint8Array(fs.readFileSync(f)) });
      result = importStudyResults(
        read(path.join(dir, 'study', 'study.json')),
        read(path.join(dir, 'study-key.json')),
        downloads.map(read),
      );
      const byParticipant = (list: GivenAnswer[]) =>
        list.map((a) => `${a.participantId} ${a.pairId} ${a.choice}`).sort();
      assert.deepEqual(byParticipant(result.answers), byParticipant(given));
      assert.deepEqual(
        result.participants.map((p) => [p.participantId, p.kept]),
        [
          ['p01', true],
          ['p02', false],
        ],
      );
      // p01 always chose dro, so dro wins every dro comparison it was in.
      for (const row of result.rows.filter((r) => r.a === 'dro')) assert.equal(row.winsA, row.total);
    });

    test('the HTML report opens offline and shows the human study', async () => {
      const data: ReportData = {
        runId: 'run-browser',
        name: 'browser check',
        createdAt: '2024-05-01T12:00:00Z',
        config: { name: 'browser check', dro: { steps: 64, lr: 1e-4 } },
        configHash: '5e1f0a9c3b7d2e48',
        baseline: 'base',
        stages: [
          { stage: 'pretrain', wallSeconds: 224, cacheHit: false },
          { stage: 'sft', wallSeconds: 18, cacheHit: true },
          { stage: 'dro', wallSeconds: 51, cacheHit: false },
        ],
        artifacts: [
          {
            role: 'dro/model',
            uri: 'file:///tmp/runs/run-browser/dro/model.safetensors',
            sha256: 'ab'.repeat(32),
          },
        ],
        reward: { name: 'preference-mlp', accuracy: 0.65, heldOutPairs: 26 },
        geneval: [
          {
            method: 'base',
            perTag: { single_object: 0.8, counting: 0.3, position: 0.1 },
            overall: 0.4,
            meanScore: 0.5,
          },
          {
            method: 'dro',
            perTag: { single_object: 0.9, counting: 0.4, position: 0.2 },
            overall: 0.5,
            meanScore: 0.6,
            pValueVsBaseline: 0.003,
          },
        ],
        winRates: [
          {
            a: 'dro',
            b: 'base',
            reward: 'preference',
            winRate: 0.7,
            meanA: 0.6,
            meanB: 0.5,
            pValue: 0.0004,
            ci95: [0.05, 0.15],
          },
        ],
        lossCurves: [
          {
            stage: 'dro',
            points: Array.from({ length: 16 }, (_, i) => ({
              step: 4 * (i + 1),
              loss: 4e-3 * Math.exp(-i / 6),
            })),
          },
        ],
        samples,
        humanStudy: result.summary,
      };
      const reportDir = path.join(dir, 'report');
      fs.mkdirSync(reportDir);
      for (const [name, bytes] of Object.entries(renderReport(data)))
        fs.writeFileSync(path.join(reportDir, name), bytes);
      const before = pageProblems.length;
      const page = await openPage(pathToFileURL(path.join(reportDir, 'report.html')).href);
      await page.waitForLoadState('load');
      assert.ok(await page.isVisible('text=Human preference'));
      const broken = await page.evaluate(
        () => [...document.images].filter((im) => im.naturalWidth === 0).length,
      );
      assert.equal(broken, 0, 'every inline image decodes');
      assert.deepEqual(pageProblems.slice(before), []);
      await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
      await page.context().close();
    });
  },
);
