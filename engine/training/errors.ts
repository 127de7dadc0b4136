/** Errors of the training engine; each has a stable `type` for Temporal's non-retryable list. */

/** A loss, gradient or weight became NaN or Inf; retrying from the same checkpoint repeats it. */
export class NonFiniteTrainingError extends Error {
  override name = 'NonFiniteTrainingError';
  readonly type = 'NonFiniteTrainingError';
  constructor(
    readonly step: number,
    readonly what: string,
  ) {
    super(`${what} is not finite at micro-step ${step}; training stopped, the last good checkpoint is kept`);
  }
}

/** Training inputs that can never work (empty expert set, wrong image size, bad checkpoint). */
export class TrainingInputError extends Error {
  override name = 'TrainingInputError';
  readonly type = 'TrainingInputError';
}
