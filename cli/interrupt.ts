/**
 * Ctrl-C while a command waits for a workflow: the first SIGINT or SIGTERM stops the wait (and the
 * workers of this process), the workflow stays on the cluster, and one line says how to continue.
 */
/** Raised when the user interrupts a run; the workflow's history stays on the cluster. */
export class RunInterruptedError extends Error {
  override name = 'RunInterruptedError';
  constructor(
    message: string,
    /** The workflow left open (the run id for a pipeline run), once it was known. */
    readonly workflowId?: string,
  ) {
    super(message);
  }
}

/** An AbortSignal fired by the first SIGINT/SIGTERM; the handlers go away with `dispose`. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** What to do about a workflow left open by an interrupt: continue a pipeline run, end anything else. */
export type InterruptHint = 'resume' | 'cancel' | 'follow';

/** The line printed when the user interrupts a command that waits for a workflow. */
export function interruptedMessage(workflowId: string | undefined, hint: InterruptHint = 'resume'): string {
  if (workflowId === undefined)
    return 'Interrupted: the workers stopped; see `dro runs list --status running` for a run left open.';
  if (hint === 'follow')
    return (
      `Stopped following: run ${workflowId} goes on with the cluster's workers. ` +
      `Follow it again with \`dro status ${workflowId} --follow\`, or stop it with \`dro cancel ${workflowId}\`.`
    );
  return hint === 'resume'
    ? `Interrupted: the workers stopped, run ${workflowId} stays open on the Temporal cluster with its history. ` +
        `Continue it with \`dro resume ${workflowId} --attach\`, or end it with \`dro cancel ${workflowId} --force\`.`
    : `Interrupted: the workers stopped, workflow ${workflowId} stays open on the Temporal cluster. ` +
        `End it with \`dro cancel ${workflowId} --force\`.`;
}

export async function runInterruptibly(
  run: (signal: AbortSignal) => Promise<unknown>,
  hint: InterruptHint = 'resume',
): Promise<void> {
  const interrupt = interruptSignal();
  try {
    await run(interrupt.signal);
  } catch (err) {
    if (err instanceof RunInterruptedError) {
      console.error(interruptedMessage(err.workflowId, hint));
      process.exitCode = 130;
      return;
    }
    throw err;
  } finally {
    interrupt.dispose();
  }
}
