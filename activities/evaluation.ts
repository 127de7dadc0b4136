/**
 * Evaluation activities: GenEval accuracy and reward-model win rates of a set of models.
 *
 * - `planEvaluation` (I/O queue): checks every input (model bundles by header, reward descriptors,
 *   the suite file line by line), builds the prompt suite without training prompts and writes
 *   `<out>/plan.json`, which every later step reads.
 * - `evaluateShard` (compute queue): one model, a slice of image slots; generates the images with
 *   their documented seeds, judges the GenEval ones and scores them with the simulated users'
 *   noise-free utility, scores the win-rate ones with every reward and commits
 *   `<out>/shards/<n>.json` at once. A committed shard is returned, never recomputed; a shard
 *   another evaluation computed for the same model digest, slots and protocol (its content key,
 *   `shardContentIdentity`) is read from `eval-shards/<key>/<generation>.json`, verified by digest,
 *   and committed as this evaluation's shard without generating anything.
 * - `summarizeEvaluation` (compute queue): reads every shard and writes per model a GenEval
 *   `results.jsonl`, the report grid's `samples.json` and `evaluation.json` (summaries, paired
 *   comparisons, win rates by the paper's protocol and, as an extra, with per-reward medians, the
 *   users' utility, the suite's exclusion counts, settings, seeds, the text tables).
 *
 * Win rates follow the paper's protocol: per model and prompt the median image under the
 * preference reward (the run's reward model: the first reward given, else the built-in detector
 * score) is kept and that one image is compared under every reward.
 *
 * GenEval judges and the rewards score the 8-bit image, the one a saved PNG holds, so re-judging a
 * stored sample gives the same verdict.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../config/config-hash';
import { heldOutPrompts } from '../engine/world/prompt-split';
import { TAGS, type PromptMetadata, type Tag } from '../engine/world/world';
import {
  genevalRowsOf,
  toResultsJsonl,
  type GenevalComparison,
  type GenevalResultRow,
  type GenevalSummary,
  type ScoredGenevalImage,
} from '../engine/eval/geneval-summary';
import { compareModels } from '../engine/eval/model-comparison';
import { summarizeUtility, type UtilitySummary } from '../engine/eval/utility-summary';
import { judgeShardImages, toJudgedImages } from '../engine/eval/shard-judging';
import {
  buildWorldSuite,
  EvalSuiteError,
  excludedTags,
  normalizePrompt,
  parseSuite,
  selectSuitePrompts,
  type ExcludedTag,
  type WorldSuite,
} from '../engine/eval/suite';
import type { WinRateRow } from '../engine/eval/win-rate';
import { generateImages } from '../engine/generate';
import { imageSideOf, samplesToImages } from '../engine/latent/decode';
import { decodeAnyModel, describeModel } from '../engine/latent/latent-model';
import {
  formatRunTables,
  type GenEvalExclusions,
  type GenEvalRow,
  type SampleGrid,
  type UtilityReport,
} from '../engine/report';
import { suiteExclusions, withTagCounts } from '../engine/eval/report-detail';
import { DetectorReward, type RewardModel, type RewardModelIdentity } from '../engine/rewards';
import { disposeModel, type DiffusionModel } from '../engine/training/diffusion-model';
import { DEFAULT_UTILITY_WEIGHTS, type UtilityWeights } from '../engine/world/utility';
import type { ArtifactRef, ArtifactStore } from '../storage/artifact-store';
import { DigestMismatchError } from '../storage/errors';
import {
  DEFAULT_EVAL_SHARD_SIZE,
  DEFAULT_GRID_PROMPTS,
  planShards,
  type EvalJob,
  type EvaluateShardInput,
  type EvaluateShardResult,
  type EvaluationSettings,
  type PlanEvaluationInput,
  type PlanEvaluationResult,
  type SummarizeEvaluationInput,
  type SummarizeEvaluationResult,
} from '../contracts/evaluation';
import { recordEvaluationShard } from '../infra/pipeline-metrics';
import { activityLogger, keySegment } from './common';
import { ModelCache } from './model-cache';
import { readPreferenceRows } from './preferences';
import { loadRewardModel, REWARD_DESCRIPTOR_FORMAT, type RewardDescriptor, type RewardKind } from './reward';
import {
  badInput,
  checkPositiveInt,
  checkRef,
  checkRunId,
  encodeJson,
  finished,
  heartbeat,
  outputKey,
  permanentFailure,
  putArtifact,
  readArtifact,
  readJsonArtifact,
  stageCall,
  useBackend,
  type StageDeps,
} from './stage';
import { MIN_WORLD_RESOLUTION } from './world';

export const EVAL_PLAN_FORMAT = 'dro-pipeline/eval-plan@1';
export const EVAL_SHARD_FORMAT = 'dro-pipeline/eval-shard@2';
export const EVAL_SHARD_CONTENT_FORMAT = 'dro-pipeline/eval-shard-content@1';
export const EVAL_SAMPLES_FORMAT = 'dro-pipeline/eval-samples@1';
export const EVALUATION_FORMAT = 'dro-pipeline/evaluation@2';

/** Name of the built-in world's detector score among the rewards; reserved. */
export const DETECTOR_REWARD_NAME = 'detector';

/** Failure type of a bad suite file (engine/eval/suite.ts EvalSuiteError). */
export const EVAL_SUITE_ERROR = 'EvalSuiteError';

/** Solver batch: small enough that a heartbeat follows every few seconds on a CPU. */
const GENERATION_BATCH = 8;

type FullSettings = Required<Omit<EvaluationSettings, 'baseline'>> & { baseline: string };

