/** Helpers shared by every activity module: logging context, store error mapping, safe keys. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../infra/logger';
import { childLogger } from '../infra/logger';
import { isPermanent, StoreError } from '../storage/errors';

/** A logger carrying the workflow and activity of the current attempt. */
export function activityLogger(parent: Logger): Logger {
  const info = Context.current().info;
  return childLogger(parent, {
    workflowId: info.workflowExecution?.workflowId,
    runId: info.workflowExecution?.runId,
    activity: info.activityType,
    attempt: info.attempt,
  });
}

/** Store errors that retrying cannot fix become non-retryable failures with the store's error type. */
export async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StoreError && isPermanent(err)) {
      throw ApplicationFailure.create({
        message: err.message,
        type: err.type,
        nonRetryable: true,
        cause: err,
      });
    }
    throw err;
  }
}

/** Workflow ids may hold any character; artifact keys allow only a safe set. */
export function keySegment(id: string): string {
  return id.replace(/[^A-Za-z0-9._=+@,~-]/g, '_').replace(/^\./, '_');
}
