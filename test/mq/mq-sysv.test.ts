// System V message queues against ipcmk/ipcs/ipcrm, Python's sysv_ipc, C and peer processes.
import { fillToLimit, floodAndDrain, startWorker } from './mq-kit.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { describe, test } from 'node:test';
import { IpcError, mq } from 'ipckit';
import { assertUnknownOption, canDropPrivileges, compileC, fixturesDir, has, namespaceDenied, run, startPeer, uniqueKey, withoutCapabilities, removedAfter } from '../helpers.js';

const T = { timeout: 60_000 };
const made = removedAfter<number>((id) => mq.sysv.fromId(id).remove());
function track<Q extends { id: number }>(q: Q): Q {
  made.add(q.id);
  return q;
}

// Debian's python3-sysv-ipc installs for the system Python, not for a pyenv python3 on PATH.
const PY = '/usr/bin/python3';
const hasSysvIpc = existsSync(PY) && (() => {
  try {
    run(PY, ['-c', 'import sysv_ipc']);
    return true;
  } catch {
    return false;
  }
})();
const noPy = !hasSysvIpc && 'needs python3-sysv-ipc for /usr/bin/python3';
const kernel = (file: string) => Number(readFileSync(`/proc/sys/kernel/${file}`, 'utf8'));

function python(code: string, ...args: string[]): string {
  return run(PY, ['-c', code, ...args]);
}