/** Where the suite came from and what was removed from it. */
export interface EvaluationSuiteInfo {
  /** `built-in (seed ...)` or the suite artifact's URI. */
  source: string;
  /** Distinct prompts before training prompts were removed. */
  drawn: number;
  /** Prompts removed because a training caption equals them (case and spacing ignored). */
  excluded: number;
  excludedPerTag: Record<Tag, number>;
  excludedPrompts: string[];
  /** Tags without any GenEval prompt: the overall score averages fewer than six tags. */
  missingTags: Tag[];
  /** Each of `missingTags` with why it has no prompt. Absent in plans written before it. */
  excludedTags?: ExcludedTag[];
  /** Distinct prompts per tag before training prompts were removed. Absent in older plans. */
  drawnPerTag?: Record<Tag, number>;
  /**
   * Why GenEval was not judged, when it was not: its detector judges the built-in world's rendered
   * shapes, which a model of another world (a latent model from a diffusers folder) does not draw.
   * The prompts' images are then only generated for the report grid, and the evaluation is the
   * reward win rates.
   */
  genevalSkipped?: string;
  /** Distinct training captions compared against. */
  trainingPrompts: number;
  genevalPrompts: number;
  winratePrompts: number;
}

/** `<out>/plan.json`. */
export interface EvaluationPlan {
  format: typeof EVAL_PLAN_FORMAT;
  runId: string;
  /** What the plan was made from; a plan for other inputs under the same `out` is refused. */
  fingerprint: unknown;
  models: { name: string; model: ArtifactRef; sampleSize: number }[];
  rewards: { name: string; kind: RewardKind; identity: RewardModelIdentity; reward?: ArtifactRef }[];
  settings: FullSettings;
  seeds: { root: number; geneval: number; winrate: number };
  suite: EvaluationSuiteInfo;
  /** The selected prompts: GenEval uses the first `genevalPrompts`, win rates the first `winratePrompts`. */
  prompts: PromptMetadata[];
  gridPrompts: number;
}

/** `<out>/shards/<n>.json`: one model's judged and scored image slots. */
export interface EvaluationShardDocument {
  format: typeof EVAL_SHARD_FORMAT;
  shard: number;
  /** SHA-256 of the plan the shard belongs to. */
  plan: string;
  model: string;
  modelSha256: string;
  jobs: EvalJob[];
  /** GenEval verdicts and each image's noise-free utility to the simulated users (default weights). */
  geneval: ScoredGenevalImage[];
  winrate: { prompt: number; index: number; seed: number; scores: Record<string, number> }[];
  /** Grid images, PNG as base64. */
  grid: { prompt: number; index: number; seed: number; png: string }[];
  seconds: number;
  /**
   * The content-keyed shard (`eval-shards/...`) these images and verdicts are, and whether this
   * evaluation reused it (computed by another evaluation) rather than computing it. Absent in shards
   * written before content keys.
   */
  content?: { key: string; ref: ArtifactRef; reused: boolean };
}

/**
 * `eval-shards/<key>/<generation>.json`: one model's judged and scored image slots, keyed by their
 * content (`shardContentKey`) so that any evaluation needing the same slots of the same model under
 * the same protocol reuses them. Written once; a generation that fails its digest check is skipped
 * and the next one written.
 */
export interface EvaluationShardContent {
  format: typeof EVAL_SHARD_CONTENT_FORMAT;
  /** SHA-256 of the canonical JSON of `identity`. */
  key: string;
  identity: ShardContentIdentity;
  geneval: ScoredGenevalImage[];
  winrate: EvaluationShardDocument['winrate'];
  grid: EvaluationShardDocument['grid'];
  seconds: number;
}

/** Everything a shard's images, verdicts and scores depend on (the content key hashes it). */
export interface ShardContentIdentity {
  /** The shard document's format: a change of what a shard holds changes every key. */
  format: typeof EVAL_SHARD_FORMAT;
  modelSha256: string;
  /** The image slots: kind, prompt index, image index, seed, grid flag (the shard layout). */
  jobs: EvalJob[];
  /** Metadata of every prompt the slots name, by prompt index (text, tag, what the judge checks). */
  prompts: { index: number; metadata: PromptMetadata }[];
  samplerSteps: number;
  guidanceScale: number;
  imagesPerPrompt: number;
  winrateSamples: number;
  /** Whether GenEval is judged (and the users' utility scored), with the utility's weights. */
  geneval: boolean;
  utilityWeights: UtilityWeights;
  /** The rewards scoring the win-rate slots (none without win-rate slots): name, kind, identity, descriptor digest. */
  rewards: { name: string; kind: RewardKind; identity: RewardModelIdentity; sha256: string | null }[];
}

/** `<out>/samples.json`: the report grid, `methods[m].images[i]` is model m's PNG (base64) of prompts[i]. */
export interface EvaluationSamples {
  format: typeof EVAL_SAMPLES_FORMAT;
  prompts: string[];
  seeds: number[];
  methods: { method: string; images: string[] }[];
}

/** The simulated users' utility of the held-out GenEval images, in evaluation.json. */
export interface EvaluationUtility extends Partial<UtilitySummary> {
  /** Why it was not computed; `models` and `comparisons` are then absent. */
  skipped?: string;
  /** `imageUtility` of engine/world/utility.ts with these weights (the defaults), no click noise. */
  weights: UtilityWeights;
}

/** `<out>/evaluation.json`. */
export interface EvaluationDocument {
  format: typeof EVALUATION_FORMAT;
  runId: string;
  models: { name: string; model: ArtifactRef }[];
  baseline: string;
  rewards: { name: string; kind: RewardKind; identity: RewardModelIdentity }[];
  settings: FullSettings;
  seeds: { root: number; geneval: number; winrate: number; schedule: { geneval: string; winrate: string } };
  suite: EvaluationSuiteInfo;
  geneval: {
    /** Why GenEval was not judged (see EvaluationSuiteInfo.genevalSkipped); the rest is then empty. */
    skipped?: string;
    summaries: Record<string, GenevalSummary>;
    /** Every pair, the later model of `models` as A. */
    comparisons: ({ a: string; b: string } & GenevalComparison)[];
    /** The report's rows; the p value is McNemar's exact test against the baseline. */
    table: GenEvalRow[];
  };
  /**
   * The paper's protocol: per model and prompt the image with the median `preferenceReward` score
   * is kept, and that same image is compared under every reward (rows carry `medianBy`).
   */
  winRates: WinRateRow[];
  /** The reward the kept images were chosen by: the first reward given, else the detector. */
  preferenceReward: string;
  /** The protocol's kept win-rate image of every model and prompt (`kept[model][prompt]`). */
  winRateImages: Record<string, { prompt: number; index: number; seed: number }[]>;
  /** Extra table, not the protocol: each reward chooses its own median image (`medianBy` = `reward`). */
  perRewardMedianWinRates: WinRateRow[];
  /** The simulated users' utility of every held-out GenEval image: per model and head to head. */
  utility: EvaluationUtility;
  results: Record<string, ArtifactRef>;
  samples: ArtifactRef;
  tables: string;
}

