// Listing in the library: shm.list(), shm.sysv.list(), sem.list(),
// sem.sysv.list(), mq.list(), mq.sysv.list(), fifo.list(), unix.list() return
// what exists, with the fields `ipckit ls` shows.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fifo, mq, sem, shm, unix } from 'ipckit';
import { startPeer, uniqueKey, uniqueName } from './helpers.js';

const T = { timeout: 30_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-list-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const me = process.getuid!();

describe('listing', () => {
  test('shm.list(): a new POSIX object with its size, mode, owner and attach count', T, async () => {
    const n = uniqueName('list-shm');
    const region = shm.open(n, { create: true, exclusive: true, size: 8192, mode: 0o640 });
    try {
      const find = () => shm.list().find((e) => e.name === n);
      const e = find();
      assert.ok(e, 'listed');
      assert.deepEqual({ size: e.size, mode: e.mode, uid: e.uid, attaches: e.attaches }, { size: 8192, mode: 0o640, uid: me, attaches: 1 });
      assert.equal(e.ino, region.stat().ino);
      assert.ok(e.mtime instanceof Date);
      const peer = startPeer('shm-peer');
      await peer.next();
      peer.send({ op: 'open', name: n });
      await peer.next();
      assert.equal(find()?.attaches, 2, 'this process and the peer map it');
      peer.send({ op: 'exit' });
      await peer.exited;
      assert.ok(shm.list().every((x) => !x.name.startsWith('/sem.')), 'named semaphores are not shared memory');
    } finally {
      region.close();
      shm.unlink(n);
    }
    assert.equal(shm.list().find((e) => e.name === n), undefined, 'gone once unlinked');
  });

  test('shm.sysv.list(): a new segment with key, size, attaches and creator pid', T, () => {
    const key = uniqueKey();
    const seg = shm.sysv.get(key, { create: true, exclusive: true, size: 5000, mode: 0o604 });
    try {
      seg.attach();
      const e = shm.sysv.list().find((x) => x.id === seg.id);
      assert.ok(e);
      assert.deepEqual(
        { key: e.key >>> 0, size: e.size, mode: e.mode, uid: e.uid, cpid: e.cpid, nattch: e.nattch, markedForRemoval: e.markedForRemoval },
        { key, size: 5000, mode: 0o604, uid: me, cpid: process.pid, nattch: 1, markedForRemoval: false },
      );
      seg.detach();
    } finally {
      seg.remove();
    }
    assert.equal(shm.sysv.list().find((x) => x.id === seg.id), undefined);
  });

  test('sem.list(): a new named semaphore with its value', T, () => {
    const n = uniqueName('list-sem');
    const s = sem.open(n, { create: true, exclusive: true, value: 3, mode: 0o600 });
    try {
      s.post();
      const e = sem.list().find((x) => x.name === n);
      assert.ok(e, 'listed');
      assert.deepEqual({ value: e.value, mode: e.mode, uid: e.uid }, { value: 4, mode: 0o600, uid: me });
    } finally {
      s.close();
      sem.unlink(n);
    }
    assert.equal(sem.list().find((x) => x.name === n), undefined);
  });

  test('sem.sysv.list(): a new set with its values', T, () => {
    const set = sem.sysv.get('private', { count: 3 });
    try {
      set.setAll([1, 0, 7]);
      const e = sem.sysv.list().find((x) => x.id === set.id);
      assert.ok(e);
      assert.deepEqual({ key: e.key, count: e.count, values: e.values, mode: e.mode, uid: e.uid }, { key: 0, count: 3, values: [1, 0, 7], mode: 0o600, uid: me });
    } finally {
      set.remove();
    }
    assert.equal(sem.sysv.list().find((x) => x.id === set.id), undefined);
  });

  test('mq.list() and mq.sysv.list() alike', T, async (t) => {
    const sq = mq.sysv.get('private');
    try {
      await sq.send(4, 'four');
      const e = mq.sysv.list().find((x) => x.id === sq.id);
      assert.deepEqual({ qnum: e?.qnum, cbytes: e?.cbytes, lspid: e?.lspid }, { qnum: 1, cbytes: 4, lspid: process.pid });
    } finally {
      sq.remove();
    }
    if (!mq.mountPoint()) return t.skip('the mqueue filesystem is not mounted');
    const n = uniqueName('list-mq');
    const q = mq.open(n, { create: true, exclusive: true });
    try {
      await q.send('hello');
      assert.deepEqual(
        mq.list()?.find((x) => x.name === n),
        { name: n, bytes: 5, messages: 1, mode: 0o600, uid: me, gid: process.getgid!(), notifyPid: 0 },
      );
    } finally {
      q.close();
      mq.unlink(n);
    }
  });

  test('fifo.list(dir) with who has it open; unix.list(dir) with listening and stale sockets', T, async () => {
    const f = join(dir, 'listed.fifo');
    fifo.create(f);
    const reader = await fifo.open(f, 'rw');
    const live = join(dir, 'live.sock');
    const server = await unix.listen(live);
    const stale = join(dir, 'stale.sock');
    (await unix.listen(stale, { unlinkOnClose: false })).close();
    try {
      assert.deepEqual(fifo.list(dir), [{ path: f, mode: 0o600, uid: me, gid: process.getgid!(), opens: 1, readers: 1, writers: 1, pids: [process.pid] }]);
      const sockets = unix.list(dir).filter((s) => s.path.startsWith(dir));
      assert.deepEqual(
        sockets.map((s) => ({ path: s.path, state: s.state, type: s.type })),
        [
          { path: live, state: 'listening', type: 'stream' },
          { path: stale, state: 'stale', type: null },
        ],
      );
      assert.equal(unix.list().find((s) => s.path === stale), undefined, 'a stale file only shows in the directories asked for');
      assert.ok(unix.list().some((s) => s.path === live), 'a served path shows anywhere');
    } finally {
      reader.destroy();
      server.close();
      fifo.remove(f);
      rmSync(stale, { force: true });
    }
    assert.throws(() => fifo.list(42 as unknown as string), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });
});
