import assert from 'node:assert/strict';
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
});
