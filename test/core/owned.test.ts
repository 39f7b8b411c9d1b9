// `owned: true`: objects removed when the creating process exits, however it
// ends (normally, process.exit(), SIGINT, SIGTERM, SIGHUP, an uncaught
// exception or rejection), made in a worker too; never an object the process
// did not create, and never behind the back of a program that handles the
// signal itself. Child processes (test/fixtures/ipc-objects.ts) make one
// object of every kind and end each way.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fifo, mmap, mq, sem, shm, unix } from 'ipckit';
import { native } from '../../dist/core/native.js';
import { startPeer, uniqueKey, uniqueName } from '../helpers.js';
import { cleanup, KINDS, newSpec, present, type Spec } from '../ipc-objects-spec.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-owned-'));

interface Ready {
  ready: true;
  pid: number;
  owned: Record<string, boolean>;
}

const made: Spec[] = [];
function spec(end: string, owned = true, extra: Partial<Spec> = {}): Spec {
  const s = newSpec(`owned-${end}`, dir, end, owned, extra);
  made.push(s);
  return s;
}

const everyKindBut = (...gone: string[]) => KINDS.filter((k) => !gone.includes(k));

after(() => {
  for (const s of made) cleanup(s);
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a maker, waits until its objects exist. */
async function start(s: Spec) {
  // Its stderr is let go: some endings print an uncaught error there, on purpose.
  const peer = startPeer('ipc-objects', ['make', JSON.stringify(s)], { stdio: ['pipe', 'pipe', 'ignore'] });
  const ready = await peer.next<Ready>();
  return { peer, ready };
}

/** Starts a maker whose handles own nothing, lets it end normally: all but its served socket file stays. */
async function endsOwningNothing(s: Spec): Promise<void> {
  const { peer, ready } = await start(s);
  assert.deepEqual(ready.owned, { shm: false, sem: false, mq: false, sysvShm: false, sysvSem: false, sysvMq: false, file: false });
  peer.send('go');
  await peer.exited;
  assert.deepEqual(present(s), everyKindBut('unix-socket'));
  cleanup(s);
}

describe('owned objects are removed when their process exits', () => {
  const endings: Array<{ end: string; how: string; signal?: NodeJS.Signals; code?: number }> = [
    { end: 'return', how: 'ends normally', code: 0 },
    { end: 'exit', how: 'calls process.exit()', code: 0 },
    { end: 'wait', how: 'gets SIGINT', signal: 'SIGINT' },
    { end: 'wait', how: 'gets SIGTERM', signal: 'SIGTERM' },
    { end: 'wait', how: 'gets SIGHUP', signal: 'SIGHUP' },
    { end: 'throw', how: 'dies of an uncaught exception', code: 1 },
    { end: 'reject', how: 'dies of an unhandled rejection', code: 1 },
  ];
  for (const e of endings) {
    test(`every kind, when the process ${e.how}`, T, async () => {
      const s = spec(e.end);
      const { peer, ready } = await start(s);
      assert.deepEqual(ready.owned, { shm: true, sem: true, mq: true, sysvShm: true, sysvSem: true, sysvMq: true, file: true });
      assert.deepEqual(present(s), KINDS, 'all made');
      if (e.signal) peer.child.kill(e.signal);
      else peer.send('go');
      const exit = await peer.exited;
      // A signal the process did not handle itself still ends it, as without ipckit.
      assert.deepEqual(exit, e.signal ? { code: null, signal: e.signal } : { code: e.code, signal: null });
      assert.deepEqual(present(s), []);
    });
  }

  test('objects made in a worker belong to the process: they outlive the worker, not the process', T, async () => {
    const s = spec('worker');
    const { peer, ready } = await start(s);
    assert.equal((ready as Ready & { workerEnded: boolean }).workerEnded, true);
    assert.deepEqual(present(s), KINDS, 'the worker was terminated, the process lives on');
    peer.send('exit');
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
    assert.deepEqual(present(s), []);
  });

  test('a program with its own SIGTERM listener is not ended behind its back; the objects go when it exits', T, async () => {
    const s = spec('listener');
    const { peer, ready } = await start(s);
    peer.child.kill('SIGTERM');
    assert.deepEqual(await peer.next(), { handled: 'SIGTERM' });
    assert.deepEqual(present(s), KINDS, 'still running, nothing removed');
    peer.send('exit');
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
    assert.deepEqual(present(s), []);
  });

  test('objects not owned stay (a socket file still goes at a normal exit, as before)', T, async () => {
    const s = spec('exit', false);
    await endsOwningNothing(s);
  });

  test('owned: true on an object someone else created opens it and leaves it alone', T, async () => {
    const s = spec('exit', true, { adopt: true });
    // The test process makes them; the child asks for create + owned and gets existing objects.
    shm.open(`/${s.tag}-shm`, { create: true, size: 4096 }).close();
    sem.open(`/${s.tag}-sem`, { create: true }).close();
    mq.open(`/${s.tag}-mq`, { create: true }).close();
    shm.sysv.get(s.keys[0], { create: true, size: 4096 });
    sem.sysv.get(s.keys[1], { create: true, count: 1 });
    mq.sysv.get(s.keys[2], { create: true });
    fifo.create(join(dir, `${s.tag}.fifo`));
    mmap.file(join(dir, `${s.tag}.bin`), { create: true, grow: true, size: 4096 }).close();
    await endsOwningNothing(s);
  });
});

describe('owned socket files: unix.listen, unix.dgram({ bind }) and unix.connect({ bind })', () => {
  const FILES = ['client.sock', 'dgram.sock', 'server.sock'];
  /** Starts the binder in a fresh directory; the socket files there once it is ready. */
  async function bound(owned: boolean, end: string) {
    const where = mkdtempSync(join(dir, 'sockets-'));
    const peer = startPeer('owned-sockets', [where, String(owned), end], { stdio: ['pipe', 'pipe', 'ignore'] });
    await peer.next();
    const files = () => readdirSync(where).sort();
    assert.deepEqual(files(), FILES);
    return { peer, files };
  }
  const endings: Array<{ end: string; how: string; signal?: NodeJS.Signals; code?: number }> = [
    { end: 'exit', how: 'calls process.exit()', code: 0 },
    { end: 'wait', how: 'gets SIGINT', signal: 'SIGINT' },
    { end: 'wait', how: 'gets SIGTERM', signal: 'SIGTERM' },
    { end: 'throw', how: 'dies of an uncaught exception', code: 1 },
  ];
  for (const e of endings) {
    test(`owned: gone when the process ${e.how}`, T, async () => {
      const { peer, files } = await bound(true, e.end);
      if (e.signal) peer.child.kill(e.signal);
      else peer.send('go');
      assert.deepEqual(await peer.exited, e.signal ? { code: null, signal: e.signal } : { code: e.code, signal: null });
      assert.deepEqual(files(), []);
    });
  }

  test('not owned: a fatal signal leaves them (stale; the next bind reclaims them)', T, async () => {
    const { peer, files } = await bound(false, 'wait');
    peer.child.kill('SIGTERM');
    assert.deepEqual(await peer.exited, { code: null, signal: 'SIGTERM' });
    assert.deepEqual(files(), FILES);
  });

  test('owned needs bind', () => {
    const refused = { code: 'ERR_IPCKIT_INVALID_ARG_VALUE', message: /options.owned needs options.bind/ };
    assert.throws(() => unix.dgram({ owned: true }), refused);
    return assert.rejects(unix.connect(join(dir, 'nobody.sock'), { type: 'dgram', owned: true }), refused);
  });
});

describe('owned: the options and the list', () => {
  test('owned needs create, since only an object this call creates can be owned', () => {
    const n = uniqueName('owned-nocreate');
    const refused = { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_VALUE', message: /options.owned needs options.create/ };
    assert.throws(() => shm.open(n, { owned: true }), refused);
    assert.throws(() => sem.open(n, { owned: true }), refused);
    assert.throws(() => mq.open(n, { owned: true }), refused);
    assert.throws(() => shm.sysv.get(uniqueKey(), { owned: true }), refused);
    assert.throws(() => sem.sysv.get(uniqueKey(), { owned: true }), refused);
    assert.throws(() => mq.sysv.get(uniqueKey(), { owned: true }), refused);
    assert.throws(() => mmap.file(join(dir, 'never'), { owned: true }), refused);
    assert.throws(() => shm.open(n, { create: true, owned: 1 as unknown as boolean }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });

  test('unlink() and remove() take an object off the list', () => {
    const before = native.ownedCount();
    const n = uniqueName('owned-early');
    const region = shm.open(n, { create: true, size: 64, owned: true });
    const semaphore = sem.open(n, { create: true, owned: true });
    const queue = mq.open(n, { create: true, owned: true });
    const segment = shm.sysv.get('private', { size: 64, owned: true });
    const set = sem.sysv.get('private', { count: 1, owned: true });
    const sq = mq.sysv.get('private', { owned: true });
    const path = join(dir, 'early.fifo');
    fifo.create(path, { owned: true });
    assert.deepEqual([region.owned, semaphore.owned, queue.owned, segment.owned, set.owned, sq.owned], [true, true, true, true, true, true]);
    assert.equal(native.ownedCount(), before + 7);
    region.unlink();
    sem.unlink(n);
    queue.unlink();
    segment.remove();
    set.remove();
    sq.remove();
    fifo.remove(path);
    assert.equal(native.ownedCount(), before);
    region.close();
    semaphore.close();
    queue.close();
  });
});
