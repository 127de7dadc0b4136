/**
 * `dro eval` through the real CLI against a real Temporal server: a model given by its file path
 * alone is evaluated and reported; a path that does not exist, or a file that is not a model
 * bundle, is refused by name before anything starts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createWorldActivities, type PrepareWorldResult } from '../../activities/world';
import { LocalArtifactStore } from '../../storage';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';

const ROOT = path.join(__dirname, '..', '..');

describe('dro eval', { timeout: 240_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  let modelFile: string;
  let configFile: string;
  let root: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-eval-cli-'));
    root = path.join(dir, 'artifacts');
    const scratch = new LocalArtifactStore({ root: path.join(dir, 'scratch') });
    const world = createWorldActivities({ store: scratch, logger: temporal.logger });
    const w = (await new MockActivityEnvironment().run(world.prepareWorld, {
      runId: 'eval-cli',
      out: 'model',
      seed: 4,
      unet: 'demo' as const,
      resolution: 16,
      captionNoise: 0,
      corpusSize: 1,
    })) as PrepareWorldResult;
    modelFile = path.join(dir, 'my-model.safetensors');
    fs.copyFileSync(new URL(w.model.uri), modelFile);
    configFile = path.join(dir, 'eval.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        storage: { kind: 'local', root },
        eval: {
          genevalPrompts: 3,
          imagesPerPrompt: 2,
          winratePrompts: 2,
          winrateSamples: 3,
          samplerSteps: 2,
          guidanceScale: 3,
          bootstrapSamples: 100,
        },
      }),
    );
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const dro = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), ...args], {
      cwd: dir,
      env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, DRO_LOG_LEVEL: 'error' },
      encoding: 'utf8',
      timeout: 200_000,
    });

  test('evaluates a model given by path and writes the report', () => {
    const r = dro('eval', '--model', `mine=${modelFile}`, '--config', configFile);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /\bmine\b/);
    const html = /Report: +(file:\/\/\S+report\.html)/.exec(r.stdout)?.[1];
    assert.ok(html, r.stdout);
    const page = fs.readFileSync(new URL(html), 'utf8');
    assert.match(page, /GenEval/);
    assert.match(page, /mine/);
  });

  test('a missing file and a file that is not a model are refused by name', () => {
    const missing = dro('eval', '--model', `x=${path.join(dir, 'nope.safetensors')}`, '--config', configFile);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /--model x .*nope\.safetensors: cannot read it \(no such file\)/);
    const notModel = path.join(dir, 'notes.txt');
    fs.writeFileSync(notModel, 'hello');
    const wrong = dro('eval', '--model', `y=${notModel}`, '--config', configFile);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /--model y: .*notes\.txt/);
    assert.doesNotMatch(wrong.stderr, /\n\s+at /, 'no stack trace');
  });
});
