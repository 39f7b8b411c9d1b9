// Channels against hostile local peers: forged handshakes, wrong descriptors,
// corrupt rings, held locks, floods, another user. The listener (this
// process) and a good peer next to the attacker must come through every
// attack: bounded CPU and memory, no crash, no file touched that the
// attacker could not touch itself. docs/security.md is the threat model.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { channel, pipe, socketpair, type Channel, type ChannelServer } from 'ipckit';
import { LAYOUT, connectionMemory, controlClient, forgeShm, forgeSysv, hello, rawStream, sharedRingHand, streamHello, type SysvForgery } from './forge.js';
import { fixturesDir, has, otherUserFixtureSkip, startPeer, type Peer } from '../helpers.js';

const T = { timeout: 60_000 };
const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
const servers = new Set<ChannelServer<any>>();
const peers = new Set<Peer>();
after(async () => {
  for (const p of peers) p.child.kill('SIGKILL');
  for (const s of servers) await s.close();
});

async function listen(url: string, options: Record<string, unknown> = {}): Promise<ChannelServer<any>> {
  const server = await channel.listen<any>(url, { codec: 'raw', ...options });
  servers.add(server);
  return server;
}

async function stop(server: ChannelServer<any>): Promise<void> {
  await server.close();
  servers.delete(server);
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Resolves with a promise's outcome, or 'pending' if it has not settled after `ms` (to show that something does NOT happen). */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)))]).finally(() => clearTimeout(timer));
}

/** Counts event-loop turns while `work` runs: a loop stuck in a busy loop makes none. */
async function ticksDuring<T>(work: Promise<T>): Promise<{ value: T; ticks: number; ms: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const start = performance.now();
  try {
    const value = await work;
    return { value, ticks, ms: performance.now() - start };
  } finally {
    clearInterval(timer);
  }
}

function closeOf(ch: Channel<any>): Promise<any> {
  // Not events.once(): it would add an 'error' listener, and reject on the error the close reports.
  return ch.closeInfo ? Promise.resolve(ch.closeInfo) : new Promise((r) => ch.once('close', r));
}

/** A good peer process connected to `server`, answering requests (test/fixtures/channel-peer.ts). */
async function goodPeer(server: ChannelServer<any>, options: Record<string, unknown> = { codec: 'raw' }): Promise<{ ch: Channel<any>; peer: Peer }> {
  const conn = server[Symbol.asyncIterator]().next();
  const peer = startPeer('channel-peer', ['connect', server.url, JSON.stringify(options)]);
  peers.add(peer);
  const [c, ready] = await Promise.all([conn, peer.next<{ ready: boolean }>()]);
  assert.equal(ready.ready, true);
  return { ch: c.value as Channel<any>, peer };
}

async function endPeer(p: { ch: Channel<any>; peer: Peer }): Promise<void> {
  await p.ch.close();
  p.peer.child.stdin!.end();
  await p.peer.exited;
  peers.delete(p.peer);
}

