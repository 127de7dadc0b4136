/** The dev server's database lock: one owner at a time, stale locks taken over, release by the owner only. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { dbLockPath, lockDatabase } from '../../infra/db-lock';

const tmpDb = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dro-dblock-')), 'temporal.db');

void describe('database lock', () => {
  void test('a live owner holds it until it releases', () => {
    const db = tmpDb();
    const first = lockDatabase(db, '127.0.0.1:1');
    assert.ok(first.release);
    const second = lockDatabase(db, '127.0.0.1:2');
    assert.deepEqual(second.heldBy, { pid: process.pid, address: '127.0.0.1:1' });
    first.release();
    assert.equal(fs.existsSync(dbLockPath(db)), false);
    const third = lockDatabase(db, '127.0.0.1:3');
    assert.ok(third.release);
    third.release();
  });

  void test("a dead process' lock is taken over, and its release leaves the new owner's lock alone", () => {
    const db = tmpDb();
    const gone = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    fs.writeFileSync(dbLockPath(db), JSON.stringify({ pid: Number(gone), address: 'old' }));
    const lock = lockDatabase(db, 'new');
    assert.ok(lock.release, 'a stale lock was not taken over');
    assert.equal(JSON.parse(fs.readFileSync(dbLockPath(db), 'utf8')).pid, process.pid);
    // Someone else's lock (here a live parent process) is not removed by a release of ours.
    fs.writeFileSync(dbLockPath(db), JSON.stringify({ pid: process.ppid }));
    lock.release();
    assert.equal(JSON.parse(fs.readFileSync(dbLockPath(db), 'utf8')).pid, process.ppid);
  });

  void test('an unreadable lock file is taken over', () => {
    const db = tmpDb();
    fs.writeFileSync(dbLockPath(db), 'not json');
    const lock = lockDatabase(db, 'x');
    assert.ok(lock.release);
    lock.release();
  });
});
