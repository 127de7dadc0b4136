/**
 * The contract of the smoke workflow (workflows/smoke.ts): its input, result, the signal that ends
 * its wait and the query of where it is.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export interface SmokeInput {
  /** Text written by the first activity and expected back by the second. Default: `dro smoke`. */
  message?: string;
  /** Longest wait between the activities, in ms; the `continueSmoke` signal ends it early. Default: 1000. */
  pauseMs?: number;
}

export interface SmokeResult {
  uri: string;
  /** Hex SHA-256 of the artifact. */
  sha256: string;
  size: number;
}

export type SmokeStage = 'writing' | 'waiting' | 'verifying' | 'done';

/** Ends the wait between the two activities. */
export const continueSmokeSignal = defineSignal('continueSmoke');
/** Where the workflow is; `waiting` means the artifact is written and the verifier has not run. */
export const smokeStageQuery = defineQuery<SmokeStage>('smokeStage');
