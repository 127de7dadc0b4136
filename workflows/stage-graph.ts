/**
 * The pipeline as data: every stage with its inputs (other stages' named outputs), the task queue
 * it runs on, the slice of the config it reads and a version. `pipelineWorkflow` walks this graph,
 * starting each stage as soon as its inputs exist, so independent branches (DPO beside SFT -> DRO)
 * run at once; the stage cache keys each stage by (name, version, config slice, input digests).
 *
 * Bump a stage's `version` whenever its code changes what it writes: old cache entries then stop
 * matching instead of returning stale artifacts.
 *
 * Pure: no Node APIs, no I/O (workflows import it).
 */
import type { PipelineConfig } from '../config/schemas';
import { resultConfig } from '../config/config-hash';
import type { StageName } from '../contracts/stages';

export interface StageDef {
  name: StageName;
  /** Bumped when the stage's code changes its outputs. */
  version: number;
  /** `gpu`: compute activities or a training child workflow; `cpu`: I/O activities. */
  queue: 'gpu' | 'cpu';
  /** `training` stages run as a child `trainingWorkflow`, `evaluation` as `evaluationWorkflow`. */
  kind: 'activity' | 'training' | 'evaluation';
  /** Whether the stage's outputs may be reused across runs. The report is per run. */
  cached: boolean;
  /** Outputs it produces (artifact refs by name). */
  outputs(config: PipelineConfig): readonly string[];
  /** Its inputs: local name -> `stage.output` (optional when the ref ends with `?`). */
  inputs(config: PipelineConfig): Record<string, string>;
  /** undefined when the stage runs; otherwise why it does not. */
  disabledBecause(config: PipelineConfig): string | undefined;
  /** The config it reads: part of its cache key. */
  slice(config: PipelineConfig): unknown;
  /** User-given files or URIs it reads, whose content digests join the cache key. */
  external(config: PipelineConfig): string[];
}

const imported = (c: PipelineConfig): boolean => c.model.baseCheckpoint !== '';

/** Where the run's base model comes from: imported as is, or pretrained on the built-in world. */
export function baseModelInput(c: PipelineConfig): string {
  return imported(c) ? 'base.model' : 'pretrain.model';
}

function training(
  name: 'pretrain' | 'sft' | 'dro' | 'dpo',
  def: Pick<StageDef, 'inputs' | 'disabledBecause' | 'slice'>,
): StageDef {
  return {
    name,
    version: 1,
    queue: 'gpu',
    kind: 'training',
    cached: true,
    outputs: () => ['model', 'unet', 'summary', 'lastCheckpoint'],
    external: () => [],
    ...def,
  };
}

/** Training settings that determine a training stage's result (the pipeline derives them). */
function trainingSlice(c: PipelineConfig, section: 'pretrain' | 'sft' | 'dro' | 'dpo'): unknown {
  return { seed: c.seed, [section]: resultConfig(c)[section] };
}

/** Whether the reward stage fine-tunes pretrained preference-model weights. */
function preferenceInit(c: PipelineConfig): boolean {
  return c.ranking.rewardModel === 'preference' && c.ranking.preferenceInit !== '';
}

