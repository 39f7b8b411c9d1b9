// What crosses the synchronisation mechanisms: waits in workers, the waiter
// threads, worker environments, a producer/consumer ring over Mutex and
// semaphores together, misspelt options of every sync API. Each mechanism's
// own tests are futex.test.ts, sem.test.ts, sem-sysv.test.ts, mutex.test.ts.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, futex, IpcError, Mutex, sem, shm, signals, type SysvSemaphoreSet } from 'ipckit';
import { assertUnknownOption, startPeer, uniqueKey } from '../helpers.js';
import { T, ask, peer, peers, region, semName, sets, sysvSet } from './sync-kit.js';

describe('synchronous waits in a worker', () => {
  test('sem.waitSync, opSync and futex.wait block the worker, time out cleanly under signals, and wake', T, async () => {
    const buffer = new SharedArrayBuffer(256);
    const s = sem.inMemory(buffer, 0, { init: 0 });
    const set = sysvSet(1);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(({ futex, sem, Mutex }) => {
         const s = sem.inMemory(workerData.buffer, 0);
         const set = sem.sysv.fromId(workerData.id);
         const w = new Int32Array(workerData.buffer, 64, 4);
         const out = {};
         parentPort.postMessage('spam');
         try { s.waitSync({ timeout: 100 }); } catch (e) { out.sem = e.code; }
         try { set.opSync([{ index: 0, delta: -1 }], { timeout: 100 }); } catch (e) { out.op = e.code; }
         try { futex.wait(w, 0, 0, { timeout: 100 }); } catch (e) { out.futex = e.code; }
         parentPort.postMessage(out);
         s.waitSync({ timeout: 20000 });
         parentPort.postMessage(set.opSync([{ index: 0, delta: -1 }], { timeout: 20000 }));
       });`,
      { eval: true, workerData: { buffer, id: set.id, entry: import.meta.resolve('ipckit') } },
    );
    const messages: unknown[] = [];
    const next = () =>
      new Promise<unknown>((resolve, reject) => {
        if (messages.length) return resolve(messages.shift());
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    assert.equal(await next(), 'spam');
    const spam = setInterval(() => process.kill(process.pid, 'SIGURG'), 2);
    try {
      assert.deepEqual(await next(), { sem: 'ETIMEDOUT', op: 'ETIMEDOUT', futex: 'ETIMEDOUT' });
    } finally {
      clearInterval(spam);
    }
    s.post();
    set.setValue(0, 1);
    assert.equal(await next(), true);
    await worker.terminate();
    assert.equal(s.value, 0);
  });
});

describe('waiter threads', () => {
  test('8 pending async waits do not occupy the threadpool (UV_THREADPOOL_SIZE=1): fs.readFile completes', T, async () => {
    const p = startPeer('sync-peer', [], { env: { ...process.env, UV_THREADPOOL_SIZE: '1' } });
    peers.add(p);
    await p.next();
    const r = await ask(p, { op: 'starvation' });
    assert.equal(r.threadpool, '1');
    assert.ok(r.stats.pending >= 8, `waiter threads pending: ${r.stats.pending}`);
    assert.ok(r.readFileMs < 1000, `fs.readFile took ${r.readFileMs} ms with 8 pending waits`);
    p.child.kill('SIGKILL');
    await p.exited;
  });

  test('signals.on() leaves waiter threads alone: waits stay cancellable and signals still arrive', T, async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const ac = new AbortController();
    const aborted = futex.waitAsync(words, 0, 0, { signal: ac.signal });
    const timed = futex.waitAsync(words, 1, 0, { timeout: 100 }).catch((e: IpcError) => e);
    let got = 0;
    const listener = () => void got++;
    signals.on('SIGUSR2', listener);
    try {
      const arrived = new Promise<void>((resolve) => signals.on('SIGUSR2', function once() {
        signals.off('SIGUSR2', once);
        resolve();
      }));
      process.kill(process.pid, 'SIGUSR2');
      await arrived;
      ac.abort();
      await assert.rejects(aborted, { name: 'AbortError' });
      assert.equal(((await timed) as IpcError).code, 'ETIMEDOUT');
      assert.equal(got, 1);
    } finally {
      signals.off('SIGUSR2', listener);
    }
  });

  test('process.exit() with pending futex, semaphore, System V and mutex waits exits at once', T, async () => {
    const { name, region: r } = region('exit');
    using _ = r;
    const set = sysvSet(1);
    const holder = Mutex.at(r.buffer, 0);
    holder.lockSync(); // so the peer's lock() really waits
    try {
      const p = await peer();
      await ask(p, { op: 'open', name });
      p.send({ op: 'exit-with-pending', id: set.id, code: 3 });
      const { pending } = await p.next<{ pending: { pending: number } }>();
      // futex and mutex waits go through io_uring where the kernel supports it; semaphores through waiter threads.
      assert.ok(pending.pending >= 2, `waiter threads pending: ${pending.pending}`);
      assert.deepEqual(await p.exited, { code: 3, signal: null });
    } finally {
      holder.unlock();
    }
  });
});

describe('worker environments', () => {
  test('a worker terminated with pending async waits cancels only its own waits', T, async () => {
    const words = new Int32Array(new SharedArrayBuffer(16));
    const mine = futex.waitAsync(words, 0, 0, { timeout: 20_000 });
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.entry).then(({ futex, sem }) => {
         const w = new Int32Array(workerData.buffer);
         for (let i = 0; i < 4; i++) futex.waitAsync(w, 1, 0);
         const set = sem.sysv.get('private', { count: 1 });
         set.op([{ index: 0, delta: -1 }]).catch(() => {});
         parentPort.postMessage(set.id);
       });`,
      { eval: true, workerData: { buffer: words.buffer, entry: import.meta.resolve('ipckit') } },
    );
    const id = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const set = sem.sysv.fromId(id);
    sets.add(set);
    while (set.waitingCount(0) === 0) await new Promise((res) => setTimeout(res, 2));
    assert.equal(await worker.terminate(), 1);
    assert.equal(set.waitingCount(0), 0, "the worker's semop was woken at teardown");
    // The main thread's own wait is still pending and still works.
    Atomics.store(words, 0, 1);
    while (futex.notify(words, 0) === 0) await new Promise((res) => setTimeout(res, 1));
    assert.equal(await mine, 'ok');
  });
});

