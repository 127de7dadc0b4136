import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpointKey, pruneCheckpoints } from '../../activities/training';
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
