/**
 * The pipeline's own Prometheus series (docs/metrics.md lists them). They are recorded whether or
 * not an endpoint serves them: recording costs a Map lookup, and a process that turns metrics on
 * later in its life (a worker restarted with `--metrics`) starts from zero anyway.
 */
import { Registry } from './metrics';

/** The process-wide registry that `dro worker --metrics` and `dro run --metrics` serve. */
export const registry = new Registry();

/** Whether a stage's or shard's result was computed here or taken from what an earlier run stored. */
export type ReuseOutcome = 'computed' | 'reused';

/** Seconds per training micro-step: from a fraction of a second (tests) to minutes (SD 1.5 on CPU). */
const STEP_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export const trainingSteps = registry.counter<'stage'>({
  name: 'dro_training_steps_total',
  help: 'Training micro-steps completed in this process, by training stage.',
  labelNames: ['stage'],
});

export const trainingStepSeconds = registry.histogram<'stage'>({
  name: 'dro_training_step_seconds',
  help: 'Wall time of one training micro-step (averaged over each optimizer update), by training stage.',
  labelNames: ['stage'],
  buckets: STEP_SECONDS_BUCKETS,
});

export const trainingImagesPerSecond = registry.gauge<'stage'>({
  name: 'dro_training_images_per_second',
  help: 'Training throughput over the latest optimizer update, by training stage.',
  labelNames: ['stage'],
});

export const trainingLoss = registry.gauge<'stage'>({
  name: 'dro_training_loss',
  help: 'Loss of the latest optimizer update, by training stage.',
  labelNames: ['stage'],
});

export const stageCacheLookups = registry.counter<'stage' | 'outcome'>({
  name: 'dro_stage_cache_lookups_total',
  help: 'Stage cache lookups: reused (a verified cached outcome) or computed (the stage runs).',
  labelNames: ['stage', 'outcome'],
});

export const stageSeconds = registry.counter<'stage' | 'outcome'>({
  name: 'dro_stage_seconds_total',
  help: 'Seconds from stage cache lookup to the stage outcome (commit, or the verified hit), by stage and outcome.',
  labelNames: ['stage', 'outcome'],
});

export const stageCompletions = registry.counter<'stage' | 'outcome'>({
  name: 'dro_stage_completions_total',
  help: 'Stages finished whose time is in dro_stage_seconds_total, by stage and outcome.',
  labelNames: ['stage', 'outcome'],
});

export const artifactBytesRead = registry.counter<'store'>({
  name: 'dro_artifact_bytes_read_total',
  help: 'Verified artifact bytes read from the artifact store, by store kind (local, s3).',
  labelNames: ['store'],
});

export const artifactBytesWritten = registry.counter<'store'>({
  name: 'dro_artifact_bytes_written_total',
  help: 'Artifact bytes committed to the artifact store, by store kind (local, s3).',
  labelNames: ['store'],
});

export const evaluationShards = registry.counter<'outcome'>({
  name: 'dro_evaluation_shards_total',
  help: 'Evaluation shards finished: computed (images generated and judged) or reused (committed or content-keyed).',
  labelNames: ['outcome'],
});

export const evaluationImages = registry.counter<'outcome'>({
  name: 'dro_evaluation_images_total',
  help: 'Images of the finished evaluation shards, by outcome.',
  labelNames: ['outcome'],
});

/**
 * A recorder for one training activity's progress reports (one per optimizer update): counts the
 * micro-steps since the previous report and spreads the update's wall time evenly over them.
 */
export function trainingProgressRecorder(
  stage: string,
  fromStep: number,
): (p: { step: number; imagesPerSecond: number; loss?: number | undefined }) => void {
  let lastStep = fromStep;
  let lastMs = performance.now();
  const labels = { stage };
  return (p) => {
    const now = performance.now();
    const steps = p.step - lastStep;
    if (steps > 0) {
      trainingSteps.inc(labels, steps);
      const perStep = (now - lastMs) / 1000 / steps;
      for (let i = 0; i < steps; i++) trainingStepSeconds.observe(labels, perStep);
    }
    lastStep = p.step;
    lastMs = now;
    if (Number.isFinite(p.imagesPerSecond)) trainingImagesPerSecond.set(labels, p.imagesPerSecond);
    if (typeof p.loss === 'number' && Number.isFinite(p.loss)) trainingLoss.set(labels, p.loss);
  };
}

/** One evaluation shard finished with `images` images. */
export function recordEvaluationShard(outcome: ReuseOutcome, images: number): void {
  evaluationShards.inc({ outcome });
  evaluationImages.inc({ outcome }, images);
}
