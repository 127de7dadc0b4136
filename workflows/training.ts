/**
 * The training workflow: SFT, Diffusion-DRO or Diffusion-DPO as a loop of `trainChunk` activities of
 * `stepsPerActivity` micro-steps each, then `finalizeTraining`. Only artifact references pass
 * through here. Every chunk starts from the previous chunk's checkpoint; a chunk whose worker dies
 * is retried after `heartbeatTimeoutSeconds` and resumes from the newest checkpoint the dead attempt
 * committed (heartbeated or found in the store, see activities/training.ts).
 * The run continues as new every `chunksPerRun` chunks (or when the server suggests it), so the
 * history stays far below Temporal's 51,200-event limit however long the training is.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TrainingActivities } from '../activities/training';
import { TRAINING_ATTEMPTS, retryPolicy, surfacePermanent } from './failures';
import type { ArtifactRef } from '../storage/artifact-store';
import type { MetricRow } from '../engine/training/trainer';
import { TASK_QUEUES } from '../contracts/task-queues';
import {
  STAGE_METHOD,
  TRAINING_NON_RETRYABLE_ERROR_TYPES,
  trainingProgressQuery,
  type ChunkRecord,
  type TrainChunkResult,
  type TrainingWorkflowInput,
  type TrainingWorkflowResult,
} from '../contracts/training';
import { DRO_STAGE } from '../contracts/search-attributes';

const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 30;
const DEFAULT_CHUNKS_PER_RUN = 100;
/** Chunk records carried through continue-as-new and into the summary; older ones are dropped. */
const MAX_CHUNK_RECORDS = 500;

function inputError(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`training workflow: ${message}`, 'TrainingInputError');
}

function validate(input: TrainingWorkflowInput): void {
  const s = input.settings;
  const method = STAGE_METHOD[input.stage];
  if (method === undefined) throw inputError(`unknown stage '${input.stage}'`);
  if (s.method !== method)
    throw inputError(`stage '${input.stage}' needs method '${method}', got '${s.method}'`);
  if (!Number.isInteger(s.steps) || s.steps <= 0)
    throw inputError(`settings.steps must be a positive integer`);
  const ga = s.gradientAccumulation;
  if (
    !Number.isInteger(input.stepsPerActivity) ||
    input.stepsPerActivity <= 0 ||
    input.stepsPerActivity % ga
  ) {
    throw inputError(
      `stepsPerActivity (${input.stepsPerActivity}) must be a positive multiple of gradientAccumulation (${ga})`,
    );
  }
  if (s.steps % ga !== 0)
    throw inputError(`settings.steps (${s.steps}) must be a multiple of gradientAccumulation (${ga})`);
  if (
    input.resume &&
    (input.resume.step < 0 || input.resume.step > s.steps || input.resume.step % ga !== 0)
  ) {
    throw inputError(`resume.step ${input.resume.step} is not an update boundary within [0, ${s.steps}]`);
  }
}

/** A permanent activity failure surfaces as this workflow's own non-retryable failure of that type. */
function surface(err: unknown, stage: string): unknown {
  return surfacePermanent(err, `${stage} training`, TRAINING_NON_RETRYABLE_ERROR_TYPES);
}

