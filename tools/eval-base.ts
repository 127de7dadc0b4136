/**
 * Measures GenEval of a model bundle on the held-out suite of a pretraining recipe, exactly as
 * tools/pretrain-base.ts does at the end of a run:
 *
 *   npx tsx tools/eval-base.ts --model models/world-base/base.safetensors \
 *     [--config config/pretrain-base.json] [--set final.seedsPerPrompt=4 ...] \
 *     [--grid samples.png [--grid-count 48]]
 */
import fs from 'node:fs';
import { initBackend } from '../engine/backend';
import { decodeModelBundle } from '../engine/io/model-bundle';
import { contactSheet, measureFinal, promptSensitivity } from './base-geneval';
import { loadRecipe } from './pretrain-recipe';

function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === `--${name}` && process.argv[i + 1] !== undefined) out.push(process.argv[i + 1]!);
  });
  return out;
}

async function run(): Promise<void> {
  const file = args('model')[0];
  if (!file) throw new Error('--model <bundle.safetensors> is required');
  const recipe = loadRecipe(args('config')[0], args('set'));
  await initBackend('auto');
  const model = decodeModelBundle(new Uint8Array(fs.readFileSync(file)), file);
  const t0 = Date.now();
  const grid = args('grid')[0];
  const final = await measureFinal(model, recipe, (images, side) => {
    // The first image of every prompt, in suite order (tags in GenEval's order).
    if (grid)
      fs.writeFileSync(grid, contactSheet(images.slice(0, Number(args('grid-count')[0] ?? 48)), side));
  });
  const sensitivity = promptSensitivity(model);
  console.log(
    JSON.stringify({
      model: file,
      ...final,
      promptSensitivity: sensitivity,
      seconds: Math.round((Date.now() - t0) / 1000),
    }),
  );
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
