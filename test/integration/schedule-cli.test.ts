/**
 * Schedules through the real CLI against a real Temporal server: `dro schedule create` with an
 * interval, `trigger` starts a pipeline run that the workers complete, `list`, `pause` and
 * `delete` act on it; a malformed interval or cron and an unknown schedule are refused by name.
 * Evaluation schedules: `--latest-of` made before any run exists evaluates the run that completed
 * last, found when the trigger fires, writes the same report `dro eval` writes and is listed by
 * `dro runs list`; `--model` URIs are checked (and files imported) before the schedule is created.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../cli/commands/run';
import { configHash } from '../../cli/provenance';
import { LocalArtifactStore } from '../../storage';
import type { ScheduledEvaluationInput, ScheduledEvaluationResult } from '../../contracts/evaluation';
import { startTemporalHarness, type TemporalHarness } from '../harness/temporal';
import { tinyPipelineConfig } from '../harness/tiny-config';

const ROOT = path.join(__dirname, '..', '..');

describe('dro schedule', { timeout: 900_000 }, () => {
  let temporal: TemporalHarness;
  let dir: string;
  let configFile: string;
  let root: string;

  before(async () => {
    temporal = await startTemporalHarness();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-schedule-'));
    root = path.join(dir, 'artifacts');
    const { $schema: _schema, ...config } = tinyPipelineConfig({
      name: 'nightly',
      storage: { kind: 'local', root },
      // The run skips its evaluation; the tiny settings are what the evaluation schedules use.
      eval: { ...tinyPipelineConfig().eval, enabled: false },
    });
    configFile = path.join(dir, 'nightly.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
  });
  after(async () => {
    await temporal?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const dro = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'dro.cjs'), ...args, '--config', configFile], {
      cwd: dir,
      env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, DRO_LOG_LEVEL: 'error' },
      encoding: 'utf8',
      // Each call compiles the CLI with tsx; on a busy machine that alone can take most of a minute.
      timeout: 180_000,
    });

  /** The id of the first workflow of `type` whose id starts with `prefix`, waiting for it to appear. */
  async function findWorkflow(type: string, prefix: string): Promise<string> {
    for (let i = 0; i < 120; i++) {
      for await (const w of temporal.client.workflow.list({ query: `WorkflowType = '${type}'` }))
        if (w.workflowId.startsWith(prefix) && !w.workflowId.endsWith('-eval')) return w.workflowId;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.fail(`no ${type} workflow ${prefix}* started`);
  }

  let pipelineRunId: string | undefined;

  test('a CLI-created schedule starts a run that completes; a --latest-of schedule made before it evaluates it', async () => {
    const hash = configHash(loadConfig(configFile));
    // Made before any run of the config exists: the run is looked up when the trigger fires.
    const evals = dro('schedule', 'create', 'evals', '--latest-of', hash, '--every', '1d');
    assert.equal(evals.status, 0, evals.stderr);
    assert.match(
      evals.stdout,
      /Schedule evals created: every 1d; evaluates the newest completed run of config/,
    );
    assert.match(evals.stdout, /\(now: none yet\)/);

    const created = dro('schedule', 'create', 'nightly', '--every', '1d');
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /Schedule nightly created: every 1d/);
    const listed = dro('schedule', 'list', '--json');
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { schedule: string; paused: boolean }[])
        .map((s) => [s.schedule, s.paused])
        .sort(),
      [
        ['evals', false],
        ['nightly', false],
      ],
    );

    const workers = await temporal.startWorkers({ store: new LocalArtifactStore({ root }) });
    try {
      const triggered = dro('schedule', 'trigger', 'nightly');
      assert.equal(triggered.status, 0, triggered.stderr);
      // The scheduled run's id is the schedule's id plus the time it fired.
      const runId = await findWorkflow('pipelineWorkflow', 'nightly');
      const result = (await temporal.client.workflow.getHandle(runId).result()) as { runId: string };
      assert.equal(result.runId, runId);
      pipelineRunId = runId;
      const manifests = fs.readdirSync(path.join(root, 'runs'));
      assert.ok(
        manifests.some((d) => d.startsWith('nightly')),
        manifests.join(', '),
      );

      assert.equal(dro('schedule', 'trigger', 'evals').status, 0);
      const evalId = await findWorkflow('scheduledEvaluationWorkflow', 'evals');
      const evaluated = (await temporal.client.workflow
        .getHandle(evalId)
        .result()) as ScheduledEvaluationResult;
      assert.equal(evaluated.source?.runId, runId);
      assert.equal(evaluated.source?.configHash, hash);
      // The run's own models, base first: the same set its evaluation stage compares.
      assert.equal(evaluated.models[0]?.name, 'base');
      assert.ok(evaluated.models.some((m) => m.name === 'dro'));
      const store = new LocalArtifactStore({ root });
      assert.ok(await store.exists(evaluated.evaluation.uri));
      assert.ok(evaluated.evaluation.uri.includes('/evaluations/evals'));
      assert.match(evaluated.tables, /dro/);
      // The same report pages `dro eval` writes, beside its evaluation.
      assert.ok(evaluated.report, 'the scheduled evaluation wrote no report');
      assert.ok(evaluated.report.html.uri.includes('/evaluations/evals'), evaluated.report.html.uri);
      const page = fs.readFileSync(new URL(evaluated.report.html.uri), 'utf8');
      assert.match(page, /GenEval/);
      assert.match(page, new RegExp(`training prompts of run ${runId}`));
      // `dro runs list` shows it beside the pipeline run.
      const runsListed = dro('runs', 'list', '--json');
      assert.equal(runsListed.status, 0, runsListed.stderr);
      const rows = JSON.parse(runsListed.stdout) as { runId: string; kind: string }[];
      assert.equal(rows.find((r) => r.runId === evalId)?.kind, 'evaluation', runsListed.stdout);
      assert.equal(rows.find((r) => r.runId === runId)?.kind, 'pipeline', runsListed.stdout);
    } finally {
      await workers.stop();
    }

    assert.equal(dro('schedule', 'pause', 'nightly').status, 0);
    const paused = JSON.parse(dro('schedule', 'list', '--json').stdout) as {
      schedule: string;
      paused: boolean;
    }[];
    assert.equal(paused.find((s) => s.schedule === 'nightly')?.paused, true);
    assert.equal(dro('schedule', 'delete', 'nightly').status, 0);
    assert.equal(dro('schedule', 'delete', 'evals').status, 0);
    assert.match(dro('schedule', 'list').stdout, /no schedules/);
  });

  test('--model URIs are checked before the schedule exists; files are imported into the store', async () => {
    assert.ok(pipelineRunId, 'needs the run of the first test');
    const store = new LocalArtifactStore({ root });
    const missing = dro(
      'schedule',
      'create',
      'bad-model',
      '--model',
      'dro=missing/model.safetensors',
      '--every',
      '1d',
    );
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /--model dro: missing\/model\.safetensors does not exist \(no such file\)/);
    const notModel = dro('schedule', 'create', 'bad-model', '--model', `cfg=${configFile}`, '--every', '1d');
    assert.equal(notModel.status, 1);
    assert.match(notModel.stderr, /--model cfg: /);
    const badHash = dro('schedule', 'create', 'bad-model', '--latest-of', 'abc12', '--every', '1d');
    assert.equal(badHash.status, 1);
    assert.match(badHash.stderr, /--latest-of "abc12": give a config hash \(64 hex digits/);
    // A prefix is looked up among the runs' config hashes; none starts with this one.
    const unknownHash = dro(
      'schedule',
      'create',
      'bad-model',
      '--latest-of',
      'ffffff000000',
      '--every',
      '1d',
    );
    assert.equal(unknownHash.status, 1);
    assert.match(
      unknownHash.stderr,
      /--latest-of ffffff000000: no run on this cluster has a config hash starting with ffffff000000/,
    );
    const both = dro(
      'schedule',
      'create',
      'bad-model',
      '--model',
      'a=x',
      '--latest-of',
      'abc',
      '--every',
      '1d',
    );
    assert.equal(both.status, 1);
    assert.match(both.stderr, /give --model or --latest-of, not both/);
    assert.match(dro('schedule', 'list').stdout, /no schedules/);

    // A run's model in the store is used where it is; a file elsewhere is streamed into the store.
    const manifestKey = (await store.list('runs/')).filter((k) => k.endsWith('/manifest.json')).at(-1)!;
    const manifest = JSON.parse(new TextDecoder().decode(await store.get(manifestKey))) as {
      artifacts: { stage: string; role: string; uri: string; sha256: string }[];
    };
    const droModel = manifest.artifacts.find((a) => a.stage === 'dro' && a.role === 'model')!;
    const copy = path.join(dir, 'copy.safetensors');
    fs.copyFileSync(new URL(droModel.uri), copy);
    const ok = dro(
      'schedule',
      'create',
      'weekly-eval',
      '--model',
      `dro=${droModel.uri}`,
      `copy=${copy}`,
      '--cron',
      '0 3 * * 1',
      '--json',
    );
    assert.equal(ok.status, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as {
      models: { name: string; model: { uri: string; sha256: string } }[];
    };
    assert.deepEqual(out.models[0], {
      name: 'dro',
      model: { uri: droModel.uri, sha256: droModel.sha256, size: fs.statSync(copy).size },
    });
    assert.equal(out.models[1]!.name, 'copy');
    assert.equal(out.models[1]!.model.sha256, droModel.sha256);
    assert.match(out.models[1]!.model.uri, /\/imports\/[0-9a-f]{32}\/model\.safetensors$/);
    assert.ok(await store.exists(out.models[1]!.model.uri));
    const description = await temporal.client.schedule.getHandle('weekly-eval').describe();
    const action = description.action as { workflowType: string; args?: unknown[] };
    assert.equal(action.workflowType, 'scheduledEvaluationWorkflow');
    const input = action.args?.[0] as ScheduledEvaluationInput;
    assert.deepEqual(input.models, out.models);
    assert.equal(input.settings.baseline, 'dro');
    assert.equal(dro('schedule', 'delete', 'weekly-eval').status, 0);
  });

  test('malformed intervals, cron specs and unknown schedules are refused by name', () => {
    const every = dro('schedule', 'create', 'bad', '--every', 'often');
    assert.equal(every.status, 1);
    assert.match(every.stderr, /--every "often": use a positive number with s, m, h or d/);
    const cron = dro('schedule', 'create', 'bad', '--cron', '61 * *');
    assert.equal(cron.status, 1);
    assert.match(cron.stderr, /--cron "61 \* \*": use 5 fields/);
    const unknown = dro('schedule', 'pause', 'nothing-here');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no schedule nothing-here/);
  });
});
