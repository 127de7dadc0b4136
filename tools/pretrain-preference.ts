/**
 * Pretrains the built-in world's preference model on captioned scenes (see
 * engine/rewards/preference-pretraining.ts) and writes the weights that `ranking.preferenceInit`
 * names, with their recipe in the file's metadata:
 *
 *   npx tsx tools/pretrain-preference.ts --out models/world-preference/pretrained.safetensors \
 *     [--seed 1] [--steps 3000] [--batch 64] [--lr 3e-3]
 *
 * Prints progress every 50 steps (loss, share of scenes whose true caption outscores its
 * contradicting one) and the file's SHA-256 at the end. On the wasm backend the same arguments
 * give the same bytes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../engine/backend';
import { serializeSafetensors } from '../engine/io/safetensors';
import { defaultPreferenceConfig } from '../engine/rewards/preference-model';
import { pretrainPreferenceModel } from '../engine/rewards/preference-pretraining';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const out = arg('out', '');
  if (!out) throw new Error('--out <file.safetensors> is required');
  const seed = Number(arg('seed', '1'));
  const steps = Number(arg('steps', '3000'));
  const batchSize = Number(arg('batch', '64'));
  const lr = Number(arg('lr', '3e-3'));
  const backend = await initBackend('auto');
  const config = defaultPreferenceConfig();
  const result = await pretrainPreferenceModel(config, {
    seed,
    steps,
    batchSize,
    lr,
    onProgress: (p) =>
      console.log(
        `step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} hard-negative accuracy ${p.accuracy.toFixed(3)} ${Math.round(p.seconds)} s`,
      ),
  });
  const tensors = new Map(
    [...result.model.weights()].map(([name, data]) => [
      name,
      { shape: result.model.params.get(name)!.shape, data },
    ]),
  );
  const bytes = serializeSafetensors(tensors, {
    metadata: {
      config: JSON.stringify(config),
      recipe: JSON.stringify({ seed, steps, batchSize, lr, backend: backend.name }),
      hardNegativeAccuracy: result.hardNegativeAccuracy.toFixed(4),
    },
  });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, out);
  result.model.dispose();
  console.log(
    `${out}: ${bytes.byteLength} bytes, SHA-256 ${createHash('sha256').update(bytes).digest('hex')}, ` +
      `${Math.round(result.seconds)} s`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
