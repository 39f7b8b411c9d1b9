// Synchronisation between real processes: futex, POSIX and System V
// semaphores, robust Mutex and Condition in shared memory.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Condition, futex, IpcError, Mutex, sem, shm, signals, type SysvSemaphoreSet } from 'ipckit';
import { assertUnknownOption, compileC, has, run, startPeer, uniqueKey, uniqueName, type Peer } from '../helpers.js';

const T = { timeout: 60_000 };
const shmNames = new Set<string>();
const semNames = new Set<string>();
const sets = new Set<SysvSemaphoreSet>();
const peers = new Set<Peer>();

function region(tag: string, size = 4096) {
  const n = uniqueName(tag);
  shmNames.add(n);
  return { name: n, region: shm.open(n, { create: true, exclusive: true, size }) };
}
function semName(tag: string): string {
  const n = uniqueName(tag);
  semNames.add(n);
  return n;
}
function sysvSet(count: number, key: number | 'private' = 'private') {
  const s = sem.sysv.get(key, { create: true, exclusive: key !== 'private', count });
  sets.add(s);
  return s;
}
async function peer(): Promise<Peer> {
  const p = startPeer('sync-peer');
  peers.add(p);
  const hello = await p.next();
  assert.equal(hello.ready, true);
  return p;
}
async function ask<T = Record<string, any>>(p: Peer, message: unknown): Promise<T> {
  p.send(message);
  const reply = await p.next<T & { error?: unknown }>();
  if ((reply as { error?: unknown }).error) throw new Error(`peer failed: ${JSON.stringify((reply as { error?: unknown }).error)}`);
  return reply;
}

after(async () => {
  for (const p of peers) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  for (const n of shmNames) {
    try {
      shm.unlink(n);
    } catch {
      /* already gone */
    }
  }
  for (const n of semNames) {
    try {
      sem.unlink(n);
    } catch {
      /* already gone */
    }
  }
  for (const s of sets) {
    try {
      s.remove();
    } catch {
      /* already gone */
    }
  }
});

const C_SEM_POST = `
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
int main(int argc, char **argv) {
  sem_t *s = sem_open(argv[1], 0);
  if (s == SEM_FAILED) { perror("sem_open"); return 1; }
  if (argv[2][0] == 'p') { if (sem_post(s)) { perror("sem_post"); return 1; } }
  else { if (sem_wait(s)) { perror("sem_wait"); return 1; } }
  int v = -1; sem_getvalue(s, &v); printf("%d\\n", v);
  return 0;
}`;

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

describe('POSIX named semaphores', () => {
  test('a C program posts, ipckit waits; ipckit posts, C waits', T, async () => {
    const n = semName('c');
    using s = sem.open(n, { create: true, exclusive: true, value: 0, mode: 0o640 });
    assert.equal(statSync(`/dev/shm/sem.${n.slice(1)}`).mode & 0o777, 0o640);
    const cc = compileC(C_SEM_POST);
    try {
      const waiting = s.wait({ timeout: 20_000 });
      // It prints the value after its post: 1, or 0 if our waiter took it already.
      assert.ok(['0', '1'].includes(run(cc.path, [n, 'post']).trim()));
      await waiting;
      assert.equal(s.value, 0);
      s.post();
      assert.equal(run(cc.path, [n, 'wait']).trim(), '0');
    } finally {
      cc.cleanup();
    }
  });

  test('between two Node processes; tryWait, value, timeouts, abort, close', T, async () => {
    const n = semName('node');
    using s = sem.open(n, { create: true, value: 2 });
    assert.equal(s.value, 2);
    assert.equal(s.tryWait(), true);
    assert.equal(s.tryWait(), true);
    assert.equal(s.tryWait(), false);
    const p = await peer();
    assert.deepEqual(await ask(p, { op: 'sem-open', name: n }), { value: 0 });
    p.send({ op: 'sem-wait', timeout: 20_000 });
    s.post();
    assert.deepEqual(await p.next(), { acquired: true });
    const mine = s.wait({ timeout: 20_000 });
    await ask(p, { op: 'sem-post' });
    await mine;

    await assert.rejects(s.wait({ timeout: 20 }), (e: IpcError) => e instanceof IpcError && e.code === 'ETIMEDOUT' && e.path === n);
    assert.throws(() => s.waitSync({ timeout: 5 }), { code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const aborted = s.wait({ signal: ac.signal });
    setTimeout(() => ac.abort(), 5);
    await assert.rejects(aborted, { name: 'AbortError' });
    const pending = s.wait();
    s.close();
    await assert.rejects(pending, { code: 'ERR_IPCKIT_CLOSED' });
    assert.throws(() => s.post(), { code: 'ERR_IPCKIT_CLOSED' });
  });

  test('exclusive, unlink, and bad input', T, () => {
    const n = semName('excl');
    using s = sem.open(n, { create: true, exclusive: true });
    assert.throws(() => sem.open(n, { create: true, exclusive: true }), { code: 'EEXIST' });
    assert.throws(() => sem.open('no-slash'), { code: 'ERR_IPCKIT_INVALID_NAME' });
    assert.throws(() => sem.open(n, { create: true, value: -1 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.open(n, { create: true, value: 2 ** 31 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.open(n, { value: 1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    s.unlink();
    assert.equal(existsSync(`/dev/shm/sem.${n.slice(1)}`), false);
    assert.throws(() => sem.open(n), (e: IpcError) => e.code === 'ENOENT' && e.path === n);
    const buf = new SharedArrayBuffer(64);
    assert.throws(() => sem.inMemory(buf, 4, { init: 0 }), { code: 'ERR_IPCKIT_UNALIGNED_OFFSET' });
    assert.throws(() => sem.inMemory(buf, 40, { init: 0 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.inMemory(new ArrayBuffer(64) as never), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    const full = sem.inMemory(buf, 0, { init: 2 ** 31 - 1 });
    assert.throws(() => full.post(), (e: IpcError) => e.code === 'EOVERFLOW' && e.limit?.name === 'SEM_VALUE_MAX');
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
