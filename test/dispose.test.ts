// Every handle ipckit returns can be released with `using` / `await using`:
// disposing is close(), which never removes a kernel object.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  channel,
  Channel,
  ChannelServer,
  FdStream,
  fifo,
  FramedChannel,
  framing,
  MessageServer,
  MessageSocket,
  mmap,
  mq,
  PidFd,
  pipe,
  popen,
  sem,
  SharedRegion,
  shm,
  signals,
  socketpair,
  unix,
  UnixServer,
} from 'ipckit';
import { fixturesDir, uniqueName } from './helpers.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-dispose-'));
const cleanups: Array<() => unknown> = [];

after(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface NamedApi {
  open(name: string, options?: { create: true; exclusive: true }): Disposable & { readonly closed: boolean; close(): void };
  unlink(name: string): void;
}

/** A new named object released by `using`: closed afterwards, and its name still opens. */
function disposeNamed(prefix: string, api: NamedApi): void {
  const name = uniqueName(prefix);
  cleanups.push(() => api.unlink(name));
  let kept: { readonly closed: boolean };
  {
    using opened = api.open(name, { create: true, exclusive: true });
    kept = opened;
  }
  assert.equal(kept.closed, true);
  api.open(name).close(); // still there
}

const settled = <T>(p: Promise<T>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);

describe('Symbol.dispose / Symbol.asyncDispose on every handle', () => {
  test('every handle class has one', T, () => {
    const classes: Array<[string, { prototype: object }]> = [
      ['SharedRegion', SharedRegion],
      ['FdStream', FdStream],
      ['UnixServer', UnixServer],
      ['MessageSocket', MessageSocket],
      ['MessageServer', MessageServer],
      ['FramedChannel', FramedChannel],
      ['PidFd', PidFd],
      ['Channel', Channel],
      ['ChannelServer', ChannelServer],
    ];
    for (const [name, cls] of classes) {
      const p = cls.prototype as Record<symbol, unknown>;
      assert.ok(typeof p[Symbol.dispose] === 'function' || typeof p[Symbol.asyncDispose] === 'function', name);
    }
  });

  test('close() twice is harmless, and so is disposing a closed handle, for every handle', T, async () => {
    const name = uniqueName('dispose-twice');
    cleanups.push(() => shm.unlink(name), () => sem.unlink(name), () => mq.unlink(name));
    const seg = shm.sysv.get('private', { size: 4096 });
    cleanups.push(() => seg.remove());
    seg.attach();
    const set = sem.sysv.get('private', { count: 1 });
    cleanups.push(() => set.remove());
    const sq = mq.sysv.get('private');
    cleanups.push(() => sq.remove());
    const [ma, mb] = socketpair({ type: 'seqpacket' });
    const [fa, fb] = socketpair();
    const mserver = await unix.listen(join(dir, 'twice-m.sock'), { type: 'seqpacket' });
    const userver = await unix.listen(join(dir, 'twice-u.sock'));
    const cserver = await channel.listen(`unix:${join(dir, 'twice-ch.sock')}`);
    const accepted = cserver[Symbol.asyncIterator]().next();
    const client = await channel.connect(cserver.url);
    const peer = (await accepted).value as Channel<unknown>;
    const handles: Array<[string, { close(): unknown }]> = [
      ['SharedRegion (POSIX)', shm.open(name, { create: true, exclusive: true, size: 4096 })],
      ['SharedRegion (memfd)', shm.anonymous(4096)],
      ['MappedFile', mmap.file(join(dir, 'twice'), { create: true, size: 4096, grow: true })],
      ['SysvSegment', seg],
      ['Semaphore (named)', sem.open(name, { create: true, exclusive: true })],
      ['Semaphore (in memory)', sem.inMemory(new SharedArrayBuffer(64), 0, { init: 0 })],
      ['SysvSemaphoreSet', set],
      ['PosixQueue', mq.open(name, { create: true, exclusive: true })],
      ['SysvQueue', sq],
      ['PidFd', signals.pidfd(process.pid)],
      ['SignalWatch', signals.watch('SIGUSR2')],
      ['MessageSocket', ma],
      ['MessageServer', mserver],
      ['FramedChannel', framing.channel(fa)],
      ['Channel (connector)', client],
      ['Channel (accepted)', peer],
      ['ChannelServer', cserver],
      ['popen', popen('cat > /dev/null', 'w')],
    ];
    for (const [label, handle] of handles) {
      const h = handle as Record<symbol, unknown> & { close(): unknown };
      const dispose = (h[Symbol.dispose] ?? h[Symbol.asyncDispose]) as (() => unknown) | undefined;
      assert.equal(typeof dispose, 'function', `${label}: Symbol.dispose or Symbol.asyncDispose`);
      await h.close();
      await h.close();
      await dispose!.call(h);
    }
    mb.close();
    fb.destroy();
    // Node's net.Server is what UnixServer is: close() is Node's, disposing twice is fine.
    await userver[Symbol.asyncDispose]();
    await userver[Symbol.asyncDispose]();
    const [r, w] = pipe();
    for (const end of [r, w]) {
      await end[Symbol.asyncDispose]();
      await end[Symbol.asyncDispose]();
      assert.equal(end.fd, -1);
    }
  });

  test('shared memory: POSIX, memfd, System V, mmap — disposed means unmapped/detached, never removed', T, () => {
    const name = uniqueName('dispose-shm');
    cleanups.push(() => shm.unlink(name));
    let kept: SharedRegion;
    {
      using region = shm.open(name, { create: true, exclusive: true, size: 4096 });
      kept = region;
    }
    assert.equal(kept.closed, true);
    assert.ok(existsSync(`/dev/shm${name}`), 'the object stays');
    {
      using region = shm.anonymous(4096);
      kept = region;
    }
    assert.equal(kept.closed, true);
    const seg = shm.sysv.get('private', { size: 4096 });
    cleanups.push(() => seg.remove());
    {
      using attached = seg;
      attached.attach();
      assert.equal(attached.attached, true);
    }
    assert.equal(seg.attached, false);
    assert.equal(seg.stat().size, 4096, 'the segment stays');
    const path = join(dir, 'mapped');
    {
      using file = mmap.file(path, { create: true, size: 4096, grow: true });
      kept = file;
    }
    assert.equal(kept.closed, true);
    assert.ok(existsSync(path));
  });

  test('semaphores: POSIX named, System V set (its pending op() is cancelled)', T, async () => {
    disposeNamed('dispose-sem', sem);
    const set = sem.sysv.get('private', { count: 1 });
    cleanups.push(() => set.remove());
    let pending: Promise<unknown>;
    {
      using handle = set;
      pending = settled(handle.op([{ index: 0, delta: -1 }]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(await pending, 'ERR_IPCKIT_CLOSED');
    assert.equal(sem.sysv.fromId(set.id).count, 1, 'the set stays');
  });

  test('message queues: POSIX and System V', T, async () => {
    disposeNamed('dispose-mq', mq);
    const sq = mq.sysv.get('private');
    cleanups.push(() => sq.remove());
    let pending: Promise<unknown>;
    {
      using handle = sq;
      pending = settled(handle.receive());
    }
    assert.equal(await pending, 'ERR_IPCKIT_CLOSED');
    assert.equal(mq.sysv.fromId(sq.id).stat().qnum, 0, 'the queue stays');
  });

  test('pipes, FIFO streams, socket pairs, popen', T, async () => {
    let ends: FdStream[];
    {
      const [r, w] = pipe();
      await using a = r;
      await using b = w;
      ends = [a, b];
    }
    assert.ok(ends.every((e) => e.destroyed && e.fd === -1));
    let messageEnds: MessageSocket[];
    {
      const [a, b] = socketpair({ type: 'seqpacket' });
      using x = a;
      using y = b;
      messageEnds = [x, y];
    }
    assert.ok(messageEnds.every((e) => e.closed));
    const path = join(dir, 'fifo');
    fifo.create(path);
    let stream: FdStream;
    {
      await using rw = await fifo.open(path, 'rw');
      stream = rw;
    }
    assert.equal(stream.destroyed, true);
    assert.ok(fifo.isFifo(path), 'the FIFO stays');
    let exited: Promise<unknown>;
    {
      await using child = popen('cat > /dev/null', 'w');
      exited = child.exited;
      child.stream.write('ignored\n');
    }
    assert.deepEqual(await exited, { code: 0, signal: null });
  });

  test('Unix sockets: server, stream, message server and socket; framed channel; pidfd; signal watch', T, async () => {
    const path = join(dir, 'u.sock');
    let server: UnixServer;
    {
      await using s = await unix.listen(path);
      server = s;
      await using conn = await unix.connect(path);
      assert.equal(conn.destroyed, false);
    }
    assert.equal(server.listening, false);
    const mpath = join(dir, 'm.sock');
    let mserver: MessageServer;
    let msock: MessageSocket;
    {
      using s = await unix.listen(mpath, { type: 'seqpacket' });
      mserver = s;
      using c = await unix.connect(mpath, { type: 'seqpacket' });
      msock = c;
    }
    assert.equal(mserver.listening, false);
    assert.equal(msock.closed, true);
    let framed: FramedChannel;
    let sockets: FdStream[];
    {
      const [a, b] = socketpair();
      sockets = [a, b];
      await using f = framing.channel(a);
      framed = f;
      const got = new Promise((resolve) => framing.channel(b).once('message', resolve));
      await f.send('last words');
      assert.equal(String(await got), 'last words');
    }
    assert.ok(sockets[0]!.destroyed, 'the framed stream is closed');
    sockets[1]!.destroy();
    void framed;
    let pidfd: PidFd;
    {
      using p = signals.pidfd(process.pid);
      pidfd = p;
    }
    assert.equal(pidfd.closed, true);
    let next: Promise<IteratorResult<unknown>>;
    {
      using watch = signals.watch('SIGUSR2');
      next = watch.next();
    }
    assert.deepEqual(await next, { value: undefined, done: true });
  });

  test('channels: server, channel, fork() result', T, async () => {
    const url = `unix:${join(dir, 'ch.sock')}`;
    let server: ChannelServer<unknown>;
    let client: Channel<unknown>;
    {
      await using s = await channel.listen(url);
      server = s;
      const accepted = s[Symbol.asyncIterator]().next();
      await using c = await channel.connect(url);
      client = c;
      await using _peer = (await accepted).value as Channel<unknown>;
    }
    assert.equal(client.closed, true);
    assert.equal((await server[Symbol.asyncIterator]().next()).done, true);
    let forked: Channel<unknown>;
    let exited: Promise<unknown>;
    {
      await using f = await channel.fork(join(fixturesDir, 'channel-peer.js'), ['forked'], { fork: { stdio: ['pipe', 'pipe', 'inherit'] } });
      forked = f.channel;
      cleanups.push(() => f.child.kill('SIGKILL'));
      exited = new Promise((resolve) => f.child.once('exit', resolve));
      f.child.stdin!.end(); // the peer exits once its channel and its stdin are done
    }
    assert.equal(forked.closed, true);
    await exited;
  });
});