describe('producer/consumer over a shared ring', () => {
  test('2 producers and 2 consumers (4 processes) move 100,000 items: none lost, none duplicated', T, async () => {
    const TOTAL = 100_000;
    const { name, region: r } = region('ring', 1024 + TOTAL);
    using _ = r;
    Mutex.at(r.buffer, 0, { init: true });
    Mutex.at(r.buffer, 64, { init: true });
    using empty = sem.inMemory(r.buffer, 128, { init: 64 });
    using full = sem.inMemory(r.buffer, 160, { init: 0 });
    const [p1, p2, c1, c2] = await Promise.all([peer(), peer(), peer(), peer()]);
    for (const p of [p1, p2, c1, c2]) await ask(p, { op: 'open', name });
    c1.send({ op: 'consume' });
    c2.send({ op: 'consume' });
    p1.send({ op: 'produce', from: 0, count: TOTAL / 2 });
    p2.send({ op: 'produce', from: TOTAL / 2, count: TOTAL / 2 });
    assert.deepEqual(await p1.next(), { produced: TOTAL / 2 });
    assert.deepEqual(await p2.next(), { produced: TOTAL / 2 });
    // One stop marker (-1) per consumer.
    await ask(p1, { op: 'produce', from: -1, count: 1 });
    await ask(p1, { op: 'produce', from: -1, count: 1 });
    const [a, b] = [await c1.next<{ consumed: number }>(), await c2.next<{ consumed: number }>()];
    assert.equal(a.consumed + b.consumed, TOTAL);
    assert.ok(a.consumed > 0 && b.consumed > 0, `both consumers took items (${a.consumed}, ${b.consumed})`);
    const flags = new Uint8Array(r.buffer, 1024, TOTAL);
    const wrong = flags.findIndex((f) => f !== 1);
    assert.equal(wrong, -1, `item ${wrong} was seen ${flags[wrong]} times`);
    assert.equal(empty.value, 64);
    assert.equal(full.value, 0);
  });
});

describe('misspelt options', () => {
  test('every sync call refuses a misspelt option with a TypeError naming the nearest one', T, async () => {
    using r = shm.anonymous(4096);
    const n = semName('typo');
    const key = uniqueKey();
    const s = sem.inMemory(r.buffer, 0, { init: 1 });
    const m = Mutex.at(r.buffer, 64);
    const c = Condition.at(r.buffer, 128);
    const set = sysvSet(1);
    const words = new Int32Array(r.buffer, 256, 1);
    const calls: Array<[string, () => unknown, string | null]> = [
      ['sem.open', () => sem.open(n, { create: true, vaule: 1 } as never), 'value'],
      ['sem.open', () => sem.open(n, { creat: true } as never), 'create'],
      ['sem.inMemory', () => sem.inMemory(r.buffer, 512, { int: 1 } as never), 'init'],
      ['Semaphore.wait', () => s.wait({ timout: 5 } as never), 'timeout'],
      ['Semaphore.wait', () => s.wait({ singal: new AbortController().signal } as never), 'signal'],
      ['Semaphore.waitSync', () => s.waitSync({ timeuot: 5 } as never), 'timeout'],
      ['sem.sysv.get', () => sem.sysv.get(key, { create: true, cuont: 1 } as never), 'count'],
      ['SysvSemaphoreSet.op', () => set.op([{ index: 0, delta: 1, undoo: true } as never]), 'undo'],
      ['SysvSemaphoreSet.op', () => set.op([{ index: 0, detla: 1 } as never]), 'delta'],
      ['SysvSemaphoreSet.op', () => set.op([{ index: 0, delta: 1 }], { timout: 5 } as never), 'timeout'],
      ['SysvSemaphoreSet.opSync', () => set.opSync([{ index: 0, delta: 1 }], { timout: 5 } as never), 'timeout'],
      ['SysvSemaphoreSet.set', () => set.set({ mdoe: 0o600 } as never), 'mode'],
      ['Mutex.at', () => Mutex.at(r.buffer, 64, { intit: true } as never), 'init'],
      ['Mutex.lock', () => m.lock({ timout: 5 } as never), 'timeout'],
      ['Mutex.lockSync', () => m.lockSync({ timout: 5 } as never), 'timeout'],
      ['Condition.at', () => Condition.at(r.buffer, 128, { reset: true } as never), null],
      ['Condition.wait', () => c.wait(m, { timout: 5 } as never), 'timeout'],
      ['Condition.waitSync', () => c.waitSync(m, { timout: 5 } as never), 'timeout'],
      ['futex.wait', () => futex.wait(words, 0, 0, { timout: 5 } as never), 'timeout'],
      ['futex.waitAsync', () => futex.waitAsync(words, 0, 0, { timeot: 5 } as never), 'timeout'],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.equal(existsSync(`/dev/shm/sem.${n.slice(1)}`), false, 'no semaphore created');
    assert.equal(s.value, 1, 'no wait took the semaphore');
    assert.deepEqual(set.getAll(), [0], 'no operation was applied');
    assert.equal(m.state.locked, false, 'the mutex was not taken');
    assert.throws(() => sem.sysv.get(key), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT', 'no set created');
    s.close();
  });
});
