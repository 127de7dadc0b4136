import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { childLogger, createLogger } from '../../infra/logger';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('logger', () => {
  test('writes JSON lines with the run context of child loggers', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream, pretty: false });
    childLogger(log, { workflowId: 'wf-1', runId: 'r-1', activity: 'trainChunk', attempt: 2 }).info(
      { step: 7 },
      'progress',
    );
    const [line] = out.lines();
    assert.equal(line!.msg, 'progress');
    assert.equal(line!.workflowId, 'wf-1');
    assert.equal(line!.runId, 'r-1');
    assert.equal(line!.activity, 'trainChunk');
    assert.equal(line!.attempt, 2);
    assert.equal(line!.step, 7);
  });

  test('redacts credentials wherever they appear', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream, pretty: false });
    log.info(
      {
        secretAccessKey: 'SECRET1',
        s3: { accessKeyId: 'AKIA', sessionToken: 'TOKEN' },
        config: { password: 'pw' },
      },
      'connecting',
    );
    const text = JSON.stringify(out.lines());
    for (const secret of ['SECRET1', 'AKIA', 'TOKEN', '"pw"'])
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.ok(text.includes('[redacted]'));
  });

  test('the default logger writes to stderr, never stdout (where --json and tables go)', () => {
    // What `dro worker` and the worker entry points log through: the process-wide default logger.
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        "const { logger } = require('./infra/logger'); logger().info({ taskQueue: 'dro-gpu' }, 'worker started'); logger().error('worker failed'); process.exit(0);",
      ],
      {
        cwd: path.join(__dirname, '..', '..'),
        encoding: 'utf8',
        env: { ...process.env, DRO_LOG_LEVEL: 'info' },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '', 'nothing on stdout');
    const lines = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.taskQueue]),
      [
        ['worker started', 'dro-gpu'],
        ['worker failed', undefined],
      ],
      'both entries, the second written before process.exit',
    );
  });
});