/** The report grid of a samples.json artifact, PNGs decoded from base64. */
export function decodeEvaluationSamples(samples: EvaluationSamples): SampleGrid {
  if (samples.format !== EVAL_SAMPLES_FORMAT) throw new RangeError(`not an evaluation samples file`);
  return {
    prompts: samples.prompts,
    seeds: samples.seeds,
    methods: samples.methods.map((m) => ({
      method: m.method,
      images: m.images.map((b64) => new Uint8Array(Buffer.from(b64, 'base64'))),
    })),
  };
}

/** The report's view of an evaluation's utility section. */
function utilityReport(u: EvaluationUtility): UtilityReport {
  return {
    ...(u.skipped ? { skipped: u.skipped } : {}),
    models: u.models ?? [],
    comparisons: u.comparisons ?? [],
  };
}

/**
 * What the run report takes from an evaluation (ReportData's baseline, geneval, win rates and
 * utility). An evaluation.json written before the protocol's single median and the utility
 * (format @1) gives only its win rates.
 */
export function evaluationReportData(doc: EvaluationDocument): {
  baseline: string;
  geneval: GenEvalRow[];
  genevalSuite?: GenEvalExclusions;
  winRates: WinRateRow[];
  preferenceReward?: string;
  perRewardMedianWinRates?: WinRateRow[];
  utility?: UtilityReport;
} {
  return {
    baseline: doc.baseline,
    geneval: withTagCounts(doc.geneval.table, doc.geneval.summaries ?? {}),
    ...(doc.suite && !doc.geneval.skipped ? { genevalSuite: suiteExclusions(doc.suite) } : {}),
    winRates: doc.winRates,
    ...(doc.preferenceReward === undefined ? {} : { preferenceReward: doc.preferenceReward }),
    ...(doc.perRewardMedianWinRates ? { perRewardMedianWinRates: doc.perRewardMedianWinRates } : {}),
    ...(doc.utility ? { utility: utilityReport(doc.utility) } : {}),
  };
}

/** `<out>/shards/<n, 6 digits>.json`: where shard `n` of an evaluation is committed. */
export function shardKey(input: { runId: string; out?: string }, shard: number): string {
  return outputKey(input, 'eval', `shards/${String(shard).padStart(6, '0')}.json`);
}

/** What shard `jobs` of `model` under `plan` depend on; its SHA-256 is the shard's content key. */
export function shardContentIdentity(
  plan: EvaluationPlan,
  modelSha256: string,
  jobs: readonly EvalJob[],
): ShardContentIdentity {
  const indices = [...new Set(jobs.map((j) => j.prompt))].sort((a, b) => a - b);
  const hasWinrate = jobs.some((j) => j.kind === 'winrate');
  return {
    format: EVAL_SHARD_FORMAT,
    modelSha256,
    jobs: jobs.map((j) => ({
      kind: j.kind,
      prompt: j.prompt,
      index: j.index,
      seed: j.seed,
      ...(j.grid ? { grid: true as const } : {}),
    })),
    prompts: indices.map((index) => ({ index, metadata: plan.prompts[index]! })),
    samplerSteps: plan.settings.samplerSteps,
    guidanceScale: plan.settings.guidanceScale,
    imagesPerPrompt: plan.settings.imagesPerPrompt,
    winrateSamples: plan.settings.winrateSamples,
    geneval: !plan.suite.genevalSkipped,
    utilityWeights: { ...DEFAULT_UTILITY_WEIGHTS },
    rewards: hasWinrate
      ? plan.rewards.map((r) => ({
          name: r.name,
          kind: r.kind,
          identity: r.identity,
          sha256: r.reward?.sha256 ?? null,
        }))
      : [],
  };
}

export function shardContentKey(identity: ShardContentIdentity): string {
  return createHash('sha256').update(canonicalJson(identity)).digest('hex');
}

/** `eval-shards/<key>/<generation>.json`: generation g of the content-keyed shard `key`. */
export function shardContentStoreKey(key: string, generation: number): string {
  return `eval-shards/${key}/${generation}.json`;
}

/** Generations tried before a content-keyed shard is computed without being stored by content. */
const CONTENT_GENERATIONS = 8;

/**
 * The first generation of content-keyed shard `key` that reads back with its recorded digest and
 * names `identity`, or the first free generation to write it to. A generation whose bytes fail the
 * digest check, or that holds something else, is skipped (written once, it is never replaced).
 */
async function findShardContent(
  store: ArtifactStore,
  key: string,
  identity: ShardContentIdentity,
  log: ReturnType<typeof activityLogger>,
): Promise<{ content?: { doc: EvaluationShardContent; ref: ArtifactRef }; free?: number }> {
  const want = canonicalJson(identity);
  for (let generation = 0; generation < CONTENT_GENERATIONS; generation++) {
    const head = await finished(store, shardContentStoreKey(key, generation));
    if (!head) return { free: generation };
    let doc: EvaluationShardContent;
    try {
      doc = JSON.parse(
        new TextDecoder().decode(await store.get(head.ref.uri, head.ref.sha256)),
      ) as EvaluationShardContent;
    } catch (err) {
      if (!(err instanceof DigestMismatchError || err instanceof SyntaxError)) throw err;
      log.warn({ uri: head.ref.uri, err: err.message }, 'content-keyed evaluation shard unreadable; skipped');
      continue;
    }
    if (
      doc?.format === EVAL_SHARD_CONTENT_FORMAT &&
      doc.key === key &&
      canonicalJson(doc.identity) === want &&
      Array.isArray(doc.geneval) &&
      Array.isArray(doc.winrate) &&
      Array.isArray(doc.grid)
    )
      return { content: { doc, ref: { uri: head.ref.uri, sha256: head.ref.sha256, size: head.ref.size } } };
    log.warn({ uri: head.ref.uri }, 'content-keyed evaluation shard holds another shard; skipped');
  }
  return {};
}

