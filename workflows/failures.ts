/**
 * How the workflows retry their activities and report what no retry can fix, in one place.
 *
 * Retry policies, by activity class (the attempts differ because a retry costs differently):
 * - `TRAINING_RETRY`, training chunks: 20 attempts. A retried chunk resumes from its newest
 *   committed checkpoint, so an attempt loses at most one checkpoint interval; a long training
 *   meets many worker restarts over its days.
 * - `SHARD_RETRY`, evaluation shards and their planning: 5 attempts. A shard is minutes of work
 *   and is recomputed whole.
 * - `STAGE_RETRY`, the pipeline's own stage activities: 3 attempts. Their failures are mostly bad
 *   input, which the non-retryable types end at once; the rest are store or worker hiccups.
 * - `LOOKUP_RETRY`, small I/O (resolving a run, writing a report): 5 attempts.
 *
 * Pure: workflows import it.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../contracts/errors';

const BACKOFF = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;

export function retryPolicy(
  maximumAttempts: number,
  nonRetryable: readonly string[] = NON_RETRYABLE_ERROR_TYPES,
) {
  return { ...BACKOFF, maximumAttempts, nonRetryableErrorTypes: [...nonRetryable] };
}

export const TRAINING_ATTEMPTS = 20;
export const SHARD_ATTEMPTS = 5;
export const STAGE_ATTEMPTS = 3;
export const LOOKUP_ATTEMPTS = 5;

/**
 * A permanent activity failure (marked non-retryable, or of a type in `permanentTypes`) becomes this
 * workflow's own non-retryable failure of the same type, its message prefixed with `what`, so the
 * run's error names the stage and the cause without the activity wrapping. Anything else is
 * returned unchanged.
 */
export function surfacePermanent(err: unknown, what: string, permanentTypes: readonly string[]): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    const cause = err.cause;
    if (cause.nonRetryable || (cause.type && permanentTypes.includes(cause.type)))
      return ApplicationFailure.create({
        message: `${what}: ${cause.message}`,
        type: cause.type ?? undefined,
        nonRetryable: true,
        details: cause.details ?? undefined,
        cause: err,
      });
  }
  return err;
}
