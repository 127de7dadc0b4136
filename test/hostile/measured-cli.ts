/**
 * Runs the real `dro` command for the hostile-input suites and measures it: exit code or signal,
 * combined output, wall time and peak resident memory (by `/usr/bin/time -f %M` where present,
 * otherwise by `process.resourceUsage().maxRSS` reported by the process itself at exit). Also the
 * checks every suite shares: a directory snapshot to see nothing was written, and the patterns of
 * a stack trace or a raw JavaScript error that no refusal may print.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const DRO = path.join(__dirname, '..', '..', 'bin', 'dro.cjs');
const TIME_BIN = '/usr/bin/time';
const RSS_MARK = 'DRO_PEAK_RSS_KB=';

export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
  peakRssKb: number;
}

export const STACK_FRAME = /^\s+at .+(\(.*:\d+:\d+\)|:\d+:\d+)$/m;
export const RAW_JS_ERROR =
  /\b(TypeError|RangeError|ReferenceError|SyntaxError|AssertionError)\b|Maximum call stack/;

/** A preload in `work` that prints the process's own peak RSS at exit (where /usr/bin/time is missing). */
function rssReporter(work: string): string {
  const reporter = path.join(work, 'peak-rss.cjs');
  if (!fs.existsSync(reporter)) {
    fs.writeFileSync(
      reporter,
      `process.on('exit', () => process.stderr.write('\\n${RSS_MARK}' + process.resourceUsage().maxRSS + '\\n'));\n`,
    );
  }
  return reporter;
}

/** `dro <args>` in `cwd` with its own state directory; killed after twice `timeLimitMs`. */
export function runDroMeasured(
  cwd: string,
  args: string[],
  stateDir: string,
  options: { work: string; timeLimitMs: number },
): Promise<Outcome> {
  const useTime = fs.existsSync(TIME_BIN);
  const [cmd, argv] = useTime
    ? [TIME_BIN, ['-f', `${RSS_MARK}%M`, process.execPath, DRO, ...args]]
    : [process.execPath, ['--require', rssReporter(options.work), DRO, ...args]];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd,
      env: { ...process.env, DRO_STATE_DIR: stateDir, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeLimitMs * 2);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const mark = output.lastIndexOf(RSS_MARK);
      resolve({
        // /usr/bin/time reports a child killed by a signal as "Command terminated by signal N".
        code: /Command terminated by signal/.test(output) ? null : code,
        signal,
        output: mark === -1 ? output : output.slice(0, mark),
        ms: Date.now() - started,
        peakRssKb: mark === -1 ? NaN : Number.parseInt(output.slice(mark + RSS_MARK.length), 10),
      });
    });
  });
}

/**
 * Every entry under `dir` with its size and mtime (and its mode with `withMode`), to see that
 * nothing was written.
 */
export function snapshot(dir: string, withMode = false): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    const stat = fs.lstatSync(file);
    out.set(path.relative(dir, file), `${withMode ? `${stat.mode}:` : ''}${stat.size}:${stat.mtimeMs}`);
  }
  return out;
}
