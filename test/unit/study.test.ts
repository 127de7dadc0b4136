/**
 * The blinded study: the exported page never carries method names or the key, the study data
 * round-trips hostile prompts, and import checks every result file (naming the file and the
 * problem), drops attention-check failures and counts human wins with Wilson intervals.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import vm from 'node:vm';
import { encodePng } from '../../engine/data/image-codec';
import type { SampleGrid } from '../../engine/report';
import { wilsonInterval } from '../../engine/stats/wilson';
import type { NamedFile, StudyKey, StudyManifest } from '../../engine/study';
import {
  attentionChecks,
  countComparisons,
  DEFAULT_MIN_MEDIAN_ANSWER_MS,
  exportStudy,
  importStudyResults,
  KEY_FILE_NAME,
  selectComparisons,
  StudyImportError,
} from '../../engine/study';

const METHODS = ['zorblax-method', 'quuxwell-method', 'fnordic-method'];
const HOSTILE = `</script><script>alert('x')</script> "a red circle" & <img src=x onerror=alert(1)>`;
const NONCE = '0123456789abcdef0123456789abcdef';

const solid = (rgb: [number, number, number], side = 8): Uint8Array =>
  encodePng({
    width: side,
    height: side,
    data: new Uint8Array(side * side * 3).map((_, i) => rgb[i % 3] as number),
  });

function samples(): SampleGrid {
  const prompts = ['a red circle', HOSTILE, 'two blue squares', 'a ring above a cross'];
  return {
    prompts,
    seeds: [1, 2, 3, 4],
    methods: METHODS.map((method, m) => ({
      method,
      images: prompts.map((_, i) => solid([40 * m + 10, 20 * i, 200])),
    })),
  };
}

function makeStudy(seed: number | string = 7) {
  const comparisons = selectComparisons(samples(), { seed, pairs: 9 });
  const checks = attentionChecks(
    [
      { prompt: 'a green square', image: solid([0, 200, 0]) },
      { prompt: 'a yellow triangle', image: solid([220, 220, 0]) },
    ],
    { seed },
  );
  return exportStudy({ runId: 'run-1', comparisons, attentionChecks: checks, seed, nonce: NONCE });
}

const decode = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);
const PAGE_FILES = ['index.html', 'study.js', 'study.css', 'study-data.js', 'study.json'];

describe('study export', () => {
  const study = makeStudy();
  const manifest = JSON.parse(decode(study.files['study.json'])) as StudyManifest;
  const key = JSON.parse(decode(study.key)) as StudyKey;

  test('the study folder holds the page, the data and one image per pair side, nothing else', () => {
    const names = Object.keys(study.files).sort();
    const images = names.filter((n) => n.startsWith('images/'));
    assert.deepEqual(
      names.filter((n) => !n.startsWith('images/')),
      [...PAGE_FILES].sort(),
    );
    assert.equal(manifest.pairs.length, 11, '9 comparisons + 2 attention checks');
    assert.equal(images.length, 22);
    assert.deepEqual(new Set(manifest.pairs.flatMap((p) => p.images)), new Set(images));
    assert.ok(!names.includes(KEY_FILE_NAME));
  });

  test('no page file and no file name carries a method name, the key, or which pairs are checks', () => {
    const keyText = decode(study.key);
    for (const name of PAGE_FILES) {
      const body = decode(study.files[name]);
      for (const m of METHODS) assert.ok(!body.includes(m), `${name} mentions ${m}`);
      assert.ok(!body.includes(NONCE), `${name} carries the key nonce`);
      assert.ok(!body.includes(keyText.slice(0, 200)), `${name} carries the key`);
      assert.ok(!/attention|correct/i.test(body), `${name} tells which pairs are checks`);
    }
    for (const name of Object.keys(study.files)) for (const m of METHODS) assert.ok(!name.includes(m));
    // The key does know everything the page hides.
    assert.deepEqual(new Set(key.methods), new Set(METHODS));
    assert.equal(Object.values(key.pairs).filter((p) => p.kind === 'attention').length, 2);
  });

  test('the page has a CSP that allows only its own scripts and has no inline script', () => {
    const html = decode(study.files['index.html']);
    assert.match(html, /http-equiv="Content-Security-Policy"[\s\S]*script-src 'self'/);
    assert.match(html, /default-src 'none'/);
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.deepEqual(
      scripts.map((s) => s[1]?.match(/src="([^"]+)"/)?.[1]),
      ['study-data.js', 'study.js'],
    );
    for (const s of scripts) assert.equal(s[2], '', 'script elements are empty');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
    assert.doesNotMatch(html, /https?:\/\//);
  });

  test('study-data.js is the manifest, hostile prompts intact, with no raw "<" in the file', () => {
    const script = decode(study.files['study-data.js']);
    assert.ok(!script.includes('<'), 'no "<" that could end a script element');
    const sandbox: { window: { DRO_STUDY?: unknown } } = { window: {} };
    vm.runInNewContext(script, sandbox);
    // Objects from another realm have other prototypes; compare them as JSON.
    assert.deepEqual(JSON.parse(JSON.stringify(sandbox.window.DRO_STUDY)), manifest);
    assert.ok(manifest.pairs.some((p) => p.prompt === HOSTILE));
  });

  test('images are enlarged to at least 256 px and the same seed and nonce give the same files', () => {
    const again = makeStudy();
    assert.deepEqual(again.files, study.files);
    assert.deepEqual(again.key, study.key);
    const other = JSON.parse(decode(makeStudy(8).files['study.json'])) as StudyManifest;
    assert.notDeepEqual(
      other.pairs.map((p) => p.prompt),
      manifest.pairs.map((p) => p.prompt),
    );
    const png = study.files[manifest.pairs[0]?.images[0] as string] as Uint8Array;
    assert.equal(Buffer.from(png).readUInt32BE(16), 256, 'PNG width');
  });

  test('comparisons spread evenly over the method pairs; bad choices are named', () => {
    const picked = selectComparisons(samples(), { seed: 1, pairs: 7 });
    const perPair = new Map<string, number>();
    for (const c of picked) {
      const k = c.images.map((i) => i.method).join(' vs ');
      perPair.set(k, (perPair.get(k) ?? 0) + 1);
    }
    assert.deepEqual([...perPair.values()].sort(), [2, 2, 3]);
    assert.throws(
      () => selectComparisons(samples(), { seed: 1, methods: ['nope', METHODS[0] as string] }),
      /no samples of method "nope"/,
    );
    assert.throws(
      () => selectComparisons(samples(), { seed: 1, pairs: 13 }),
      /13 requested, between 1 and 12/,
    );
  });

  test('countComparisons is every method pair on every prompt, with the same method checks', () => {
    assert.equal(countComparisons(samples()), 12);
    assert.equal(countComparisons(samples(), { methods: METHODS.slice(0, 2) }), 4);
    assert.equal(selectComparisons(samples(), { seed: 1 }).length, countComparisons(samples()));
    assert.throws(
      () => countComparisons(samples(), { methods: ['nope', 'x'] }),
      /no samples of method "nope"/,
    );
    assert.throws(() => countComparisons(samples(), { methods: [METHODS[0] as string] }), /at least two/);
  });

  test('the study id binds the run: the same nonce in another run gives another id', () => {
    const comparisons = selectComparisons(samples(), { seed: 1, pairs: 3 });
    const idOf = (runId: string) =>
      exportStudy({ runId, comparisons, attentionChecks: [], seed: 1, nonce: NONCE }).studyId;
    assert.match(idOf('run-1'), /^study-[0-9a-f]{12}$/);
    assert.notEqual(idOf('run-1'), idOf('run-2'));
    assert.equal(idOf('run-1'), study.studyId);
  });
});

/** What a participant's page would download, choosing with `pick` on each pair. */
function answerFile(
  study: ReturnType<typeof makeStudy>,
  participantId: string,
  pick: (pairId: string, images: [string, string]) => string,
): NamedFile & { json: Record<string, unknown> } {
  const manifest = JSON.parse(decode(study.files['study.json'])) as StudyManifest;
  const json = {
    format: 'dro-study-results',
    version: 1,
    studyId: manifest.studyId,
    participantId,
    answers: manifest.pairs.map((p, i) => ({
      pairId: p.id,
      choice: pick(p.id, p.images),
      position: i + 1,
      ms: 900,
    })),
  };
  return {
    name: `results-${participantId}.json`,
    bytes: new TextEncoder().encode(JSON.stringify(json)),
    json,
  };
}

