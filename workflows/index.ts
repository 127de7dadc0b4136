/** Every workflow the workers run; the bundle entry point (workers/create-worker.ts). */
export { smokeWorkflow } from './smoke';
export { trainingWorkflow } from './training';
export { pipelineWorkflow } from './pipeline';
export { evaluationWorkflow } from './evaluation';
export { scheduledEvaluationWorkflow } from './evaluation-schedule';
