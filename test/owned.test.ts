// `owned: true`: objects removed when the creating process exits, however it
// ends (normally, process.exit(), SIGINT, SIGTERM, SIGHUP, an uncaught
// exception or rejection), made in a worker too; never an object the process
// did not create, and never behind the back of a program that handles the
// signal itself. Child processes (test/fixtures/ipc-objects.ts) make one
// object of every kind and end each way.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fifo, mmap, mq, sem, shm } from 'ipckit';
import { native } from '../dist/native.js';
import { startPeer, uniqueKey, uniqueName } from './helpers.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-owned-'));

interface Spec {
  tag: string;
  dir: string;
  keys: [number, number, number];
  owned: boolean;
  end: string;
  adopt?: boolean;
}
interface Ready {
  ready: true;
  pid: number;
  ids: { shm: number; sem: number; mq: number };
  owned: Record<string, boolean>;
}

const made: Array<{ spec: Spec; ids?: Ready['ids'] }> = [];
function spec(end: string, owned = true, extra: Partial<Spec> = {}): Spec {
  const s: Spec = { tag: `ipckit-test-owned-${end}-${process.pid}-${randomBytes(4).toString('hex')}`, dir, keys: [uniqueKey(), uniqueKey(), uniqueKey()], owned, end, ...extra };
  made.push({ spec: s });
  return s;
}

/** Which of the spec's objects exist now. */
function present(s: Spec, ids: Ready['ids']): Record<string, boolean> {
  return {
    'posix-shm': existsSync(`/dev/shm/${s.tag}-shm`),
    'posix-sem': existsSync(`/dev/shm/sem.${s.tag}-sem`),
    'posix-mq': mq.list()?.some((q) => q.name === `/${s.tag}-mq`) ?? false,
    'sysv-shm': shm.sysv.list().some((e) => e.id === ids.shm),
    'sysv-sem': sem.sysv.list().some((e) => e.id === ids.sem),
    'sysv-mq': mq.sysv.list().some((e) => e.id === ids.mq),
    fifo: existsSync(join(s.dir, `${s.tag}.fifo`)),
    'mapped file': existsSync(join(s.dir, `${s.tag}.bin`)),
    'socket file': existsSync(join(s.dir, `${s.tag}.sock`)),
  };
}

const all = (value: boolean, except: Record<string, boolean> = {}) =>
  Object.fromEntries(['posix-shm', 'posix-sem', 'posix-mq', 'sysv-shm', 'sysv-sem', 'sysv-mq', 'fifo', 'mapped file', 'socket file'].map((k) => [k, except[k] ?? value]));

/** Removes whatever of the spec's objects is left. */
function cleanup(s: Spec, ids?: Ready['ids']): void {
  const quietly = (f: () => void) => {
    try {
      f();
    } catch {
      /* already gone */
    }
  };
  quietly(() => shm.unlink(`/${s.tag}-shm`));
  quietly(() => sem.unlink(`/${s.tag}-sem`));
  quietly(() => mq.unlink(`/${s.tag}-mq`));
  for (const [i, get] of [(k: number) => shm.sysv.get(k), (k: number) => sem.sysv.get(k), (k: number) => mq.sysv.get(k)].entries()) {
    quietly(() => get(s.keys[i]!).remove());
  }
  if (ids) {
    quietly(() => shm.sysv.fromId(ids.shm).remove());
    quietly(() => sem.sysv.fromId(ids.sem).remove());
    quietly(() => mq.sysv.fromId(ids.mq).remove());
  }
  for (const ext of ['fifo', 'bin', 'sock']) quietly(() => unlinkSync(join(s.dir, `${s.tag}.${ext}`)));
}

after(() => {
  for (const m of made) cleanup(m.spec, m.ids);
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a maker, waits until its objects exist. */
async function start(s: Spec) {
  // Its stderr is let go: some endings print an uncaught error there, on purpose.
  const peer = startPeer('ipc-objects', ['make', JSON.stringify(s)], { stdio: ['pipe', 'pipe', 'ignore'] });
  const ready = await peer.next<Ready>();
  made.find((m) => m.spec === s)!.ids = ready.ids;
  return { peer, ready };
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
      assert.deepEqual(present(s, ready.ids), all(true), 'all made');
      if (e.signal) peer.child.kill(e.signal);
      else peer.send('go');
      const exit = await peer.exited;
      // A signal the process did not handle itself still ends it, as without ipckit.
      assert.deepEqual(exit, e.signal ? { code: null, signal: e.signal } : { code: e.code, signal: null });
      assert.deepEqual(present(s, ready.ids), all(false));
    });
  }

  test('objects made in a worker belong to the process: they outlive the worker, not the process', T, async () => {
    const s = spec('worker');
    const { peer, ready } = await start(s);
    assert.equal((ready as Ready & { workerEnded: boolean }).workerEnded, true);
    assert.deepEqual(present(s, ready.ids), all(true), 'the worker was terminated, the process lives on');
    peer.send('exit');
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
    assert.deepEqual(present(s, ready.ids), all(false));
  });

  test('a program with its own SIGTERM listener is not ended behind its back; the objects go when it exits', T, async () => {
    const s = spec('listener');
    const { peer, ready } = await start(s);
    peer.child.kill('SIGTERM');
    assert.deepEqual(await peer.next(), { handled: 'SIGTERM' });
    assert.deepEqual(present(s, ready.ids), all(true), 'still running, nothing removed');
    peer.send('exit');
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
    assert.deepEqual(present(s, ready.ids), all(false));
  });

  test('objects not owned stay (a socket file still goes at a normal exit, as before)', T, async () => {
    const s = spec('exit', false);
    const { peer, ready } = await start(s);
    assert.deepEqual(ready.owned, { shm: false, sem: false, mq: false, sysvShm: false, sysvSem: false, sysvMq: false, file: false });
    peer.send('go');
    await peer.exited;
    assert.deepEqual(present(s, ready.ids), all(true, { 'socket file': false }));
    cleanup(s, ready.ids);
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
    const { peer, ready } = await start(s);
    assert.deepEqual(ready.owned, { shm: false, sem: false, mq: false, sysvShm: false, sysvSem: false, sysvMq: false, file: false });
    peer.send('go');
    await peer.exited;
    assert.deepEqual(present(s, ready.ids), all(true, { 'socket file': false }));
    cleanup(s, ready.ids);
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
