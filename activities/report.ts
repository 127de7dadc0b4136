/**
 * Per-execution records of a run: the report (`report.json`) and the manifest (`manifest.json`)
 * under `runs/<runId>/executions/<execution>/`. Each execution of a run (a first try, a resume)
 * writes its own, so none is ever replaced; a retried write of the same execution returns the one
 * already written.
 */
import type { ArtifactRef } from '../storage/artifact-store';
import { activityLogger, keySegment } from './common';
import { badInput, checkRunId, encodeJson, finished, putArtifact, type StageDeps } from './stage';

export interface WriteRunRecordInput {
  runId: string;
  /** The execution id (workflows/pipeline.ts executionId). */
  execution: string;
  /** JSON-serializable body. */
  report?: Record<string, unknown>;
  manifest?: Record<string, unknown>;
}

/** `runs/<runId>/executions/<execution>/<name>`. */
export function executionKey(runId: string, execution: string, name: string): string {
  return `runs/${keySegment(runId)}/executions/${keySegment(execution)}/${name}`;
}

export function createReportActivities(deps: StageDeps) {
  async function write(
    input: WriteRunRecordInput,
    name: string,
    kind: string,
    body: unknown,
  ): Promise<ArtifactRef> {
    const log = activityLogger(deps.logger);
    const runId = checkRunId(input.runId);
    if (typeof input.execution !== 'string' || input.execution === '')
      throw badInput('field "execution" must be a non-empty string');
    if (typeof body !== 'object' || body === null) throw badInput(`field "${kind}" must be an object`);
    const key = executionKey(runId, input.execution, name);
    const done = await finished(deps.store, key);
    if (done) {
      log.info({ uri: done.ref.uri }, `${kind} already written`);
      return done.ref;
    }
    const ref = await putArtifact(deps.store, key, encodeJson(body), { kind, producer: 'pipelineWorkflow' });
    log.info({ uri: ref.uri }, `${kind} written`);
    return ref;
  }
  return {
    async writeRunReport(input: WriteRunRecordInput): Promise<ArtifactRef> {
      return write(input, 'report.json', 'run-report', input.report);
    },
    async writeRunManifest(input: WriteRunRecordInput): Promise<ArtifactRef> {
      return write(input, 'manifest.json', 'run-manifest', input.manifest);
    },
  };
}