describe('study import', () => {
  const study = makeStudy();
  const manifestFile = { name: 'study/study.json', bytes: study.files['study.json'] as Uint8Array };
  const keyFile = { name: 'private/study-key.json', bytes: study.key };
  const key = JSON.parse(decode(study.key)) as StudyKey;

  /** Choose `favourite`'s image on comparisons it is in, the first image otherwise; checks right or wrong. */
  const chooser =
    (favourite: string, failChecks: number) =>
    (pairId: string, images: [string, string]): string => {
      const k = key.pairs[pairId] as StudyKey['pairs'][string];
      if (k.kind === 'attention') {
        const wrong = failChecks-- > 0;
        return images[wrong ? 1 - k.correct : k.correct] as string;
      }
      const i = k.methods.indexOf(favourite);
      return images[i < 0 ? 0 : i] as string;
    };

  test('win rates count the kept participants only, with Wilson intervals', () => {
    const files = [
      answerFile(study, 'p1', chooser(METHODS[0] as string, 0)),
      answerFile(study, 'p2', chooser(METHODS[1] as string, 0)),
      answerFile(study, 'p3', chooser(METHODS[1] as string, 1)),
    ];
    const result = importStudyResults(manifestFile, keyFile, files);
    assert.deepEqual(
      result.participants.map((p) => [p.participantId, p.kept, p.attentionCorrect, p.attentionTotal]),
      [
        ['p1', true, 2, 2],
        ['p2', true, 2, 2],
        ['p3', false, 1, 2],
      ],
    );
    assert.equal(result.summary.participants, 2);
    assert.equal(result.summary.dropped, 1);
    // Expected counts from the key directly: per method pair, p1 picks METHODS[0] where present,
    // p2 picks METHODS[1] where present, otherwise the pair's first image.
    const expected = new Map<string, { winsA: number; total: number }>();
    for (const pick of [chooser(METHODS[0] as string, 0), chooser(METHODS[1] as string, 0)]) {
      for (const p of JSON.parse(decode(study.files['study.json'])).pairs as StudyManifest['pairs']) {
        const k = key.pairs[p.id] as StudyKey['pairs'][string];
        if (k.kind !== 'compare') continue;
        const [a, b] = [...k.methods].sort((x, y) => key.methods.indexOf(x) - key.methods.indexOf(y));
        const chosen = k.methods[p.images.indexOf(pick(p.id, p.images))];
        const e = expected.get(`${a} vs ${b}`) ?? { winsA: 0, total: 0 };
        e.total++;
        if (chosen === a) e.winsA++;
        expected.set(`${a} vs ${b}`, e);
      }
    }
    assert.equal(result.rows.length, 3);
    for (const row of result.rows) {
      const e = expected.get(`${row.a} vs ${row.b}`);
      assert.ok(e, `${row.a} vs ${row.b}`);
      assert.equal(row.winsA, e.winsA);
      assert.equal(row.total, e.total);
      assert.equal(row.winRate, e.winsA / e.total);
      assert.deepEqual(row.ci95, wilsonInterval(e.winsA, e.total));
      assert.ok(key.methods.indexOf(row.a) < key.methods.indexOf(row.b));
    }
    // Every answer comes back exactly as given.
    const given = files.flatMap((f) =>
      (f.json.answers as { pairId: string; choice: string }[]).map((a) => [
        f.json.participantId,
        a.pairId,
        a.choice,
      ]),
    );
    assert.deepEqual(
      result.answers.map((a) => [a.participantId, a.pairId, a.choice]),
      given,
    );
  });

  const good = (): Record<string, unknown> => answerFile(study, 'p1', chooser(METHODS[0] as string, 0)).json;
  const asFile = (name: string, json: unknown): NamedFile => ({
    name,
    bytes: new TextEncoder().encode(JSON.stringify(json)),
  });
  const expectError = (files: NamedFile[], file: string, problem: RegExp, key = keyFile): void => {
    assert.throws(
      () => importStudyResults(manifestFile, key, files),
      (err: unknown) => {
        assert.ok(err instanceof StudyImportError, String(err));
        assert.equal(err.file, file);
        assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
        assert.match(err.problem, problem);
        return true;
      },
    );
  };

  test('an unknown pair id is named with its answer index', () => {
    const json = good();
    (json.answers as { pairId: string }[])[3]!.pairId = 'q99';
    expectError([asFile('bad.json', json)], 'bad.json', /answers\[3\]: unknown pair id "q99"/);
  });

  test('a duplicate answer is named with both indexes', () => {
    const json = good();
    const answers = json.answers as { pairId: string }[];
    answers.push({ ...(answers[1] as { pairId: string }) });
    expectError(
      [asFile('dup.json', json)],
      'dup.json',
      /answers\[11\]: duplicate answer to pair q\d+ \(first at answers\[1\]\)/,
    );
  });

  test('a missing answer, a wrong study id and a foreign image are named', () => {
    const short = good();
    (short.answers as unknown[]).pop();
    expectError([asFile('short.json', short)], 'short.json', /no answer to 1 of 11 pairs/);
    const other = { ...good(), studyId: 'study-elsewhere' };
    expectError(
      [asFile('other.json', other)],
      'other.json',
      /study id "study-elsewhere" is not this study's/,
    );
    const foreign = good();
    (foreign.answers as { choice: string }[])[0]!.choice = 'images/ffffffffffffffff.png';
    expectError(
      [asFile('foreign.json', foreign)],
      'foreign.json',
      /answers\[0\]: choice .* is not one of pair/,
    );
  });

  test('a participant answering twice is named with both files', () => {
    const a = asFile('first.json', good());
    const b = asFile('second.json', good());
    expectError([a, b], 'second.json', /participant "p1" answered twice \(also in first\.json\)/);
  });

  test('malformed files are named', () => {
    expectError(
      [{ name: 'junk.json', bytes: new TextEncoder().encode('{not json') }],
      'junk.json',
      /not a JSON/,
    );
    const noId = { ...good(), participantId: '  ' };
    expectError([asFile('noid.json', noId)], 'noid.json', /participantId: must not be empty/);
  });

  test('a study exported from another run is refused, naming the key and both runs', () => {
    const files = [asFile('ok.json', good())];
    assert.equal(importStudyResults(manifestFile, keyFile, files, { runId: 'run-1' }).runId, 'run-1');
    assert.throws(
      () => importStudyResults(manifestFile, keyFile, files, { runId: 'run-2' }),
      (err: unknown) =>
        err instanceof StudyImportError &&
        err.file === 'private/study-key.json' &&
        /exported from run "run-1", not "run-2"/.test(err.problem),
    );
  });

  test('participants with a median answer time below the threshold are flagged, still counted', () => {
    const withMs = (id: string, ms: (i: number) => number | undefined) => {
      const json = answerFile(study, id, chooser(METHODS[0] as string, 0)).json;
      (json.answers as { ms?: number }[]).forEach((a, i) => {
        const v = ms(i);
        if (v === undefined) delete a.ms;
        else a.ms = v;
      });
      return asFile(`${id}.json`, json);
    };
    const files = [
      withMs('slow', () => 2500),
      // Median of 11 answers: the sixth smallest. Six quick ones make it fast despite slow others.
      withMs('quick', (i) => (i < 6 ? 150 : 9000)),
      withMs('untimed', () => undefined),
      withMs('mostly-untimed', (i) => (i < 5 ? 10 : undefined)),
    ];
    const result = importStudyResults(manifestFile, keyFile, files);
    assert.equal(result.minMedianAnswerMs, DEFAULT_MIN_MEDIAN_ANSWER_MS);
    assert.deepEqual(
      result.participants.map((p) => [p.participantId, p.medianAnswerMs, p.fast, p.kept]),
      [
        ['slow', 2500, false, true],
        ['quick', 150, true, true],
        ['untimed', undefined, false, true],
        ['mostly-untimed', undefined, false, true],
      ],
    );
    assert.deepEqual(
      result.fast.map((p) => p.participantId),
      ['quick'],
    );
    assert.equal(result.summary.participants, 4, 'flagged participants still count');
    const relaxed = importStudyResults(manifestFile, keyFile, files, { minMedianAnswerMs: 100 });
    assert.deepEqual(relaxed.fast, []);
    const even = importStudyResults(manifestFile, keyFile, [
      withMs('even', (i) => (i < 10 ? 100 + i : undefined)),
    ]);
    assert.equal(
      even.participants[0]!.medianAnswerMs,
      104.5,
      'an even count takes the mean of the middle two',
    );
  });

  test('control and invisible characters in a participant id are refused', () => {
    for (const [id, code] of [
      ['p\u00071', '0007'],
      ['p1\u001b[31m', '001B'],
      ['p1\u202egnp', '202E'],
      ['p\u200b1', '200B'],
      ['p\u20281', '2028'],
    ] as const) {
      expectError(
        [asFile('ctl.json', { ...good(), participantId: id })],
        'ctl.json',
        new RegExp(`participantId: must not contain control or invisible characters \\(U\\+${code}\\)`),
      );
    }
    // Letters of any script, spaces and punctuation are fine.
    const ok = importStudyResults(manifestFile, keyFile, [
      asFile('ok.json', { ...good(), participantId: 'Zoë Ødegård-3 (李)' }),
    ]);
    assert.equal(ok.participants[0]!.participantId, 'Zoë Ødegård-3 (李)');
  });

  test('an edited key is refused by its digest', () => {
    const edited = decode(study.key).replace(METHODS[0] as string, METHODS[2] as string);
    const editedKey = { name: 'private/study-key.json', bytes: new TextEncoder().encode(edited) };
    expectError(
      [asFile('ok.json', good())],
      'private/study-key.json',
      /differs from the key digest .* recorded in study\/study\.json: the key was edited/,
      editedKey,
    );
  });
});
