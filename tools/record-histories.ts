/**
 * Records the histories that the workflow replay test replays (test/fixtures/histories/): a tiny
 * pipeline run with the DPO branch on (pipelineWorkflow) and its DRO child (trainingWorkflow), on
 * a throwaway dev server and store. Run by hand after a deliberate, versioned workflow change:
 *
 *   npx tsx tools/record-histories.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporal as proto } from '@temporalio/proto';
import { startPipeline } from '../cli/commands/run';
import { LocalArtifactStore } from '../storage';
import { startTemporalHarness } from '../test/harness/temporal';
import { tinyPipelineConfig } from '../test/harness/tiny-config';
import { trainingWorkflowId } from '../workflows/pipeline';

const OUT = path.join(__dirname, '..', 'test', 'fixtures', 'histories');

async function main(): Promise<void> {
  const temporal = await startTemporalHarness();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-record-'));
  try {
    const store = new LocalArtifactStore({ root: dir });
    const workers = await temporal.startWorkers({ store });
    try {
      const config = tinyPipelineConfig({
        name: 'replay',
        dpo: {
          enabled: true,
          steps: 2,
          batchSize: 2,
          gradientAccumulation: 1,
          checkpointEvery: 1,
          stepsPerActivity: 2,
        },
      });
      const runId = 'replay';
      const handle = await startPipeline(temporal.client, { runId, config });
      await handle.result();
      fs.mkdirSync(OUT, { recursive: true });
      const write = async (name: string, workflowId: string): Promise<void> => {
        const history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
        // Binary protobuf: exact, and independent of JSON field-naming conventions across SDK versions.
        const bytes = proto.api.history.v1.History.encode(history).finish();
        fs.writeFileSync(path.join(OUT, `${name}.binpb`), bytes);
        console.log(`wrote ${name}.binpb (${history.events?.length ?? 0} events)`);
      };
      await write('pipeline', runId);
      await write('training-dro', trainingWorkflowId(runId, 'dro'));
    } finally {
      await workers.stop();
    }
  } finally {
    await temporal.teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
