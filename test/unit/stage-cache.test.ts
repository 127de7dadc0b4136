/**
 * The stage cache on a real local store: a miss writes into the key's own prefix, a committed
 * entry is a hit that names the producing run, a changed input, config slice or user file gives
 * another key, a corrupted cached output is reported and recomputed into a fresh generation
 * (nothing is replaced), and a forced rerun never reuses the normal generation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createStageCacheActivities, type StageLookupInput } from '../../activities/stage-cache';
import { createLogger } from '../../infra/logger';
import { LocalArtifactStore, type ArtifactRef } from '../../storage';

const env = new MockActivityEnvironment();
const run = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => env.run(fn, input) as Promise<O>;
const logger = createLogger({ level: 'silent' });

void describe('stage cache', () => {
  let dir: string;
  let store: LocalArtifactStore;
  let cache: ReturnType<typeof createStageCacheActivities>;
  let input: ArtifactRef;
  const lookup = (over: Partial<StageLookupInput> = {}) =>
    run(cache.lookupStage, {
      runId: 'run-1',
      stage: 'reward',
      version: 1,
      slice: { seed: 0, kind: 'preference' },
      inputs: { preferences: input },
      external: [],
      force: false,
      execution: 'exec-1',
      ...over,
    });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dro-stage-cache-'));
    store = new LocalArtifactStore({ root: path.join(dir, 'store') });
    cache = createStageCacheActivities({ store, logger });
    input = await store.put('inputs/prefs.bin', new TextEncoder().encode('preferences'), {
      kind: 'x',
      producer: 'test',
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  void test('miss, commit, hit; the key follows the slice, the input digests and user files', async () => {
    const miss = await lookup();
    assert.equal(miss.hit, undefined);
    assert.equal(miss.out, `stages/reward/${miss.key.slice(0, 16)}/a`);
    const output = await store.put(`${miss.out}/reward.json`, new TextEncoder().encode('{"w":1}'), {
      kind: 'x',
      producer: 'test',
    });
    await run(cache.commitStage, {
      runId: 'run-1',
      stage: 'reward',
      version: 1,
      key: miss.key,
      execution: 'exec-1',
      outputs: { reward: output },
      details: { accuracy: 0.75 },
      note: 'trained',
    });
    const hit = await lookup({ runId: 'run-2', execution: 'exec-2' });
    assert.equal(hit.key, miss.key);
    assert.deepEqual(hit.hit?.outputs, { reward: output });
    assert.equal(hit.hit?.runId, 'run-1');
    assert.deepEqual(hit.hit?.details, { accuracy: 0.75 });

    assert.notEqual((await lookup({ slice: { seed: 1, kind: 'preference' } })).key, miss.key);
    assert.notEqual((await lookup({ version: 2 })).key, miss.key);
    const other = await store.put('inputs/prefs2.bin', new TextEncoder().encode('other'), {
      kind: 'x',
      producer: 't',
    });
    assert.notEqual((await lookup({ inputs: { preferences: other } })).key, miss.key);
    // Key order of the slice does not matter (canonical JSON).
    assert.equal((await lookup({ slice: { kind: 'preference', seed: 0 } })).key, miss.key);

    const file = path.join(dir, 'user.parquet');
    fs.writeFileSync(file, 'v1');
    const k1 = (await lookup({ external: [file] })).key;
    fs.writeFileSync(file, 'v2');
    assert.notEqual((await lookup({ external: [file] })).key, k1, 'an edited user file changes the key');
    await assert.rejects(
      lookup({ external: [path.join(dir, 'missing.parquet')] }),
      /missing\.parquet.*no such file/,
    );
  });

  void test('a corrupted cached output is reported and recomputed into a fresh generation', async () => {
    const miss = await lookup({ stage: 'ranking' });
    const output = await store.put(`${miss.out}/ranking.json`, new TextEncoder().encode('[1,2,3]'), {
      kind: 'x',
      producer: 'test',
    });
    await run(cache.commitStage, {
      runId: 'run-1',
      stage: 'ranking',
      version: 1,
      key: miss.key,
      execution: 'exec-1',
      outputs: { ranking: output },
      details: {},
    });
    fs.writeFileSync(store.pathOf(`${miss.out}/ranking.json`), '[9,9,9]');
    const again = await lookup({ stage: 'ranking', execution: 'exec-9' });
    assert.equal(again.hit, undefined);
    assert.match(again.rejected ?? '', /output 'ranking' .*Digest mismatch/);
    assert.equal(again.out, `stages/ranking/${miss.key.slice(0, 16)}/r-exec-9`);
  });

  void test('a forced rerun writes into its own generation even when an entry exists', async () => {
    const forced = await lookup({ force: true, execution: 'exec-7' });
    assert.equal(forced.hit, undefined);
    assert.equal(forced.out, `stages/reward/${forced.key.slice(0, 16)}/r-exec-7`);
  });
});
