import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../config/load';
import { isHostPort, LIMITS } from '../../config/schemas';
import { s3BucketNameProblem } from '../../storage/config';

function problems(value: unknown): string[] {
  try {
    parseConfig(value, 'test');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('config bounds and rules', () => {
  test('every size has a maximum', () => {
    for (const [value, field] of [
      [{ data: { prompts: 1e15 } }, '$.data.prompts'],
      [{ pretrain: { corpusSize: 1e12 } }, '$.pretrain.corpusSize'],
      [{ workers: { heartbeatSeconds: 1e308 } }, '$.workers.heartbeatSeconds'],
      [{ eval: { bootstrapSamples: LIMITS.bootstrapSamples + 1 } }, '$.eval.bootstrapSamples'],
    ] as const) {
      assert.ok(
        problems(value).some((p) => p.startsWith(`${field}: Too big`)),
        `${field}: ${problems(value)}`,
      );
    }
  });

  test('cross-field rules are schema refinements', () => {
    assert.match(
      problems({ data: { source: 'pickapic', paths: ['x'] } }).join('\n'),
      /\$\.model\.baseCheckpoint: data\.source 'pickapic' needs/,
    );
    assert.match(problems({ model: { unet: 'tiny' } }).join('\n'), /\$\.model\.unet: .*4-channel latents/);
    assert.match(
      problems({ data: { prompts: 4 }, ranking: { topK: 9 } }).join('\n'),
      /\$\.ranking\.topK: .*more than the 8 images/,
    );
    assert.deepEqual(problems({ data: { prompts: 4 }, ranking: { topK: 8 } }), []);
  });

  test('S3 bucket names follow AWS rules; endpoints are http(s)', () => {
    for (const bad of ['a..b', '192.168.5.4', 'xn--abc', 'Upper', 'ab', 'x-s3alias'])
      assert.ok(s3BucketNameProblem(bad), bad);
    for (const good of ['my-bucket', 'a.b-c', 'abc'])
      assert.equal(s3BucketNameProblem(good), undefined, good);
    assert.match(
      problems({ storage: { kind: 's3', bucket: 'ok-b', endpoint: 'javascript:alert(1)' } }).join(),
      /endpoint: must be an http/,
    );
  });

  test('a malformed temporal.address is reported as malformed', () => {
    assert.equal(isHostPort('temporal.example:7233'), true);
    assert.equal(isHostPort('[::1]:7233'), true);
    for (const bad of ['http://h:7233', 'h', 'h:0', 'h:99999', ':7233'])
      assert.equal(isHostPort(bad), false, bad);
    assert.match(
      problems({ temporal: { address: 'http://h' } }).join(),
      /\$\.temporal\.address: must be '' \(embedded server\) or host:port/,
    );
  });
});
