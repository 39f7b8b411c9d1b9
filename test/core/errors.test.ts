// Node's conventions for errors, across every mechanism: errno names and
// texts, the AbortError every cancelled wait rejects with, the one timeout
// error, and stacks that start at the caller.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { channel, Condition, fifo, futex, IpcError, mq, Mutex, sem, shm, signals, type Channel, type ChannelServer } from 'ipckit';
import { uniqueName } from '../helpers.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-errors-'));
const cleanups: Array<() => unknown> = [];

after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The rejection of `promise`, awaited here so that this file is an async frame of its stack. */
async function caught(promise: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await promise;
  } catch (e) {
    return e as Error & Record<string, any>;
  }
  throw new Error('resolved instead of rejecting');
}

function thrown(fn: () => unknown): Error & Record<string, any> {
  try {
    fn();
  } catch (e) {
    return e as Error & Record<string, any>;
  }
  throw new Error('returned instead of throwing');
}

/** The first frame after the message is this test file, not ipckit's code. */
function assertStartsHere(e: Error, label: string): void {
  const frames = (e.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  assert.ok(frames.length > 0, `${label}: no stack frames in ${JSON.stringify(e.stack)}`);
  assert.match(frames[0]!, /errors\.test\.(js|ts)/, `${label}: the stack starts at ${frames[0]}\n${e.stack}`);
}

function assertAbortError(e: Error & Record<string, any>, reason: unknown, label: string): void {
  assert.ok(e instanceof Error, `${label}: ${String(e)}`);
  assert.equal(e.name, 'AbortError', label);
  assert.equal(e.code, 'ABORT_ERR', label);
  assert.equal(e.message, 'The operation was aborted', label);
  assert.equal(e.cause, reason, `${label}: cause`);
  assertStartsHere(e, label);
}

/** Aborted before the call and while it waits: both reject with the AbortError shape. */
async function assertAborts(label: string, start: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const early = new Error(`${label}: aborted before`);
  assertAbortError(await caught(start(AbortSignal.abort(early))), early, `${label} (aborted before)`);
  const ac = new AbortController();
  const late = new Error(`${label}: aborted while waiting`);
  const pending = caught(start(ac.signal));
  await new Promise((resolve) => setImmediate(resolve));
  ac.abort(late);
  assertAbortError(await pending, late, `${label} (aborted while waiting)`);
}

function assertTimeout(e: Error & Record<string, any>, label: string, syscall?: string): void {
  assert.ok(e instanceof IpcError, `${label}: ${String(e)}`);
  assert.equal(e.name, 'IpcError', label);
  assert.equal(e.code, 'ETIMEDOUT', label);
  assert.equal(e.errno, -osConstants.errno.ETIMEDOUT, label);
  assert.equal(getSystemErrorName(e.errno), 'ETIMEDOUT', label);
  assert.equal(typeof e.syscall, 'string', label);
  if (syscall) assert.equal(e.syscall, syscall, label);
  assert.ok(e.message.startsWith(`ETIMEDOUT: connection timed out, ${e.syscall}`), `${label}: ${e.message}`);
  assertStartsHere(e, label);
}

function anonymousWords(): Int32Array {
  const region = shm.anonymous(4096);
  cleanups.push(() => region.close());
  return new Int32Array(region.buffer);
}

function posixQueue(maxMessages = 1) {
  const name = uniqueName('errors-mq');
  const q = mq.open(name, { create: true, exclusive: true, maxMessages, messageSize: 16 });
  cleanups.push(() => q.close(), () => mq.unlink(name));
  return q;
}

function sysvQueue() {
  const q = mq.sysv.get('private');
  cleanups.push(() => q.remove());
  return q;
}

function sysvSet() {
  const set = sem.sysv.get('private', { count: 1 });
  cleanups.push(() => set.remove());
  return set;
}

function fifoPath(): string {
  const path = join(dir, `fifo-${Math.random().toString(16).slice(2)}`);
  fifo.create(path);
  return path;
}

/** A channel pair in this process over a unix: socket; `serve` answers the connector's requests. */
async function channelPair(): Promise<{ client: Channel<any>; server: Channel<any> }> {
  const listener: ChannelServer<any> = await channel.listen<any>(`unix:${join(dir, `ch-${Math.random().toString(16).slice(2)}.sock`)}`);
  cleanups.push(() => listener.close());
  const accepted = listener[Symbol.asyncIterator]().next();
  const client = await channel.connect<any>(listener.url);
  const server = (await accepted).value as Channel<any>;
  cleanups.push(() => client.close(), () => server.close());
  server.onRequest(() => new Promise(() => {})); // never answers
  return { client, server };
}

describe('errno: names, texts, util.getSystemErrorName', () => {
  test('every Linux errno gets its name and a text; errno is negative and util.getSystemErrorName(errno) works', T, () => {
    const libuv = getSystemErrorMap();
    for (let n = 1; n <= 133; n++) {
      if (n === 41 || n === 58) continue; // unused numbers on Linux
      for (const given of [n, -n]) {
        const e = new IpcError(given, 'probe');
        assert.equal(e.errno, -n);
        const name = getSystemErrorName(e.errno); // never throws for an IpcError
        const known = libuv.get(-n);
        if (known) {
          assert.equal(e.code, known[0]);
          assert.equal(name, e.code);
          assert.equal(e.message, `${known[0]}: ${known[1]}, probe`);
        } else {
          assert.match(e.code, /^E[A-Z0-9]+$/, `errno ${n}`);
          assert.match(e.message, new RegExp(`^${e.code}: [a-zA-Z.][^,]*, probe$`), `errno ${n}`);
          assert.doesNotMatch(e.message, /unknown/i, `errno ${n}`);
        }
        const number = (osConstants.errno as Record<string, number>)[e.code];
        if (number !== undefined) assert.equal(number, n, `${e.code} is errno ${number}, not ${n}`);
      }
    }
  });

  test('errors the library raises carry the errno text', T, () => {
    const missing = uniqueName('errors-missing');
    const cases: Array<[string, () => unknown, string, string]> = [
      ['shm.open', () => shm.open(missing), 'ENOENT', 'no such file or directory'],
      ['sem.open', () => sem.open(missing), 'ENOENT', 'no such file or directory'],
      ['mq.open', () => mq.open(missing), 'ENOENT', 'no such file or directory'],
      ['SysvQueue.receiveSync nowait', () => sysvQueue().receiveSync({ nowait: true }), 'ENOMSG', 'no message of desired type'],
      ['Semaphore.waitSync', () => sem.inMemory(new SharedArrayBuffer(64), 0, { init: 0 }).waitSync({ timeout: 1 }), 'ETIMEDOUT', 'connection timed out'],
    ];
    for (const [label, call, code, text] of cases) {
      const e = thrown(call);
      assert.ok(e instanceof IpcError, label);
      assert.equal(e.code, code, label);
      assert.ok(e.message.startsWith(`${code}: ${text}, `), `${label}: ${e.message}`);
      assert.doesNotThrow(() => getSystemErrorName(e.errno), label);
      assertStartsHere(e, label);
    }
  });
});

describe('aborts: code ABORT_ERR, name AbortError, cause the reason', () => {
  test('futex.waitAsync, Semaphore.wait, SysvSemaphoreSet.op', T, async () => {
    const words = anonymousWords();
    await assertAborts('futex.waitAsync', (signal) => futex.waitAsync(words, 0, 0, { signal }));
    const s = sem.inMemory(new SharedArrayBuffer(64), 0, { init: 0 });
    await assertAborts('Semaphore.wait', (signal) => s.wait({ signal }));
    const set = sysvSet();
    await assertAborts('SysvSemaphoreSet.op', (signal) => set.op([{ index: 0, delta: -1 }], { signal }));
  });

  test('Mutex.lock and Condition.wait (which rejects once the mutex is held again)', T, async () => {
    const words = anonymousWords();
    const m = Mutex.at(words.buffer as SharedArrayBuffer, 0);
    const c = Condition.at(words.buffer as SharedArrayBuffer, 64);
    await m.lock();
    try {
      // This thread holds it: a second lock() waits for our unlock().
      await assertAborts('Mutex.lock', (signal) => m.lock({ signal }));
      await assertAborts('Condition.wait', async (signal) => {
        try {
          await c.wait(m, { signal });
        } finally {
          assert.equal(m.isOwnedByMe, true, 'the mutex is held again');
        }
      });
    } finally {
      m.unlock();
    }
  });

  test('POSIX and System V queues: receive and send', T, async () => {
    const pq = posixQueue();
    await assertAborts('PosixQueue.receive', (signal) => pq.receive({ signal }));
    assert.equal(pq.trySend('fills it'), true);
    await assertAborts('PosixQueue.send', (signal) => pq.send('waits', { signal }));
    const sq = sysvQueue();
    await assertAborts('SysvQueue.receive', (signal) => sq.receive({ signal }));
    sq.set({ qbytes: 8 });
    assert.equal(sq.trySend(1, '12345678'), true);
    await assertAborts('SysvQueue.send', (signal) => sq.send(1, 'waits', { signal }));
  });

  test('fifo.open, signals.once, signals.watch', T, async () => {
    const path = fifoPath();
    await assertAborts('fifo.open', (signal) => fifo.open(path, 'r', { signal }));
    await assertAborts('signals.once', (signal) => signals.once('SIGUSR2', { signal }));
    await assertAborts('signals.watch next()', async (signal) => {
      const watch = signals.watch('SIGUSR2', { signal });
      try {
        await watch.next();
      } finally {
        watch.close();
      }
    });
  });

  test('channel: request() and a fifo: connect waiting for a reader', T, async () => {
    const { client } = await channelPair();
    await assertAborts('Channel.request', (signal) => client.request({ n: 1 }, { signal }));
    const path = fifoPath();
    await assertAborts('channel.connect fifo:', (signal) => channel.connect(`fifo:${path}`, { signal }));
  });

  test("a handle's close() still rejects its pending waits with ERR_IPCKIT_CLOSED", T, async () => {
    const s = sem.inMemory(new SharedArrayBuffer(64), 0, { init: 0 });
    const ac = new AbortController();
    const waiting = caught(s.wait({ signal: ac.signal }));
    await new Promise((resolve) => setImmediate(resolve));
    s.close();
    assert.equal((await waiting).code, 'ERR_IPCKIT_CLOSED');
    const set = sysvSet();
    const op = caught(set.op([{ index: 0, delta: -1 }], { signal: ac.signal }));
    await new Promise((resolve) => setImmediate(resolve));
    set.close();
    assert.equal((await op).code, 'ERR_IPCKIT_CLOSED');
  });
});

describe('timeouts: IpcError ETIMEDOUT everywhere, never a resolved value', () => {
  test('futex, semaphores, System V semop, mutex, condition', T, async () => {
    const words = anonymousWords();
    assertTimeout(thrown(() => futex.wait(words, 0, 0, { timeout: 1 })), 'futex.wait', 'futex');
    assertTimeout(await caught(futex.waitAsync(words, 0, 0, { timeout: 5 })), 'futex.waitAsync', 'futex');
    const s = sem.inMemory(new SharedArrayBuffer(64), 0, { init: 0 });
    assertTimeout(await caught(s.wait({ timeout: 5 })), 'Semaphore.wait');
    assertTimeout(thrown(() => s.waitSync({ timeout: 1 })), 'Semaphore.waitSync');
    const set = sysvSet();
    assertTimeout(await caught(set.op([{ index: 0, delta: -1 }], { timeout: 5 })), 'SysvSemaphoreSet.op');
    assertTimeout(thrown(() => set.opSync([{ index: 0, delta: -1 }], { timeout: 1 })), 'SysvSemaphoreSet.opSync');
    const m = Mutex.at(words.buffer as SharedArrayBuffer, 0);
    const c = Condition.at(words.buffer as SharedArrayBuffer, 64);
    await m.lock();
    try {
      assertTimeout(await caught(m.lock({ timeout: 5 })), 'Mutex.lock', 'futex');
      assertTimeout(await caught(c.wait(m, { timeout: 5 })), 'Condition.wait', 'futex');
      assert.equal(m.isOwnedByMe, true);
      assertTimeout(thrown(() => c.waitSync(m, { timeout: 1 })), 'Condition.waitSync', 'futex');
      assert.equal(m.isOwnedByMe, true);
    } finally {
      m.unlock();
    }
  });

  test('queues, FIFO open, signals.once', T, async () => {
    const pq = posixQueue();
    assertTimeout(await caught(pq.receive({ timeout: 5 })), 'PosixQueue.receive', 'mq_timedreceive');
    assertTimeout(thrown(() => pq.receiveSync({ timeout: 1 })), 'PosixQueue.receiveSync');
    pq.trySend('fills it');
    assertTimeout(await caught(pq.send('waits', { timeout: 5 })), 'PosixQueue.send', 'mq_timedsend');
    assertTimeout(thrown(() => pq.sendSync('waits', { timeout: 1 })), 'PosixQueue.sendSync');
    const sq = sysvQueue();
    assertTimeout(await caught(sq.receive({ timeout: 5 })), 'SysvQueue.receive', 'msgrcv');
    assertTimeout(thrown(() => sq.receiveSync({ timeout: 1 })), 'SysvQueue.receiveSync', 'msgrcv');
    sq.set({ qbytes: 8 });
    sq.trySend(1, '12345678');
    assertTimeout(await caught(sq.send(1, 'waits', { timeout: 5 })), 'SysvQueue.send', 'msgsnd');
    assertTimeout(thrown(() => sq.sendSync(1, 'waits', { timeout: 1 })), 'SysvQueue.sendSync', 'msgsnd');
    assertTimeout(await caught(fifo.open(fifoPath(), 'r', { timeout: 5 })), 'fifo.open', 'open');
    assertTimeout(await caught(signals.once('SIGUSR2', { timeout: 5 })), 'signals.once', 'signalfd');
  });

  test('channels: request, a listener that never says hello, a forked child that never connects', T, async () => {
    const { client } = await channelPair();
    assertTimeout(await caught(client.request({ n: 1 }, { timeout: 5 })), 'Channel.request', 'request');
    // A unix socket whose listener accepts, reads and stays silent (reading lets
    // it see the connector hang up, so that close() does not wait for it).
    const path = join(dir, 'silent.sock');
    const silent: Server = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(path, resolve));
    cleanups.push(() => new Promise((resolve) => silent.close(resolve)));
    assertTimeout(await caught(channel.connect(`unix:${path}`, { timeout: 50 })), 'channel.connect (no hello)', 'read');
    // A child that never calls channel.parent() (fork kills it when it gives up).
    const idle = join(dir, 'idle.mjs');
    writeFileSync(idle, 'setTimeout(() => {}, 60_000);\n');
    assertTimeout(await caught(channel.fork(idle, [], { transport: 'pipe', timeout: 200 })), 'channel.fork pipe:', 'read');
    assertTimeout(await caught(channel.fork(idle, [], { timeout: 200 })), 'channel.fork', 'fork');
  });
});