describe('shm: a forged connector cannot hang, crash or steer the listener', () => {
  test('a wrap marker at the head of the ring (and any impossible head) fails that channel at once with ERR_IPCKIT_BAD_FRAME; the loop keeps turning; a good peer is unaffected', T, async () => {
    const server = await listen(`shm:ipckit-test-${tag()}`);
    const good = await goodPeer(server);
    good.peer.send({ op: 'echo' });
    await good.peer.next();
    for (const corrupt of [
      (f: Awaited<ReturnType<typeof forgeShm>>) => {
        f.i32[LAYOUT.data(0, f.R) >> 2] = LAYOUT.WRAP; // a wrap marker at offset 0: no record can ever need one there
        f.publish(8);
      },
      (f: Awaited<ReturnType<typeof forgeShm>>) => f.publish(f.R + 8), // more published than the ring holds
      (f: Awaited<ReturnType<typeof forgeShm>>) => f.publish(12), // not a record boundary
      (f: Awaited<ReturnType<typeof forgeShm>>) => f.publish(-8), // head behind the tail
      (f: Awaited<ReturnType<typeof forgeShm>>) => {
        // A wrap marker that claims more than was published.
        const head = f.place(new Uint8Array(100));
        f.i32[(LAYOUT.data(0, f.R) + head) >> 2] = LAYOUT.WRAP;
        f.publish(head + 8);
      },
      (f: Awaited<ReturnType<typeof forgeShm>>) => f.publish(f.place(new Uint8Array(16), 0)), // zero length
      (f: Awaited<ReturnType<typeof forgeShm>>) => f.publish(f.place(new Uint8Array(16), -7)), // negative length
      (f: Awaited<ReturnType<typeof forgeShm>>) => f.publish(f.place(new Uint8Array(16), 1030)), // beyond the listener's limit
    ]) {
      const conn = server[Symbol.asyncIterator]().next();
      const forged = await forgeShm(server.url.slice(4));
      const ch = (await conn).value as Channel<any>;
      const { value: info, ticks, ms } = await ticksDuring(
        (async () => {
          corrupt(forged);
          return closeOf(ch);
        })(),
      );
      assert.equal(info.reason, 'error');
      assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
      assert.ok(ms < 2000, `took ${ms} ms`);
      assert.ok(ticks >= Math.floor(ms / 5) / 4, `${ticks} timer ticks in ${ms.toFixed(0)} ms`);
      forged.close();
      forged.mem.close();
      // The good channel next to it carries on.
      await good.ch.send(Buffer.from('still here'));
      assert.equal(String((await good.ch.next()).value), 'still here');
    }
    await endPeer(good);
    await stop(server);
  });

  test('impossible ring sizes, wrong or missing descriptors and wrong versions are refused at the handshake (EPROTO answer, an error event), and cost no descriptor', T, async () => {
    const server = await listen(`shm:ipckit-test-${tag()}`);
    const name = server.url.slice(4);
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-sec-'));
    const file = join(dir, 'data');
    writeFileSync(file, 'DATA THAT MUST STAY');
    // What the forger sends: closed again by the forger once the attempt is over.
    const mine: Array<{ close(): void }> = [];
    const memory = (R = 8192, o: { sealed?: boolean } = {}) => {
      const m = connectionMemory(R, o);
      mine.push(m);
      return m.fd;
    };
    const fd = (n: number) => {
      mine.push({ close: () => closeSync(n) });
      return n;
    };
    const [pipeRead, pipeWrite] = pipe();
    mine.push({ close: () => (pipeRead.destroy(), pipeWrite.destroy()) });
    const [sockA, sockB] = socketpair();
    mine.push({ close: () => (sockA.destroy(), sockB.destroy()) });
    const attempt = async (message: unknown, fds: number[]) => {
      const c = await controlClient('shm', name, message, fds);
      c.close();
      return c.reply;
    };
    const cases: Array<[string, () => Promise<Record<string, any>>]> = [
      ['ring size 0', () => attempt(hello('shm', { ring: 0, shared: true }), [memory()])],
      ['ring size not a power of two', () => attempt(hello('shm', { ring: 12288, shared: true }), [memory(12288)])],
      ['ring size negative', () => attempt(hello('shm', { ring: -4096, shared: true }), [memory()])],
      ['ring size 2 GiB', () => attempt(hello('shm', { ring: 2 ** 31, shared: true }), [memory()])],
      ['memory of the wrong size', () => attempt(hello('shm', { ring: 16384, shared: true }), [memory()])],
      ['an unsealed memfd', () => attempt(hello('shm', { ring: 8192, shared: true }), [memory(8192, { sealed: false })])],
      ['a regular file', () => attempt(hello('shm', { ring: 8192, shared: true }), [fd(openSync(file, 'r+'))])],
      ['an O_PATH descriptor', () => attempt(hello('shm', { ring: 8192, shared: true }), [fd(openSync(file, 0o10000000))])],
      ['a pipe', () => attempt(hello('shm', { ring: 8192, shared: true }), [pipeRead.fd])],
      ['a socket', () => attempt(hello('shm', { ring: 8192, shared: true }), [sockA.fd])],
      ['no descriptor', () => attempt(hello('shm', { ring: 8192, shared: true }), [])],
      ['two descriptors', () => attempt(hello('shm', { ring: 8192, shared: true }), [memory(), memory()])],
      ['protocol version 1', () => attempt({ v: 1, pid: process.pid, memfd: 3, bell: 4 }, [])],
      ['another codec', () => attempt(hello('shm', { codec: 'json', ring: 8192, shared: true }), [memory()])],
      ['a maxMessageSize of 0', () => attempt(hello('shm', { max: 0, ring: 8192, shared: true }), [memory()])],
      ['not JSON', () => attempt(Buffer.from('\x05\x00\x00\x00{{{{{'), [])],
    ];
    for (const [what, attempt] of cases) {
      const reply: Record<string, any> = await attempt().catch((e: Error) => ({ hungUp: e.message }));
      assert.ok(reply.error === 'EPROTO' || reply.hungUp, `${what}: ${JSON.stringify(reply)}`);
    }
    assert.ok(errors.length >= cases.length - 1, `${errors.length} error events`);
    assert.ok(errors.every((e) => (e as { code?: string }).code === 'ERR_IPCKIT_HANDSHAKE'));
    assert.equal(readFileSync(file, 'utf8'), 'DATA THAT MUST STAY');
    // Still serving: a real connector gets through.
    const conn = server[Symbol.asyncIterator]().next();
    const client = await channel.connect<any>(server.url, { codec: 'raw' });
    const ch = (await conn).value as Channel<any>;
    await client.send(Buffer.from('ok'));
    assert.equal(String((await ch.next()).value), 'ok');
    await client.close();
    await ch.close();
    for (const m of mine) m.close();
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  });

  test('200 failed handshakes leave no descriptor behind in the listener', T, async () => {
    const server = await listen(`shm:ipckit-test-${tag()}`);
    const name = server.url.slice(4);
    server.on('error', () => {});
    // Warm up once (lazy module state, watchers).
    await controlClient('shm', name, hello('shm', { ring: 0 }), []).then((c) => c.close(), () => {});
    const mem = connectionMemory(8192, { sealed: false });
    const before = openFds();
    for (let i = 0; i < 200; i++) {
      const c = await controlClient('shm', name, hello('shm', { ring: 8192, shared: true }), [mem.fd]);
      assert.equal(c.reply.error, 'EPROTO');
      c.close();
    }
    // The clients' sockets close at once; the listener closed each memfd it got.
    await new Promise((r) => setImmediate(r));
    const after = openFds();
    assert.ok(after - before <= 2, `${after - before} descriptors more than before 200 failed handshakes`);
    mem.close();
    await stop(server);
  });

  test('the memory is sealed: a connector cannot truncate it after the handshake (no SIGBUS in the listener); the shared ring cannot be resized by any connector either', T, async () => {
    for (const sharedRing of [false, true]) {
      const server = await listen(`shm:ipckit-test-${tag()}`, { sharedRing });
      const conn = server[Symbol.asyncIterator]().next();
      const forged = await forgeShm(server.url.slice(4));
      const ch = (await conn).value as Channel<any>;
      assert.throws(() => ftruncateSync(forged.mem.fd, 0), { code: 'EPERM' });
      assert.throws(() => ftruncateSync(forged.mem.fd, 1 << 20), { code: 'EPERM' });
      if (sharedRing) assert.throws(() => ftruncateSync(forged.fds[0]!, 0), { code: 'EPERM' });
      const hand = sharedRing ? sharedRingHand(forged) : null;
      // The listener still reads what the connector writes.
      if (hand) hand.publish(hand.place(Buffer.from('\0intact')));
      else forged.publish(forged.place(Buffer.from('\0intact')));
      assert.equal(String((await ch.next()).value), 'intact');
      hand?.close();
      forged.close();
      forged.mem.close();
      await closeOf(ch);
      await stop(server);
    }
  });

  test("the listener's maxMessageSize holds whatever the connector announces: the connector sends at most it, and a bigger record is ERR_IPCKIT_BAD_FRAME", T, async () => {
    const server = await listen(`shm:ipckit-test-${tag()}`, { maxMessageSize: 1024 });
    const conn = server[Symbol.asyncIterator]().next();
    const client = await channel.connect<any>(server.url, { codec: 'raw', maxMessageSize: 1 << 20 });
    const ch = (await conn).value as Channel<any>;
    assert.equal(client.maxMessageSize, 1024);
    assert.equal(ch.maxMessageSize, 1024);
    await assert.rejects(client.send(Buffer.alloc(1025)), { code: 'ERR_IPCKIT_MESSAGE_TOO_LARGE' });
    await client.send(Buffer.alloc(1024, 1));
    assert.equal(((await ch.next()).value as Buffer).length, 1024);
    await client.close();
    await ch.close();
    // A forged connector that announces 1 MiB and writes 2000 bytes.
    const conn2 = server[Symbol.asyncIterator]().next();
    const forged = await forgeShm(server.url.slice(4), { R: 1 << 16, helloExtra: { max: 1 << 20 } });
    const victim = (await conn2).value as Channel<any>;
    forged.publish(forged.place(new Uint8Array(2000)));
    const info = await closeOf(victim);
    assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
    forged.close();
    forged.mem.close();
    await stop(server);
  });

  test('a wrap marker at the head of the shared ring fails the channels through it (ERR_IPCKIT_BAD_FRAME) after bounded work; a newcomer gets a fresh ring', T, async () => {
    const server = await listen(`shm:ipckit-test-${tag()}`, { sharedRing: true });
    const conn = server[Symbol.asyncIterator]().next();
    const forged = await forgeShm(server.url.slice(4));
    const victim = (await conn).value as Channel<any>;
    const hand = sharedRingHand(forged);
    hand.i32[4096 >> 2] = LAYOUT.WRAP;
    const { value: info, ms } = await ticksDuring(
      (async () => {
        hand.publish(8);
        return closeOf(victim);
      })(),
    );
    assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
    assert.ok(ms < 2000);
    const conn2 = server[Symbol.asyncIterator]().next();
    const client = await channel.connect<any>(server.url, { codec: 'raw' });
    const fresh = (await conn2).value as Channel<any>;
    await client.send(Buffer.from('fresh'));
    assert.equal(String((await fresh.next()).value), 'fresh');
    await client.close();
    await fresh.close();
    hand.close();
    forged.close();
    forged.mem.close();
    await stop(server);
  });

  test("a connector that takes the shared ring's lock and keeps it loses its channel after the stall bound (ERR_IPCKIT_PROTOCOL); the other writers carry on", T, async () => {
    const server = await listen(`shm:ipckit-test-${tag()}`, { sharedRing: true });
    const good = await goodPeer(server);
    const conn = server[Symbol.asyncIterator]().next();
    const forged = await forgeShm(server.url.slice(4));
    const victim = (await conn).value as Channel<any>;
    const hand = sharedRingHand(forged);
    assert.equal(Atomics.compareExchange(hand.i32, LAYOUT.S_LOCK, 0, hand.slot), 0);
    good.peer.send({ op: 'emit', count: 1000, size: 8 });
    const started = performance.now();
    const info = await closeOf(victim);
    assert.equal(info.reason, 'error');
    assert.equal(info.error.code, 'ERR_IPCKIT_PROTOCOL');
    assert.match(info.error.message, /lock/);
    assert.ok(performance.now() - started < 5000);
    let n = 0;
    for await (const m of good.ch) {
      assert.equal((m as Buffer).readUInt32LE(0), n);
      if (++n === 1000) break;
    }
    assert.deepEqual(await good.peer.next(), { op: 'emit', sent: 1000 });
    hand.close();
    forged.close();
    forged.mem.close();
    await endPeer(good);
    await stop(server);
  });
});

