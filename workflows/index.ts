/** Every workflow the workers run; the bundle entry point (workers/create-worker.ts). */
export { smokeWorkflow } from './smoke';
