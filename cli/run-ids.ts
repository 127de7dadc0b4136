/** Run ids: what a new one looks like, what a command accepts, and where a run's records live. */
import { randomUUID } from 'node:crypto';
import { keySegment } from '../activities/common';
import type { PipelineConfig } from '../config/schemas';

/** Run ids are workflow ids and artifact key segments: keep them to a safe, bounded alphabet. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkRunIdArg(runId: string): string {
  if (!RUN_ID.test(runId))
    throw new Error(
      `run id ${JSON.stringify(runId)}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  return runId;
}

/**
 * An existing run's id as a command names it. Besides the ids `dro run` makes, Temporal Schedules
 * name their runs `<schedule>-<RFC 3339 time>`, with ':' in the time.
 */
const RUN_ID_REF = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function checkRunIdRef(runId: string): string {
  if (!RUN_ID_REF.test(runId))
    throw new Error(
      `run id ${JSON.stringify(runId)}: use 1-128 letters, digits, '.', '_', '-' or ':', starting with a letter or digit`,
    );
  return runId;
}

/** Where a run's records are in the artifact store (its id made a safe key segment, as stages do). */
export function runRecordsKey(runId: string): string {
  return `runs/${keySegment(runId)}`;
}

export function newRunId(config: PipelineConfig): string {
  const name =
    config.name
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64)
      .replace(/^[^A-Za-z0-9]+/, '') || 'run';
  return `${name}-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
}