describe('stream transports against hostile input', () => {
  test('unix: listen never removes a file that is not a socket (EADDRINUSE, content intact), and makes its socket 0600 whatever the umask', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-sec-'));
    const path = join(dir, 'not-a-socket');
    writeFileSync(path, 'precious');
    await assert.rejects(channel.listen(`unix:${path}`), { code: 'EADDRINUSE' });
    assert.equal(readFileSync(path, 'utf8'), 'precious');
    const sockPath = join(dir, 'chan.sock');
    const old = process.umask(0);
    try {
      const server = await listen(`unix:${sockPath}`);
      assert.equal(statSync(sockPath).mode & 0o777, 0o600);
      await stop(server);
      const seq = await listen(`unix-seqpacket:${sockPath}`);
      assert.equal(statSync(sockPath).mode & 0o777, 0o600);
      await stop(seq);
    } finally {
      process.umask(old);
    }
    assert.ok(!existsSync(sockPath));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a peer that sends requests and never reads the answers stops being read: the listener holds a bounded number of answers', T, async () => {
    for (const t of ['unix', 'tcp'] as const) {
      const url = t === 'unix' ? `unix:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}` : 'tcp://127.0.0.1:0';
      const server = await listen(url, { highWaterMark: 64 });
      let calls = 0;
      server.on('connection', (ch: Channel<any>) => ch.onRequest(() => (calls++, Buffer.alloc(65536, 7))));
      const sock = await rawStream(server.url);
      sock.on('error', () => {});
      sock.write(streamHello(hello(t, { max: 1 << 24 })));
      sock.pause(); // never reads a byte of the answers
      const request = (id: number) => {
        const b = Buffer.alloc(4 + 5 + 16);
        b.writeUInt32LE(5 + 16, 0);
        b[4] = 1;
        b.writeUInt32LE(id, 5);
        return b;
      };
      const rssBefore = process.memoryUsage().rss;
      let id = 0;
      // Write until the kernel stops taking requests for a while: the listener no longer reads them.
      for (let round = 0; round < 10_000; round++) {
        let ok = true;
        for (let k = 0; k < 256 && ok; k++) ok = sock.write(request(id++));
        if (!ok && (await settledWithin(once(sock, 'drain'), 300)) === 'pending') break;
      }
      const grew = process.memoryUsage().rss - rssBefore;
      assert.ok(calls < 1000, `${calls} requests answered for a peer that reads nothing (sent ${id})`);
      assert.ok(grew < 128 * 1024 * 1024, `listener grew by ${(grew / 1048576).toFixed(0)} MiB`);
      sock.destroy();
      await stop(server);
    }
  });

  test('garbage instead of a hello, a hello too long, a length of 0x7fffffff, a half frame then silence: each costs only its own connection; 500 slow half-hello connections do not keep a good peer waiting', T, async () => {
    const path = join(tmpdir(), `ipckit-test-${tag()}.sock`);
    const server = await listen(`unix:${path}`);
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    const hangUp = (s: Awaited<ReturnType<typeof rawStream>>) => new Promise<void>((r) => s.once('close', () => r()));
    // Garbage first: cut, with an error event.
    const g = await rawStream(server.url);
    g.on('error', () => {});
    g.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await hangUp(g);
    // A hello announcing more than a hello may be.
    const long = await rawStream(server.url);
    long.on('error', () => {});
    const lb = Buffer.alloc(8);
    lb.writeUInt32LE(0x7fffffff, 0);
    long.write(lb);
    await hangUp(long);
    assert.ok(errors.length >= 2 && errors.every((e) => (e as { code?: string }).code === 'ERR_IPCKIT_HANDSHAKE'));
    // After a good hello: a frame length of 0x7fffffff fails the channel (nothing allocated for it).
    const conn = server[Symbol.asyncIterator]().next();
    const big = await rawStream(server.url);
    big.on('error', () => {});
    big.on('data', () => {});
    big.write(streamHello(hello('unix')));
    const ch = (await conn).value as Channel<any>;
    big.write(lb);
    const info = await closeOf(ch);
    assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
    big.destroy();
    // After a good hello: half a frame, then the peer hangs up: peer-lost, nothing delivered.
    const conn3 = server[Symbol.asyncIterator]().next();
    const half = await rawStream(server.url);
    half.on('error', () => {});
    half.on('data', () => {});
    half.write(streamHello(hello('unix')));
    const cut = (await conn3).value as Channel<any>;
    const frame = Buffer.alloc(4 + 100);
    frame.writeUInt32LE(100, 0);
    half.end(frame.subarray(0, 50));
    assert.equal((await closeOf(cut)).reason, 'peer-lost');
    assert.deepEqual(await cut.next(), { value: undefined, done: true });
    // 500 connections that send half a hello and stall.
    const rssBefore = process.memoryUsage().rss;
    const slow = await Promise.all(
      Array.from({ length: 500 }, async () => {
        const s = await rawStream(server.url);
        s.on('error', () => {});
        s.write(streamHello(hello('unix')).subarray(0, 7));
        return s;
      }),
    );
    const started = performance.now();
    const conn2 = server[Symbol.asyncIterator]().next();
    const client = await channel.connect<any>(server.url, { codec: 'raw' });
    const served = (await conn2).value as Channel<any>;
    await client.send(Buffer.from('first'));
    assert.equal(String((await served.next()).value), 'first');
    assert.ok(performance.now() - started < 2000, `a good peer waited ${performance.now() - started} ms`);
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024);
    for (const s of slow) s.destroy();
    await client.close();
    await served.close();
    await stop(server);
  });

  test('2,000 connects at once to a unix: listener all succeed (a full backlog is retried, never EAGAIN)', T, async () => {
    const server = await listen(`unix:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`);
    const accepted: Channel<any>[] = [];
    server.on('connection', (ch: Channel<any>) => accepted.push(ch));
    const results = await Promise.allSettled(Array.from({ length: 2000 }, () => channel.connect<any>(server.url, { codec: 'raw', timeout: 30_000 })));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(failed.length, 0, failed.slice(0, 3).map((r) => String(r.reason)).join('; '));
    for (const r of results) if (r.status === 'fulfilled') await r.value.close();
    for (const ch of accepted) await ch.close();
    await stop(server);
  });
});

