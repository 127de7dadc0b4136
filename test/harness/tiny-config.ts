/** The smallest pipeline configuration that still runs every stage for real (integration tests). */
import { parseConfig } from '../../config/load';
import type { PipelineConfig, PipelineConfigInput } from '../../config/schemas';

export function tinyPipelineConfig(overrides: PipelineConfigInput = {}): PipelineConfig {
  return parseConfig(
    {
      name: 'pipeline-test',
      seed: 3,
      model: { unet: 'demo', resolution: 16 },
      pretrain: {
        steps: 4,
        batchSize: 4,
        gradientAccumulation: 1,
        checkpointEvery: 2,
        stepsPerActivity: 2,
        corpusSize: 32,
      },
      data: { source: 'world', prompts: 10, samplerSteps: 3, guidanceScale: 3 },
      eval: {
        genevalPrompts: 4,
        imagesPerPrompt: 2,
        winratePrompts: 3,
        winrateSamples: 3,
        samplerSteps: 2,
        guidanceScale: 3,
        bootstrapSamples: 200,
        shardSize: 8,
      },
      ranking: { rewardModel: 'preference', topK: 6, shardSize: 8 },
      sft: {
        steps: 2,
        batchSize: 2,
        gradientAccumulation: 1,
        checkpointEvery: 1,
        stepsPerActivity: 2,
        randomFlip: false,
      },
      dro: {
        steps: 2,
        batchSize: 2,
        gradientAccumulation: 1,
        checkpointEvery: 1,
        stepsPerActivity: 2,
        randomFlip: false,
        bufferSize: 2,
        bufferBatchSize: 2,
        bufferSampleSteps: 2,
        samplerSteps: 3,
      },
      ...overrides,
    },
    'tiny pipeline config',
  );
}