export const STAGES: Record<StageName, StageDef> = {
  base: {
    name: 'base',
    version: 1,
    queue: 'gpu',
    kind: 'activity',
    cached: true,
    outputs: (c) => (imported(c) ? ['model'] : ['corpus', 'initialModel']),
    inputs: () => ({}),
    disabledBecause: () => undefined,
    slice: (c) =>
      imported(c)
        ? {
            baseCheckpoint: c.model.baseCheckpoint,
            ...(c.model.baseCheckpointSha256 !== undefined && { sha256: c.model.baseCheckpointSha256 }),
          }
        : {
            seed: c.seed,
            unet: c.model.unet,
            resolution: c.model.resolution,
            captionNoise: c.data.captionNoise,
            corpusSize: c.pretrain.corpusSize,
          },
    external: (c) => (imported(c) ? [c.model.baseCheckpoint] : []),
  },
  pretrain: training('pretrain', {
    inputs: () => ({ start: 'base.initialModel', data: 'base.corpus' }),
    disabledBecause: (c) => (imported(c) ? 'model.baseCheckpoint given' : undefined),
    slice: (c) => trainingSlice(c, 'pretrain'),
  }),
  preferences: {
    name: 'preferences',
    version: 1,
    queue: 'gpu',
    kind: 'activity',
    cached: true,
    outputs: () => ['preferences'],
    inputs: (c): Record<string, string> =>
      c.data.source === 'world' ? { baseModel: baseModelInput(c) } : {},
    disabledBecause: () => undefined,
    // generators and a 'hash' promptSplit join the slice only when set, so configs without them
    // keep their cache keys; a bundle generator's file joins through its digest.
    slice: (c) =>
      c.data.source === 'world'
        ? {
            source: 'world',
            seed: c.seed,
            prompts: c.data.prompts,
            steps: c.data.samplerSteps,
            guidanceScale: c.data.guidanceScale,
            ...(c.data.generators && { generators: c.data.generators }),
            ...(c.data.promptSplit === 'hash' && { promptSplit: 'hash' }),
          }
        : { source: c.data.source, paths: c.data.paths, onBadRow: c.data.onBadRow },
    external: (c) =>
      c.data.source === 'world'
        ? (c.data.generators ?? []).flatMap((g) => (g.kind === 'bundle' ? [g.path] : []))
        : c.data.paths,
  },
  reward: {
    name: 'reward',
    version: 2,
    queue: 'gpu',
    kind: 'activity',
    cached: true,
    outputs: () => ['reward'],
    inputs: () => ({ preferences: 'preferences.preferences' }),
    disabledBecause: () => undefined,
    slice: (c) => ({
      seed: c.seed,
      rewardModel: c.ranking.rewardModel,
      onnxModel: c.ranking.onnxModel,
      resolution: c.model.resolution,
      ...(preferenceInit(c) && {
        preferenceInit: c.ranking.preferenceInit,
        preferenceInitSha256: c.ranking.preferenceInitSha256 ?? null,
      }),
    }),
    external: (c) =>
      c.ranking.rewardModel === 'onnx' && c.ranking.onnxModel
        ? [c.ranking.onnxModel]
        : preferenceInit(c)
          ? [c.ranking.preferenceInit]
          : [],
  },
  ranking: {
    name: 'ranking',
    version: 1,
    queue: 'gpu',
    kind: 'activity',
    cached: true,
    outputs: () => ['experts', 'ranking'],
    inputs: () => ({ preferences: 'preferences.preferences', reward: 'reward.reward' }),
    disabledBecause: () => undefined,
    // maxPerPrompt and the generator names (whose experts the set counts) join the slice only when
    // set, so configs without them keep their cache keys.
    slice: (c) => ({
      topK: c.ranking.topK,
      ...(c.ranking.maxPerPrompt === undefined ? {} : { maxPerPrompt: c.ranking.maxPerPrompt }),
      ...(c.data.generators && { generators: c.data.generators.map((g) => g.name) }),
      resolution: c.model.resolution,
    }),
    external: () => [],
  },
  sft: training('sft', {
    inputs: (c) => ({ start: baseModelInput(c), data: 'ranking.experts' }),
    disabledBecause: (c) => (c.sft.enabled ? undefined : 'sft.enabled is false'),
    slice: (c) => trainingSlice(c, 'sft'),
  }),
  dro: training('dro', {
    inputs: (c) => ({
      // Histories recorded before warmStart existed carry no value: they meant 'sft'.
      start: c.sft.enabled && c.dro.warmStart !== 'base' ? 'sft.model' : baseModelInput(c),
      data: 'ranking.experts',
    }),
    disabledBecause: () => undefined,
    slice: (c) => trainingSlice(c, 'dro'),
  }),
  dpo: training('dpo', {
    inputs: (c) => ({
      // 'sft' is the paper's "DPO w/ SFT"; absent (earlier histories, most configs) means the base.
      start: c.sft.enabled && c.dpo.warmStart === 'sft' ? 'sft.model' : baseModelInput(c),
      data: 'preferences.preferences',
    }),
    disabledBecause: (c) => (c.dpo.enabled ? undefined : 'dpo.enabled is false'),
    slice: (c) => trainingSlice(c, 'dpo'),
  }),
  eval: {
    name: 'eval',
    // 2: win rates keep one median image per model and prompt, chosen by the preference reward, for
    // every reward (per-reward medians as an extra table); the users' utility of the GenEval images.
    version: 2,
    queue: 'gpu',
    kind: 'evaluation',
    cached: true,
    outputs: () => ['evaluation', 'samples'],
    inputs: (c) => ({
      base: baseModelInput(c),
      sft: 'sft.model?',
      dro: 'dro.model',
      dpo: 'dpo.model?',
      reward: 'reward.reward',
      preferences: 'preferences.preferences',
    }),
    disabledBecause: (c) => (c.eval.enabled ? undefined : 'eval.enabled is false'),
    // The prompt split joins only when set, so configs without it keep their cache keys.
    slice: (c) => ({
      seed: c.seed,
      eval: c.eval,
      rewardModel: c.ranking.rewardModel,
      ...(c.data.promptSplit === 'hash' && { promptSplit: 'hash' }),
    }),
    external: () => [],
  },
  report: {
    name: 'report',
    version: 1,
    queue: 'cpu',
    kind: 'activity',
    cached: false,
    outputs: () => ['report', 'markdown', 'html'],
    inputs: (c) => ({
      base: baseModelInput(c),
      sft: 'sft.model?',
      dro: 'dro.model',
      dpo: 'dpo.model?',
      reward: 'reward.reward',
      ranking: 'ranking.ranking',
      evaluation: 'eval.evaluation?',
      samples: 'eval.samples?',
    }),
    disabledBecause: () => undefined,
    slice: (c) => ({ name: c.name }),
    external: () => [],
  },
};