// ----- input checks -----

const NAME = /^[\x21-\x7e]{1,64}$/;

function checkSettings(s: EvaluationSettings | undefined, models: readonly string[]): FullSettings {
  if (!s || typeof s !== 'object') throw badInput('field "settings" is required');
  if (!Number.isSafeInteger(s.seed) || s.seed < 0)
    throw badInput(`field "settings.seed" must be a non-negative integer, got ${JSON.stringify(s.seed)}`);
  for (const f of [
    'genevalPrompts',
    'imagesPerPrompt',
    'winratePrompts',
    'winrateSamples',
    'samplerSteps',
    'bootstrapSamples',
  ] as const)
    checkPositiveInt(s[f], `settings.${f}`);
  if (typeof s.guidanceScale !== 'number' || !(s.guidanceScale >= 0) || !Number.isFinite(s.guidanceScale))
    throw badInput(
      `field "settings.guidanceScale" must be a number >= 0, got ${JSON.stringify(s.guidanceScale)}`,
    );
  const shardSize = checkPositiveInt(s.shardSize ?? DEFAULT_EVAL_SHARD_SIZE, 'settings.shardSize');
  const gridPrompts = s.gridPrompts ?? DEFAULT_GRID_PROMPTS;
  if (!Number.isInteger(gridPrompts) || gridPrompts < 0)
    throw badInput(
      `field "settings.gridPrompts" must be a non-negative integer, got ${JSON.stringify(gridPrompts)}`,
    );
  const baseline = s.baseline ?? models[0]!;
  if (!models.includes(baseline))
    throw badInput(
      `field "settings.baseline": "${baseline}" is not one of the models (${models.join(', ')})`,
    );
  return {
    seed: s.seed,
    genevalPrompts: s.genevalPrompts,
    imagesPerPrompt: s.imagesPerPrompt,
    winratePrompts: s.winratePrompts,
    winrateSamples: s.winrateSamples,
    samplerSteps: s.samplerSteps,
    guidanceScale: s.guidanceScale,
    bootstrapSamples: s.bootstrapSamples,
    shardSize,
    gridPrompts,
    baseline,
    heldOutOnly: s.heldOutOnly === true,
  };
}

function checkNames(items: unknown, field: string, reserved: readonly string[] = []): string[] {
  if (!Array.isArray(items)) throw badInput(`field "${field}" must be a list`);
  const seen = new Map<string, string>();
  return items.map((item: { name?: unknown }, i) => {
    const name = item?.name;
    if (typeof name !== 'string' || !NAME.test(name))
      throw badInput(
        `field "${field}.${i}.name" must be 1-64 printable characters without spaces, got ${JSON.stringify(name)}`,
      );
    if (reserved.includes(name))
      throw badInput(`field "${field}.${i}.name": "${name}" is reserved for the built-in detector score`);
    // Names become file names (results/<name>.jsonl): two may not map to the same one.
    const segment = keySegment(name);
    const earlier = seen.get(segment);
    if (earlier !== undefined)
      throw badInput(`field "${field}.${i}.name": "${name}" repeats or collides with "${earlier}"`);
    seen.set(segment, name);
    return name;
  });
}

/** Runs `fn`, turning a suite error into a non-retryable failure naming the file and line. */
async function suiteCall<T>(fn: () => T): Promise<T> {
  try {
    return await Promise.resolve(fn());
  } catch (err) {
    if (err instanceof EvalSuiteError) throw permanentFailure(err.message, EVAL_SUITE_ERROR, err);
    throw err;
  }
}

async function readPlan(store: ArtifactStore, ref: ArtifactRef): Promise<EvaluationPlan> {
  const plan = await readJsonArtifact<EvaluationPlan>(store, checkRef(ref, 'plan'));
  if (plan.format !== EVAL_PLAN_FORMAT) throw badInput(`${ref.uri} is not an evaluation plan`);
  return plan;
}

function checkJobs(jobs: unknown, plan: EvaluationPlan): EvalJob[] {
  if (!Array.isArray(jobs) || jobs.length === 0) throw badInput('field "jobs" must be a non-empty list');
  return jobs.map((job: Partial<EvalJob>, i) => {
    const limit =
      job?.kind === 'geneval'
        ? plan.suite.genevalPrompts
        : job?.kind === 'winrate'
          ? plan.suite.winratePrompts
          : 0;
    const images = job?.kind === 'geneval' ? plan.settings.imagesPerPrompt : plan.settings.winrateSamples;
    if (
      limit === 0 ||
      !Number.isInteger(job.prompt) ||
      job.prompt! < 0 ||
      job.prompt! >= limit ||
      !Number.isInteger(job.index) ||
      job.index! < 0 ||
      job.index! >= images ||
      !Number.isSafeInteger(job.seed)
    )
      throw badInput(`field "jobs.${i}" is not an image slot of this plan: ${JSON.stringify(job)}`);
    return job as EvalJob;
  });
}

function sameJobs(a: readonly EvalJob[], b: readonly EvalJob[]): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * The users' utility of the evaluation: every GenEval image's `utility` (results rows), per model
 * and head to head over prompts (engine/eval/utility-summary.ts). It needs the built-in world's
 * images and prompt metadata, so it is skipped when GenEval is.
 */
function utilityOf(
  plan: EvaluationPlan,
  names: readonly string[],
  rows: ReadonlyMap<string, readonly GenevalResultRow[]>,
  seed: number,
  resamples: number,
): EvaluationUtility {
  const weights = { ...DEFAULT_UTILITY_WEIGHTS };
  if (plan.suite.genevalSkipped)
    return {
      skipped:
        "it scores built-in world images against the prompts' metadata with GenEval's judge, " +
        'which is skipped here: a latent model draws other images',
      weights,
    };
  const images = new Map(
    names.map((n) => [
      n,
      rows.get(n)!.map((r) => {
        if (typeof r.utility !== 'number')
          throw badInput(`model "${n}": GenEval image ${r.filename} has no utility in its shard`);
        return { unit: String(r.promptIndex), utility: r.utility };
      }),
    ]),
  );
  // Comparisons read "dro vs base" (later models first), as the win rates; models in given order.
  const summary = summarizeUtility(images, {
    methods: [...names].reverse(),
    seed: `utility:${seed}`,
    resamples,
  });
  summary.models.reverse();
  return { weights, ...summary };
}

