/**
 * `dro study export|import` through the real command line, on a finished run made without the
 * pipeline (test/harness/study-run.ts): the default pair count adapts to what the run has and says
 * so; the study and its key go under the run's records, never into the working directory, or to
 * the folder `--out` names; imports are cumulative, each a new version; implausibly fast
 * participants are flagged. (Refusals are in test/hostile/study.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StudyKey, StudyManifest } from '../../engine/study';
import { answers, studyConfig, writeStudyRun } from '../harness/study-run';

const ROOT = path.join(__dirname, '..', '..');

describe('dro study', { timeout: 300_000 }, () => {
  let dir: string;
  let cwd: string;
  let root: string;
  let configFile: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-study-cli-'));
    root = path.join(dir, 'artifacts');
    cwd = path.join(dir, 'cwd');
    fs.mkdirSync(cwd);
    await writeStudyRun(root, 'run-a');
    configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(studyConfig(root)));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const dro = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin', 'dro.cjs'), 'study', ...args, '--config', configFile],
      {
        cwd,
        env: { ...process.env, DRO_STATE_DIR: path.join(dir, 'state'), DRO_LOG_LEVEL: 'error' },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );

  let studyDir: string;
  let study: { manifest: StudyManifest; key: StudyKey };

  test("without --pairs, a run with fewer pairs than userStudy.prompts gets all of them, said so, under the run's records", () => {
    const r = dro('export', 'run-a');
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Study study-[0-9a-f]{12}: 24 pairs \+ 2 attention checks/);
    assert.match(
      r.stdout,
      /Pairs: +24, all that run run-a's evaluation has \(3 methods, 8 prompts\); userStudy\.prompts asks for 32/,
    );
    const id = /Study (study-[0-9a-f]{12})/.exec(r.stdout)![1]!;
    const records = path.join(root, 'runs', 'run-a', 'studies', id);
    studyDir = path.join(records, 'study');
    assert.match(r.stdout, new RegExp(`Open: +${path.join(studyDir, 'index.html')}`));
    assert.match(r.stdout, new RegExp(`Key: +${path.join(records, 'study-key.json')}`));
    assert.ok(fs.existsSync(path.join(studyDir, 'index.html')));
    assert.ok(
      !fs.existsSync(path.join(studyDir, 'study-key.json')),
      'the key is not in the folder handed out',
    );
    assert.deepEqual(fs.readdirSync(cwd), [], 'nothing in the working directory');
    study = {
      manifest: JSON.parse(fs.readFileSync(path.join(studyDir, 'study.json'), 'utf8')) as StudyManifest,
      key: JSON.parse(fs.readFileSync(path.join(records, 'study-key.json'), 'utf8')) as StudyKey,
    };
    assert.equal(study.key.runId, 'run-a');
  });

  test('--pairs within what the run has, and --out to a new folder with the key beside it', () => {
    const r = dro('export', 'run-a', '--pairs', '5', '--out', 'handout');
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /: 5 pairs \+ 1 attention check\n/);
    assert.doesNotMatch(r.stdout, /Pairs:/);
    assert.deepEqual(fs.readdirSync(cwd).sort(), ['handout', 'handout-key.json']);
    assert.ok(fs.existsSync(path.join(cwd, 'handout', 'index.html')));
  });

  const write = (name: string, value: unknown): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(value));
    return file;
  };

  test('imports are cumulative: a second import with one more participant writes version 2', () => {
    const p1 = write('p1.json', answers(study, 'p1'));
    const first = dro('import', 'run-a', p1);
    assert.equal(first.status, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /import version 1: 1 new answer file\n {2}1 participants counted/);

    const p2 = write('p2.json', answers(study, 'p2', { favourite: 'dro' }));
    const second = dro('import', 'run-a', p1, p2, '--study', studyDir);
    assert.equal(second.status, 0, second.stderr + second.stdout);
    assert.doesNotMatch(second.stdout + second.stderr, /Refusing to overwrite/);
    assert.match(
      second.stdout,
      /import version 2: 1 new answer file \+ 1 from version 1 \(1 given again, already imported\)\n {2}2 participants counted/,
    );
    const versions = path.join(path.dirname(studyDir), 'imports');
    assert.deepEqual(fs.readdirSync(versions).sort(), ['0001', '0002']);
    const v2 = JSON.parse(fs.readFileSync(path.join(versions, '0002', 'human-study.json'), 'utf8')) as {
      participants: number;
      version: number;
      participantOutcomes: { participantId: string }[];
    };
    assert.equal(v2.participants, 2);
    assert.equal(v2.version, 2);
    assert.deepEqual(
      v2.participantOutcomes.map((p) => p.participantId),
      ['p1', 'p2'],
    );

    // Only the new participant's file: the earlier answers still count.
    const p3 = write('p3.json', answers(study, 'p3'));
    const third = dro('import', 'run-a', p3);
    assert.equal(third.status, 0, third.stderr + third.stdout);
    assert.match(
      third.stdout,
      /import version 3: 1 new answer file \+ 2 from version 2\n {2}3 participants counted/,
    );

    const again = dro('import', 'run-a', p3);
    assert.equal(again.status, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /imported before \(version 3\); nothing new, nothing written/);
    assert.deepEqual(fs.readdirSync(versions).sort(), ['0001', '0002', '0003']);
  });

  test('implausibly fast participants are flagged and reported; --exclude leaves them out', () => {
    const fast = write('fast.json', answers(study, 'speedy', { ms: 120 }));
    const r = dro('import', 'run-a', fast);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /4 participants counted/);
    assert.match(
      r.stdout,
      /Implausibly fast: 1 participant with a median time per answer below 800 ms[^\n]*\n {2}speedy: median 1\d\d ms per answer \(.*fast\.json\)/,
    );
    const versions = path.join(path.dirname(studyDir), 'imports');
    const v4 = JSON.parse(fs.readFileSync(path.join(versions, '0004', 'human-study.json'), 'utf8')) as {
      fastParticipants: string[];
      minMedianAnswerMs: number;
    };
    assert.deepEqual(v4.fastParticipants, ['speedy']);
    assert.equal(v4.minMedianAnswerMs, 800);

    const threshold = dro('import', 'run-a', fast, '--exclude', 'p3', '--min-median-ms', '100');
    assert.equal(threshold.status, 0, threshold.stderr + threshold.stdout);
    assert.match(threshold.stdout, /import version 5: .*1 left out by --exclude\n {2}3 participants counted/);
    assert.doesNotMatch(threshold.stdout, /Implausibly fast/);
  });

  test("the config's userStudy.minMedianAnswerMs sets the threshold", () => {
    const slowish = write('slowish.json', answers(study, 'steady', { ms: 2000 }));
    const strict = path.join(dir, 'strict.json');
    fs.writeFileSync(
      strict,
      JSON.stringify({ ...studyConfig(root), userStudy: { minMedianAnswerMs: 5000 } }),
    );
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin', 'dro.cjs'), 'study', 'import', 'run-a', slowish, '--config', strict],
      {
        cwd,
        env: { ...process.env, DRO_STATE_DIR: path.join(dir, 'state'), DRO_LOG_LEVEL: 'error' },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    // Everyone answering in 2 s is now too fast, the earlier imports' participants included.
    assert.match(r.stdout, /Implausibly fast: 4 participants with a median time per answer below 5000 ms/);
    assert.match(r.stdout, /\n {2}steady: median 2\d{3} ms per answer/);
  });
});
