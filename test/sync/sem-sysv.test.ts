// System V semaphore sets between real processes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IpcError, sem } from 'ipckit';
import { has, run, uniqueKey } from '../helpers.js';
import { T, ask, peer, sets, sysvSet } from './sync-kit.js';

describe('System V semaphore sets', () => {
  test('a set made by ipcmk -S is driven by ipckit; ipcs -s lists ours with its count', { ...T, skip: !has('ipcmk') }, async () => {
    const out = run('ipcmk', ['-S', '3']);
    const id = Number(/id:\s*(\d+)/.exec(out)![1]);
    const theirs = sem.sysv.fromId(id);
    sets.add(theirs);
    assert.equal(theirs.count, 3);
    theirs.setAll([0, 4, 0]);
    assert.equal(await theirs.op([{ index: 1, delta: -3 }]), true);
    assert.deepEqual(theirs.getAll(), [0, 1, 0]);
    assert.equal(theirs.pidOf(1), process.pid);

    const key = uniqueKey();
    const ours = sysvSet(5, key);
    const line = run('ipcs', ['-s'])
      .split('\n')
      .find((l) => l.startsWith(`0x${key.toString(16).padStart(8, '0')}`));
    assert.ok(line, 'ipcs -s lists the set');
    const cols = line!.trim().split(/\s+/);
    assert.equal(Number(cols[1]), ours.id);
    assert.equal(cols[3], '600');
    assert.equal(Number(cols[4]), 5);
    assert.equal(sem.sysv.get(key).id, ours.id);
    assert.throws(() => sem.sysv.get(key, { count: 6 }), { code: 'ERR_IPCKIT_SIZE_MISMATCH' });
  });

  test('a multi-op op() that cannot complete changes nothing', T, async () => {
    const s = sysvSet(3);
    s.setAll([5, 0, 2]);
    assert.equal(await s.op([{ index: 0, delta: -1 }, { index: 2, delta: 1 }, { index: 1, delta: -1, nowait: true }]), false);
    assert.deepEqual(s.getAll(), [5, 0, 2]);
    await assert.rejects(s.op([{ index: 0, delta: -5 }, { index: 1, delta: -1 }], { timeout: 20 }), { code: 'ETIMEDOUT' });
    assert.deepEqual(s.getAll(), [5, 0, 2]);
    assert.equal(s.opSync([{ index: 0, delta: -5 }, { index: 2, delta: -2 }]), true);
    assert.deepEqual(s.getAll(), [0, 0, 0]);
    const ac = new AbortController();
    const aborted = s.op([{ index: 1, delta: -1 }], { signal: ac.signal });
    setTimeout(() => ac.abort(), 5);
    await assert.rejects(aborted, { name: 'AbortError' });
    assert.equal(s.waitingCount(1), 0, 'the aborted semop is no longer waiting');
  });

  test('waitingCount, zeroWaitingCount, pidOf and stat() while a peer waits', T, async () => {
    const s = sysvSet(2);
    s.setValue(1, 1);
    const p = await peer();
    p.send({ op: 'sysv-op', id: s.id, ops: [{ index: 1, delta: 0 }], timeout: 20_000 });
    while (s.zeroWaitingCount(1) === 0) await new Promise((res) => setTimeout(res, 2));
    const mine = s.op([{ index: 0, delta: -1 }], { timeout: 20_000 });
    while (s.waitingCount(0) === 0) await new Promise((res) => setTimeout(res, 2));
    s.setValue(1, 0);
    assert.deepEqual(await p.next(), { applied: true, values: [0, 0] });
    s.setValue(0, 1);
    assert.equal(await mine, true);
    assert.equal(s.pidOf(0), process.pid);
    const st = s.stat();
    assert.equal(st.count, 2);
    assert.equal(st.mode, 0o600);
    assert.equal(st.uid, process.getuid!());
    assert.equal(st.cuid, process.getuid!());
    assert.equal(st.gid, process.getgid!());
    assert.equal(st.cgid, process.getgid!());
    assert.equal(st.key, 0);
    assert.ok(st.otime instanceof Date && st.ctime instanceof Date);
    assert.equal(typeof st.seq, 'number');
    s.set({ mode: 0o640 });
    assert.equal(s.stat().mode, 0o640);
  });

  test('kill -9 while holding a SEM_UNDO decrement: the kernel undoes it and the waiter proceeds', T, async () => {
    const s = sysvSet(1);
    s.setValue(0, 1);
    const p = await peer();
    assert.deepEqual(await ask(p, { op: 'sysv-op', id: s.id, ops: [{ index: 0, delta: -1, undo: true }] }), { applied: true, values: [0] });
    const waiting = s.op([{ index: 0, delta: -1 }], { timeout: 20_000 });
    while (s.waitingCount(0) === 0) await new Promise((res) => setTimeout(res, 2));
    p.child.kill('SIGKILL');
    assert.equal(await waiting, true);
    assert.equal(s.getValue(0), 0);
  });

  test('bad input: out-of-range index, delta, value, huge op count; removed set gives EIDRM', T, async () => {
    const s = sysvSet(2);
    await assert.rejects(s.op([{ index: 2, delta: 1 }]), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(s.op([{ index: 0, delta: 40000 }]), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(s.op([]), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(s.op(Array.from({ length: 100_000 }, () => ({ index: 0, delta: 1 }))), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => s.setValue(0, -1), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => s.setValue(0, 40000), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => s.setAll([1]), { code: 'ERR_IPCKIT_SIZE_MISMATCH' });
    assert.throws(() => s.getValue(5), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    s.setValue(1, 32767);
    await assert.rejects(s.op([{ index: 1, delta: 1 }]), (e: IpcError) => e.code === 'ERANGE' && e.limit?.name === 'SEMVMX');
    assert.throws(() => sem.sysv.get('private', { count: 0 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.sysv.get('private', { count: 1e9 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.sysv.get(0), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    const waiting = s.op([{ index: 0, delta: -1 }]);
    while (s.waitingCount(0) === 0) await new Promise((res) => setTimeout(res, 2));
    s.remove();
    sets.delete(s);
    await assert.rejects(waiting, { code: 'EIDRM' });
  });
});
