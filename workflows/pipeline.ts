/**
 * The pipeline: walks the stage graph (workflows/stage-graph.ts), starting every stage whose
 * inputs exist, so independent branches run at once (the DPO baseline beside SFT -> DRO).
 *
 * Every cached stage first asks the stage cache (`lookupStage`): a verified entry for the same
 * (stage, version, config slice, input digests) returns its outputs without running anything, not
 * even a training child; otherwise the stage runs, writing under the key's own prefix, and its
 * entry is committed last (`commitStage`). A restarted run with the same run id therefore redoes
 * only what did not finish, and a training stage that was interrupted continues from the
 * checkpoints under its prefix.
 *
 * When a stage fails, no new stage starts, those running finish, the run's manifest is written with
 * status `failed`, and the failure is rethrown. The workflow upserts `DroStage` as stages start and
 * answers `pipelineProgress`.
 */
import {
  ApplicationFailure,
  executeChild,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { StageOutcome } from '../activities/stage-cache';
import type { PipelineConfig } from '../config/schemas';
import { STAGE_ATTEMPTS, retryPolicy } from './failures';
import { TASK_QUEUES, WORKFLOW_TASK_TIMEOUT, type RunTaskQueues } from '../contracts/task-queues';
import type { TrainingSettings } from '../engine/training/methods';
import type { ArtifactRef } from '../storage/artifact-store';
import {
  pipelineProgressQuery,
  type PipelineInput,
  type PipelineResult,
  type RunManifest,
  type RunReport,
  type StageRecord,
} from '../contracts/pipeline';
import type { StageName } from '../contracts/stages';
import { parseInputRef, skippedStages, STAGES, topologicalOrder } from './stage-graph';
import type { TrainingStage, TrainingWorkflowInput, TrainingWorkflowResult } from '../contracts/training';
import {
  evaluationBaseline,
  runEvaluationSettings,
  type EvaluationInput,
  type EvaluationResult,
} from '../contracts/evaluation';
import { DRO_CONFIG_HASH, DRO_CONFIG_NAME, DRO_RUN_ID, DRO_STAGE } from '../contracts/search-attributes';

/** Activities the ranking's shards are split over. */
const RANKING_PARTS = 4;

type TrainingWorkflowFn = (input: TrainingWorkflowInput) => Promise<TrainingWorkflowResult>;
type EvaluationWorkflowFn = (input: EvaluationInput) => Promise<EvaluationResult>;

function heartbeatTimeoutSeconds(config: PipelineConfig): number {
  return Math.max(60, Math.ceil(config.workers.heartbeatSeconds * 6));
}

function activityProxies(config: PipelineConfig, queues: RunTaskQueues) {
  const heartbeatTimeout = `${heartbeatTimeoutSeconds(config)} seconds`;
  const retry = retryPolicy(STAGE_ATTEMPTS);
  return {
    compute: proxyActivities<activities.Activities>({
      taskQueue: queues.gpu,
      startToCloseTimeout: '6 hours',
      heartbeatTimeout,
      retry,
    }),
    io: proxyActivities<activities.Activities>({
      taskQueue: queues.cpu,
      startToCloseTimeout: '1 hour',
      heartbeatTimeout,
      retry,
    }),
  };
}

/** The child workflow id of a training stage: stable per run, so a restarted pipeline finds it. */
export function trainingWorkflowId(runId: string, stage: TrainingStage): string {
  return `${runId}-train-${stage}`;
}

type CommonTraining = Pick<
  PipelineConfig['sft'],
  | 'steps'
  | 'learningRate'
  | 'weightDecay'
  | 'batchSize'
  | 'gradientAccumulation'
  | 'maxGradNorm'
  | 'promptDropout'
  | 'randomFlip'
  | 'emaDecay'
  | 'checkpointEvery'
  | 'precision'
>;

function common(seed: number, c: CommonTraining) {
  return {
    seed,
    steps: c.steps,
    learningRate: c.learningRate,
    weightDecay: c.weightDecay,
    batchSize: c.batchSize,
    gradientAccumulation: c.gradientAccumulation,
    maxGradNorm: c.maxGradNorm,
    promptDropout: c.promptDropout,
    randomFlip: c.randomFlip,
    emaDecay: c.emaDecay,
    checkpointEvery: c.checkpointEvery,
    // Only when set, so training settings (and checkpoints) of fp32 configs are as before.
    ...(c.precision ? { precision: c.precision } : {}),
  };
}

/** The training settings of each stage, from the config. */
export function trainingSettings(config: PipelineConfig, stage: TrainingStage): TrainingSettings {
  switch (stage) {
    case 'pretrain': {
      const p = config.pretrain;
      return {
        method: 'sft',
        ...common(config.seed, {
          ...p,
          weightDecay: 0.01,
          maxGradNorm: 1,
          // Pretraining images are captioned scenes; a flip would contradict "left of"/"right of".
          randomFlip: false,
        }),
      };
    }
    case 'sft':
      return { method: 'sft', ...common(config.seed, config.sft) };
    case 'dro': {
      const d = config.dro;
      return {
        method: 'dro',
        ...common(config.seed, d),
        margin: d.margin,
        bufferSize: d.bufferSize,
        bufferBatchSize: d.bufferBatchSize,
        bufferSampleSteps: d.bufferSampleSteps,
        bufferUpdateSteps: d.bufferUpdateSteps,
        samplerSteps: d.samplerSteps,
        bufferGuidanceScale: d.bufferGuidanceScale,
        bufferSampler: d.bufferSampler,
        ...(d.bufferDraw ? { bufferDraw: d.bufferDraw } : {}),
      };
    }
    case 'dpo':
      return { method: 'dpo', ...common(config.seed, config.dpo), beta: config.dpo.beta };
  }
}

/** `20261130T120501-<first 8 of the execution's run id>`: names this execution's report and manifest. */
function executionId(startedMs: number): string {
  const stamp = new Date(startedMs).toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${stamp}-${workflowInfo().runId.slice(0, 8)}`;
}

function errorMessage(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  let cause = err instanceof Error ? (err.cause as unknown) : undefined;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    if (cause.message && !message.includes(cause.message)) message += `: ${cause.message}`;
    cause = cause.cause as unknown;
  }
  return message;
}

export async function pipelineWorkflow(input: PipelineInput): Promise<PipelineResult> {
  const { config } = input;
  // A scheduled run has no id of its own but its workflow id (the schedule's id plus a timestamp).
  const runId = input.runId || workflowInfo().workflowId;
  const queues = input.taskQueues ?? TASK_QUEUES;
  const { compute, io } = activityProxies(config, queues);
  const backend = config.workers.backend;
  const started = Date.now();
  const execution = executionId(started);
  const order = topologicalOrder(config);
  if (!order) throw ApplicationFailure.nonRetryable('the stage graph has a cycle', 'PipelineBadInput');
  const skipped = skippedStages(config);
  const records = new Map<StageName, StageRecord>(
    order.map((stage) => [stage, { stage, status: 'pending' }]),
  );
  for (const [stage, note] of skipped) Object.assign(records.get(stage)!, { status: 'skipped', note });
  const outcomes = new Map<StageName, StageOutcome>();
  const running = (): StageName[] =>
    [...records.values()].filter((r) => r.status === 'running').map((r) => r.stage);

  setHandler(pipelineProgressQuery, () => {
    const now = running();
    const done = [...records.values()].every((r) => r.status !== 'pending' && r.status !== 'running');
    return {
      runId,
      stage: done ? 'done' : (now[0] ?? 'pending'),
      running: now,
      stages: [...records.values()],
    };
  });
  upsertSearchAttributes([
    { key: DRO_RUN_ID, value: runId },
    { key: DRO_CONFIG_NAME, value: config.name },
    ...(input.provenance ? [{ key: DRO_CONFIG_HASH, value: input.provenance.configHash }] : []),
  ]);
  const publish = (): void => {
    upsertSearchAttributes([{ key: DRO_STAGE, value: running().join(',') || 'done' }]);
  };

  const childAttributes = () => [
    { key: DRO_RUN_ID, value: runId },
    { key: DRO_CONFIG_NAME, value: config.name },
    ...(input.provenance ? [{ key: DRO_CONFIG_HASH, value: input.provenance.configHash }] : []),
  ];

  const forced = (stage: StageName): boolean =>
    input.rerun === 'all' || (Array.isArray(input.rerun) && input.rerun.includes(stage));

  const train = async (
    stage: TrainingStage,
    inputs: Record<string, ArtifactRef>,
    out: string,
    stepsPerActivity: number,
  ): Promise<StageOutcome> => {
    const workflowId = trainingWorkflowId(runId, stage);
    records.get(stage)!.childWorkflowId = workflowId;
    const result = await executeChild<TrainingWorkflowFn>('trainingWorkflow', {
      workflowId,
      taskQueue: queues.cpu,
      workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
      typedSearchAttributes: childAttributes(),
      args: [
        {
          runId,
          stage,
          out,
          taskQueues: queues,
          backend,
          heartbeatSeconds: config.workers.heartbeatSeconds,
          settings: trainingSettings(config, stage),
          startModel: inputs.start!,
          data: inputs.data!,
          stepsPerActivity,
          heartbeatTimeoutSeconds: heartbeatTimeoutSeconds(config),
        },
      ],
    });
    return {
      outputs: {
        model: result.model,
        unet: result.unet,
        summary: result.summary,
        lastCheckpoint: result.lastCheckpoint,
      },
      details: { steps: result.steps },
      note: `${result.steps} steps`,
    };
  };

  /** What each stage computes on a cache miss. `out` is where it writes. */
  const runners: Record<
    Exclude<StageName, 'report'>,
    (inputs: Record<string, ArtifactRef>, out: string) => Promise<StageOutcome>
  > = {
    base: async (_inputs, out): Promise<StageOutcome> => {
      if (config.model.baseCheckpoint) {
        const sha256 = config.model.baseCheckpointSha256;
        const r = await io.importBaseModel({
          runId,
          out,
          uri: config.model.baseCheckpoint,
          ...(sha256 !== undefined && { sha256 }),
        });
        return {
          outputs: { model: r.model },
          details: { source: r.source, sampleSize: r.sampleSize, inChannels: r.inChannels },
          note: `imported ${r.source}`,
        };
      }
      if (config.data.source !== 'world') {
        throw ApplicationFailure.nonRetryable(
          `data.source '${config.data.source}' needs model.baseCheckpoint: only the built-in world can pretrain its own base model`,
          'PipelineBadInput',
        );
      }
      const w = await compute.prepareWorld({
        runId,
        out,
        seed: config.seed,
        unet: config.model.unet,
        resolution: config.model.resolution,
        captionNoise: config.data.captionNoise,
        corpusSize: config.pretrain.corpusSize,
        backend,
      });
      return {
        outputs: { corpus: w.corpus, initialModel: w.model },
        details: { corpusSize: w.corpusSize, captionKinds: w.captionKinds },
        note: `corpus of ${w.corpusSize} images`,
      };
    },
    pretrain: (inputs, out) => train('pretrain', inputs, out, config.pretrain.stepsPerActivity),
    preferences: async (inputs, out) => {
      const p =
        config.data.source === 'world'
          ? await compute.simulatePreferences({
              runId,
              out,
              seed: config.seed,
              baseModel: inputs.baseModel!,
              prompts: config.data.prompts,
              steps: config.data.samplerSteps,
              guidanceScale: config.data.guidanceScale,
              // Passed only when set, so runs without them send (and replay) the same input as before.
              ...(config.data.generators && { generators: config.data.generators }),
              ...(config.data.promptSplit !== undefined && { promptSplit: config.data.promptSplit }),
              backend,
            })
          : await io.importPreferences({
              runId,
              out,
              source: config.data.source,
              paths: config.data.paths,
              onBadRow: config.data.onBadRow,
            });
      return {
        outputs: { preferences: p.preferences },
        details: {
          rows: p.rows,
          comparisons: p.comparisons,
          prompts: p.prompts,
          skipped: p.skipped,
          ...(p.generators && { generators: p.generators }),
        },
        note: `${p.rows} rows, ${p.comparisons} comparisons${p.skipped ? `, ${p.skipped} bad rows skipped` : ''}`,
      };
    },
    reward: async (inputs, out) => {
      const r = await compute.trainRewardModel({
        runId,
        out,
        seed: config.seed,
        kind: config.ranking.rewardModel,
        preferences: inputs.preferences!,
        onnxModel: config.ranking.onnxModel,
        onnxResolution: config.model.resolution,
        ...(config.ranking.preferenceInit && { preferenceInit: config.ranking.preferenceInit }),
        ...(config.ranking.preferenceInitSha256 !== undefined && {
          preferenceInitSha256: config.ranking.preferenceInitSha256,
        }),
        backend,
      });
      return {
        outputs: { reward: r.reward },
        details: { identity: r.identity, accuracy: r.accuracy ?? null, accuracyPairs: r.accuracyPairs },
        note:
          `${r.identity.name}@${r.identity.version}` +
          (r.accuracy !== undefined
            ? `, pairwise accuracy ${r.accuracy.toFixed(3)} on ${r.accuracyPairs} held-out pairs`
            : ''),
      };
    },
    ranking: async (inputs, out) => {
      const rankInput = {
        runId,
        out,
        preferences: inputs.preferences!,
        reward: inputs.reward!,
        topK: config.ranking.topK,
        ...(config.ranking.maxPerPrompt === undefined ? {} : { maxPerPrompt: config.ranking.maxPerPrompt }),
        // With a generator pool the expert set says where its experts came from.
        ...(config.data.generators && { generators: config.data.generators.map((g) => g.name) }),
        shardSize: config.ranking.shardSize,
        resolution: config.model.resolution,
        backend,
      };
      // Shards are scored in parts by separate activities, so every compute worker takes some.
      await Promise.all(
        [...Array(RANKING_PARTS).keys()].map((part) =>
          compute.scoreRankingShards({ ...rankInput, part, parts: RANKING_PARTS }),
        ),
      );
      const r = await compute.rankExperts(rankInput);
      return {
        outputs: { experts: r.experts, ranking: r.ranking },
        details: {
          k: r.k,
          total: r.total,
          topScore: r.topScore,
          kthScore: r.kthScore,
          ...(r.provenance && { provenance: r.provenance }),
        },
        note: `top ${r.k} of ${r.total} images (scores ${r.topScore.toFixed(3)}..${r.kthScore.toFixed(3)})`,
      };
    },
    sft: (inputs, out) => train('sft', inputs, out, config.sft.stepsPerActivity),
    dro: (inputs, out) => train('dro', inputs, out, config.dro.stepsPerActivity),
    dpo: (inputs, out) => train('dpo', inputs, out, config.dpo.stepsPerActivity),
    eval: async (inputs, out) => {
      const workflowId = `${runId}-eval`;
      records.get('eval')!.childWorkflowId = workflowId;
      const models = (['base', 'sft', 'dro', 'dpo'] as const)
        .filter((name) => inputs[name] !== undefined)
        .map((name) => ({ name, model: inputs[name]! }));
      const r = await executeChild<EvaluationWorkflowFn>('evaluationWorkflow', {
        workflowId,
        taskQueue: queues.cpu,
        workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
        typedSearchAttributes: childAttributes(),
        args: [
          {
            runId,
            out,
            models,
            // The detector score is always one of the evaluation's rewards; it is not passed twice.
            rewards:
              config.ranking.rewardModel === 'detector'
                ? []
                : [{ name: config.ranking.rewardModel, reward: inputs.reward! }],
            trainingPrompts: inputs.preferences!,
            settings: {
              ...runEvaluationSettings(config),
              baseline: evaluationBaseline(
                config.eval.baselines,
                models.map((m) => m.name),
              ),
            },
            backend,
            heartbeatTimeoutSeconds: heartbeatTimeoutSeconds(config),
            taskQueues: queues,
          },
        ],
      });
      const results = Object.fromEntries(Object.entries(r.results).map(([m, ref]) => [`results-${m}`, ref]));
      return {
        outputs: { evaluation: r.evaluation, samples: r.samples, ...results },
        details: { tables: r.tables, shards: r.shards },
        note: `${models.length} models, ${r.shards.total} shards (${r.shards.reused} reused)`,
      };
    },
  };

  const inputsOf = (stage: StageName): Record<string, ArtifactRef> => {
    const refs: Record<string, ArtifactRef> = {};
    for (const [name, ref] of Object.entries(STAGES[stage].inputs(config))) {
      const { stage: from, output } = parseInputRef(ref);
      const value = outcomes.get(from)?.outputs[output];
      if (value) refs[name] = value;
    }
    return refs;
  };
  const ready = (stage: StageName): boolean =>
    Object.values(STAGES[stage].inputs(config)).every((ref) => {
      const { stage: from, optional } = parseInputRef(ref);
      const r = records.get(from)!;
      return r.status === 'done' || (optional && (r.status === 'skipped' || r.status === 'failed'));
    });

  const finishRecord = (stage: StageName, outcome: StageOutcome, startedAtMs: number): void => {
    const now = Date.now();
    Object.assign(records.get(stage)!, {
      status: 'done',
      finishedAtMs: now,
      seconds: (now - startedAtMs) / 1000,
      artifacts: outcome.outputs,
      details: outcome.details,
      ...(outcome.note !== undefined && { note: outcome.note }),
    });
    outcomes.set(stage, outcome);
  };

  const writeReport = async (): Promise<StageOutcome> => {
    const details = (s: StageName) => outcomes.get(s)?.details ?? {};
    const reward = details('reward');
    const ranking = details('ranking');
    const prefs = details('preferences');
    const finishedAt = Date.now();
    const modelOf = (s: StageName): ArtifactRef | undefined => outcomes.get(s)?.outputs.model;
    const base = config.model.baseCheckpoint ? modelOf('base') : modelOf('pretrain');
    const summaries: RunReport['summaries'] = {};
    for (const s of ['pretrain', 'sft', 'dro', 'dpo'] as const) {
      const ref = outcomes.get(s)?.outputs.summary;
      if (ref) summaries[s] = ref;
    }
    const report: RunReport = {
      format: 'dro-pipeline/run-report@2',
      runId,
      name: config.name,
      seed: config.seed,
      config,
      configHash: input.provenance?.configHash ?? null,
      workflowId: workflowInfo().workflowId,
      execution,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finishedAt).toISOString(),
      wallSeconds: (finishedAt - started) / 1000,
      stages: [...records.values()].filter((r) => r.stage !== 'report'),
      rewardModel: reward as RunReport['rewardModel'],
      expertSet: ranking as RunReport['expertSet'],
      preferences: prefs as RunReport['preferences'],
      models: {
        base: base!,
        ...(modelOf('sft') ? { sft: modelOf('sft') } : {}),
        dro: modelOf('dro')!,
        ...(modelOf('dpo') ? { dpo: modelOf('dpo') } : {}),
      },
      summaries,
    };
    const evaluation = outcomes.get('eval');
    if (evaluation) {
      report.evaluation = {
        evaluation: evaluation.outputs.evaluation!,
        samples: evaluation.outputs.samples!,
      };
      report.tables = evaluation.details.tables as string;
    }
    const files = await io.writeRunReport({
      runId,
      execution,
      report: report as unknown as Record<string, unknown>,
    });
    return { outputs: { report: files.report, markdown: files.markdown, html: files.html }, details: {} };
  };

  const execStage = async (stage: StageName): Promise<void> => {
    const def = STAGES[stage];
    const record = records.get(stage)!;
    const startedAtMs = Date.now();
    Object.assign(record, { status: 'running', startedAtMs });
    publish();
    const inputs = inputsOf(stage);
    if (stage === 'report') {
      finishRecord(stage, await writeReport(), startedAtMs);
      return;
    }
    if (!def.cached) {
      finishRecord(stage, await runners[stage](inputs, `runs/${runId}/${stage}`), startedAtMs);
      return;
    }
    const look = await io.lookupStage({
      runId,
      stage,
      version: def.version,
      slice: def.slice(config),
      inputs,
      external: def.external(config),
      force: forced(stage),
      execution,
    });
    record.cache = {
      key: look.key,
      hit: look.hit !== undefined,
      ...(look.hit && { fromRun: look.hit.runId }),
      ...(look.rejected !== undefined && { rejected: look.rejected }),
    };
    if (look.hit) {
      finishRecord(stage, look.hit, startedAtMs);
      record.note = `cached from run ${look.hit.runId}${look.hit.note ? `: ${look.hit.note}` : ''}`;
      return;
    }
    const outcome = await runners[stage](inputs, look.out);
    await io.commitStage({ runId, stage, version: def.version, key: look.key, execution, ...outcome });
    finishRecord(stage, outcome, startedAtMs);
  };

  // Walk the graph: start what is ready, wait for any running stage, repeat.
  const inFlight = new Map<StageName, Promise<void>>();
  let failure: { stage: StageName; error: unknown } | undefined;
  for (;;) {
    if (!failure) {
      for (const stage of order) {
        if (records.get(stage)!.status !== 'pending' || inFlight.has(stage) || !ready(stage)) continue;
        const task = execStage(stage).then(
          () => void inFlight.delete(stage),
          (error: unknown) => {
            inFlight.delete(stage);
            Object.assign(records.get(stage)!, { status: 'failed', note: errorMessage(error) });
            failure ??= { stage, error };
          },
        );
        inFlight.set(stage, task);
      }
    }
    if (inFlight.size === 0) break;
    await Promise.race(inFlight.values());
    publish();
  }
  for (const r of records.values()) {
    if (r.status === 'pending')
      Object.assign(r, { status: 'skipped', note: `not started: ${failure?.stage} failed` });
  }

  const finishedAt = Date.now();
  const manifest: RunManifest = {
    format: 'dro-pipeline/run-manifest@1',
    runId,
    name: config.name,
    status: failure ? 'failed' : 'completed',
    ...(failure && { error: { stage: failure.stage, message: errorMessage(failure.error) } }),
    workflowId: workflowInfo().workflowId,
    execution,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    wallSeconds: (finishedAt - started) / 1000,
    config,
    provenance: input.provenance ?? null,
    seeds: { root: config.seed },
    stages: [...records.values()],
    artifacts: [...records.values()].flatMap((r) =>
      Object.entries(r.artifacts ?? {}).map(([role, ref]) => ({ stage: r.stage, role, ...ref })),
    ),
    metrics: {
      rewardAccuracy: (outcomes.get('reward')?.details.accuracy as number | null | undefined) ?? null,
    },
  };
  const manifestRef = await io.writeRunManifest({
    runId,
    execution,
    manifest: manifest as unknown as Record<string, unknown>,
  });
  upsertSearchAttributes([{ key: DRO_STAGE, value: failure ? `failed:${failure.stage}` : 'done' }]);
  if (failure) throw failure.error;

  const model = (s: StageName): ArtifactRef | undefined => outcomes.get(s)?.outputs.model;
  const summaries: PipelineResult['summaries'] = {};
  for (const s of ['pretrain', 'sft', 'dro', 'dpo'] as const) {
    const ref = outcomes.get(s)?.outputs.summary;
    if (ref) summaries[s] = ref;
  }
  return {
    runId,
    execution,
    report: outcomes.get('report')!.outputs.report!,
    reportFiles: {
      markdown: outcomes.get('report')!.outputs.markdown!,
      html: outcomes.get('report')!.outputs.html!,
    },
    manifest: manifestRef,
    ...(outcomes.get('eval') && { tables: outcomes.get('eval')!.details.tables as string }),
    models: {
      base: (config.model.baseCheckpoint ? model('base') : model('pretrain'))!,
      ...(model('sft') ? { sft: model('sft') } : {}),
      dro: model('dro')!,
      ...(model('dpo') ? { dpo: model('dpo') } : {}),
    },
    summaries,
    stages: [...records.values()],
  };
}
