/**
 * Smoke activities: the first writes a small artifact on the compute queue, the second reads it
 * back on the I/O queue and checks it. Together they prove that workers, task queues, the
 * artifact store and durable history fit together.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../infra/logger';
import type { ArtifactStore } from '../storage/artifact-store';
import { activityLogger, keySegment, storeCall } from './common';

export interface SmokeDeps {
  store: ArtifactStore;
  logger: Logger;
}

export interface WriteSmokeInput {
  /** Text stored in the artifact and expected back by the verifier. */
  message: string;
}

/** Reference to the smoke artifact, passed between activities instead of its bytes. */
export interface SmokeArtifact {
  uri: string;
  /** Hex SHA-256 of the artifact bytes. */
  sha256: string;
  size: number;
}

export interface VerifySmokeInput {
  artifact: SmokeArtifact;
  message: string;
}

interface SmokePayload {
  message: string;
  workflowId: string;
  workflowRunId: string;
}

/** Stable failure types of the smoke activities. */
export const SMOKE_ERRORS = {
  mismatch: 'SmokeArtifactMismatch',
  badInput: 'SmokeBadInput',
} as const;

function workflowIds(): { workflowId: string; workflowRunId: string } {
  const execution = Context.current().info.workflowExecution;
  if (!execution) {
    throw ApplicationFailure.nonRetryable(
      'smoke activities must run inside a workflow',
      SMOKE_ERRORS.badInput,
    );
  }
  return { workflowId: execution.workflowId, workflowRunId: execution.runId };
}

export function createSmokeActivities(deps: SmokeDeps) {
  return {
    /** Writes `{message, workflowId, workflowRunId}` as JSON; a retry finds and returns the same artifact. */
    async writeSmokeArtifact(input: WriteSmokeInput): Promise<SmokeArtifact> {
      const log = activityLogger(deps.logger);
      if (typeof input.message !== 'string' || input.message.length === 0) {
        throw ApplicationFailure.nonRetryable(
          'writeSmokeArtifact: field "message" must be a non-empty string',
          SMOKE_ERRORS.badInput,
        );
      }
      const ids = workflowIds();
      const payload: SmokePayload = { message: input.message, ...ids };
      const key = `smoke/${keySegment(ids.workflowId)}/${keySegment(ids.workflowRunId)}.json`;
      const bytes = new TextEncoder().encode(JSON.stringify(payload));
      const existing = await storeCall(() => deps.store.head(key));
      if (existing) {
        log.info({ uri: existing.ref.uri }, 'smoke artifact already written by an earlier attempt');
        return { uri: existing.ref.uri, sha256: existing.ref.sha256, size: existing.ref.size };
      }
      const ref = await storeCall(() =>
        deps.store.put(key, bytes, { kind: 'smoke', producer: 'writeSmokeArtifact' }),
      );
      log.info({ uri: ref.uri, sha256: ref.sha256, size: ref.size }, 'smoke artifact written');
      return { uri: ref.uri, sha256: ref.sha256, size: ref.size };
    },

    /** Reads the artifact (the store checks its digest) and checks that it holds what was written. */
    async verifySmokeArtifact(input: VerifySmokeInput): Promise<SmokeArtifact> {
      const log = activityLogger(deps.logger);
      const bytes = await storeCall(() => deps.store.get(input.artifact.uri, input.artifact.sha256));
      let payload: SmokePayload;
      try {
        payload = JSON.parse(new TextDecoder().decode(bytes)) as SmokePayload;
      } catch (err) {
        throw ApplicationFailure.nonRetryable(
          `smoke artifact ${input.artifact.uri} is not JSON: ${(err as Error).message}`,
          SMOKE_ERRORS.mismatch,
        );
      }
      const ids = workflowIds();
      if (payload.message !== input.message || payload.workflowId !== ids.workflowId) {
        throw ApplicationFailure.nonRetryable(
          `smoke artifact ${input.artifact.uri} holds message ${JSON.stringify(payload.message)} of workflow ` +
            `${payload.workflowId}, expected ${JSON.stringify(input.message)} of ${ids.workflowId}`,
          SMOKE_ERRORS.mismatch,
        );
      }
      log.info({ uri: input.artifact.uri, sha256: input.artifact.sha256 }, 'smoke artifact verified');
      return { uri: input.artifact.uri, sha256: input.artifact.sha256, size: bytes.byteLength };
    },
  };
}