describe('System V message queues', () => {
  test('type selection follows msgrcv(2): first, of type n, not of type n, lowest type <= |n|', T, () => {
    using q = track(mq.sysv.get('private'));
    for (const t of [3, 1, 5, 2, 4, 1]) q.trySend(t, `t${t}`);
    const take = (o: Parameters<typeof q.tryReceive>[0]) => {
      const m = q.tryReceive(o);
      return m && `${m.type}:${m.data}`;
    };
    assert.equal(take({ type: 0 }), '3:t3'); // the first message
    assert.equal(take({ type: 2 }), '2:t2'); // the first of type 2
    assert.equal(take({ type: 1, except: true }), '5:t5'); // the first not of type 1
    assert.equal(take({ type: -4 }), '1:t1'); // the lowest type <= 4, first of them
    assert.equal(take({ type: -4 }), '1:t1');
    assert.equal(take({ type: -3 }), null); // only type 4 is left
    assert.equal(take({ type: 7 }), null);
    assert.equal(take({}), '4:t4');
    q.remove();
  });

  test('messages Python sysv_ipc sends with types 1..5 are received by ipckit in each selection mode', { ...T, skip: noPy }, () => {
    using q = track(mq.sysv.get(uniqueKey(), { create: true, exclusive: true }));
    python(
      `import sys, sysv_ipc
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
for t in (3, 1, 5, 2, 4):
    q.send(("python %d" % t).encode(), True, t)`,
      String(q.key),
    );
    assert.equal(q.stat().qnum, 5);
    const got = [
      q.tryReceive(), // first: 3
      q.tryReceive({ type: 2 }), // 2
      q.tryReceive({ type: 5, except: true }), // first not 5: 1
      q.tryReceive({ type: -5 }), // lowest <= 5 of [5, 4]: 4
      q.tryReceive(), // 5
    ].map((m) => `${m!.type} ${m!.data}`);
    assert.deepEqual(got, ['3 python 3', '2 python 2', '1 python 1', '4 python 4', '5 python 5']);
    q.remove();
  });

  test('Python sysv_ipc receives what ipckit sends, selecting by type', { ...T, skip: noPy }, async () => {
    using q = track(mq.sysv.get(uniqueKey(), { create: true, exclusive: true }));
    for (const t of [3, 1, 5, 2, 4]) await q.send(t, `ipckit ${t}`);
    const out = python(
      `import sys, sysv_ipc
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
for t in (0, 2, -5, 4, 0):
    m, typ = q.receive(False, t)
    print(typ, m.decode())`,
      String(q.key),
    );
    assert.equal(out, '3 ipckit 3\n2 ipckit 2\n1 ipckit 1\n4 ipckit 4\n5 ipckit 5\n');
    q.remove();
  });

  test('a queue created with ipcmk -Q receives from ipckit; ipcs sees the messages; ipcrm removes it', { ...T, skip: (!has('ipcmk') && 'no ipcmk') || noPy }, () => {
    const id = Number(/(\d+)\s*$/.exec(run('ipcmk', ['-Q', '-p', '0600']).trim())?.[1]);
    made.add(id);
    using q = mq.sysv.fromId(id);
    q.trySend(7, 'seven');
    q.trySend(8, Buffer.from([0, 1, 2, 255]));
    const row = run('ipcs', ['-q'])
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((f) => f[1] === String(id));
    assert.deepEqual(row?.slice(3), ['600', '9', '2']); // perms, used-bytes, messages
    const out = python(
      `import sys, sysv_ipc
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
print(q.receive(False, 8)[0].hex(), q.receive(False, 7)[0].decode())`,
      String(q.key),
    );
    assert.equal(out, '000102ff seven\n');
    run('ipcrm', ['-q', String(id)]);
    assert.throws(() => q.stat(), (e: unknown) => e instanceof IpcError && (e.code === 'EINVAL' || e.code === 'EIDRM'));
  });

  test('a C program and ipckit agree on the key, the struct msgbuf layout and the selection', { ...T, skip: !has('cc') && 'no C compiler' }, () => {
    const key = uniqueKey();
    using q = track(mq.sysv.get(key, { create: true, exclusive: true, mode: 0o640 }));
    const peer = compileC(`
      #include <stdio.h>
      #include <stdlib.h>
      #include <string.h>
      #include <sys/msg.h>
      struct msg { long mtype; char mtext[64]; };
      int main(int argc, char **argv) {
        int id = msgget((key_t)strtoul(argv[1], 0, 0), 0);
        if (id < 0) { perror("msgget"); return 1; }
        struct msg m;
        ssize_t n = msgrcv(id, &m, sizeof m.mtext, -2, IPC_NOWAIT);
        if (n < 0) { perror("msgrcv"); return 1; }
        printf("%ld %.*s\\n", m.mtype, (int)n, m.mtext);
        m.mtype = 42; strcpy(m.mtext, "from C");
        if (msgsnd(id, &m, 6, 0) != 0) { perror("msgsnd"); return 1; }
        return 0;
      }
    `);
    try {
      q.trySend(9, 'nine');
      q.trySend(2, 'two');
      assert.equal(run(peer.path, [String(key)]), '2 two\n');
      const fromC = q.tryReceive({ type: 42 });
      assert.deepEqual([fromC?.type, fromC?.data.toString()], [42, 'from C']);
      assert.equal(q.tryReceive()!.data.toString(), 'nine');
    } finally {
      peer.cleanup();
      q.remove();
    }
  });

  test('stat() reports every msqid_ds field; set() changes qbytes and mode', T, async () => {
    const before = Math.floor(Date.now() / 1000) - 1;
    using q = track(mq.sysv.get('private', { mode: 0o640 }));
    let st = q.stat();
    assert.equal(st.key, 0);
    assert.equal(st.mode, 0o640);
    assert.equal(st.uid, process.getuid!());
    assert.equal(st.cuid, process.getuid!());
    assert.equal(st.gid, process.getgid!());
    assert.equal(st.cgid, process.getgid!());
    assert.equal(st.qnum, 0);
    assert.equal(st.cbytes, 0);
    assert.equal(st.qbytes, kernel('msgmnb'));
    assert.equal(st.stime, null);
    assert.equal(st.rtime, null);
    assert.ok(st.ctime!.getTime() / 1000 >= before);
    assert.equal(st.lspid, 0);
    assert.equal(st.lrpid, 0);
    await q.send(1, 'abc');
    q.trySend(2, 'defgh');
    st = q.stat();
    assert.equal(st.qnum, 2);
    assert.equal(st.cbytes, 8);
    assert.equal(st.lspid, process.pid);
    assert.ok(st.stime instanceof Date);
    q.tryReceive();
    st = q.stat();
    assert.equal(st.lrpid, process.pid);
    assert.ok(st.rtime instanceof Date);
    q.set({ qbytes: 1000, mode: 0o600 });
    st = q.stat();
    assert.equal(st.qbytes, 1000);
    assert.equal(st.mode, 0o600);
    const listed = mq.sysv.list().find((e) => e.id === q.id);
    assert.deepEqual(listed && [listed.qnum, listed.cbytes, listed.mode], [1, 5, 0o600]);
    q.remove();
  });

  test('full queue: trySend false, nowait EAGAIN and timeout ETIMEDOUT name the capacity, nothing lost', T, async () => {
    using q = track(mq.sysv.get('private'));
    q.set({ qbytes: 64 });
    assert.equal(q.trySend(1, Buffer.alloc(30)), true);
    assert.equal(q.trySend(2, Buffer.alloc(30)), true);
    assert.equal(q.trySend(3, Buffer.alloc(30)), false);
    await assert.rejects(q.send(3, Buffer.alloc(30), { nowait: true }), (e: unknown) => {
      assert.ok(e instanceof IpcError && e.code === 'EAGAIN');
      assert.equal(e.limit?.value, 64);
      return true;
    });
    const started = Date.now();
    await assert.rejects(q.send(3, Buffer.alloc(30), { timeout: 100 }), (e: unknown) => e instanceof IpcError && e.code === 'ETIMEDOUT' && e.limit?.value === 64);
    assert.ok(Date.now() - started >= 95);
    assert.throws(() => q.sendSync(3, Buffer.alloc(30), { timeout: 20 }), { code: 'ETIMEDOUT' });
    // A blocked send completes as soon as there is room.
    const waiting = q.send(4, 'late');
    assert.equal(q.tryReceive()!.type, 1);
    await waiting;
    assert.deepEqual(q.tryReceiveMany(10).map((m) => m.type), [2, 4]);
    q.remove();
  });

  test('a message above msgmax fails with EINVAL naming /proc/sys/kernel/msgmax; E2BIG names maxSize', T, () => {
    using q = track(mq.sysv.get('private'));
    assert.throws(() => q.trySend(1, Buffer.alloc(kernel('msgmax') + 1)), (e: unknown) => {
      assert.ok(e instanceof IpcError && e.code === 'EINVAL');
      assert.deepEqual(e.limit, { name: '/proc/sys/kernel/msgmax', value: kernel('msgmax') });
      return true;
    });
    q.trySend(1, 'twelve bytes');
    assert.throws(() => q.tryReceive({ maxSize: 5 }), (e: unknown) => e instanceof IpcError && e.code === 'E2BIG' && e.limit?.value === 5);
    assert.equal(q.stat().qnum, 1, 'the message stays');
    assert.equal(q.tryReceive({ maxSize: 5, noError: true })!.data.toString(), 'twelv');
    q.remove();
  });

  test('raising qbytes above msgmnb without CAP_SYS_RESOURCE names the limit', { ...T, skip: !canDropPrivileges && 'needs root and setpriv' }, async () => {
    using q = track(mq.sysv.get('private', { mode: 0o666 }));
    const [cmd, args] = withoutCapabilities(process.execPath, [`${fixturesDir}/mq-peer.js`]);
    const peer = startPeer(cmd, args);
    await peer.next();
    peer.send({ op: 'sysv', id: q.id });
    await peer.next();
    peer.send({ op: 'sysvSet', changes: { qbytes: kernel('msgmnb') * 2 } });
    const r = await peer.next<{ error: { code: string; limit: unknown } }>();
    assert.equal(r.error.code, 'EPERM');
    assert.deepEqual(r.error.limit, { name: '/proc/sys/kernel/msgmnb', value: kernel('msgmnb') });
    peer.send({ op: 'exit' });
    await peer.exited;
    q.remove();
  });

  test('running out of queue ids names /proc/sys/kernel/msgmni', { ...T, skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
    const denied = namespaceDenied('-i');
    if (denied) return t.skip(denied);
    const f = await fillToLimit('sysv', '/proc/sys/kernel/msgmni', 2, '');
    assert.equal(f.created, 2);
    assert.equal(f.error.code, 'ENOSPC');
    assert.deepEqual(f.error.limit, { name: '/proc/sys/kernel/msgmni', value: 2 });
  });

  test('a blocking receive waits on a waiter thread and wakes when another process sends', T, async () => {
    using q = track(mq.sysv.get('private'));
    const pending = q.receive({ type: 5, timeout: 30_000 });
    const peer = startPeer('mq-peer');
    await peer.next();
    peer.send({ op: 'sysv', id: q.id });
    await peer.next();
    peer.send({ op: 'sysvSend', type: 4, data: 'not for you' });
    await peer.next();
    peer.send({ op: 'sysvSend', type: 5, data: 'for you' });
    await peer.next();
    assert.deepEqual(await pending, { type: 5, data: Buffer.from('for you') });
    // And the other way.
    peer.send({ op: 'sysvReceive', options: { type: -10 } });
    await q.send(9, 'back');
    // The peer takes type 4 first: the lowest type <= 10.
    assert.deepEqual(await peer.next(), { data: 'not for you', type: 4 });
    peer.send({ op: 'sysvReceive', options: { type: 9 } });
    assert.deepEqual(await peer.next(), { data: 'back', type: 9 });
    peer.send({ op: 'exit' });
    await peer.exited;
    q.remove();
  });

  test('waits are cancellable (signal, timeout, close, remove) and do not occupy the libuv threadpool', T, async () => {
    using q = track(mq.sysv.get('private'));
    const ac = new AbortController();
    const aborted = q.receive({ signal: ac.signal });
    const waits = Array.from({ length: 8 }, (_, i) => q.receive({ type: 100 + i }).catch((e: { code: string }) => e.code));
    const started = Date.now();
    await readFile(new URL(import.meta.url));
    assert.ok(Date.now() - started < 1000, 'fs still has its threads with 9 receives pending');
    const reason = new Error('stop');
    ac.abort(reason);
    await assert.rejects(aborted, { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    await assert.rejects(q.receive({ timeout: 30 }), { code: 'ETIMEDOUT' });
    q.close();
    assert.deepEqual(await Promise.all(waits), new Array(8).fill('ERR_IPCKIT_CLOSED'));
    const removed = q.receive();
    setImmediate(() => q.remove());
    // EIDRM when the waiter thread was already inside msgrcv, EINVAL if it got there after the removal.
    await assert.rejects(removed, (e: unknown) => e instanceof IpcError && (e.code === 'EIDRM' || e.code === 'EINVAL'));
  });

  test('for await iterates selected messages until close()', T, async () => {
    using q = track(mq.sysv.get('private'));
    // Everything is queued before the first receive, so the order is msgrcv(2)'s
    // alone: type -2 takes the lowest type <= 2 each time, FIFO within a type.
    for (const [t, d] of [[5, 'skipped'], [2, 'a'], [1, 'b'], [2, 'c']] as const) await q.send(t, d);
    const seen: string[] = [];
    for await (const m of q.messages({ type: -2 })) {
      seen.push(`${m.type}:${m.data}`);
      if (seen.length === 3) setImmediate(() => q.close());
    }
    assert.deepEqual(seen, ['1:b', '2:a', '2:c']);
    assert.equal(q.tryReceive()!.data.toString(), 'skipped');
    q.remove();
  });

  test('sync variants work in a worker thread', T, async () => {
    using q = track(mq.sysv.get('private'));
    const { messages, exited } = await startWorker(
      `(async () => {
         const { mq } = await import('ipckit');
         const { parentPort, workerData } = await import('node:worker_threads');
         const q = mq.sysv.fromId(workerData);
         parentPort.postMessage('ready');
         const m = q.receiveSync({ type: 1, timeout: 20000 });
         q.sendSync(2, 'echo ' + m.data);
         try { q.receiveSync({ type: 1, timeout: 10 }); } catch (e) { parentPort.postMessage(e.code); }
       })();`,
      q.id,
    );
    await q.send(1, 'ping');
    const echo = await q.receive({ type: 2, timeout: 20_000 });
    await exited;
    assert.equal(echo.data.toString(), 'echo ping');
    assert.deepEqual(messages, ['ready', 'ETIMEDOUT']);
    q.remove();
  });

  test('a worker ending with POSIX and System V receives pending cancels only its own waits', T, async () => {
    using q = track(mq.sysv.get('private'));
    using pq = mq.open(`/ipckit-test-wterm-${process.pid}`, { create: true, maxMessages: 2, messageSize: 16 });
    const mine = q.receive({ type: 1 });
    const myPosix = pq.receive();
    const worker = new Worker(
      `(async () => {
         const { mq } = await import('ipckit');
         const { parentPort, workerData } = await import('node:worker_threads');
         const q = mq.sysv.fromId(workerData.id);
         const pq = mq.open(workerData.name);
         q.receive({ type: 2 }).catch(() => {});
         pq.receive().catch(() => {});
         parentPort.postMessage('waiting');
       })();`,
      { eval: true, workerData: { id: q.id, name: pq.name } },
    );
    await new Promise<void>((r) => worker.once('message', () => r()));
    await worker.terminate();
    // The main thread's waits are untouched by the worker's teardown.
    q.trySend(1, 'still mine');
    pq.trySend('still mine too');
    assert.equal((await mine).data.toString(), 'still mine');
    assert.equal((await myPosix).data.toString(), 'still mine too');
    assert.equal(q.stat().qnum, 0);
    pq.unlink();
    q.remove();
  });

  test('process.exit() does not hang on a pending receive', T, async () => {
    using q = track(mq.sysv.get('private'));
    const peer = startPeer('mq-peer');
    await peer.next();
    peer.send({ op: 'sysv', id: q.id });
    await peer.next();
    peer.send({ op: 'pendingExit' });
    assert.equal((await peer.exited).code, 7);
    q.remove();
  });

  test('1,000,000 messages between two processes: none lost, none reordered within a type', { timeout: 180_000 }, async (t) => {
    using q = track(mq.sysv.get('private'));
    const count = 1_000_000;
    const kinds = 4;
    const { sent, got } = await floodAndDrain('sysv', count, kinds, () => ({ op: 'sysv', id: q.id }));
    assert.equal(sent.sent, count);
    assert.equal(got.received, count);
    assert.equal(got.misordered, 0);
    assert.equal(got.mislabelled, 0);
    assert.equal(q.stat().qnum, 0);
    t.diagnostic(`System V mq: ${count} x 8 B in ${got.ms.toFixed(0)} ms = ${((count / got.ms) * 1000).toFixed(0)} msg/s (qbytes ${q.stat().qbytes})`);
    q.remove();
  });

  test('misuse is refused before any system call', T, () => {
    assert.throws(() => mq.sysv.get(0), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => mq.sysv.get(uniqueKey(), { exclusive: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    using q = track(mq.sysv.get('private'));
    assert.throws(() => q.trySend(0, 'x'), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => q.trySend(1.5, 'x'), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => q.trySend(1, {} as unknown as string), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => q.tryReceive({ type: 0, except: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => q.tryReceive({ type: -2, except: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => q.receiveSync({ signal: new AbortController().signal } as never), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => mq.sysv.get(uniqueKey()), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT' && e.key !== undefined);
    q.remove();
  });

  test('a misspelt option is a TypeError naming the nearest one, and nothing is created, sent or taken', T, async () => {
    const key = uniqueKey();
    using q = track(mq.sysv.get('private'));
    q.trySend(1, 'keep');
    const calls: Array<[string, () => unknown, string | null]> = [
      ['get', () => mq.sysv.get(key, { create: true, exclusiv: true } as never), 'exclusive'],
      ['send', () => q.send(1, 'x', { nowiat: true } as never), 'nowait'],
      ['sendSync', () => q.sendSync(1, 'x', { timout: 5 } as never), 'timeout'],
      ['receive', () => q.receive({ tpye: 1 } as never), 'type'],
      ['receive', () => q.receive({ nowait: true, maxsize: 100 } as never), 'maxSize'],
      ['receiveSync', () => q.receiveSync({ noerror: true } as never), 'noError'],
      ['tryReceive', () => q.tryReceive({ exept: true } as never), 'except'],
      ['tryReceive', () => q.tryReceive({ timeout: 5 } as never), null],
      ['tryReceiveMany', () => q.tryReceiveMany(5, { typ: 1 } as never), 'type'],
      ['messages', () => q.messages({ tpe: 1 } as never).next(), 'type'],
      ['set', () => q.set({ qbyte: 1 } as never), 'qbytes'],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.throws(() => mq.sysv.get(key), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT', 'nothing created');
    assert.equal(q.stat().qnum, 1, 'nothing sent, nothing taken');
    q.remove();
  });
});