export interface ParsedInput {
  stage: StageName;
  output: string;
  optional: boolean;
}

export function parseInputRef(ref: string): ParsedInput {
  const optional = ref.endsWith('?');
  const [stage, output] = (optional ? ref.slice(0, -1) : ref).split('.') as [StageName, string];
  return { stage, output, optional };
}

/** Problems of the graph under `config`: unknown stages or outputs, cycles. Empty when sound. */
export function checkGraph(config: PipelineConfig, stages: Record<StageName, StageDef> = STAGES): string[] {
  const problems: string[] = [];
  for (const def of Object.values(stages)) {
    // A disabled stage reads nothing, so its inputs need not exist under this config.
    if (def.disabledBecause(config) !== undefined) continue;
    for (const [name, ref] of Object.entries(def.inputs(config))) {
      const { stage, output } = parseInputRef(ref);
      const from = stages[stage] as StageDef | undefined;
      if (!from) problems.push(`${def.name}.${name}: unknown stage '${stage}'`);
      else if (!from.outputs(config).includes(output))
        problems.push(`${def.name}.${name}: stage '${stage}' has no output '${output}'`);
    }
  }
  if (problems.length === 0 && topologicalOrder(config, stages) === undefined)
    problems.push('the stage graph has a cycle');
  return problems;
}

/** The stages in an order where every stage follows its inputs, or undefined for a cycle. */
export function topologicalOrder(
  config: PipelineConfig,
  stages: Record<StageName, StageDef> = STAGES,
): StageName[] | undefined {
  const order: StageName[] = [];
  const state = new Map<StageName, 'visiting' | 'done'>();
  const visit = (name: StageName): boolean => {
    const s = state.get(name);
    if (s === 'done') return true;
    if (s === 'visiting') return false;
    state.set(name, 'visiting');
    for (const ref of Object.values(stages[name].inputs(config))) {
      if (!visit(parseInputRef(ref).stage)) return false;
    }
    state.set(name, 'done');
    order.push(name);
    return true;
  };
  for (const name of Object.keys(stages) as StageName[]) if (!visit(name)) return undefined;
  return order;
}

/**
 * Why each stage will not run under `config`: disabled itself, or a required input comes from a
 * stage that does not run. Stages absent from the map run.
 */
export function skippedStages(
  config: PipelineConfig,
  stages: Record<StageName, StageDef> = STAGES,
): Map<StageName, string> {
  const skipped = new Map<StageName, string>();
  for (const name of topologicalOrder(config, stages) ?? []) {
    const def = stages[name];
    const own = def.disabledBecause(config);
    if (own !== undefined) {
      skipped.set(name, own);
      continue;
    }
    for (const ref of Object.values(def.inputs(config))) {
      const { stage, optional } = parseInputRef(ref);
      if (!optional && skipped.has(stage)) {
        skipped.set(name, `needs ${stage}, which does not run`);
        break;
      }
    }
  }
  return skipped;
}
