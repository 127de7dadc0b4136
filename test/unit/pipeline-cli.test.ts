/**
 * `dro run`'s embedded demo config and the lines it prints: the progress line of an activity's
 * progress log entry, and the first-vs-last DRO loss summary.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DEMO_CONFIG_FILE } from '../../cli/commands/run';
import { commandLogger, progressLine } from '../../cli/progress';
import { lossSummary } from '../../cli/run-ending';
import { logger as rootLogger } from '../../infra/logger';
import { loadConfigFile } from '../../config/load';

describe('dro run', () => {
  test('the embedded demo config starts from the shipped base, whose digest is the recorded one', () => {
    const c = loadConfigFile(DEMO_CONFIG_FILE);
    assert.equal(c.model.baseCheckpoint, 'models/world-base/base.safetensors');
    const root = path.join(__dirname, '..', '..');
    const digest = createHash('sha256')
      .update(fs.readFileSync(path.join(root, c.model.baseCheckpoint)))
      .digest('hex');
    assert.match(
      fs.readFileSync(path.join(root, 'models', 'world-base', 'README.md'), 'utf8'),
      new RegExp(digest),
    );
    assert.equal(c.eval.enabled, true);
    const scratch = loadConfigFile(path.join(root, 'config', 'demo-from-scratch.json'));
    assert.equal(scratch.model.baseCheckpoint, '', 'a config that pretrains its own base stays available');
  });

  test('the embedded demo config runs every stage in the built-in world without flips', () => {
    const c = loadConfigFile(DEMO_CONFIG_FILE);
    assert.equal(c.data.source, 'world');
    assert.equal(c.model.unet, 'demo');
    assert.equal(c.model.resolution, 16);
    assert.equal(c.sft.enabled, true);
    // A horizontal flip would contradict "left of" / "right of" prompts.
    assert.equal(c.sft.randomFlip, false);
    assert.equal(c.dro.randomFlip, false);
    assert.ok(c.ranking.topK <= 2 * c.data.prompts, 'topK larger than the simulated set');
  });

  test('every shipped config refreshes the DRO policy at every optimizer update', () => {
    // A policy several updates stale makes -grad Lp push phi along its own drift (docs/algorithm.md).
    const root = path.join(__dirname, '..', '..');
    const files = [
      DEMO_CONFIG_FILE,
      ...['demo-from-scratch.json', 'sd15-dro.json', 'tiny-sd.json'].map((f) => path.join(root, 'config', f)),
      ...fs
        .readdirSync(path.join(root, 'config', 'experiments'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => path.join(root, 'config', 'experiments', f)),
    ];
    assert.ok(files.length >= 10);
    for (const file of files) {
      const c = loadConfigFile(file);
      assert.equal(c.dro.bufferUpdateSteps, c.dro.gradientAccumulation, path.basename(file));
    }
  });

  test('the loss summary compares the first and last logged DRO step', () => {
    const summary = lossSummary({
      history: [
        { step: 4, loss: 0.5, diff: 0.2 },
        { step: 8, loss: 0.3, diff: -0.1 },
        { step: 12, loss: 0.1, diff: -0.4 },
      ],
    });
    assert.deepEqual(summary, { steps: [4, 12], loss: [0.5, 0.1], diff: [0.2, -0.4] });
    assert.equal(lossSummary({ history: [] }), undefined);
    assert.equal(lossSummary(null), undefined);
  });

  test('progress log entries become short lines, other entries none', () => {
    assert.equal(
      progressLine({
        msg: 'training progress',
        stage: 'dro',
        step: 12,
        totalSteps: 64,
        loss: 0.00123,
        imagesPerSecond: 6.54,
      }),
      '[dro] step 12/64, loss 1.230e-3, 6.5 img/s',
    );
    assert.equal(
      progressLine({
        msg: 'ranking progress',
        shardsDone: 2,
        shardsTotal: 6,
        imagesPerSecond: 120.5,
        etaSeconds: 4,
      }),
      '[ranking] shard 2/6, 120.5 img/s, ETA 4.0 s',
    );
    assert.equal(progressLine({ msg: 'checkpoint written', step: 3 }), undefined);
  });

  test("the command's logger turns progress entries into lines, at most one per interval", () => {
    const lines: string[] = [];
    const log = commandLogger((line) => lines.push(line), 60_000);
    log.info({ stage: 'sft', step: 1, totalSteps: 8, loss: 0.5 }, 'training progress');
    log.info({ stage: 'sft', step: 2, totalSteps: 8, loss: 0.4 }, 'training progress');
    log.info({ step: 2 }, 'checkpoint written');
    assert.deepEqual(lines, ['[sft] step 1/8, loss 5.000e-1']);
  });

  test("the engine's own entries follow the command's rule: nothing on stdout, stderr from warn up", () => {
    const level = process.env.DRO_LOG_LEVEL;
    process.env.DRO_LOG_LEVEL = 'warn';
    commandLogger(() => {}, 60_000);
    if (level === undefined) delete process.env.DRO_LOG_LEVEL;
    else process.env.DRO_LOG_LEVEL = level;
    const written: [string, string][] = [];
    const spy = (stream: 'stdout' | 'stderr') => {
      const original = process[stream].write.bind(process[stream]);
      process[stream].write = ((chunk: string | Uint8Array) => {
        written.push([stream, String(chunk)]);
        return true;
      }) as typeof process.stdout.write;
      return () => (process[stream].write = original);
    };
    const restore = [spy('stdout'), spy('stderr')];
    try {
      rootLogger().info({ backend: 'wasm' }, 'tensorflow backend selected');
      rootLogger().warn('something to see');
    } finally {
      restore.forEach((r) => r());
    }
    assert.deepEqual(
      written.map(([stream, line]) => [stream, (JSON.parse(line) as { msg: string }).msg]),
      [['stderr', 'something to see']],
    );
  });
});
