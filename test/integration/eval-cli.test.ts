/**
 * `dro eval` through the real CLI against a real Temporal server: a model given by its file path
 * alone is evaluated and reported; a path that does not exist, or a file that is not a model
 * bundle, is refused by name before anything starts. `--like <run>` judges by that run's suite
 * rules (its training prompts excluded, its held-out prompts) and settings, and says so; an unknown
 * run, an oversized suite or a suite prompt past the limit are refused before anything is written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createWorldActivities, type PrepareWorldResult } from '../../activities/world';
import { parseConfig } from '../../config/load';
import { MAX_SUITE_PROMPT_CHARS } from '../../engine/data/text-limits';
import { encodePickapicParquet } from '../../engine/data/pickapic';
import { encodePng } from '../../engine/data/image-codec';
import { heldOutPrompts } from '../../engine/world/prompt-split';
import { TAGS } from '../../engine/world/world';
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
    assert.match(r.stdout, /^Suite: +built-in .*no training prompts excluded \(name a run with --like/m);
    const html = /Report: +(file:\/\/\S+report\.html)/.exec(r.stdout)?.[1];
    assert.ok(html, r.stdout);
    const page = fs.readFileSync(new URL(html), 'utf8');
    assert.match(page, /GenEval/);
    assert.match(page, /mine/);
  });

  test('a missing file and a file that is not a model are refused by name', () => {
    const missing = dro('eval', '--model', `x=${path.join(dir, 'nope.safetensors')}`, '--config', configFile);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /--model x: .*nope\.safetensors does not exist \(no such file\)/);
    const notModel = path.join(dir, 'notes.txt');
    fs.writeFileSync(notModel, 'hello');
    const wrong = dro('eval', '--model', `y=${notModel}`, '--config', configFile);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /--model y: .*notes\.txt/);
    assert.doesNotMatch(wrong.stderr, /\n\s+at /, 'no stack trace');
  });

  /** Files under the store root, so a refusal can be seen to write nothing. */
  const storeFiles = (): string[] =>
    fs.existsSync(root) ? (fs.readdirSync(root, { recursive: true }) as string[]).sort() : [];

  test('--like of an unknown run, an oversized suite and an overlong prompt are refused; nothing is written', () => {
    const before = storeFiles();
    const unknown = dro(
      'eval',
      '--model',
      `mine=${modelFile}`,
      '--like',
      'no-such-run',
      '--config',
      configFile,
    );
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /--like no-such-run: no such run in file:\/\//);
    const big = path.join(dir, 'big.jsonl');
    fs.writeFileSync(big, ' '.repeat(17 * 1024 * 1024));
    const tooBig = dro('eval', '--model', `mine=${modelFile}`, '--suite', big, '--config', configFile);
    assert.equal(tooBig.status, 1);
    assert.match(
      tooBig.stderr,
      /--suite .*big\.jsonl: 17\.0 MiB, more than the 16\.0 MiB a suite may have; not read/,
    );
    const long = path.join(dir, 'long.jsonl');
    const line = { tag: 'single_object', include: [{ class: 'circle', count: 1 }], prompt: 'a'.repeat(5000) };
    fs.writeFileSync(long, `${JSON.stringify(line)}\n`);
    const longPrompt = dro('eval', '--model', `mine=${modelFile}`, '--suite', long, '--config', configFile);
    assert.equal(longPrompt.status, 1);
    assert.match(
      longPrompt.stderr,
      new RegExp(
        `--suite .*long\\.jsonl line 1: field prompt: 5000 characters, more than the ${MAX_SUITE_PROMPT_CHARS}`,
      ),
    );
    assert.ok(longPrompt.stderr.length < 2000, 'the prompt is not echoed');
    assert.deepEqual(storeFiles(), before, 'nothing was written to the store');
  });

  test("--like judges by the run's suite rules and settings and says which", async () => {
    // A finished run as the store holds it: its manifest names its config and its preference set.
    const store = new LocalArtifactStore({ root });
    // The first held-out prompt of two tags: both among the prompts the suite draws first.
    const trained = [heldOutPrompts(TAGS[0])[0]!, heldOutPrompts(TAGS[1])[0]!];
    const png = encodePng({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(90) });
    const parquet = encodePickapicParquet(
      trained.map((p, i) => ({
        caption: p.prompt,
        image_0_uid: `a${i}`,
        image_1_uid: `b${i}`,
        jpg_0: png,
        jpg_1: png,
        label_0: 1,
        label_1: 0,
        user_id: i,
        ranking_id: i,
      })),
      {},
      'preferences.parquet',
    );
    const preferences = await store.put('runs/like-src/preferences.parquet', parquet, {
      kind: 'preferences',
      producer: 'test',
    });
    const config = parseConfig({
      storage: { kind: 'local', root },
      data: { promptSplit: 'hash' },
      eval: {
        genevalPrompts: 2,
        imagesPerPrompt: 1,
        winratePrompts: 1,
        winrateSamples: 2,
        samplerSteps: 2,
        guidanceScale: 3,
        bootstrapSamples: 50,
      },
    });
    await store.put(
      'runs/like-src/executions/e1/manifest.json',
      new TextEncoder().encode(
        JSON.stringify({
          runId: 'like-src',
          config,
          artifacts: [{ ...preferences, stage: 'preferences', role: 'preferences' }],
        }),
      ),
      { kind: 'manifest', producer: 'test' },
    );
    const r = dro('eval', '--model', `mine=${modelFile}`, '--like', 'like-src', '--config', configFile);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const suite = /^Suite: +(.*)$/m.exec(r.stdout)?.[1];
    assert.ok(suite, r.stdout);
    assert.match(suite, /built-in held-out prompts/);
    assert.match(suite, /2 of \d+ drawn prompts excluded as training prompts of run like-src/);
    // The run's settings, not the config file's 3 prompts.
    assert.match(suite, /2 GenEval and 1 win-rate prompts/);
    const html = /Report: +(file:\/\/\S+report\.html)/.exec(r.stdout)?.[1];
    assert.match(fs.readFileSync(new URL(html!), 'utf8'), /like-src/);
  });
});
