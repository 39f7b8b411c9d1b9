// Named pipes between unrelated processes: an open waits for the other side (a reader for a writer, a writer for a reader).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { IpcError, fifo } from 'ipckit';
import { assertUnknownOption, collect, startPeer } from '../helpers.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-fifo-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function fifoPath(): string {
  const p = join(dir, `f${counter++}`);
  fifo.create(p);
  return p;
}
const openFds = () => readdirSync('/proc/self/fd').length;

describe('fifo.create / remove', () => {
  test('mkfifo with the exact mode, whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      const p = join(dir, 'mode');
      fifo.create(p, { mode: 0o640 });
      const st = statSync(p);
      assert.ok(st.isFIFO());
      assert.equal(st.mode & 0o777, 0o640);
      assert.throws(() => fifo.create(p), (e: unknown) => e instanceof IpcError && e.code === 'EEXIST' && e.path === p);
      fifo.create(p, { existOk: true });
      fifo.remove(p);
      assert.equal(fifo.isFifo(p), false);
    } finally {
      process.umask(old);
    }
  });

  test('remove() and open() refuse a regular file', async () => {
    const p = join(dir, 'plain');
    writeFileSync(p, 'x');
    assert.throws(() => fifo.remove(p), (e: unknown) => e instanceof IpcError && e.code === 'EINVAL');
    await assert.rejects(fifo.open(p, 'r'), (e: unknown) => e instanceof IpcError && e.code === 'EINVAL');
    await assert.rejects(fifo.open(join(dir, 'missing'), 'r'), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT');
    rmSync(p);
  });

  test('misuse throws before any system call', async () => {
    assert.throws(() => fifo.create(''), { code: 'ERR_IPCKIT_INVALID_NAME' });
    assert.throws(() => fifo.create(join(dir, 'm'), { mode: 0o1777 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(fifo.open(join(dir, 'm'), 'x' as 'r'), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(fifo.open(join(dir, 'm'), 'r', { timeout: -1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
  });

  test('a misspelt option is a TypeError naming the nearest one', async () => {
    const missing = join(dir, 'typo');
    const p = fifoPath();
    const fds = openFds();
    const calls: Array<[string, () => unknown, string | null]> = [
      ['create', () => fifo.create(missing, { exist_ok: true } as never), 'existOk'],
      ['create', () => fifo.create(missing, { mdoe: 0o600 } as never), 'mode'],
      ['open', () => fifo.open(p, 'r', { timout: 5 } as never), 'timeout'],
      ['open', () => fifo.open(p, 'w', { wiat: false } as never), 'wait'],
      ['open', () => fifo.open(p, 'r', { nonBlocking: true } as never), null],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.equal(fifo.isFifo(missing), false, 'nothing created');
    assert.equal(openFds(), fds, 'nothing opened');
    fifo.remove(p);
  });
});

describe('fifo.open between unrelated processes', () => {
  test('reader opened first: it waits for the writer, then reads to EOF', T, async () => {
    const p = fifoPath();
    const peer = startPeer('unix-peer');
    await peer.next();
    const reading = fifo.open(p, 'r', { timeout: 20_000 });
    peer.send({ op: 'fifo-write', path: p, data: 'written by the peer' });
    const r = await reading;
    assert.equal(await collect(r), 'written by the peer');
    assert.deepEqual(await peer.next(), { wrote: true });
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('writer opened first: it waits for the reader', T, async () => {
    const p = fifoPath();
    const peer = startPeer('unix-peer');
    await peer.next();
    const writing = fifo.open(p, 'w', { timeout: 20_000 });
    peer.send({ op: 'fifo-read', path: p });
    const w = await writing;
    w.end('from the writer');
    assert.deepEqual(await peer.next(), { data: 'from the writer' });
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('a writer with no reader times out cleanly (ETIMEDOUT, no descriptor left)', T, async () => {
    const p = fifoPath();
    const before = openFds();
    const started = Date.now();
    await assert.rejects(fifo.open(p, 'w', { timeout: 100 }), (e: unknown) => {
      assert.ok(e instanceof IpcError);
      assert.equal(e.code, 'ETIMEDOUT');
      assert.equal(e.path, p);
      assert.match(e.message, /no reader/);
      return true;
    });
    assert.ok(Date.now() - started >= 90);
    assert.equal(openFds(), before);
    // The FIFO is still usable afterwards: nobody is left half-open on it.
    const r = await fifo.open(p, 'r', { wait: false });
    const w = await fifo.open(p, 'w');
    w.end('after');
    assert.equal(await collect(r), 'after');
  });

  test('a reader with no writer times out; an abort rejects with an AbortError caused by its reason', T, async () => {
    const p = fifoPath();
    await assert.rejects(fifo.open(p, 'r', { timeout: 50 }), { code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const pending = fifo.open(p, 'w', { signal: ac.signal });
    const reason = new Error('changed my mind');
    setImmediate(() => ac.abort(reason));
    await assert.rejects(pending, { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
    await assert.rejects(fifo.open(p, 'w', { signal: AbortSignal.abort() }), { name: 'AbortError' });
    await assert.rejects(fifo.open(p, 'w', { wait: false }), { code: 'ENXIO' });
  });

  test("'rw' never waits; writing after the reader has gone is EPIPE, not SIGPIPE", T, async () => {
    const p = fifoPath();
    const both = await fifo.open(p, 'rw');
    const got = once(both, 'data');
    both.write('loop');
    assert.equal(((await got)[0] as Buffer).toString(), 'loop');
    both.destroy();

    const r = await fifo.open(p, 'r', { wait: false });
    const w = await fifo.open(p, 'w');
    r.destroy();
    await once(r, 'close');
    w.write('nobody reads this');
    const [err] = (await once(w, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'EPIPE');
  });

  test('process.exit() is not held up by a pending FIFO open', T, async () => {
    const p = fifoPath();
    const peer = startPeer('unix-peer');
    await peer.next();
    peer.send({ op: 'fifo-write-then-exit', path: p });
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
  });
});