// ----- activities -----

export function createEvaluationActivities(deps: StageDeps) {
  const { store } = deps;
  // The next shard of the same model (the planner puts a model's shards next to each other) reuses
  // the decoded model; sampling never changes it.
  const models = new ModelCache<DiffusionModel>({
    load: async (ref) => decodeAnyModel(await readArtifact(store, ref), ref.uri),
    dispose: disposeModel,
  });

  return {
    /** Checks the inputs, builds the suite and writes plan.json; a plan already written is returned. */
    async planEvaluation(input: PlanEvaluationInput): Promise<PlanEvaluationResult> {
      const log = activityLogger(deps.logger);
      const runId = checkRunId(input.runId);
      const key = outputKey(input, 'eval', 'plan.json');
      const modelNames = checkNames(input.models, 'models');
      if (modelNames.length === 0) throw badInput('field "models" must name at least one model');
      input.models.forEach((m, i) => checkRef(m.model, `models.${i}.model`));
      checkNames(input.rewards, 'rewards', [DETECTOR_REWARD_NAME]);
      input.rewards.forEach((r, i) => checkRef(r.reward, `rewards.${i}.reward`));
      if (input.suite !== undefined) checkRef(input.suite, 'suite');
      if (input.trainingPrompts !== undefined) checkRef(input.trainingPrompts, 'trainingPrompts');
      const settings = checkSettings(input.settings, modelNames);
      const fingerprint = {
        models: input.models.map((m) => ({ name: m.name, sha256: m.model.sha256 })),
        rewards: input.rewards.map((r) => ({ name: r.name, sha256: r.reward.sha256 })),
        suite: input.suite?.sha256 ?? null,
        trainingPrompts: input.trainingPrompts?.sha256 ?? null,
        settings,
      };
      const resultOf = (plan: EvaluationPlan, ref: ArtifactRef): PlanEvaluationResult => ({
        plan: ref,
        genevalPrompts: plan.suite.genevalPrompts,
        winratePrompts: plan.suite.winratePrompts,
        gridPrompts: plan.gridPrompts,
        genevalRoot: plan.seeds.geneval,
        winrateRoot: plan.seeds.winrate,
        rewards: plan.rewards.map((r) => r.name),
      });

      const done = await finished(store, key);
      if (done) {
        const plan = await readPlan(store, done.ref);
        if (canonicalJson(plan.fingerprint) !== canonicalJson(fingerprint))
          throw badInput(
            `${done.ref.uri} plans an evaluation of other models, rewards, suite or settings; ` +
              `evaluate under another "out" prefix`,
          );
        log.info({ plan: done.ref.uri }, 'evaluation already planned');
        return resultOf(plan, done.ref);
      }

      const planModels: EvaluationPlan['models'] = [];
      const latentModels: string[] = [];
      for (const [i, m] of input.models.entries()) {
        const what = `models.${i} (${m.name})`;
        const bytes = await readArtifact(store, m.model);
        const described = await stageCall(what, () => describeModel(bytes, m.model.uri));
        if (described.space === 'latent') latentModels.push(m.name);
        const { imageChannels: channels, imageSize: size } = described;
        if (channels !== 3)
          throw badInput(
            described.space === 'pixel'
              ? `${what}: ${m.model.uri} takes ${channels}-channel latents; evaluation judges 3-channel pixel ` +
                  `images and a model bundle carries no VAE to decode latents`
              : `${what}: ${m.model.uri} decodes ${channels}-channel images; evaluation judges 3-channel RGB images`,
          );
        if (size < MIN_WORLD_RESOLUTION)
          throw badInput(
            `${what}: ${m.model.uri} draws ${size} px images; the judge needs at least ${MIN_WORLD_RESOLUTION} px`,
          );
        planModels.push({ name: m.name, model: m.model, sampleSize: size });
      }

      const planRewards: EvaluationPlan['rewards'] = [];
      for (const [i, r] of input.rewards.entries()) {
        let descriptor: RewardDescriptor;
        try {
          descriptor = await readJsonArtifact<RewardDescriptor>(store, r.reward);
        } catch (err) {
          if (err instanceof SyntaxError)
            throw badInput(
              `rewards.${i} (${r.name}): ${r.reward.uri} is not a reward-model descriptor (not JSON)`,
            );
          throw err;
        }
        if (descriptor?.format !== REWARD_DESCRIPTOR_FORMAT)
          throw badInput(
            `rewards.${i} (${r.name}): ${r.reward.uri} is not a reward-model descriptor (format ${JSON.stringify(descriptor?.format)})`,
          );
        planRewards.push({
          name: r.name,
          kind: descriptor.kind,
          identity: descriptor.identity,
          reward: r.reward,
        });
      }
      const genevalSkipped = latentModels.length
        ? `GenEval is skipped: its detector judges the built-in world's rendered shapes, and ` +
          `${latentModels.join(', ')} ${latentModels.length === 1 ? 'is a latent model' : 'are latent models'} ` +
          `(a diffusers pipeline drawing other images); the evaluation is the reward models' win rates`
        : undefined;
      // The detector score is the built-in world's; it says nothing about another model's images.
      if (!genevalSkipped) {
        const detector = new DetectorReward();
        planRewards.push({
          name: DETECTOR_REWARD_NAME,
          kind: 'detector',
          identity: { name: detector.name, version: detector.version },
        });
      }

      const training = new Set<string>();
      if (input.trainingPrompts) {
        heartbeat({ phase: 'reading training prompts' });
        for (const row of await readPreferenceRows(deps, input.trainingPrompts))
          training.add(normalizePrompt(row.caption));
      }
      const wanted = Math.max(settings.genevalPrompts, settings.winratePrompts);
      let selection: WorldSuite;
      let source: string;
      // How the exclusion reasons name where the prompts came from.
      let sourceWords = 'the built-in draw';
      if (input.suite) {
        const suite = input.suite;
        source = suite.uri;
        sourceWords = 'the suite file';
        const bytes = await readArtifact(store, suite);
        const parsed = await suiteCall(() => parseSuite(bytes, suite.uri));
        selection = await suiteCall(() => selectSuitePrompts(parsed, training, wanted, suite.uri));
      } else if (settings.heldOutOnly) {
        source = 'built-in held-out prompts (data.promptSplit hash)';
        sourceWords = 'the held-out prompts';
        const heldOut = TAGS.flatMap((tag) => heldOutPrompts(tag));
        selection = await suiteCall(() => selectSuitePrompts(heldOut, training, wanted, source));
      } else {
        const seed = `geneval-suite:${settings.seed}`;
        source = `built-in (seed ${seed})`;
        selection = await suiteCall(() =>
          buildWorldSuite({ seed, prompts: wanted, trainingPrompts: training }),
        );
      }
      // Without GenEval its prompts are only drawn for the report grid.
      const genevalPrompts = Math.min(
        genevalSkipped
          ? Math.max(1, Math.min(settings.gridPrompts, settings.genevalPrompts))
          : settings.genevalPrompts,
        selection.prompts.length,
      );
      const winratePrompts = Math.min(settings.winratePrompts, selection.prompts.length);
      const genevalRoot = settings.seed;
      const winrateRoot = settings.seed + genevalPrompts * settings.imagesPerPrompt;
      if (!Number.isSafeInteger(winrateRoot + winratePrompts * settings.winrateSamples))
        throw badInput(`field "settings.seed" ${settings.seed} is too large for ${wanted} prompts' seeds`);
      const plan: EvaluationPlan = {
        format: EVAL_PLAN_FORMAT,
        runId,
        fingerprint,
        models: planModels,
        rewards: planRewards,
        settings,
        seeds: { root: settings.seed, geneval: genevalRoot, winrate: winrateRoot },
        suite: {
          source,
          drawn: selection.drawn,
          excluded: selection.excluded,
          excludedPerTag: selection.excludedPerTag,
          excludedPrompts: selection.excludedPrompts,
          // Tags missing among the GenEval prompts, which may be fewer than the selection.
          missingTags: TAGS.filter(
            (t) => !selection.prompts.slice(0, genevalPrompts).some((p) => p.tag === t),
          ),
          excludedTags: excludedTags(selection, genevalPrompts, sourceWords),
          drawnPerTag: selection.drawnPerTag,
          trainingPrompts: training.size,
          genevalPrompts,
          winratePrompts,
          ...(genevalSkipped ? { genevalSkipped } : {}),
        },
        prompts: selection.prompts.slice(0, Math.max(genevalPrompts, winratePrompts)),
        gridPrompts: Math.min(settings.gridPrompts, genevalPrompts),
      };
      const ref = await putArtifact(store, key, encodeJson(plan), {
        kind: 'evaluation-plan',
        producer: 'planEvaluation',
        inputs: [
          ...input.models.map((m) => m.model.sha256),
          ...input.rewards.map((r) => r.reward.sha256),
          ...(input.suite ? [input.suite.sha256] : []),
          ...(input.trainingPrompts ? [input.trainingPrompts.sha256] : []),
        ],
        extra: { genevalPrompts, winratePrompts, excluded: selection.excluded },
      });
      log.info(
        { plan: ref.uri, genevalPrompts, winratePrompts, excluded: selection.excluded, source },
        'evaluation planned',
      );
      return resultOf(plan, ref);
    },

    /** Generates, judges and scores one shard's images and commits them; a committed shard is returned. */
    async evaluateShard(input: EvaluateShardInput): Promise<EvaluateShardResult> {
      const log = activityLogger(deps.logger);
      checkRunId(input.runId);
      if (!Number.isInteger(input.shard) || input.shard < 0)
        throw badInput(`field "shard" must be a non-negative integer, got ${JSON.stringify(input.shard)}`);
      const key = shardKey(input, input.shard);
      const plan = await readPlan(store, input.plan);
      const jobs = checkJobs(input.jobs, plan);
      const entry = plan.models.find((m) => m.name === input.model);
      if (!entry) throw badInput(`field "model": "${input.model}" is not a model of ${input.plan.uri}`);

      const done = await finished(store, key);
      if (done) {
        const doc = await readJsonArtifact<EvaluationShardDocument>(store, done.ref);
        if (
          doc.format !== EVAL_SHARD_FORMAT ||
          doc.plan !== input.plan.sha256 ||
          doc.model !== input.model ||
          !sameJobs(doc.jobs, jobs)
        )
          throw badInput(
            `${done.ref.uri} holds shard ${input.shard} of another evaluation plan; evaluate under another "out" prefix`,
          );
        log.info({ shard: input.shard, uri: done.ref.uri }, 'evaluation shard already committed');
        recordEvaluationShard('reused', doc.jobs.length);
        return { shard: done.ref, computed: false, images: doc.jobs.length };
      }

      // The same slots of the same model under the same protocol, computed by any evaluation.
      const identity = shardContentIdentity(plan, entry.model.sha256, jobs);
      const contentKey = shardContentKey(identity);
      const found = await findShardContent(store, contentKey, identity, log);
      const commitShard = async (
        content: Pick<EvaluationShardContent, 'geneval' | 'winrate' | 'grid' | 'seconds'>,
        source: EvaluationShardDocument['content'],
      ): Promise<ArtifactRef> => {
        const doc: EvaluationShardDocument = {
          format: EVAL_SHARD_FORMAT,
          shard: input.shard,
          plan: input.plan.sha256,
          model: input.model,
          modelSha256: entry.model.sha256,
          jobs,
          geneval: content.geneval,
          winrate: content.winrate,
          grid: content.grid,
          seconds: content.seconds,
          ...(source ? { content: source } : {}),
        };
        return putArtifact(store, key, encodeJson(doc), {
          kind: 'evaluation-shard',
          producer: 'evaluateShard',
          inputs: [input.plan.sha256, entry.model.sha256, ...(source ? [source.ref.sha256] : [])],
          extra: {
            shard: input.shard,
            model: input.model,
            images: jobs.length,
            reused: source?.reused ?? false,
          },
          // Two attempts of one shard compute the same verdicts; whichever committed first stands.
          ifExists: 'keep',
        });
      };
      if (found.content) {
        const ref = await commitShard(found.content.doc, {
          key: contentKey,
          ref: found.content.ref,
          reused: true,
        });
        log.info(
          { shard: input.shard, model: input.model, content: found.content.ref.uri },
          'evaluation shard reused by content',
        );
        recordEvaluationShard('reused', jobs.length);
        return { shard: ref, computed: false, images: jobs.length };
      }

      await useBackend(input.backend);
      const started = Date.now();
      heartbeat({ shard: input.shard, phase: 'loading', images: 0, total: jobs.length });
      const { model, release } = await stageCall(`model ${entry.name}`, () => models.acquire(entry.model));
      const rewards: { name: string; model: RewardModel; dispose: () => Promise<void> }[] = [];
      try {
        const meta = (job: EvalJob): PromptMetadata => plan.prompts[job.prompt]!;
        // The detector reads each prompt's metadata from the plan, so any valid suite prompt scores.
        const metadata = new Map(plan.prompts.map((p) => [p.prompt, p]));
        const hasWinrate = jobs.some((j) => j.kind === 'winrate');
        if (hasWinrate)
          for (const r of plan.rewards) {
            if (r.reward === undefined) {
              rewards.push({
                name: r.name,
                model: new DetectorReward({ metadata }),
                dispose: async () => {},
              });
            } else {
              const loaded = await loadRewardModel(deps, r.reward);
              rewards.push({ name: r.name, model: loaded.model, dispose: loaded.dispose });
            }
          }
        const size = imageSideOf(model);
        const generated = await stageCall(`shard ${input.shard}`, () =>
          generateImages(
            model,
            jobs.map((j) => meta(j).prompt),
            {
              seeds: jobs.map((j) => j.seed),
              steps: plan.settings.samplerSteps,
              guidanceScale: plan.settings.guidanceScale,
              batchSize: GENERATION_BATCH,
              onRuntime: (choice) => log.info(choice, 'UNet inference runtime selected'),
              onProgress: (images, total) =>
                heartbeat({ shard: input.shard, phase: 'generating', images, total }),
            },
          ),
        );
        // A latent model's samples are decoded by its VAE (÷ scaling_factor, decode, clamp).
        const pixels = await samplesToImages(model, generated);
        const images = toJudgedImages(pixels, size);
        heartbeat({ shard: input.shard, phase: 'judging', images: jobs.length, total: jobs.length });
        const {
          geneval,
          winrate,
          winrateSlots: winIdx,
          grid,
        } = judgeShardImages(jobs, images, plan.prompts, !plan.suite.genevalSkipped);
        for (const r of rewards) {
          const scores = await stageCall(`reward ${r.name}`, () =>
            r.model.score(
              winIdx.map((i) => images[i]!),
              winIdx.map((i) => meta(jobs[i]!).prompt),
            ),
          );
          scores.forEach((s, k) => (winrate[k]!.scores[r.name] = s));
        }
        const content: EvaluationShardContent = {
          format: EVAL_SHARD_CONTENT_FORMAT,
          key: contentKey,
          identity,
          geneval,
          winrate,
          grid,
          seconds: (Date.now() - started) / 1000,
        };
        // Written once: a concurrent evaluation's equal shard (another `seconds`) may stand instead.
        const contentRef =
          found.free === undefined
            ? undefined
            : await putArtifact(store, shardContentStoreKey(contentKey, found.free), encodeJson(content), {
                kind: 'evaluation-shard-content',
                producer: 'evaluateShard',
                inputs: [
                  entry.model.sha256,
                  ...identity.rewards.flatMap((r) => (r.sha256 ? [r.sha256] : [])),
                ],
                extra: { model: input.model, images: jobs.length },
                ifExists: 'keep',
              });
        const ref = await commitShard(
          content,
          contentRef && { key: contentKey, ref: contentRef, reused: false },
        );
        log.info(
          { shard: input.shard, model: input.model, images: jobs.length, seconds: content.seconds },
          'evaluation shard committed',
        );
        recordEvaluationShard('computed', jobs.length);
        return { shard: ref, computed: true, images: jobs.length };
      } finally {
        release();
        for (const r of rewards) await r.dispose();
      }
    },

    /** Reads every shard and writes results.jsonl per model, samples.json and evaluation.json. */
    async summarizeEvaluation(input: SummarizeEvaluationInput): Promise<SummarizeEvaluationResult> {
      const log = activityLogger(deps.logger);
      const runId = checkRunId(input.runId);
      const key = outputKey(input, 'eval', 'evaluation.json');
      const done = await finished(store, key);
      if (done) {
        const doc = await readJsonArtifact<EvaluationDocument>(store, done.ref);
        log.info({ uri: done.ref.uri }, 'evaluation already summarized');
        return { evaluation: done.ref, results: doc.results, samples: doc.samples, tables: doc.tables };
      }
      const plan = await readPlan(store, input.plan);
      const { settings } = plan;
      const names = plan.models.map((m) => m.name);
      const expected = planShards({
        models: names,
        genevalPrompts: plan.suite.genevalPrompts,
        imagesPerPrompt: settings.imagesPerPrompt,
        winratePrompts: plan.suite.winratePrompts,
        winrateSamples: settings.winrateSamples,
        genevalRoot: plan.seeds.geneval,
        winrateRoot: plan.seeds.winrate,
        shardSize: settings.shardSize,
        gridPrompts: plan.gridPrompts,
      });
      if (!Array.isArray(input.shards) || input.shards.length !== expected.length)
        throw badInput(
          `field "shards" must list all ${expected.length} shards of the plan, got ${input.shards?.length}`,
        );

      const rows = new Map<string, GenevalResultRow[]>(names.map((n) => [n, []]));
      // scores[reward][model][prompt][sample]
      const scores = new Map<string, Map<string, number[][]>>(
        plan.rewards.map((r) => [
          r.name,
          new Map(names.map((n) => [n, Array.from({ length: plan.suite.winratePrompts }, () => [])])),
        ]),
      );
      const grid = new Map<string, Map<number, { seed: number; png: string }>>(
        names.map((n) => [n, new Map()]),
      );
      for (const [n, ref] of input.shards.entries()) {
        const doc = await readJsonArtifact<EvaluationShardDocument>(store, checkRef(ref, `shards.${n}`));
        const want = expected[n]!;
        if (
          doc.format !== EVAL_SHARD_FORMAT ||
          doc.plan !== input.plan.sha256 ||
          doc.shard !== n ||
          doc.model !== want.model ||
          !sameJobs(doc.jobs, want.jobs)
        )
          throw badInput(`shards.${n}: ${ref.uri} is not shard ${n} of ${input.plan.uri}`);
        rows.get(doc.model)!.push(...genevalRowsOf(doc.geneval, plan.prompts));
        for (const w of doc.winrate)
          for (const r of plan.rewards) {
            const s = w.scores[r.name];
            if (typeof s !== 'number')
              throw badInput(
                `shards.${n}: ${ref.uri} has no "${r.name}" score for win-rate prompt ${w.prompt} sample ${w.index}`,
              );
            scores.get(r.name)!.get(doc.model)![w.prompt]![w.index] = s;
          }
        for (const g of doc.grid) grid.get(doc.model)!.set(g.prompt, { seed: g.seed, png: g.png });
        heartbeat({ phase: 'reading shards', shards: n + 1, total: input.shards.length });
      }

      const results: Record<string, ArtifactRef> = {};
      for (const name of names) {
        const list = rows
          .get(name)!
          .sort((a, b) => a.promptIndex - b.promptIndex || a.imageIndex - b.imageIndex);
        results[name] = await putArtifact(
          store,
          outputKey(input, 'eval', `results/${keySegment(name)}.jsonl`),
          new TextEncoder().encode(toResultsJsonl(list)),
          {
            kind: 'geneval-results',
            producer: 'summarizeEvaluation',
            inputs: [input.plan.sha256],
            extra: { model: name, images: list.length },
          },
        );
      }

      // The run's reward model: the first reward given (the detector when none is).
      const preferenceReward = plan.rewards[0]?.name ?? DETECTOR_REWARD_NAME;
      const { summaries, comparisons, table, winRates, perRewardMedianWinRates, keptImages } = compareModels({
        models: names,
        baseline: settings.baseline,
        geneval: rows,
        genevalSkipped: Boolean(plan.suite.genevalSkipped),
        rewards: plan.rewards.map((r) => ({
          reward: r.name,
          scores: Object.fromEntries(scores.get(r.name)!),
        })),
        preferenceReward,
        seed: settings.seed,
        bootstrapSamples: settings.bootstrapSamples,
      });
      const winRateImages = Object.fromEntries(
        Object.entries(keptImages).map(([model, indices]) => [
          model,
          indices.map((index, prompt) => ({
            prompt,
            index,
            seed: plan.seeds.winrate + prompt + index * plan.suite.winratePrompts,
          })),
        ]),
      );
      const utility = utilityOf(plan, names, rows, settings.seed, settings.bootstrapSamples);

      const gridPrompts = [...Array(plan.gridPrompts).keys()];
      const samples: EvaluationSamples = {
        format: EVAL_SAMPLES_FORMAT,
        prompts: gridPrompts.map((p) => plan.prompts[p]!.prompt),
        seeds: gridPrompts.map(
          (p) => grid.get(names[0]!)!.get(p)?.seed ?? plan.seeds.geneval + p * settings.imagesPerPrompt,
        ),
        methods: names.map((name) => ({
          method: name,
          images: gridPrompts.map((p) => {
            const g = grid.get(name)!.get(p);
            if (!g) throw badInput(`no grid image of model "${name}" for prompt ${p} in the shards`);
            return g.png;
          }),
        })),
      };
      const samplesRef = await putArtifact(
        store,
        outputKey(input, 'eval', 'samples.json'),
        encodeJson(samples),
        {
          kind: 'evaluation-samples',
          producer: 'summarizeEvaluation',
          inputs: [input.plan.sha256],
          extra: { prompts: samples.prompts.length, models: names.length },
        },
      );
      const tables =
        (plan.suite.genevalSkipped ? `${plan.suite.genevalSkipped}.\n\n` : '') +
        formatRunTables({ geneval: table, winRates, utility: utilityReport(utility) });
      const doc: EvaluationDocument = {
        format: EVALUATION_FORMAT,
        runId,
        models: plan.models.map((m) => ({ name: m.name, model: m.model })),
        baseline: settings.baseline,
        rewards: plan.rewards.map((r) => ({ name: r.name, kind: r.kind, identity: r.identity })),
        settings,
        seeds: {
          ...plan.seeds,
          schedule: {
            geneval: 'geneval + promptIndex * imagesPerPrompt + j',
            winrate: 'winrate + promptIndex + i * winratePrompts',
          },
        },
        suite: plan.suite,
        geneval: {
          ...(plan.suite.genevalSkipped ? { skipped: plan.suite.genevalSkipped } : {}),
          summaries,
          comparisons,
          table,
        },
        winRates,
        preferenceReward,
        winRateImages,
        perRewardMedianWinRates,
        utility,
        results,
        samples: samplesRef,
        tables,
      };
      const ref = await putArtifact(store, key, encodeJson(doc), {
        kind: 'evaluation',
        producer: 'summarizeEvaluation',
        inputs: [input.plan.sha256, ...input.shards.map((s) => s.sha256)],
        extra: { models: names, rewards: plan.rewards.map((r) => r.name) },
      });
      log.info({ uri: ref.uri, models: names.length, winRates: winRates.length }, 'evaluation written');
      return { evaluation: ref, results, samples: samplesRef, tables };
    },
  };
}

export type EvaluationActivities = ReturnType<typeof createEvaluationActivities>;

/** The task queue each evaluation activity belongs to (activities/index.ts QUEUE_ACTIVITIES). */
export const EVALUATION_QUEUES = {
  planEvaluation: 'cpu',
  evaluateShard: 'gpu',
  summarizeEvaluation: 'gpu',
} as const satisfies Record<keyof EvaluationActivities, 'gpu' | 'cpu'>;
