/**
 * Hostile input to `dro study export|import` through the real command line. Each case gets its own
 * directory holding a local artifact store with a finished run (test/harness/study-run.ts) and,
 * for imports, a study exported into the run's records; then the command must
 *
 * - exit non-zero (not by a signal),
 * - name the argument or file and the problem (the case's patterns),
 * - print no stack trace and no raw JavaScript error,
 * - finish within TIME_LIMIT_MS and stay under PEAK_RSS_LIMIT_KB of resident memory (a 200 MB
 *   answer file must be refused by its size, not read),
 * - write nothing: no state directory, no new or changed file in the case's directory (the store
 *   included).
 *
 * Two cases run at a time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  answers,
  exportStoredStudy,
  studyConfig,
  writeStudyRun,
  type StoredStudy,
} from '../harness/study-run';
import { RAW_JS_ERROR, runDroMeasured, snapshot, STACK_FRAME } from './measured-cli';

/** Wall-clock limit per case. The whole CLI starts (about 3-5 s on a 2-core machine under load). */
const TIME_LIMIT_MS = 45_000;
/** Peak resident memory per case: far below the 200 MB answer file of one case. */
const PEAK_RSS_LIMIT_KB = 320 * 1024;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-hostile-study-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

interface Setup {
  /** The case's directory: the config is config.json, the store artifacts/. */
  dir: string;
  /** The study of run-a, exported into its records. */
  study: StoredStudy;
  /** Writes a participant's answer file (JSON of `value`) and returns its name. */
  write: (name: string, value: unknown) => string;
}

interface StudyCase {
  name: string;
  /** Prepares extra files; returns the CLI arguments after `study` (the config is added). */
  args: (s: Setup) => string[] | Promise<string[]>;
  expect: RegExp[];
}

