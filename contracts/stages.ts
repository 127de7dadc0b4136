/**
 * The names of the pipeline's stages, in a valid order. The graph itself (inputs, outputs, queues,
 * config slices) is workflow logic in workflows/stage-graph.ts; the names are shared with the CLI
 * (`--rerun`), progress queries and run reports.
 */
export const STAGE_NAMES = [
  'base',
  'pretrain',
  'preferences',
  'reward',
  'ranking',
  'sft',
  'dro',
  'dpo',
  'eval',
  'report',
] as const;
export type StageName = (typeof STAGE_NAMES)[number];
