// The robust Mutex and Condition in shared memory, between real processes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, IpcError, Mutex } from 'ipckit';
import { T, ask, peer, region } from './sync-kit.js';

describe('robust Mutex and Condition', () => {
  test('the owner is kill -9ed holding the lock: the waiter in another process gets ownerDied', T, async () => {
    const { name, region: r } = region('robust');
    using _ = r;
    const m = Mutex.at(r.buffer, 64, { init: true });
    const p = await peer();
    await ask(p, { op: 'open', name });
    assert.deepEqual(await ask(p, { op: 'mutex-lock', offset: 64 }), { locked: true, ownerDied: false });
    assert.equal(m.state.owner, p.child.pid);
    assert.equal(m.tryLock(), null);
    assert.throws(() => m.unlock(), { code: 'ERR_IPCKIT_NOT_OWNER' });
    const waiting = m.lock({ timeout: 20_000 });
    while (!m.state.waiters) await new Promise((res) => setTimeout(res, 2));
    p.child.kill('SIGKILL');
    assert.deepEqual(await waiting, { ownerDied: true });
    assert.equal(m.isOwnedByMe, true);
    m.unlock();
    assert.deepEqual(m.tryLock(), { ownerDied: false });
    m.unlock();
  });

  test('lock timeout and abort; lockSync deadlock; async lock on the owning thread queues', T, async () => {
    const { name, region: r } = region('mutex');
    using _ = r;
    const m = Mutex.at(r.buffer, 0);
    const p = await peer();
    await ask(p, { op: 'open', name });
    await ask(p, { op: 'mutex-lock', offset: 0 });
    await assert.rejects(m.lock({ timeout: 20 }), { code: 'ETIMEDOUT' });
    await assert.rejects(m.lock({ timeout: 0 }), { code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const aborted = m.lock({ signal: ac.signal });
    setTimeout(() => ac.abort(), 5);
    await assert.rejects(aborted, { name: 'AbortError' });
    const mine = m.lock({ timeout: 20_000 });
    await ask(p, { op: 'mutex-unlock', offset: 0 });
    assert.deepEqual(await mine, { ownerDied: false });
    assert.throws(() => m.lockSync(), { code: 'ERR_IPCKIT_DEADLOCK' });
    const second = m.lock();
    setTimeout(() => m.unlock(), 5);
    assert.deepEqual(await second, { ownerDied: false });
    m.unlock();
    assert.throws(() => m.unlock(), { code: 'ERR_IPCKIT_NOT_OWNER' });
    assert.throws(() => Mutex.at(r.buffer, 4), { code: 'ERR_IPCKIT_UNALIGNED_OFFSET' });
    assert.throws(() => Mutex.at(r.buffer, 4096 - 32), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
  });

  test('a worker thread is a different owner from the main thread', T, async () => {
    const buffer = new SharedArrayBuffer(128);
    const m = Mutex.at(buffer, 0);
    m.lockSync();
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(({ Mutex }) => {
         const m = Mutex.at(workerData.buffer, 0);
         let unlockErr = null;
         try { m.unlock(); } catch (e) { unlockErr = e.code; }
         let timeout = null;
         try { m.lockSync({ timeout: 10 }); } catch (e) { timeout = e.code; }
         parentPort.postMessage({ unlockErr, timeout });
         parentPort.postMessage(m.lockSync({ timeout: 20000 }));
         m.unlock();
       });`,
      { eval: true, workerData: { buffer, entry: import.meta.resolve('ipckit') } },
    );
    const messages: unknown[] = [];
    const got = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (messages.length >= n ? resolve() : undefined);
        worker.on('message', (msg) => {
          messages.push(msg);
          check();
        });
        worker.once('error', reject);
      });
    await got(1);
    assert.deepEqual(messages[0], { unlockErr: 'ERR_IPCKIT_NOT_OWNER', timeout: 'ETIMEDOUT' });
    m.unlock();
    await new Promise((resolve) => worker.once('exit', resolve));
    assert.deepEqual(messages[1], { ownerDied: false });
    assert.equal(m.state.locked, false);
  });

  test('Condition: a waiter in another process is woken by signal(); a timeout (ETIMEDOUT) or abort rejects once the mutex is held again', T, async () => {
    const { name, region: r } = region('cond');
    using _ = r;
    const m = Mutex.at(r.buffer, 0);
    const c = Condition.at(r.buffer, 64);
    const words = new Int32Array(r.buffer);
    const p = await peer();
    await ask(p, { op: 'open', name });
    p.send({ op: 'cond-wait', mutex: 0, cond: 64, flag: 40 });
    assert.deepEqual(await p.next(), { waiting: true });
    await m.lock(); // the peer is asleep in wait() once we get the mutex
    Atomics.store(words, 40, 9);
    c.signal();
    m.unlock();
    assert.deepEqual(await p.next(), { woke: true, flag: 9 });

    await m.lock();
    const timedOut = { name: 'IpcError', code: 'ETIMEDOUT', errno: -110, syscall: 'futex' };
    await assert.rejects(c.wait(m, { timeout: 20 }), timedOut);
    assert.equal(m.isOwnedByMe, true, 'the mutex is held again after a timeout');
    const ac = new AbortController();
    const reason = new Error('enough');
    setTimeout(() => ac.abort(reason), 5);
    await assert.rejects(c.wait(m, { signal: ac.signal }), { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    assert.equal(m.isOwnedByMe, true, 'the mutex is held again after an abort');
    assert.throws(() => c.waitSync(m, { timeout: 10 }), timedOut);
    assert.equal(m.isOwnedByMe, true);
    m.unlock();
    await assert.rejects(c.wait(m), { code: 'ERR_IPCKIT_NOT_OWNER' });
    assert.throws(() => c.waitSync(m), { code: 'ERR_IPCKIT_NOT_OWNER' });
  });
});