const CASES: StudyCase[] = [
  {
    name: 'a study of one run imported into another run',
    args: (s) => ['import', 'run-b', s.write('p1.json', answers(s.study, 'p1')), '--study', s.study.dir],
    expect: [/study-key\.json: study study-[0-9a-f]{12} was exported from run "run-a", not "run-b"/],
  },
  {
    name: 'a study of one run imported into another run by its id',
    args: (s) => ['import', 'run-b', s.write('p1.json', answers(s.study, 'p1')), '--study', s.study.studyId],
    expect: [/--study study-[0-9a-f]{12}: no such folder, and no study of that id in run run-b's records/],
  },
  {
    name: 'a 200 MB answer file is refused by its size, unread',
    args: (s) => {
      const file = path.join(s.dir, 'huge.json');
      fs.writeFileSync(file, '{"format":"dro-study-results","answers":[');
      fs.truncateSync(file, 200 * 1024 * 1024); // sparse: no disk, but 200 MB to read
      return ['import', 'run-a', 'huge.json'];
    },
    expect: [/huge\.json: 200\.0 MB, more than the 8\.0 MB a result file may have; not read/],
  },
  {
    name: 'an answer file that is a FIFO is refused without blocking',
    args: (s) => {
      execFileSync('mkfifo', [path.join(s.dir, 'pipe.json')]);
      return ['import', 'run-a', 'pipe.json'];
    },
    expect: [/pipe\.json: not a regular file/],
  },
  {
    name: 'an answer file that is a folder',
    args: (s) => {
      fs.mkdirSync(path.join(s.dir, 'folder.json'));
      return ['import', 'run-a', 'folder.json'];
    },
    expect: [/folder\.json: not a regular file/],
  },
  {
    name: 'a participant id with a terminal escape sequence',
    args: (s) => ['import', 'run-a', s.write('esc.json', answers(s.study, 'p1\u001b[2J\u001b[31mX'))],
    expect: [/esc\.json: .*participantId: must not contain control or invisible characters \(U\+001B\)/],
  },
  {
    name: 'a participant id with a right-to-left override',
    args: (s) => ['import', 'run-a', s.write('bidi.json', answers(s.study, 'p1\u202egnp.exe'))],
    expect: [/bidi\.json: .*participantId: must not contain control or invisible characters \(U\+202E\)/],
  },
  {
    name: 'a participant id with a NUL byte',
    args: (s) => ['import', 'run-a', s.write('nul.json', answers(s.study, 'p\u00001'))],
    expect: [/nul\.json: .*participantId: must not contain control or invisible characters \(U\+0000\)/],
  },
  {
    name: 'an answer file that is not UTF-8',
    args: (s) => {
      fs.writeFileSync(path.join(s.dir, 'latin1.json'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
      return ['import', 'run-a', 'latin1.json'];
    },
    expect: [/latin1\.json: not a JSON study result/],
  },
  {
    name: 'the same participant twice with different answers',
    args: (s) => [
      'import',
      'run-a',
      s.write('a.json', answers(s.study, 'p1')),
      s.write('b.json', answers(s.study, 'p1', { favourite: 'dro' })),
    ],
    expect: [/b\.json: participant "p1" answered twice \(also in a\.json\)/],
  },
  {
    name: 'a key of another study given with --key',
    args: async (s) => {
      const other = await exportStoredStudy(
        (await writeStudyRun(path.join(s.dir, 'other'), 'run-a')).store,
        'run-a',
      );
      return ['import', 'run-a', s.write('p1.json', answers(s.study, 'p1')), '--key', other.keyFile];
    },
    expect: [/study-key\.json: SHA-256 [0-9a-f]{64} differs from the key digest/],
  },
  {
    name: 'an --exclude naming nobody',
    args: (s) => ['import', 'run-a', s.write('p1.json', answers(s.study, 'p1')), '--exclude', 'p9'],
    expect: [/--exclude p9: no answer file of that participant/],
  },
  {
    name: 'a negative --min-median-ms',
    args: (s) => ['import', 'run-a', s.write('p1.json', answers(s.study, 'p1')), '--min-median-ms', '-5'],
    expect: [/--min-median-ms "-5": use a whole number from 0 to 600000/],
  },
  {
    name: 'an import into a run with two studies and no --study',
    args: async (s) => {
      await exportStoredStudy((await writeStudyRun(path.join(s.dir, 'artifacts'), 'run-a')).store, 'run-a');
      return ['import', 'run-a', s.write('p1.json', answers(s.study, 'p1'))];
    },
    expect: [
      /run run-a has 2 studies \(study-[0-9a-f]{12}, study-[0-9a-f]{12}\); choose one with --study <id>/,
    ],
  },
  {
    name: '--pairs above what the run has',
    args: () => ['export', 'run-b', '--pairs', '25'],
    expect: [
      /--pairs 25: run run-b's evaluation has 24 comparison pairs \(3 methods, 8 prompts\); give at most 24/,
    ],
  },
  {
    name: '--pairs that is not a whole number',
    args: () => ['export', 'run-b', '--pairs', '1e3'],
    expect: [/--pairs "1e3": use a whole number from 1 to 10000/],
  },
  {
    name: '--methods with one method',
    args: () => ['export', 'run-b', '--methods', 'dro'],
    expect: [/--methods dro: .*need at least two methods/],
  },
  {
    name: '--out that exists',
    args: (s) => {
      fs.mkdirSync(path.join(s.dir, 'mine'));
      return ['export', 'run-b', '--out', 'mine'];
    },
    expect: [
      /--out mine: .*mine already exists; give a folder that does not exist yet \(nothing was written\)/,
    ],
  },
  {
    name: '--out whose key file exists',
    args: (s) => {
      fs.writeFileSync(path.join(s.dir, 'mine-key.json'), '{}');
      return ['export', 'run-b', '--out', 'mine'];
    },
    expect: [/--out mine: .*mine-key\.json already exists/],
  },
  {
    name: '--out inside a file',
    args: (s) => {
      fs.writeFileSync(path.join(s.dir, 'plain'), 'x');
      return ['export', 'run-b', '--out', 'plain/study'];
    },
    expect: [/--out plain\/study: .*plain is not a folder/],
  },
  {
    name: '--out in a folder that does not exist',
    args: () => ['export', 'run-b', '--out', 'nowhere/study'],
    expect: [/--out nowhere\/study: cannot use the folder .*nowhere \(no such file\)/],
  },
  {
    name: '--out where nothing can be written',
    args: () => ['export', 'run-b', '--out', '/proc/dro-study'],
    // Root may write anywhere, so the check before writing passes and the write itself fails.
    expect: [
      /--out \/proc\/dro-study: cannot write (the study there|in \/proc) \([^)]+\); nothing was written/,
    ],
  },
];

describe('dro study refuses hostile input', { concurrency: 2 }, () => {
  test('case names are unique', () => {
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
  });

  CASES.forEach((c, i) => {
    test(c.name, async (t) => {
      const dir = path.join(work, `case-${i}`);
      fs.mkdirSync(dir);
      const { store } = await writeStudyRun(path.join(dir, 'artifacts'), 'run-a');
      await writeStudyRun(path.join(dir, 'artifacts'), 'run-b');
      const study = await exportStoredStudy(store, 'run-a');
      fs.writeFileSync(
        path.join(dir, 'config.json'),
        JSON.stringify(studyConfig(path.join(dir, 'artifacts'))),
      );
      const write = (name: string, value: unknown): string => {
        fs.writeFileSync(path.join(dir, name), JSON.stringify(value));
        return name;
      };
      const args = await c.args({ dir, study, write });
      const state = path.join(work, `state-${i}`);
      const before = snapshot(dir, true);
      const r = await runDroMeasured(dir, ['study', ...args, '--config', 'config.json'], state, {
        work,
        timeLimitMs: TIME_LIMIT_MS,
      });
      const shown = `output:\n${r.output}`;
      assert.equal(r.signal, null, `killed by ${r.signal}; ${shown}`);
      assert.ok(r.code !== null && r.code !== 0, `exit code ${r.code}; ${shown}`);
      for (const pattern of c.expect) assert.match(r.output, pattern, shown);
      assert.doesNotMatch(r.output, STACK_FRAME, `stack trace; ${shown}`);
      assert.doesNotMatch(r.output, RAW_JS_ERROR, `raw JavaScript error; ${shown}`);
      assert.ok(
        !r.output.includes(String.fromCharCode(0x1b)),
        `a raw escape character reached the terminal; ${shown}`,
      );
      assert.ok(r.ms < TIME_LIMIT_MS, `took ${r.ms} ms`);
      assert.ok(Number.isFinite(r.peakRssKb), `no peak RSS reported; ${shown}`);
      assert.ok(r.peakRssKb < PEAK_RSS_LIMIT_KB, `peak RSS ${r.peakRssKb} KB`);
      assert.equal(fs.existsSync(state), false, 'a state directory was created');
      assert.deepEqual(snapshot(dir, true), before, 'files changed in the case directory');
      t.diagnostic(`${r.ms} ms, peak RSS ${r.peakRssKb} KB`);
    });
  });
});
