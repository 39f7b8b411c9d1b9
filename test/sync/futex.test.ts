// futex wait/notify between real processes and threads.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { futex, IpcError } from 'ipckit';
import { startPeer } from '../helpers.js';
import { T, ask, peer, peers, region } from './sync-kit.js';

describe('futex', () => {
  test('waitAsync in one process is woken by notify from another, both ways', T, async () => {
    const { name, region: r } = region('futex');
    using _ = r;
    const words = new Int32Array(r.buffer);
    const p = await peer();
    await ask(p, { op: 'open', name });
    // peer waits, we notify
    p.send({ op: 'futex-wait', index: 1, expected: 0, timeout: 20_000 });
    while (futex.notify(words, 1) === 0) await new Promise((res) => setImmediate(res)); // retry until it sleeps
    assert.equal((await p.next()).result, 'ok');
    // we wait, peer notifies
    const waiting = futex.waitAsync(words, 2, 0, { timeout: 20_000 });
    const { woken } = await ask(p, { op: 'futex-notify-until-woken', index: 2 });
    assert.equal(woken, 1);
    assert.equal(await waiting, 'ok');
    // A store then notify: a sleeper wakes ('ok'), or sees the new value first ('not-equal').
    const again = futex.waitAsync(words, 3, 0, { timeout: 20_000 });
    await ask(p, { op: 'futex-store-notify', index: 3, value: 7 });
    assert.ok(['ok', 'not-equal'].includes(await again));
    assert.equal(words[3], 7);
  });

  test('the waiter-thread fallback (IPCKIT_FUTEX_THREADS=1) is woken across processes too', T, async () => {
    const { name, region: r } = region('futex-threads');
    using _ = r;
    const words = new Int32Array(r.buffer);
    const p = startPeer('sync-peer', [], { env: { ...process.env, IPCKIT_FUTEX_THREADS: '1' } });
    peers.add(p);
    await p.next();
    await ask(p, { op: 'open', name });
    p.send({ op: 'futex-wait', index: 0, expected: 0, timeout: 20_000 });
    while (futex.notify(words, 0) === 0) await new Promise((res) => setImmediate(res));
    assert.deepEqual(await p.next(), { result: 'ok', mechanism: 'waiter-thread' });
    p.send({ op: 'futex-wait', index: 1, expected: 0, timeout: 10 });
    assert.deepEqual(await p.next(), { code: 'ETIMEDOUT', mechanism: 'waiter-thread' });
  });

  test('results: not-equal; a timeout is IpcError ETIMEDOUT; abort rejects with an AbortError caused by the reason', T, async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const timedOut = { name: 'IpcError', code: 'ETIMEDOUT', errno: -110, syscall: 'futex' };
    assert.equal(futex.wait(words, 0, 1), 'not-equal');
    assert.throws(() => futex.wait(words, 0, 0, { timeout: 5 }), timedOut);
    assert.equal(await futex.waitAsync(words, 0, 1), 'not-equal');
    const t0 = performance.now();
    await assert.rejects(futex.waitAsync(words, 0, 0, { timeout: 30 }), timedOut);
    assert.ok(performance.now() - t0 >= 29);
    const ac = new AbortController();
    const p = futex.waitAsync(words, 0, 0, { signal: ac.signal });
    const stop = new Error('stop');
    setTimeout(() => ac.abort(stop), 10);
    await assert.rejects(p, { name: 'AbortError', code: 'ABORT_ERR', cause: stop });
    await assert.rejects(futex.waitAsync(words, 0, 0, { signal: AbortSignal.abort() }), { name: 'AbortError', code: 'ABORT_ERR' });
    assert.equal(futex.notify(words, 0), 0);
  });

  test('bad input is a clear error before any system call', T, () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    assert.throws(() => futex.wait(new Int32Array(4), 0, 0), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => futex.wait(new Uint32Array(new SharedArrayBuffer(16)) as never, 0, 0), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => futex.notify(words, 4), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => futex.notify(words, -1), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => futex.wait(words, 0, 2 ** 31), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => futex.wait(words, 0, 0, { timeout: -1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => futex.wait(words, 0, 0, { signal: AbortSignal.abort() } as never), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => futex.notify(words, 0, -3), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
  });

  test('a worker thread blocks in futex.wait and is woken from the main thread', T, async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(({ futex }) => {
         const w = new Int32Array(workerData.buffer);
         Atomics.store(w, 1, 1);
         parentPort.postMessage(futex.wait(w, 0, 0, { timeout: 20000 }));
       });`,
      { eval: true, workerData: { buffer: words.buffer, entry: import.meta.resolve('ipckit') } },
    );
    const result = new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    while (Atomics.load(words, 1) === 0 || futex.notify(words, 0) === 0) await new Promise((res) => setTimeout(res, 1));
    assert.equal(await result, 'ok');
    await worker.terminate();
  });

  test('EINTR never surfaces: signals during waits are retried with the time left', T, async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const t0 = performance.now();
    const waits = [0, 1, 2].map((i) => futex.waitAsync(words, i, 0, { timeout: 150 }).catch((e: IpcError) => e.code));
    const spam = setInterval(() => process.kill(process.pid, 'SIGURG'), 2);
    try {
      assert.deepEqual(await Promise.all(waits), ['ETIMEDOUT', 'ETIMEDOUT', 'ETIMEDOUT']);
    } finally {
      clearInterval(spam);
    }
    assert.ok(performance.now() - t0 >= 149);
  });
});
