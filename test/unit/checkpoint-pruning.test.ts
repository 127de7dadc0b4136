import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpointKey, pruneCheckpoints, resumableCheckpoint } from '../../activities/training';
import { LocalArtifactStore } from '../../storage/local-store';

describe('checkpoint pruning', () => {
  test('keeps the newest checkpoints of the stage and nothing of other stages is touched', async () => {
    const store = new LocalArtifactStore({ root: fs.mkdtempSync(path.join(os.tmpdir(), 'prune-')) });
    const put = (key: string) =>
      store.put(key, new Uint8Array([1]), { kind: 'checkpoint', producer: 'test' });
    for (const step of [16, 32, 48, 64, 128]) await put(checkpointKey('run1', 'dro', step));
    await put(checkpointKey('run1', 'sft', 16));
    const deleted = await pruneCheckpoints(store, 'run1', 'dro', 3);
    assert.deepEqual(deleted, [checkpointKey('run1', 'dro', 16), checkpointKey('run1', 'dro', 32)]);
    assert.deepEqual(
      await store.list('runs/run1/dro/checkpoints/'),
      [48, 64, 128].map((s) => checkpointKey('run1', 'dro', s)),
    );
    assert.ok(await store.exists(checkpointKey('run1', 'sft', 16)));
    assert.deepEqual(await pruneCheckpoints(store, 'run1', 'dro', 0), []);
  });
});

describe('resuming after pruning', () => {
  test('a heartbeated checkpoint that was pruned resumes from the newest one of the stage within the chunk', async () => {
    const store = new LocalArtifactStore({ root: fs.mkdtempSync(path.join(os.tmpdir(), 'resume-')) });
    const refs = new Map<number, Awaited<ReturnType<typeof store.put>>>();
    for (const step of [4, 6, 8, 10]) {
      refs.set(
        step,
        await store.put(checkpointKey('r', 'dro', step), new Uint8Array([step]), {
          kind: 'checkpoint',
          producer: 't',
        }),
      );
    }
    const named = { ref: refs.get(4)!, step: 4 };
    await store.delete(named.ref.uri);
    const input = { runId: 'r', stage: 'dro' as const, untilStep: 8 } as Parameters<
      typeof resumableCheckpoint
    >[1];
    const chosen = await resumableCheckpoint(store, input, named);
    assert.equal(chosen.step, 8);
    assert.equal(chosen.ref.sha256, refs.get(8)!.sha256);
    // A checkpoint that still exists is used as named.
    assert.equal((await resumableCheckpoint(store, input, { ref: refs.get(6)!, step: 6 })).step, 6);
  });
});