describe('stacks start at the caller', () => {
  test('synchronous throws: the first frame is the call site, not ipckit', T, () => {
    const key = 0x7e000000 + Math.floor(Math.random() * 0xffffff);
    const name = uniqueName('errors-stack');
    const q = mq.open(name, { create: true, exclusive: true });
    cleanups.push(() => q.close(), () => mq.unlink(name));
    const cases: Array<[string, () => unknown, string]> = [
      ['shm.open ENOENT', () => shm.open(uniqueName('errors-none')), 'ENOENT'],
      ['mq.open EEXIST', () => mq.open(name, { create: true, exclusive: true }), 'EEXIST'],
      ['sem.sysv.get ENOENT', () => sem.sysv.get(key), 'ENOENT'],
      ['shm.open with a bad name', () => shm.open('no-slash'), 'ERR_IPCKIT_INVALID_NAME'],
      ['an unknown option', () => shm.open(name, { craete: true } as never), 'ERR_IPCKIT_UNKNOWN_OPTION'],
    ];
    for (const [label, call, code] of cases) {
      const e = thrown(call);
      assert.equal(e.code, code, label);
      assertStartsHere(e, label);
    }
  });

  test('asynchronous rejections name the awaiting caller', T, async () => {
    const e = await caught(channel.connect(`unix:${join(dir, 'nobody.sock')}`));
    assert.equal(e.code, 'ENOENT');
    assertStartsHere(e, 'channel.connect ENOENT');
    const { client } = await channelPair();
    await client.close();
    const closed = await caught(client.request({ n: 1 }));
    assertStartsHere(closed, 'Channel.request after close');
  });
});
