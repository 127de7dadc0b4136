/**
 * Sources and outputs of any size: a base checkpoint past 2 GiB (a sparse file) is digested for the
 * stage cache by streaming, equal to `sha256sum`'s digest, where reading it whole stops at 2 GiB; a
 * cache hit checks a large cached output against the store's record without reading its bytes,
 * and still rejects one whose record no longer matches.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  VERIFY_BYTES_UP_TO,
  createStageCacheActivities,
  digestSource,
  type StageLookupInput,
} from '../../activities/stage-cache';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';

const env = new MockActivityEnvironment();
const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;

describe('large sources and outputs', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-large-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a base checkpoint over 2 GiB is digested by streaming', async () => {
    const file = path.join(dir, 'big.safetensors');
    // Sparse: 2 GiB + 1 MiB of holes and a few written bytes, no disk or memory spent on them.
    fs.writeFileSync(file, 'header');
    fs.truncateSync(file, 2 ** 31 + 2 ** 20);
    await assert.rejects(fs.promises.readFile(file), /ERR_FS_FILE_TOO_LARGE|larger than 2 GiB|File size/);
    const expected = execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];
    assert.equal(await digestSource(file), expected);
  });

  test('a cache hit checks a large output by its record, not by reading it', async () => {
    const store = new LocalArtifactStore({ root: path.join(dir, 'store') });
    const reads: string[] = [];
    const watched = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'get')
          return (uri: string, sha?: string) => {
            reads.push(uri);
            return target.get(uri, sha);
          };
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const cache = createStageCacheActivities({ store: watched, logger: createLogger({ level: 'silent' }) });
    const input = await store.put('inputs/x.bin', new Uint8Array([1]), { kind: 'x', producer: 'test' });
    const lookup = (execution: string) =>
      run(cache.lookupStage, {
        runId: 'run-1',
        stage: 'sft',
        version: 1,
        slice: { seed: 0 },
        inputs: { data: input },
        external: [],
        force: false,
        execution,
      } satisfies StageLookupInput);
    const miss = await lookup('e1');
    const big = await store.put(`${miss.out}/model.safetensors`, new Uint8Array(VERIFY_BYTES_UP_TO + 1), {
      kind: 'model-bundle',
      producer: 'test',
    });
    const small = await store.put(`${miss.out}/summary.json`, new TextEncoder().encode('{}'), {
      kind: 'x',
      producer: 'test',
    });
    await run(cache.commitStage, {
      runId: 'run-1',
      stage: 'sft',
      version: 1,
      key: miss.key,
      execution: 'e1',
      outputs: { model: big, summary: small },
      details: {},
    });
    reads.length = 0;
    const hit = await lookup('e2');
    assert.deepEqual(hit.hit?.outputs, { model: big, summary: small });
    assert.ok(!reads.includes(big.uri), `the large output was read: ${reads.join(', ')}`);
    assert.ok(reads.includes(small.uri), 'the small output is re-hashed');

    // Another artifact under the output's key: the entry no longer matches the store's record.
    await store.delete(big.uri);
    const other: ArtifactRef = await store.put(
      `${miss.out}/model.safetensors`,
      new Uint8Array(VERIFY_BYTES_UP_TO + 2),
      {
        kind: 'model-bundle',
        producer: 'test',
      },
    );
    assert.notEqual(other.sha256, big.sha256);
    const rejected = await lookup('e3');
    assert.equal(rejected.hit, undefined);
    assert.match(rejected.rejected ?? '', /output 'model' .*the store records/);
  });
});
