// POSIX message queues against peer processes, C programs and /dev/mqueue.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { IpcError, mq, unix } from 'ipckit';
import { fillToLimit, floodAndDrain, startWorker } from './mq-kit.js';
import { assertUnknownOption, canDropPrivileges, compileC, fixturesDir, has, namespaceDenied, run, startPeer, uniqueName, withoutCapabilities, removedAfter } from '../helpers.js';

const T = { timeout: 60_000 };
/** Absolute path of a command, so startPeer runs it rather than a fixture. */
const which = (cmd: string) => run('sh', ['-c', `command -v ${cmd}`]).trim();
const made = removedAfter<string>((n) => mq.unlink(n));
function name(tag: string): string {
  const n = uniqueName(tag);
  made.add(n);
  return n;
}

const noCc = !has('cc') && 'no C compiler';
const procLimit = (file: string) => Number(readFileSync(`/proc/sys/fs/mqueue/${file}`, 'utf8'));

describe('POSIX message queues', () => {
  test('priorities 1, 9, 5 are received 9, 5, 1; FIFO within a priority', T, () => {
    using q = mq.open(name('prio'), { create: true, maxMessages: 8, messageSize: 32 });
    for (const [data, priority] of [['one', 1], ['nine', 9], ['five', 5], ['nine-b', 9], ['zero', 0]] as const) {
      assert.equal(q.trySend(data, { priority }), true);
    }
    const got = [];
    for (let m = q.tryReceive(); m; m = q.tryReceive()) got.push(`${m.data}:${m.priority}`);
    assert.deepEqual(got, ['nine:9', 'nine-b:9', 'five:5', 'one:1', 'zero:0']);
    q.unlink();
  });

  test('a C program sends priorities 1, 9, 5 and ipckit receives 9, 5, 1; and the reverse', { ...T, skip: noCc }, () => {
    const n = name('cprio');
    using q = mq.open(n, { create: true, maxMessages: 8, messageSize: 64 });
    const peer = compileC(`
      #include <fcntl.h>
      #include <mqueue.h>
      #include <stdio.h>
      #include <string.h>
      int main(int argc, char **argv) {
        mqd_t q = mq_open(argv[1], O_RDWR);
        if (q == (mqd_t)-1) { perror("mq_open"); return 1; }
        if (argv[2][0] == 's') {
          unsigned prios[] = {1, 9, 5};
          for (int i = 0; i < 3; i++) {
            char text[32]; snprintf(text, sizeof text, "from C %u", prios[i]);
            if (mq_send(q, text, strlen(text), prios[i]) != 0) { perror("mq_send"); return 1; }
          }
        } else {
          struct mq_attr a; mq_getattr(q, &a);
          char buf[a.mq_msgsize]; unsigned prio;
          for (int i = 0; i < 3; i++) {
            ssize_t len = mq_receive(q, buf, a.mq_msgsize, &prio);
            if (len < 0) { perror("mq_receive"); return 1; }
            printf("%u %.*s\\n", prio, (int)len, buf);
          }
        }
        return 0;
      }
    `);
    try {
      run(peer.path, [n, 'send']);
      const got = [q.tryReceive(), q.tryReceive(), q.tryReceive()].map((m) => `${m!.priority} ${m!.data}`);
      assert.deepEqual(got, ['9 from C 9', '5 from C 5', '1 from C 1']);
      for (const p of [1, 9, 5]) q.trySend(`from ipckit ${p}`, { priority: p });
      assert.equal(run(peer.path, [n, 'receive']), '9 from ipckit 9\n5 from ipckit 5\n1 from ipckit 1\n');
    } finally {
      peer.cleanup();
      q.unlink();
    }
  });

  test('a queue appears in /dev/mqueue with its mode and byte count; attributes() agrees', { ...T, skip: !mq.mountPoint() && 'the mqueue filesystem is not mounted (the runner mounts it as root)' }, () => {
    const n = name('ls');
    using q = mq.open(n, { create: true, exclusive: true, maxMessages: 4, messageSize: 100, mode: 0o640 });
    q.trySend('12345');
    q.trySend('678');
    assert.deepEqual(q.attributes(), { maxMessages: 4, messageSize: 100, currentMessages: 2, nonBlocking: true });
    const dir = mq.mountPoint();
    assert.ok(dir, 'the test runner mounts /dev/mqueue when root');
    assert.match(readFileSync(`${dir}${n}`, 'utf8'), /QSIZE:8\b/);
    const entry = mq.list()!.find((e) => e.name === n);
    assert.deepEqual(entry && { bytes: entry.bytes, messages: entry.messages, mode: entry.mode }, { bytes: 8, messages: 2, mode: 0o640 });
    assert.throws(() => mq.open(n, { create: true, exclusive: true }), (e: unknown) => e instanceof IpcError && e.code === 'EEXIST' && e.path === n);
    q.unlink();
    assert.ok(!readdirSync(dir).includes(n.slice(1)));
    assert.equal(q.trySend('still usable after unlink'), true);
  });

  test('full queue: trySend says so, send with a timeout times out naming the capacity, nothing is lost', T, async () => {
    using q = mq.open(name('full'), { create: true, maxMessages: 3, messageSize: 16 });
    for (let i = 0; i < 3; i++) assert.equal(q.trySend(`m${i}`), true);
    assert.equal(q.trySend('m3'), false);
    const started = Date.now();
    await assert.rejects(q.send('m3', { timeout: 100 }), (e: unknown) => {
      assert.ok(e instanceof IpcError);
      assert.equal(e.code, 'ETIMEDOUT');
      assert.equal(e.limit?.value, 3);
      return true;
    });
    assert.ok(Date.now() - started >= 95);
    const ac = new AbortController();
    const aborted = q.send('m4', { signal: ac.signal });
    const reason = new Error('changed my mind');
    ac.abort(reason);
    await assert.rejects(aborted, { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    assert.throws(() => q.sendSync('m5', { timeout: 20 }), { code: 'ETIMEDOUT' });
    assert.deepEqual(q.tryReceiveMany(10).map((m) => m.data.toString()), ['m0', 'm1', 'm2']);
    q.unlink();
  });

  test('a message larger than the queue allows fails with EMSGSIZE naming the limit', T, () => {
    using q = mq.open(name('big'), { create: true, maxMessages: 2, messageSize: 64 });
    assert.throws(() => q.trySend(Buffer.alloc(65)), (e: unknown) => {
      assert.ok(e instanceof IpcError);
      assert.equal(e.code, 'EMSGSIZE');
      assert.equal(e.limit?.value, 64);
      assert.match(e.message, /messageSize/);
      assert.match(e.message, /msgsize_max/);
      return true;
    });
    assert.equal(q.trySend(Buffer.alloc(64)), true);
    q.unlink();
  });

  test('creating beyond msgsize_max / msg_max without CAP_SYS_RESOURCE names the /proc limit', { ...T, skip: !canDropPrivileges && 'needs root and setpriv' }, async () => {
    const n = name('limit');
    const [cmd, args] = withoutCapabilities(process.execPath, [`${fixturesDir}/mq-peer.js`]);
    const peer = startPeer(cmd, args);
    await peer.next();
    peer.send({ op: 'open', name: n, options: { create: true, maxMessages: 2, messageSize: procLimit('msgsize_max') + 1 } });
    const r1 = await peer.next<{ error: { code: string; limit: { name: string; value: number } } }>();
    assert.equal(r1.error.code, 'EINVAL');
    assert.deepEqual(r1.error.limit, { name: '/proc/sys/fs/mqueue/msgsize_max', value: procLimit('msgsize_max') });
    peer.send({ op: 'open', name: n, options: { create: true, maxMessages: procLimit('msg_max') + 1, messageSize: 16 } });
    const r2 = await peer.next<{ error: { code: string; limit: { name: string; value: number } } }>();
    assert.deepEqual(r2.error.limit, { name: '/proc/sys/fs/mqueue/msg_max', value: procLimit('msg_max') });
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('RLIMIT_MSGQUEUE is named when it stops a create', { ...T, skip: (process.getuid?.() !== 0 || !has('prlimit')) && 'needs root and prlimit' }, async () => {
    // RLIMIT_MSGQUEUE: a peer whose budget is 4096 bytes asks for a 10 x 1024-byte queue.
    const peer = startPeer(which('prlimit'), ['--msgqueue=4096:4096', process.execPath, `${fixturesDir}/mq-peer.js`]);
    await peer.next();
    peer.send({ op: 'open', name: name('rlimit'), options: { create: true, maxMessages: 10, messageSize: 1024 } });
    const r = await peer.next<{ error: { code: string; limit: unknown; message: string } }>();
    assert.equal(r.error.code, 'EMFILE');
    assert.deepEqual(r.error.limit, { name: 'RLIMIT_MSGQUEUE (ulimit -q)', value: 4096 });
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('queues_max is named when it stops a create', { ...T, skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
    const denied = namespaceDenied('-i');
    if (denied) return t.skip(denied);
    const f = await fillToLimit('posix', '/proc/sys/fs/mqueue/queues_max', 3, uniqueName('fill'));
    assert.equal(f.created, 3);
    assert.equal(f.error.code, 'ENOSPC');
    assert.deepEqual(f.error.limit, { name: '/proc/sys/fs/mqueue/queues_max', value: 3 });
  });

  test('receive() waits without blocking the loop and wakes when another process sends', T, async () => {
    const n = name('async');
    using q = mq.open(n, { create: true, maxMessages: 4, messageSize: 64 });
    const pending = q.receive({ timeout: 30_000 });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const peer = startPeer('mq-peer');
    await peer.next();
    peer.send({ op: 'open', name: n });
    await peer.next();
    peer.send({ op: 'send', data: 'hello from a peer', priority: 7 });
    const m = await pending;
    clearInterval(ticker);
    assert.equal(m.data.toString(), 'hello from a peer');
    assert.equal(m.priority, 7);
    assert.ok(ticks > 0, 'the event loop kept running');
    assert.deepEqual(await peer.next(), { sent: true });
    // And the other way: the peer waits, we send.
    peer.send({ op: 'receive', timeout: 30_000 });
    await q.send('hello back', { priority: 3 });
    assert.deepEqual(await peer.next(), { data: 'hello back', priority: 3 });
    peer.send({ op: 'exit' });
    await peer.exited;
    q.unlink();
  });

  test('receive() times out, is aborted, is rejected by close(), and never loses a message', T, async () => {
    const q = mq.open(name('cancel'), { create: true, maxMessages: 4, messageSize: 16 });
    await assert.rejects(q.receive({ timeout: 30 }), { code: 'ETIMEDOUT', syscall: 'mq_timedreceive' });
    const ac = new AbortController();
    const a = q.receive({ signal: ac.signal });
    const b = q.receive();
    ac.abort();
    await assert.rejects(a, { name: 'AbortError' });
    q.trySend('for b');
    assert.equal((await b).data.toString(), 'for b');
    const c = q.receive();
    q.close();
    await assert.rejects(c, { code: 'ERR_IPCKIT_CLOSED' });
    assert.throws(() => q.tryReceive(), { code: 'ERR_IPCKIT_CLOSED' });
    q.close();
    mq.unlink(q.name);
  });

  test('waiters are served in call order; sends from one handle keep their order', T, async () => {
    using q = mq.open(name('order'), { create: true, maxMessages: 2, messageSize: 16 });
    const receives = [q.receive(), q.receive(), q.receive()];
    const sends = ['a', 'b', 'c', 'd', 'e'].map((d) => q.send(d));
    const got = (await Promise.all(receives)).map((m) => m.data.toString());
    await Promise.all(sends);
    assert.deepEqual(got, ['a', 'b', 'c']);
    assert.deepEqual(q.tryReceiveMany(5).map((m) => m.data.toString()), ['d', 'e']);
    q.unlink();
  });

  test('for await iterates messages until the handle is closed', T, async () => {
    using q = mq.open(name('iter'), { create: true, maxMessages: 4, messageSize: 16 });
    const seen: string[] = [];
    const loop = (async () => {
      for await (const m of q) {
        seen.push(m.data.toString());
        if (seen.length === 3) setImmediate(() => q.close());
      }
    })();
    for (const d of ['x', 'y', 'z']) await q.send(d);
    await loop;
    assert.deepEqual(seen, ['x', 'y', 'z']);
    mq.unlink(q.name);
  });

  test('onNotify fires on the loop when a message reaches the empty queue, re-arms, and is exclusive', T, async () => {
    const n = name('notify');
    using q = mq.open(n, { create: true, maxMessages: 4, messageSize: 32 });
    const peer = startPeer('mq-peer');
    await peer.next();
    peer.send({ op: 'open', name: n });
    await peer.next();
    const got: string[] = [];
    let wake: () => void = () => undefined;
    const off = q.onNotify(() => {
      for (let m = q.tryReceive(); m; m = q.tryReceive()) got.push(m.data.toString());
      wake();
    });
    for (const d of ['first', 'second']) {
      const woke = new Promise<void>((r) => (wake = r));
      peer.send({ op: 'send', data: d });
      await peer.next();
      await woke;
    }
    assert.deepEqual(got, ['first', 'second']);
    // Closing another descriptor of the queue in this process makes the kernel
    // drop our registration (mq_close by the owner); ipckit registers again.
    mq.open(n).close();
    {
      const woke = new Promise<void>((r) => (wake = r));
      peer.send({ op: 'send', data: 'third' });
      await peer.next();
      await woke;
    }
    assert.deepEqual(got, ['first', 'second', 'third']);
    // One registrant per queue: another process's mq_notify fails with EBUSY.
    peer.send({ op: 'notify' });
    assert.equal((await peer.next<{ error: { code: string } }>()).error.code, 'EBUSY');
    const dir = mq.mountPoint();
    if (dir) assert.match(readFileSync(`${dir}${n}`, 'utf8'), new RegExp(`NOTIFY_PID:${process.pid}\\b`));
    off();
    peer.send({ op: 'notify' });
    assert.deepEqual(await peer.next(), { registered: true });
    assert.throws(() => q.onNotify(() => undefined), (e: unknown) => e instanceof IpcError && e.code === 'EBUSY' && /one/.test(e.message));
    peer.send({ op: 'exit' });
    await peer.exited;
    q.unlink();
  });

  test('sync variants block a worker thread while the main thread stays free', T, async () => {
    using requests = mq.open(name('worker-req'), { create: true, maxMessages: 2, messageSize: 32 });
    using replies = mq.open(name('worker-rep'), { create: true, maxMessages: 2, messageSize: 32 });
    const { messages, exited } = await startWorker(
      `(async () => {
         const { mq } = await import('ipckit');
         const { parentPort, workerData } = await import('node:worker_threads');
         const requests = mq.open(workerData[0]);
         const replies = mq.open(workerData[1]);
         parentPort.postMessage('ready');
         const m = requests.receiveSync({ timeout: 20000 });
         replies.sendSync('echo ' + m.data, { priority: m.priority });
         try { requests.receiveSync({ timeout: 10 }); } catch (e) { parentPort.postMessage(e.code); }
         requests.close();
         replies.close();
       })();`,
      [requests.name, replies.name],
    );
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    await requests.send('ping', { priority: 4 });
    const echo = await replies.receive({ timeout: 20_000 });
    clearInterval(ticker);
    await exited;
    assert.deepEqual([echo.data.toString(), echo.priority], ['echo ping', 4]);
    assert.deepEqual(messages, ['ready', 'ETIMEDOUT']);
    requests.unlink();
    replies.unlink();
  });

  test('waits do not occupy the libuv threadpool', T, async () => {
    using q = mq.open(name('pool'), { create: true, maxMessages: 2, messageSize: 16 });
    const waits = Array.from({ length: 8 }, () => q.receive().catch((e: { code: string }) => e.code));
    const started = Date.now();
    await readFile(new URL(import.meta.url));
    assert.ok(Date.now() - started < 1000, 'fs still has its threads');
    q.close();
    assert.deepEqual(await Promise.all(waits), new Array(8).fill('ERR_IPCKIT_CLOSED'));
    mq.unlink(q.name);
  });

  test('process.exit() does not hang on a pending receive', T, async () => {
    const n = name('exit');
    using q = mq.open(n, { create: true, maxMessages: 2, messageSize: 16 });
    const peer = startPeer('mq-peer');
    await peer.next();
    peer.send({ op: 'open', name: n });
    await peer.next();
    peer.send({ op: 'pendingExit' });
    assert.equal((await peer.exited).code, 7);
    q.unlink();
  });

  test('1,000,000 messages between two processes: none lost, none reordered within a priority', { timeout: 180_000 }, async (t) => {
    const n = name('million');
    // msg_max (10 by default) binds root too unless it has CAP_SYS_RESOURCE in the initial namespace.
    const maxMessages = procLimit('msg_max');
    using q = mq.open(n, { create: true, maxMessages, messageSize: 8 });
    const count = 1_000_000;
    const kinds = 4;
    const { sent, got } = await floodAndDrain('posix', count, kinds, (role) => ({
      op: 'open',
      name: n,
      options: role === 'sender' ? { writeOnly: true } : { readOnly: true },
    }));
    assert.equal(sent.sent, count);
    assert.equal(got.received, count);
    assert.equal(got.misordered, 0);
    assert.equal(got.mislabelled, 0);
    assert.equal(got.perKind.reduce((a, b) => a + b, 0), count);
    assert.equal(q.attributes().currentMessages, 0);
    t.diagnostic(`POSIX mq: ${count} x 8 B in ${got.ms.toFixed(0)} ms = ${((count / got.ms) * 1000).toFixed(0)} msg/s (queue of ${maxMessages}, sender ${sent.ms.toFixed(0)} ms)`);
    q.unlink();
  });

  test('fromFd: a queue descriptor received by SCM_RIGHTS works in the receiver; any other descriptor is refused; a sender clearing O_NONBLOCK on the shared description cannot make a try block', { ...T, skip: noCc }, async () => {
    const q = mq.open(uniqueName('fromfd'), { create: true, exclusive: true, maxMessages: 2, messageSize: 64 });
    q.unlink();
    const [a, b] = unix.socketpair({ fds: true });
    const got = new Promise<number>((resolve) => b.once('message', (_d: Buffer, info: { takeFds(): number[] }) => resolve(info.takeFds()[0]!)));
    await a.send('queue', { fds: [q] });
    const other = mq.fromFd(await got, 'received');
    assert.equal(other.canSend && other.canReceive, true);
    assert.equal(other.messageSize, 64);
    q.trySend('one');
    assert.equal(other.tryReceive()?.data.toString(), 'one');
    // Another process turns O_NONBLOCK off on the description both descriptors share.
    const clearer = compileC(`
      #include <mqueue.h>
      #include <stdio.h>
      int main(void) {
        struct mq_attr a = {0}, old;
        if (mq_setattr(3, &a, &old) != 0) { perror("mq_setattr"); return 1; }
        return 0;
      }
    `);
    try {
      assert.equal(spawnSync(clearer.path, [], { stdio: ['ignore', 'inherit', 'inherit', q.fd] }).status, 0);
    } finally {
      clearer.cleanup();
    }
    assert.equal(q.attributes().nonBlocking, false);
    const started = performance.now();
    assert.equal(other.tryReceive(), null); // empty: would block in mq_receive
    assert.equal(other.trySend('x'), true);
    assert.equal(other.trySend('y'), true);
    assert.equal(other.trySend('z'), false); // full: would block in mq_send
    assert.equal(other.tryReceiveMany().length, 2);
    assert.ok(performance.now() - started < 1000);
    // Not a queue: refused before any queue call.
    const [p1, p2] = unix.socketpair();
    assert.throws(() => mq.fromFd(p1.fd), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    for (const x of [q, other, a, b]) x.close();
    p1.destroy();
    p2.destroy();
  });

  test('misuse is refused before any system call', T, () => {
    assert.throws(() => mq.open('no-slash'), { code: 'ERR_IPCKIT_INVALID_NAME' });
    assert.throws(() => mq.open('/x', { exclusive: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => mq.open('/x', { maxMessages: 3 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => mq.open('/x', { create: true, maxMessages: 0 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => mq.open('/x', { readOnly: true, writeOnly: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    using q = mq.open(name('misuse'), { create: true, maxMessages: 2, messageSize: 8 });
    assert.throws(() => q.trySend('x', { priority: 32768 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => q.trySend(42 as unknown as string), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => q.onNotify('no' as unknown as () => void), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    void assert.rejects(q.receive({ timeout: -1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    using ro = mq.open(q.name, { readOnly: true });
    using wo = mq.open(q.name, { writeOnly: true });
    assert.throws(() => ro.trySend('x'), { code: 'ERR_IPCKIT_READ_ONLY' });
    assert.throws(() => wo.tryReceive(), { code: 'ERR_IPCKIT_WRITE_ONLY' });
    q.unlink();
  });

  test('a misspelt option is a TypeError naming the nearest one, and nothing is created, sent or taken', T, async () => {
    const n = name('typo');
    using q = mq.open(name('typo-q'), { create: true, maxMessages: 2, messageSize: 8 });
    q.trySend('keep');
    const calls: Array<[string, () => unknown, string | null]> = [
      ['open', () => mq.open(n, { create: true, maxMessage: 2 } as never), 'maxMessages'],
      ['open', () => mq.open(n, { create: true, readonly: true } as never), 'readOnly'],
      ['open', () => mq.open(n, { create: true, nonBlocking: true } as never), null],
      ['trySend', () => q.trySend('x', { priorty: 1 } as never), 'priority'],
      ['trySendMany', () => q.trySendMany(['x'], { prority: 1 } as never), 'priority'],
      ['send', () => q.send('x', { priority: 1, timout: 5 } as never), 'timeout'],
      ['sendSync', () => q.sendSync('x', { priorty: 1 } as never), 'priority'],
      ['receive', () => q.receive({ timout: 5 } as never), 'timeout'],
      ['receive', () => q.receive({ priority: 1 } as never), null],
      ['receiveSync', () => q.receiveSync({ timeuot: 5 } as never), 'timeout'],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.throws(() => mq.open(n), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT', 'nothing created');
    assert.equal(q.attributes().currentMessages, 1, 'nothing sent, nothing taken');
    q.unlink();
  });
});
