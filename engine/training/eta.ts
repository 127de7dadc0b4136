/**
 * Training speed over a moving window of recent progress, and the time left at that speed. A window
 * (rather than the average since the start) follows a speed that changes: a cold start, a
 * checkpoint write, another job on the same accelerator.
 */

export interface ProgressSample {
  step: number;
  /** Monotonic time of the sample, in milliseconds. */
  timeMs: number;
}

export interface Eta {
  stepsPerSecond: number;
  /** Seconds until `totalSteps` at the current speed. */
  remainingSeconds: number;
}

/**
 * Speed between the oldest and newest of `samples` (oldest first) and the time left to
 * `totalSteps`; undefined until two samples at different times and steps exist.
 */
export function estimateEta(samples: readonly ProgressSample[], totalSteps: number): Eta | undefined {
  const first = samples[0];
  const last = samples.at(-1);
  if (first === undefined || last === undefined) return undefined;
  const seconds = (last.timeMs - first.timeMs) / 1000;
  const steps = last.step - first.step;
  if (!(seconds > 0) || !(steps > 0)) return undefined;
  const stepsPerSecond = steps / seconds;
  return { stepsPerSecond, remainingSeconds: Math.max(0, totalSteps - last.step) / stepsPerSecond };
}

/** Keeps the samples of the last `windowMs` (plus the one just before, so the span is a full window). */
export class StepRateWindow {
  private readonly samples: ProgressSample[] = [];

  constructor(private readonly windowMs = 60_000) {}

  record(step: number, timeMs: number): void {
    const last = this.samples.at(-1);
    // A restored or repeated step starts a new measurement rather than a negative speed.
    if (last !== undefined && (step < last.step || timeMs < last.timeMs)) this.samples.length = 0;
    this.samples.push({ step, timeMs });
    const horizon = timeMs - this.windowMs;
    while (this.samples.length > 2 && this.samples[1]!.timeMs <= horizon) this.samples.shift();
  }

  estimate(totalSteps: number): Eta | undefined {
    return estimateEta(this.samples, totalSteps);
  }
}

/** `42s`, `3m 05s`, `2h 07m`, `3d 04h`: short enough for a log line, precise enough to plan by. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  const s = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor((s % 86_400) / 3600))}h`;
}
