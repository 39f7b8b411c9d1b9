// POSIX shared memory and memfd regions, between real processes.
import assert from 'node:assert/strict';
import { existsSync, ftruncateSync, readdirSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { IpcError, shm } from 'ipckit';
import { assertUnknownOption, canDropPrivileges, has, startPeer, uniqueName, withoutCapabilities, fixturesDir, removedAfter } from '../helpers.js';
import { join } from 'node:path';

const T = { timeout: 60_000 };
const created = removedAfter<string>((n) => shm.unlink(n));
function name(tag: string): string {
  const n = uniqueName(tag);
  created.add(n);
  return n;
}

describe('POSIX shared memory', () => {
  test('writes are visible both ways between two processes', T, async () => {
    const n = name('both-ways');
    using region = shm.open(n, { create: true, exclusive: true, size: 4096 });
    region.write('from parent', 0);
    const peer = startPeer('shm-peer');
    await peer.next();
    peer.send({ op: 'open', name: n });
    assert.deepEqual(await peer.next(), { size: 4096 });
    peer.send({ op: 'read', offset: 0, length: 11 });
    assert.deepEqual(await peer.next(), { data: 'from parent' });
    peer.send({ op: 'write', offset: 100, data: 'from child' });
    await peer.next();
    assert.equal(region.read(100, 10).toString(), 'from child');
    peer.send({ op: 'exit' });
    await peer.exited;
    region.unlink();
    assert.equal(existsSync(`/dev/shm${n}`), false);
  });

  test('2 processes x 1,000,000 Atomics.add on one word give the exact total', T, async () => {
    const n = name('atomics');
    using region = shm.open(n, { create: true, exclusive: true, size: 64 });
    const words = new Int32Array(region.buffer);
    const peers = [startPeer('shm-peer'), startPeer('shm-peer')];
    for (const p of peers) {
      await p.next();
      p.send({ op: 'open', name: n });
      await p.next();
    }
    for (const p of peers) p.send({ op: 'add', index: 0, barrier: 1, parties: 2, count: 1_000_000 });
    for (const p of peers) assert.deepEqual(await p.next(), { added: 1_000_000 });
    assert.equal(Atomics.load(words, 0), 2_000_000);
    for (const p of peers) p.send({ op: 'exit' });
    await Promise.all(peers.map((p) => p.exited));
    region.unlink();
  });

  test('create sizes a new object, applies the exact mode, and stat() reports it', T, () => {
    const n = name('mode');
    const old = process.umask(0o077);
    try {
      using region = shm.open(n, { create: true, size: 10_000, mode: 0o640 });
      assert.equal(region.size, 10_000);
      const st = region.stat();
      assert.equal(st.size, 10_000);
      assert.equal(st.mode, 0o640, 'umask must not filter the requested mode');
      assert.equal(st.uid, process.getuid!());
      assert.equal(statSync(`/dev/shm${n}`).mode & 0o777, 0o640);
      region.unlink();
    } finally {
      process.umask(old);
    }
  });

  test('default mode is 0o600', T, () => {
    const n = name('default-mode');
    using region = shm.open(n, { create: true, size: 1 });
    assert.equal(region.stat().mode, 0o600);
    region.unlink();
  });

  test('opening an existing object maps its current size, or a requested prefix', T, () => {
    const n = name('sizes');
    using a = shm.open(n, { create: true, size: 8192 });
    using b = shm.open(n);
    assert.equal(b.size, 8192);
    using c = shm.open(n, { size: 100 });
    assert.equal(c.size, 100);
    assert.throws(() => shm.open(n, { size: 9000 }), { name: 'RangeError', code: 'ERR_IPCKIT_SIZE_MISMATCH' });
    a.unlink();
  });

  test('resize() grows the object and maps the new size', T, () => {
    const n = name('resize');
    using region = shm.open(n, { create: true, size: 4096 });
    region.write('keep me');
    const oldView = new Uint8Array(region.buffer);
    region.resize(3 * 4096);
    assert.equal(region.size, 3 * 4096);
    assert.equal(region.buffer.byteLength, 3 * 4096);
    assert.equal(region.read(0, 7).toString(), 'keep me');
    assert.equal(region.stat().size, 3 * 4096);
    assert.equal(oldView[0], 0, 'old views are detached (zero pages), not dangling');
    region.unlink();
  });

  test('close() is idempotent, disposes, and leaves the object for others', T, () => {
    const n = name('close');
    const region = shm.open(n, { create: true, size: 4096 });
    const view = new Uint8Array(region.buffer);
    view[0] = 42;
    region.close();
    region.close();
    assert.equal(region.closed, true);
    assert.throws(() => region.buffer, { code: 'ERR_IPCKIT_CLOSED' });
    assert.equal(view[0], 0, 'a closed mapping reads as zeros instead of faulting');
    view[1] = 7; // writing to it is harmless and reaches no one
    using again = shm.open(n);
    assert.equal(again.read(0, 2)[0], 42);
    assert.equal(again.read(0, 2)[1], 0);
    again.unlink();
  });

  test('unlink removes the name while mappings stay valid', T, () => {
    const n = name('unlink');
    using region = shm.open(n, { create: true, size: 4096 });
    shm.unlink(n);
    assert.throws(() => shm.open(n), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT');
    region.write('still mapped');
    assert.equal(region.read(0, 12).toString(), 'still mapped');
  });

  test('a worker thread shares the same SharedArrayBuffer and loads the addon itself', T, async () => {
    const n = name('worker');
    using region = shm.open(n, { create: true, size: 64 });
    const words = new Int32Array(region.buffer);
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.entry).then(({ shm }) => {
        const own = shm.open(workerData.name);
        const mine = new Int32Array(own.buffer);
        const shared = new Int32Array(workerData.buffer);
        for (let i = 0; i < 100000; i++) { Atomics.add(shared, 0, 1); Atomics.add(mine, 1, 1); }
        own.close();
        parentPort.postMessage('done');
      });
      `,
      { eval: true, workerData: { buffer: region.buffer, name: n, entry: import.meta.resolve('ipckit') } },
    );
    for (let i = 0; i < 100000; i++) Atomics.add(words, 0, 1);
    const [msg] = await Promise.all([
      new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
    ]);
    assert.equal(msg, 'done');
    await worker.terminate();
    assert.equal(Atomics.load(words, 0), 200000);
    assert.equal(Atomics.load(words, 1), 100000);
    region.unlink();
  });

  test('a worker alone may use shared memory: its exit neither crashes nor warns', T, async () => {
    // The main thread of this child never loads ipckit, so the worker's
    // teardown is the addon's last user (regression: SIGSEGV in V8's teardown).
    const script = `
      const { Worker } = require('node:worker_threads');
      const w = new Worker(\`import(${JSON.stringify(import.meta.resolve('ipckit'))}).then(({ shm }) => {
        const kept = shm.anonymous(4096);
        const closed = shm.anonymous(4096);
        closed.close();
        new Int32Array(kept.buffer)[0] = 1;
      })\`, { eval: true });
      w.on('exit', (code) => console.log('worker exit', code));
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    assert.deepEqual({ code, signal, out: out.trim(), err: err.trim() }, { code: 0, signal: null, out: 'worker exit 0', err: '' });
  });

  test('interop: a region created by Python is read by name, and the reverse', { ...T, skip: !has('python3') && 'python3 missing' }, async () => {
    const fromPython = name('py-made');
    // Python's resource tracker would unlink the object when Python exits; unregister it.
    const py = startPeer('python3', [
      '-c',
      `
import sys
from multiprocessing import shared_memory, resource_tracker
s = shared_memory.SharedMemory(name=sys.argv[1].lstrip('/'), create=True, size=4096)
resource_tracker.unregister(s._name, 'shared_memory')
s.buf[:13] = b'hello from py'
print('{"made":true}', flush=True)
sys.stdin.readline()
other = shared_memory.SharedMemory(name=sys.argv[2].lstrip('/'))
resource_tracker.unregister(other._name, 'shared_memory')
print('{"read":"%s"}' % bytes(other.buf[:15]).decode(), flush=True)
other.close(); s.close()
`,
      fromPython,
      fromPython + '-r',
    ]);
    created.add(fromPython + '-r');
    assert.deepEqual(await py.next(), { made: true });
    using theirs = shm.open(fromPython);
    assert.equal(theirs.size, 4096);
    assert.equal(theirs.read(0, 13).toString(), 'hello from py');
    using ours = shm.open(fromPython + '-r', { create: true, size: 4096 });
    ours.write('hello from node');
    py.send('go');
    assert.deepEqual(await py.next(), { read: 'hello from node' });
    assert.equal((await py.exited).code, 0);
    theirs.unlink();
    ours.unlink();
  });
});

describe('anonymous shared memory (memfd)', () => {
  test('a child maps the region from an fd passed in stdio and sees writes both ways', T, async () => {
    using region = shm.anonymous(4096, { name: 'ipckit-test' });
    region.write('parent wrote this');
    const peer = startPeer('shm-peer', [], { stdio: ['pipe', 'pipe', 'inherit', region.fd] });
    await peer.next();
    peer.send({ op: 'fromFd', fd: 3 });
    assert.deepEqual(await peer.next(), { size: 4096 });
    peer.send({ op: 'read', offset: 0, length: 17 });
    assert.deepEqual(await peer.next(), { data: 'parent wrote this' });
    peer.send({ op: 'write', offset: 1000, data: 'child wrote this' });
    await peer.next();
    assert.equal(region.read(1000, 16).toString(), 'child wrote this');
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('has no name in /dev/shm and survives until closed', T, () => {
    const before = new Set(require_ls('/dev/shm'));
    using region = shm.anonymous(8192);
    assert.equal(region.size, 8192);
    assert.deepEqual(require_ls('/dev/shm').filter((x) => !before.has(x)), []);
    assert.equal(region.stat().size, 8192);
    region.resize(4096);
    assert.equal(region.size, 4096);
  });

  test('sealed: nobody can change the size any more, this process included (EPERM), so no holder can cause SIGBUS by a shrink', T, () => {
    using region = shm.anonymous(8192, { sealed: true });
    region.write('kept');
    assert.throws(() => region.resize(4096), { name: 'IpcError', code: 'EPERM' });
    assert.throws(() => ftruncateSync(region.fd, 0), { code: 'EPERM' });
    assert.throws(() => ftruncateSync(region.fd, 1 << 20), { code: 'EPERM' });
    assert.equal(region.stat().size, 8192);
    assert.equal(region.read(0, 4).toString(), 'kept');
    assert.throws(() => shm.anonymous(8192, { sealed: 'yes' as unknown as boolean }), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });
});


function require_ls(dir: string): string[] {
  return readdirSync(dir);
}

describe('POSIX shared memory: bad input and faults', () => {
  test('invalid names are rejected before any system call', T, () => {
    for (const bad of ['noslash', '/', '/a/b', '/..', '/' + 'x'.repeat(256), 'a\0b', '']) {
      assert.throws(() => shm.open(bad, { create: true, size: 1 }), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_NAME' }, bad);
    }
    assert.throws(() => shm.open(42 as unknown as string), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });

  test('negative, fractional and huge sizes are RangeErrors', T, () => {
    const n = name('bad-size');
    for (const size of [-1, 1.5, 2 ** 60]) {
      assert.throws(() => shm.open(n, { create: true, size }), (e: any) => e.code === 'ERR_IPCKIT_OUT_OF_RANGE' || e.code === 'ERR_IPCKIT_INVALID_ARG_TYPE', String(size));
    }
    assert.throws(() => shm.anonymous(0), { name: 'RangeError', code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.equal(existsSync(`/dev/shm${n}`), false, 'nothing created');
  });

  test('a size the machine cannot map fails with the errno and leaves nothing behind', T, () => {
    const n = name('enomem');
    assert.throws(() => shm.open(n, { create: true, size: 2 ** 52 }), (e: unknown) => e instanceof IpcError && ['ENOMEM', 'EFBIG', 'EINVAL'].includes(e.code));
    assert.equal(existsSync(`/dev/shm${n}`), false, 'the half-made object was removed');
  });

  test('opening a missing object without create is ENOENT', T, () => {
    const n = name('missing');
    assert.throws(() => shm.open(n), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT' && e.syscall === 'shm_open' && e.path === n);
  });

  test('IpcError.errno is negative, as in Node\'s own SystemError', T, () => {
    const n = name('errno');
    let err: unknown;
    try {
      shm.open(n);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof IpcError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.errno, -osConstants.errno.ENOENT);
    assert.ok(err.errno < 0);
    assert.equal(new IpcError(osConstants.errno.EEXIST, 'shm_open').errno, -osConstants.errno.EEXIST, 'a positive errno is stored negated');
    assert.equal(new IpcError(-osConstants.errno.EEXIST, 'shm_open').code, 'EEXIST', 'a negative errno names the same code');
  });

  test('a misspelt option is a TypeError naming the nearest one, before any system call', T, async () => {
    const n = name('typo');
    using region = shm.anonymous(4096);
    const calls: Array<[string, () => unknown, string | null]> = [
      ['open', () => shm.open(n, { creat: true, size: 4096 } as never), 'create'],
      ['open', () => shm.open(n, { create: true, readonly: true } as never), 'readOnly'],
      ['open', () => shm.open(n, { create: true, sizes: 4096 } as never), 'size'],
      ['anonymous', () => shm.anonymous(4096, { nmae: 'x' } as never), 'name'],
      ['fromFd', () => shm.fromFd(region.fd, { closefd: true } as never), 'closeFd'],
      ['fromFd', () => shm.fromFd(region.fd, { writable: true } as never), null],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.equal(existsSync(`/dev/shm${n}`), false, 'nothing created');
    // Keys whose value is undefined count as absent.
    using ok = shm.anonymous(4096, { name: 'x', extra: undefined } as never);
    assert.equal(ok.size, 4096);
  });

  test('exclusive on an existing object is EEXIST', T, () => {
    const n = name('excl');
    using region = shm.open(n, { create: true, size: 1 });
    assert.throws(() => shm.open(n, { create: true, exclusive: true }), (e: unknown) => e instanceof IpcError && e.code === 'EEXIST');
    assert.throws(() => shm.open(n, { exclusive: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    region.unlink();
  });

  test('a read-only region refuses writes and resize, and the kernel enforces it', T, async () => {
    const n = name('ro');
    using rw = shm.open(n, { create: true, size: 4096 });
    rw.write('data');
    using ro = shm.open(n, { readOnly: true });
    assert.equal(ro.readOnly, true);
    assert.equal(ro.read(0, 4).toString(), 'data');
    assert.throws(() => ro.write('x'), { code: 'ERR_IPCKIT_READ_ONLY' });
    assert.throws(() => ro.resize(8192), { code: 'ERR_IPCKIT_READ_ONLY' });
    // Writing through the raw buffer of a read-only mapping is a memory fault,
    // as in C: prove the protection is real in a disposable process.
    const peer = startPeer('shm-peer');
    await peer.next();
    peer.send({ op: 'open', name: n, options: { readOnly: true } });
    await peer.next();
    peer.send({ op: 'write', offset: 0, data: 'x' });
    const { signal } = await peer.exited;
    assert.equal(signal, 'SIGSEGV');
    assert.equal(rw.read(0, 4).toString(), 'data');
    rw.unlink();
  });

  test('permission denied for a 0o600 object owned by another user', { ...T, skip: !canDropPrivileges && 'needs root and setpriv' }, async () => {
    const n = name('eacces');
    using region = shm.open(n, { create: true, size: 4096, mode: 0o600 });
    // Hand the object to "nobody"; a process without CAP_DAC_OVERRIDE must be refused.
    const { chownSync } = await import('node:fs');
    chownSync(`/dev/shm${n}`, 65534, 65534);
    const [cmd, args] = withoutCapabilities(process.execPath, [join(fixturesDir, 'shm-peer.js')]);
    const peer = startPeer(cmd, args);
    await peer.next();
    peer.send({ op: 'open', name: n });
    const reply = await peer.next<{ error: { code: string; name: string } }>();
    assert.equal(reply.error.code, 'EACCES');
    assert.equal(reply.error.name, 'IpcError');
    peer.send({ op: 'exit' });
    await peer.exited;
    region.unlink();
  });

  test('fromFd rejects descriptors that are not open', T, () => {
    assert.throws(() => shm.fromFd(987654), (e: unknown) => e instanceof IpcError && e.code === 'EBADF');
    assert.throws(() => shm.fromFd(-1), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
  });
});
