/**
 * The run report: one small JSON artifact (`runs/<runId>/report.json`) that ties a run together:
 * every stage's artifact references, the reward model's accuracy, the training summaries and wall
 * times. Written once; a retry returns the report already written.
 */
import type { ArtifactRef } from '../storage/artifact-store';
import { activityLogger } from './common';
import { checkRunId, encodeJson, finished, putArtifact, runKey, type StageDeps } from './stage';

export interface WriteRunReportInput {
  runId: string;
  /** The report body (see workflows/pipeline-types.ts RunReport); JSON-serializable. */
  report: Record<string, unknown>;
}

export function createReportActivities(deps: StageDeps) {
  return {
    async writeRunReport(input: WriteRunReportInput): Promise<ArtifactRef> {
      const log = activityLogger(deps.logger);
      const runId = checkRunId(input.runId);
      const key = runKey(runId, 'report', 'report.json');
      const done = await finished(deps.store, key);
      if (done) {
        log.info({ uri: done.ref.uri }, 'run report already written');
        return done.ref;
      }
      const ref = await putArtifact(deps.store, key, encodeJson(input.report), {
        kind: 'run-report',
        producer: 'pipelineWorkflow',
      });
      log.info({ uri: ref.uri }, 'run report written');
      return ref;
    },
  };
}
