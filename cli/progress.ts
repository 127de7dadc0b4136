/**
 * What a command prints while it waits for a pipeline run: a line per stage change
 * (followProgress) and the activities' progress log entries as one-line summaries (commandLogger).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { pipelineProgressQuery, type PipelineProgress, type StageRecord } from '../contracts/pipeline';
import { createLogger, setRootLogger, type Logger } from '../infra/logger';

export function formatSeconds(seconds: number): string {
  return seconds < 90
    ? `${seconds.toFixed(1)} s`
    : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/**
 * Prints a line when a stage starts or ends, and every `everyMs` a line naming the running stage
 * (the detailed progress lines come from the activities' logs, see commandLogger). Resolves when
 * `stop` fires.
 */
export async function followProgress(
  handle: WorkflowHandle,
  out: (line: string) => void,
  stop: AbortSignal,
  everyMs = 60_000,
): Promise<void> {
  const seen = new Map<string, StageRecord['status']>();
  let lastLine = Date.now();
  const emit = (line: string): void => {
    out(line);
    lastLine = Date.now();
  };
  while (!stop.aborted) {
    let progress: PipelineProgress | undefined;
    try {
      progress = await handle.query(pipelineProgressQuery);
    } catch {
      // Not answerable yet (the first workflow task has not run) or already closed: try again.
    }
    for (const s of progress?.stages ?? []) {
      const before = seen.get(s.stage);
      if (before === s.status) continue;
      seen.set(s.stage, s.status);
      if (s.status === 'running') emit(`[${s.stage}] started`);
      else if (s.status === 'done')
        emit(`[${s.stage}] done in ${formatSeconds(s.seconds ?? 0)}${s.note ? `: ${s.note}` : ''}`);
      else if (s.status === 'skipped' && before !== undefined) emit(`[${s.stage}] skipped (${s.note ?? ''})`);
    }
    const running = progress?.stages.find((s) => s.status === 'running');
    if (running && Date.now() - lastLine >= everyMs) {
      emit(
        `[${running.stage}] running for ${formatSeconds((Date.now() - (running.startedAtMs ?? Date.now())) / 1000)}`,
      );
    }
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        stop.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, 1000);
      stop.addEventListener('abort', wake);
    });
  }
}

/** Log messages whose fields make a progress line for people (see progressLine). */
const PROGRESS_MESSAGES = new Set([
  'training progress',
  'ranking progress',
  'generating preference images',
  'reward model epoch',
]);

export const stdoutLine = (line: string): void => console.log(line);

/** A one-line summary of a progress log entry, or undefined for other entries. */
export function progressLine(entry: Record<string, unknown>): string | undefined {
  const num = (key: string): number | undefined => (typeof entry[key] === 'number' ? entry[key] : undefined);
  switch (entry.msg) {
    case 'training progress': {
      const loss = num('loss');
      const rate = num('imagesPerSecond');
      return (
        `[${String(entry.stage)}] step ${num('step')}/${num('totalSteps')}` +
        `${loss === undefined ? '' : `, loss ${loss.toExponential(3)}`}` +
        `${rate === undefined ? '' : `, ${rate.toFixed(1)} img/s`}`
      );
    }
    case 'ranking progress': {
      const eta = num('etaSeconds');
      return (
        `[ranking] shard ${num('shardsDone')}/${num('shardsTotal')}, ${num('imagesPerSecond')} img/s` +
        `${eta === undefined ? '' : `, ETA ${formatSeconds(eta)}`}`
      );
    }
    case 'generating preference images': {
      const eta = num('etaSeconds');
      return `[preferences] image ${num('images')}/${num('total')}${eta === undefined ? '' : `, ETA ${formatSeconds(eta)}`}`;
    }
    case 'reward model epoch':
      return `[reward] epoch ${num('epoch')}, loss ${num('loss')?.toFixed(4)}`;
    default:
      return undefined;
  }
}

/**
 * The logger of `dro run`: structured entries go to stderr at DRO_LOG_LEVEL (default warn), and
 * progress entries of the activities become a line on `out` at most every `everyMs`. Written from
 * the log call itself, so the lines keep coming while a long compute step holds the event loop.
 * It also becomes the process-wide logger, so the engine's own entries (the backend it chose)
 * follow the same rule instead of printing JSON between the progress lines.
 */
export function commandLogger(out: (line: string) => void, everyMs = 15_000): Logger {
  const threshold = pinoLevel(process.env.DRO_LOG_LEVEL ?? 'warn');
  let last = 0;
  const log = createLogger({
    level: 'debug',
    destination: {
      write(line: string): void {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          process.stderr.write(line);
          return;
        }
        if (typeof entry.level === 'number' && entry.level >= threshold) process.stderr.write(line);
        if (!PROGRESS_MESSAGES.has(String(entry.msg)) || Date.now() - last < everyMs) return;
        const text = progressLine(entry);
        if (text) {
          last = Date.now();
          out(text);
        }
      },
    },
  });
  setRootLogger(log);
  return log;
}

function pinoLevel(name: string): number {
  const levels: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
  return levels[name] ?? 40;
}
