import { z } from 'zod';
import { PipelineConfig } from './schemas';

/** JSON Schema of what a user may write (defaults make every field optional). */
export function pipelineJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(PipelineConfig, { io: 'input', unrepresentable: 'any' }),
    title: 'dro-pipeline configuration',
  };
}