export async function trainingWorkflow(input: TrainingWorkflowInput): Promise<TrainingWorkflowResult> {
  validate(input);
  const { stage, settings } = input;
  const totalSteps = settings.steps;
  const heartbeatSeconds = input.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS;
  const retry = retryPolicy(TRAINING_ATTEMPTS, TRAINING_NON_RETRYABLE_ERROR_TYPES);
  const { trainChunk } = proxyActivities<TrainingActivities>({
    taskQueue: input.taskQueues?.gpu ?? TASK_QUEUES.gpu,
    // A chunk's length is open-ended; lost workers are detected by the heartbeat timeout.
    startToCloseTimeout: '7 days',
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    // Let the chunk reach an update boundary and write its checkpoint before the workflow ends.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry,
  });
  // Both heartbeat too: a worker that dies in them is noticed within the heartbeat timeout, not
  // after the start-to-close timeout.
  const { finalizeTraining, findCheckpoint } = proxyActivities<TrainingActivities>({
    taskQueue: input.taskQueues?.gpu ?? TASK_QUEUES.gpu,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    retry,
  });

  let step = input.resume?.step ?? 0;
  let checkpoint: ArtifactRef | undefined = input.resume?.checkpoint;
  if (!input.resume && input.out !== undefined) {
    // A stage output prefix is keyed by the stage's inputs and settings: checkpoints found there
    // were written by an interrupted execution of this very training, so it continues from them.
    const earlier = await findCheckpoint({
      runId: input.runId,
      stage,
      out: input.out,
      startModel: input.startModel,
      data: input.data,
      maxStep: totalSteps,
    });
    if (earlier) ({ step, checkpoint } = earlier);
  }
  let lastMetrics: MetricRow | undefined;
  const chunks: ChunkRecord[] = [...(input.resume?.chunks ?? [])];
  let totalChunks = input.resume?.totalChunks ?? chunks.length;
  const startedAtMs = input.resume?.startedAtMs ?? Date.now();
  setHandler(trainingProgressQuery, () => ({ stage, step, totalSteps, lastMetrics, checkpoint }));
  const publish = (): void => {
    upsertSearchAttributes([{ key: DRO_STAGE, value: `${stage}:${step}/${totalSteps}` }]);
  };
  publish();

  const chunksPerRun = input.chunksPerRun ?? DEFAULT_CHUNKS_PER_RUN;
  let chunksThisRun = 0;
  while (step < totalSteps) {
    if (checkpoint && (chunksThisRun >= chunksPerRun || workflowInfo().continueAsNewSuggested)) {
      await continueAsNew<typeof trainingWorkflow>({
        ...input,
        resume: { checkpoint, step, chunks, totalChunks, startedAtMs },
      });
    }
    let result: TrainChunkResult;
    try {
      result = await trainChunk({
        runId: input.runId,
        stage,
        ...(input.out !== undefined && { out: input.out }),
        ...(input.backend !== undefined && { backend: input.backend }),
        ...(input.heartbeatSeconds !== undefined && { heartbeatSeconds: input.heartbeatSeconds }),
        settings,
        startModel: input.startModel,
        data: input.data,
        fromCheckpoint: checkpoint,
        untilStep: Math.min(totalSteps, step + input.stepsPerActivity),
        keepCheckpoints: input.keepCheckpoints,
      });
    } catch (err) {
      // A cancelled chunk names the checkpoint it stopped at; keep it visible to queries.
      const cancelled = err instanceof ActivityFailure ? err.cause : err;
      if (cancelled instanceof CancelledFailure) {
        const at = cancelled.details[0] as { checkpoint?: ArtifactRef; step?: number } | undefined;
        if (at?.checkpoint && typeof at.step === 'number') {
          checkpoint = at.checkpoint;
          step = at.step;
          publish();
        }
      }
      throw surface(err, stage);
    }
    step = result.step;
    checkpoint = result.checkpoint;
    lastMetrics = result.lastMetrics;
    chunks.push(result.record);
    totalChunks++;
    if (chunks.length > MAX_CHUNK_RECORDS) chunks.shift();
    chunksThisRun++;
    publish();
  }
  if (!checkpoint) throw inputError('no checkpoint to finalize (settings.steps is 0?)');

  const lastCheckpoint = checkpoint;
  let final;
  try {
    final = await finalizeTraining({
      runId: input.runId,
      stage,
      ...(input.out !== undefined && { out: input.out }),
      ...(input.backend !== undefined && { backend: input.backend }),
      startModel: input.startModel,
      data: input.data,
      checkpoint: lastCheckpoint,
      chunks,
      totalChunks,
      startedAtMs,
      finishedAtMs: Date.now(),
    });
  } catch (err) {
    throw surface(err, stage);
  }
  return { stage, steps: step, model: final.model, unet: final.unet, summary: final.summary, lastCheckpoint };
}