// Another user: created for the test (and removed after) when this process is root.
const OTHER = 'ipckit-test-peer';
let other: { uid: number; gid: number; created: boolean } | null = null;
const otherSkip = process.getuid?.() !== 0 ? 'needs root (to run a peer as another user with setpriv)' : !has('setpriv') || !has('useradd') ? 'needs setpriv and useradd (util-linux, passwd)' : (otherUserFixtureSkip ?? false);

function otherUser(): { uid: number; gid: number } {
  if (!other) throw new Error('no other user');
  return other;
}

/** The hostile-peer fixture as the other user. */
function asOther(args: string[]): Peer {
  const { uid, gid } = otherUser();
  const p = startPeer('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, join(fixturesDir, 'hostile-peer.js'), ...args]);
  peers.add(p);
  return p;
}

async function endOther(p: Peer): Promise<void> {
  p.child.stdin!.end();
  await p.exited;
  peers.delete(p);
}

const LOCAL_URLS: Array<[string, () => string, Record<string, unknown>]> = [
  ['shm', () => `shm:ipckit-test-${tag()}`, {}],
  ['shm with a shared ring', () => `shm:ipckit-test-${tag()}`, { sharedRing: true }],
  ['mq', () => `mq:/ipckit-test-${tag()}`, {}],
  ['sysvmq', () => `sysvmq:ipckit-test-${tag()}`, {}],
  ['unix', () => `unix:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`, {}],
  ['unix-abstract', () => `unix-abstract:ipckit-test-${tag()}`, {}],
  ['unix-seqpacket', () => `unix-seqpacket:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`, {}],
  ['unix-seqpacket-abstract', () => `unix-seqpacket-abstract:ipckit-test-${tag()}`, {}],
];

describe('queue transports against a peer that removes its queues', () => {
  test('sysvmq: a connector that removes its two queues and stays connected loses its channel (ERR_IPCKIT_PEER_LOST) after a grace period; the event loop keeps turning meanwhile', T, async () => {
    const server = await channel.listen(`sysvmq:ipckit-test-${tag()}`, { codec: 'raw' });
    let forged: SysvForgery | undefined;
    try {
      forged = await forgeSysv(server);
      const { up, down, client, ch } = forged;
      const closed = new Promise<any>((r) => ch.once('close', r));
      up.remove();
      down.remove();
      // Timers still fire while the channel has nothing left to read.
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const info = await closed;
      clearInterval(ticker);
      assert.equal(info.reason, 'error');
      assert.equal(info.error.code, 'ERR_IPCKIT_PEER_LOST');
      assert.ok(ticks > 20, `the event loop turned only ${ticks} times while the channel waited`);
      client.close();
    } finally {
      forged?.cleanup();
      await server.close();
    }
  });
});

describe('another user at the other end', { skip: otherSkip }, () => {
  before(() => {
    if (otherSkip) return;
    let created = false;
    if (spawnSync('id', ['-u', OTHER]).status !== 0) {
      const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OTHER]);
      assert.equal(r.status, 0, String(r.stderr));
      created = true;
    }
    const uid = Number(spawnSync('id', ['-u', OTHER], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', OTHER], { encoding: 'utf8' }).stdout.trim());
    other = { uid, gid, created };
  });
  after(() => {
    if (other?.created) spawnSync('userdel', [OTHER]);
  });

  for (const [name, url, extra] of LOCAL_URLS) {
    test(`${name}: refused by default (EACCES to the connector, 'refused' with its credentials to the listener); served when allowUids names it, with ch.peer telling who`, T, async () => {
      const { uid } = otherUser();
      const server = await listen(url(), { codec: 'json', ...extra });
      const refused = once(server, 'refused');
      const p1 = asOther(['connect', server.url, JSON.stringify({ codec: 'json' })]);
      const r1 = await p1.next<any>();
      assert.equal(r1.error, 'EACCES', JSON.stringify(r1));
      // A socket file of mode 0600 already stops another user at connect(2); elsewhere the listener refuses.
      if (!/^unix(-seqpacket)?:/.test(server.url)) {
        const [cred] = await refused;
        assert.equal(cred.uid, uid);
      }
      await endOther(p1);
      await stop(server);

      const open = await listen(url(), { codec: 'json', ...extra, allowUids: [uid] });
      open.on('connection', (ch: Channel<any>) => ch.onRequest((m) => ({ re: m, peerUid: ch.peer?.uid })));
      const p2 = asOther(['connect', open.url, JSON.stringify({ codec: 'json' })]);
      const r2 = await p2.next<any>();
      assert.equal(r2.ok, true, JSON.stringify(r2));
      assert.equal(r2.peer.uid, 0);
      const r3 = await p2.next<any>();
      assert.deepEqual(r3.reply, { re: { n: 1 }, peerUid: uid }, JSON.stringify(r3));
      assert.deepEqual(await p2.next<any>(), { closed: true });
      await endOther(p2);
      await stop(open);
    });
  }

  test('the connecting side refuses a listener run by a user it does not trust (EACCES), and talks to it when allowUids names it', T, async () => {
    const { uid } = otherUser();
    for (const [, url] of LOCAL_URLS) {
      const p = asOther(['listen', url(), JSON.stringify({ codec: 'json', allowUids: 'any' })]);
      const { listening } = await p.next<any>();
      await assert.rejects(channel.connect(listening, { codec: 'json' }), { name: 'IpcError', code: 'EACCES' });
      const ch = await channel.connect<any>(listening, { codec: 'json', allowUids: [uid] });
      assert.equal(ch.peer?.uid, uid);
      assert.deepEqual(await ch.request('hi'), { re: 'hi', uid });
      await ch.close();
      await endOther(p);
    }
  });

  test('fifo: the FIFO is 0600 (another user cannot open it) unless allowUids is "any"; a writer refuses a FIFO another user owns', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-sec-'));
    chmodSync(dir, 0o755);
    const path = join(dir, 'in.fifo');
    const server = await listen(`fifo:${path}`, { codec: 'json' });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const p = asOther(['connect', `fifo:${path}`, JSON.stringify({ codec: 'json', timeout: 2000 })]);
    assert.equal((await p.next<any>()).error, 'EACCES');
    await endOther(p);
    await stop(server);
    const open = await listen(`fifo:${path}`, { codec: 'json', allowUids: 'any' });
    assert.equal(statSync(path).mode & 0o777, 0o622);
    await stop(open);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a root listener faced with an unprivileged forger: an O_PATH descriptor of a root-only file, a file, or memory truncated after the handshake changes nothing and crashes nothing', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-sec-'));
    chmodSync(dir, 0o711);
    const secret = join(dir, 'root-only');
    writeFileSync(secret, 'ROOT ONLY: nobody else may change this line', { mode: 0o600 });
    const server = await listen(`shm:ipckit-test-${tag()}`, { allowUids: 'any' });
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    const good = await goodPeer(server);
    for (const kind of ['opath', 'file', 'unsealed']) {
      const p = asOther(['forge-shm', server.url.slice(4), kind, secret]);
      const r = await p.next<any>();
      assert.ok(r.reply?.error === 'EPROTO' || r.failed, `${kind}: ${JSON.stringify(r)}`);
      await endOther(p);
    }
    assert.equal(readFileSync(secret, 'utf8'), 'ROOT ONLY: nobody else may change this line');
    await good.ch.send(Buffer.from('alive'));
    good.peer.send({ op: 'echo' });
    await good.peer.next();
    await endPeer(good);
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a root connector faced with an unprivileged user squatting the name: refused by default; allowed, the O_PATH "shared ring" it is handed is refused and nothing is written', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-sec-'));
    chmodSync(dir, 0o711);
    const secret = join(dir, 'root-only');
    writeFileSync(secret, 'ROOT ONLY: nobody else may change this line', { mode: 0o600 });
    const name = `ipckit-test-${tag()}`;
    const p = asOther(['squat-shm', name, secret]);
    assert.equal((await p.next<any>()).listening, true);
    await assert.rejects(channel.connect(`shm:${name}`, { codec: 'json' }), { name: 'IpcError', code: 'EACCES' });
    await assert.rejects(channel.connect(`shm:${name}`, { codec: 'json', allowUids: 'any' }), { code: 'ERR_IPCKIT_HANDSHAKE', message: /not a memfd/ });
    assert.equal(readFileSync(secret, 'utf8'), 'ROOT ONLY: nobody else may change this line');
    await endOther(p);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('options', () => {
  test('unknown option names are TypeErrors (ERR_IPCKIT_UNKNOWN_OPTION) naming the nearest option; allowUids is checked; tcp: and pipe: have no credentials to check', T, async () => {
    await assert.rejects(channel.listen(`shm:ipckit-test-${tag()}`, { allowUid: [1000] } as any), { name: 'TypeError', code: 'ERR_IPCKIT_UNKNOWN_OPTION', message: /allowUids/ });
    await assert.rejects(channel.connect(`shm:ipckit-test-${tag()}`, { timout: 5 } as any), { name: 'TypeError', code: 'ERR_IPCKIT_UNKNOWN_OPTION', message: /timeout/ });
    await assert.rejects(channel.listen(`shm:ipckit-test-${tag()}`, { allowUids: ['root'] } as any), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(channel.listen('tcp://127.0.0.1:0', { allowUids: [1] }), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.fork('x.js', [], { transprt: 'pipe' } as any), { code: 'ERR_IPCKIT_UNKNOWN_OPTION' });
    await assert.rejects(channel.parent({ codc: 'raw' } as any), { code: 'ERR_IPCKIT_UNKNOWN_OPTION' });
  });

  test('a codec or protocol mismatch is a clear ERR_IPCKIT_HANDSHAKE at connect on every transport', T, async () => {
    for (const url of [`shm:ipckit-test-${tag()}`, `mq:/ipckit-test-${tag()}`, `sysvmq:ipckit-test-${tag()}`, `unix:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`, 'tcp://127.0.0.1:0', `unix-seqpacket:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`]) {
      const server = await listen(url, { codec: 'json' });
      server.on('error', () => {});
      await assert.rejects(channel.connect(server.url, { codec: 'msgpack' }), { code: 'ERR_IPCKIT_HANDSHAKE', message: /codec mismatch/ });
      await stop(server);
    }
    const tcp = await listen('tcp://127.0.0.1:0', { codec: 'json' });
    tcp.on('error', () => {});
    const s = await rawStream(tcp.url);
    let answer = Buffer.alloc(0);
    s.on('data', (d) => (answer = Buffer.concat([answer, d])));
    s.write(streamHello({ ipckit: 1, transport: 'tcp', codec: 'json', max: 10 }));
    await once(s, 'close');
    assert.match(answer.toString(), /protocol/);
    await stop(tcp);
  });
});

