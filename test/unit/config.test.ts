import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, defaultConfig, loadConfigFile, parseConfig } from '../../config/load';
import { pipelineJsonSchema } from '../../config/json-schema';

const root = path.join(__dirname, '..', '..');

function problems(value: unknown): Array<{ path: string; message: string }> {
  try {
    parseConfig(value, 'test');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('config was accepted');
}

describe('pipeline config', () => {
  test('an empty config takes the reference defaults', () => {
    const c = defaultConfig();
    assert.equal(c.dro.margin, 1e-3);
    assert.equal(c.dro.learningRate, 1e-4);
    assert.equal(c.storage.kind, 'local');
    assert.equal(c.temporal.namespace, 'default');
  });

  test('config/sd15-dro.json validates and carries the reference hyperparameters', () => {
    const c = loadConfigFile(path.join(root, 'config', 'sd15-dro.json'));
    assert.equal(c.model.unet, 'sd15');
    assert.deepEqual(
      {
        steps: c.dro.steps,
        lr: c.dro.learningRate,
        batch: c.dro.batchSize,
        accumulation: c.dro.gradientAccumulation,
        clip: c.dro.maxGradNorm,
        dropout: c.dro.promptDropout,
        margin: c.dro.margin,
        bufferSize: c.dro.bufferSize,
        bufferBatch: c.dro.bufferBatchSize,
        sampleSteps: c.dro.bufferSampleSteps,
        updateSteps: c.dro.bufferUpdateSteps,
        solverSteps: c.dro.samplerSteps,
        guidance: c.dro.bufferGuidanceScale,
        checkpointEvery: c.dro.checkpointEvery,
        flip: c.dro.randomFlip,
      },
      {
        steps: 25600,
        lr: 1e-4,
        batch: 4,
        accumulation: 16,
        clip: 1.0,
        dropout: 0.2,
        margin: 1e-3,
        bufferSize: 4,
        bufferBatch: 4,
        sampleSteps: 1,
        updateSteps: 16,
        solverSteps: 20,
        guidance: 1.0,
        checkpointEvery: 1280,
        flip: true,
      },
    );
    assert.equal(c.ranking.topK, 500);
  });

  test('every problem is reported with its JSON path', () => {
    const found = problems({ dro: { steps: -5, margin: 'big', bogus: 1 }, sft: { learningRate: 0 } });
    const byPath = new Map(found.map((p) => [p.path, p.message]));
    assert.ok(byPath.has('$.dro.steps'), JSON.stringify(found));
    assert.ok(byPath.has('$.dro.margin'));
    assert.match(byPath.get('$.dro') ?? '', /unknown key.*'bogus'/);
    assert.ok(byPath.has('$.sft.learningRate'));
  });

  test('unknown top-level keys and wrong storage kinds are rejected', () => {
    assert.match(problems({ trainig: {} })[0]!.message, /'trainig'/);
    assert.equal(problems({ storage: { kind: 'ftp' } })[0]!.path, '$.storage.kind');
    assert.equal(problems({ storage: { kind: 's3' } })[0]!.path, '$.storage.bucket');
  });

  test('cross-field rules name the field', () => {
    assert.equal(problems({ data: { source: 'pickapic' } })[0]!.path, '$.data.paths');
    assert.equal(
      problems({ dro: { gradientAccumulation: 16, checkpointEvery: 100 } })[0]!.path,
      '$.dro.checkpointEvery',
    );
  });

  test('a file that is not JSON names the file', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-')), 'bad.json');
    fs.writeFileSync(file, '{ "seed": 1,');
    assert.throws(
      () => loadConfigFile(file),
      (err: unknown) => err instanceof ConfigError && err.message.includes(file),
    );
  });

  test('--set overrides apply before validation and a wrong one names its path', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-')), 'run.json');
    fs.writeFileSync(file, JSON.stringify({ seed: 1, dro: { margin: 0.001 } }));
    const c = loadConfigFile(file, [
      'seed=7',
      'dro.margin=0',
      'eval.baselines=["base","dpo"]',
      'name=trial one',
    ]);
    assert.equal(c.seed, 7);
    assert.equal(c.dro.margin, 0);
    assert.deepEqual(c.eval.baselines, ['base', 'dpo']);
    assert.equal(c.name, 'trial one');
    assert.throws(
      () => loadConfigFile(file, ['dro.margn=0']),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('--set dro.margn=0') &&
        err.problems.some((p) => p.path === '$.dro' && /margn/.test(p.message)),
    );
    assert.throws(
      () => loadConfigFile(file, ['seed.x=1']),
      (err: unknown) => err instanceof ConfigError && /'seed' is not a section/.test(err.message),
    );
    assert.throws(
      () => loadConfigFile(file, ['margin']),
      (err: unknown) => err instanceof ConfigError && /expected path=value/.test(err.message),
    );
    assert.throws(
      () => loadConfigFile(file, ['__proto__.polluted=1']),
      (err: unknown) => err instanceof ConfigError && /invalid path/.test(err.message),
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('the experiment configs validate', () => {
    const dir = path.join(root, 'config', 'experiments');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 7, files.join());
    for (const f of files) loadConfigFile(path.join(dir, f));
    const matched = loadConfigFile(path.join(dir, 'matched-compute.json'));
    assert.equal(matched.dro.warmStart, 'base');
    assert.equal(matched.sft.steps, matched.dro.steps);
    assert.equal(matched.dpo.steps, matched.dro.steps);
    assert.equal(matched.dpo.enabled, true);
    const margins = files
      .filter((f) => f.startsWith('margin-'))
      .map((f) => loadConfigFile(path.join(dir, f)).dro.margin);
    assert.deepEqual(margins.sort(), [0, 1e-4, 1e-3, 1e-2].sort());
  });

  test("the reference regime's switches: DRO from the base, clipping off, bf16, draws without replacement", () => {
    const d = defaultConfig();
    assert.equal(d.dro.warmStart, 'base');
    assert.equal(d.dro.precision, undefined);
    assert.equal(d.dro.bufferDraw, undefined);
    const c = parseConfig(
      {
        sft: { maxGradNorm: 0, precision: 'bf16' },
        dro: { maxGradNorm: 0, precision: 'bf16', bufferDraw: 'without-replacement', bufferSampleSteps: 1 },
      },
      'test',
    );
    assert.equal(c.dro.maxGradNorm, 0);
    assert.equal(c.sft.precision, 'bf16');
    assert.equal(c.dro.bufferDraw, 'without-replacement');
    assert.deepEqual(
      problems({ dro: { precision: 'fp16' } }).map((p) => p.path),
      ['$.dro.precision'],
    );
    assert.deepEqual(
      problems({ dro: { bufferDraw: 'sometimes' } }).map((p) => p.path),
      ['$.dro.bufferDraw'],
    );
    assert.deepEqual(
      problems({ sft: { maxGradNorm: -1 } }).map((p) => p.path),
      ['$.sft.maxGradNorm'],
    );
  });

  test('the checked-in JSON Schema is current', () => {
    const onDisk = JSON.parse(fs.readFileSync(path.join(root, 'config', 'schema.json'), 'utf8')) as unknown;
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(pipelineJsonSchema())));
  });
});

describe('dro validate', () => {
  const dro = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(root, 'bin', 'dro.cjs'), ...args], { encoding: 'utf8' });

  test('prints every problem and exits non-zero', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'run.json');
    fs.writeFileSync(file, JSON.stringify({ seed: 'x', dro: { steps: -1 } }));
    const r = dro('validate', file);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /\$\.seed:/);
    assert.match(r.stderr, /\$\.dro\.steps:/);
    assert.deepEqual(fs.readdirSync(dir), ['run.json']);
  });

  test('accepts the ready configs', () => {
    const r = dro('validate', path.join(root, 'config', 'sd15-dro.json'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /valid/);
  });
});
