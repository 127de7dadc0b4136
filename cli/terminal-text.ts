/**
 * Text that reaches the user's terminal: control characters escaped (a config key holding an
 * escape sequence must not clear the screen), errors printed with their whole cause chain.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  TimeoutFailure,
} from '@temporalio/common';

// C0 and C1 controls except tab and newline, plus the bidirectional overrides that reorder text.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Replaces control characters with visible `\uXXXX` escapes. Newlines are kept unless
 * `keepNewlines` is false (one problem per line).
 */
export function escapeControl(text: string, keepNewlines = true): string {
  const escaped = text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return keepNewlines ? escaped : escaped.replace(/\n/g, '\\n');
}

/** The most causes followed; a cycle or a pathological chain stops there. */
const MAX_CAUSES = 16;

function describeOne(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let text = err.message || err.name;
  if (err instanceof ActivityFailure) text = `activity ${err.activityType} failed`;
  else if (err instanceof ChildWorkflowFailure)
    text = `child workflow ${err.execution.workflowId} (${err.workflowType}) failed`;
  else if (err instanceof TimeoutFailure) text = `${err.message || 'timed out'} (${err.timeoutType})`;
  else if (err instanceof ApplicationFailure && err.type && err.type !== 'Error') text += ` [${err.type}]`;
  return text;
}

/**
 * An error and every cause under it, one per line, outermost first, without stack traces:
 *
 *   Workflow execution failed
 *     caused by: activity importBaseModel failed
 *     caused by: model.baseCheckpoint: cannot read ... (no such file) [SourceNotFound]
 *
 * Temporal wraps an activity's own message two or three levels deep (WorkflowFailedError ->
 * ActivityFailure -> ApplicationFailure); the innermost message is the one that names the problem.
 */
export function formatErrorChain(err: unknown): string {
  const lines: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current) && lines.length < MAX_CAUSES) {
    seen.add(current);
    const text = escapeControl(describeOne(current));
    // Skip a cause that only repeats its parent's message.
    if (lines.length === 0 || !lines[lines.length - 1]!.endsWith(text))
      lines.push(lines.length === 0 ? text : `  caused by: ${text}`);
    if (current instanceof AggregateError) {
      for (const inner of current.errors.slice(0, MAX_CAUSES))
        lines.push(`  caused by: ${escapeControl(describeOne(inner))}`);
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join('\n');
}
