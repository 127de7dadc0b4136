/**
 * What workflows, activities, workers and the CLI agree on: workflow inputs and results, queries
 * and signals, stage names, task queues, failure types and search attributes. Pure types and
 * constants (plus the pure shard planning), safe to import from deterministic workflow code.
 */
export * from './errors';
export * from './evaluation';
export * from './pipeline';
export * from './search-attributes';
export * from './smoke';
export * from './stages';
export * from './task-queues';
export * from './training';
