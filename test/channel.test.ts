// Channels: the same behaviour over every transport, between real processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { channel, mq, shm, unix, type Channel, type ChannelOptions, type ChannelServer } from 'ipckit';
import { fixturesDir, run, startPeer } from './helpers.js';
import { controlClient, forgeShm, hello, rawStream, sharedRingHand, streamHello } from './forge.js';
// Protocol-level tests forge a hostile shm: peer with the addon's doorbell pipe.
import { native } from '../dist/native.js';

const T = { timeout: 60_000 };
// 'shm-nospin' is shm: with spin:false, so both wait paths (spin then
// doorbell, and the doorbell alone) are covered; 'shm-shared' is shm: with a
// listener whose connectors all write into one shared ring (sharedRing).
// fifo: is one-way: here the test process listens (reads) and the peer writes;
// tests that need the other direction skip it and say so, and the fifo:
// describe block below covers the writing end.
const TRANSPORTS = ['shm', 'shm-nospin', 'shm-shared', 'unix', 'unix-abstract', 'tcp', 'pipe', 'mq', 'sysvmq', 'unix-seqpacket', 'fifo'] as const;
type Transport = (typeof TRANSPORTS)[number];

const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
function urlFor(t: Exclude<Transport, 'pipe'>): string {
  switch (t) {
    case 'shm':
    case 'shm-nospin':
    case 'shm-shared':
      return `shm:ipckit-test-${tag()}`;
    case 'unix':
      return `unix:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`;
    case 'unix-abstract':
      return `unix-abstract:ipckit-test-${tag()}`;
    case 'tcp':
      return 'tcp://127.0.0.1:0';
    case 'mq':
      return `mq:/ipckit-test-${tag()}`;
    case 'sysvmq':
      return `sysvmq:ipckit-test-${tag()}`;
    case 'unix-seqpacket':
      return `unix-seqpacket:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`;
    case 'fifo':
      return `fifo:${join(tmpdir(), `ipckit-test-${tag()}.fifo`)}`;
  }
}

interface Control {
  child: ChildProcess;
  next<T = any>(): Promise<T>;
  send(cmd: unknown): void;
  exited: Promise<unknown>;
}

function control(child: ChildProcess): Control {
  const queue: unknown[] = [];
  const waiting: Array<(v: unknown) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const v = JSON.parse(line);
    const w = waiting.shift();
    if (w) w(v);
    else queue.push(v);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    exited,
    next: () => (queue.length ? Promise.resolve(queue.shift() as any) : new Promise((r) => waiting.push(r as (v: unknown) => void))),
    send: (cmd) => child.stdin!.write(`${JSON.stringify(cmd)}\n`),
  };
}

/** Options a listener of transport `t` needs besides the test's own. */
const listenExtras = (t: Transport): ChannelOptions<any> & { sharedRing?: boolean } => (t === 'shm-shared' ? { sharedRing: true } : {});

const live = new Set<ChildProcess>();
const servers = new Set<ChannelServer<any>>();
after(async () => {
  for (const c of live) c.kill('SIGKILL');
  for (const s of servers) await s.close();
});

interface Pair {
  ch: Channel<any>;
  peer: Control;
  server: ChannelServer<any> | null;
  url: string;
  done(): Promise<void>;
}

/** This process's end of a channel to a fresh peer process over transport `t`. */
async function pair(t: Transport, options: ChannelOptions<any> = {}): Promise<Pair> {
  if (t === 'shm-nospin') options = { ...options, spin: false };
  if (t === 'pipe') {
    const { child, channel: ch } = await channel.fork(join(fixturesDir, 'channel-peer.js'), ['forked', '', JSON.stringify(options)], {
      ...options,
      transport: 'pipe',
      fork: { stdio: ['pipe', 'pipe', 'inherit'] },
    });
    live.add(child);
    const peer = control(child);
    assert.equal((await peer.next()).ready, true);
    return { ch, peer, server: null, url: 'pipe:', done: () => finish(ch, peer, null) };
  }
  const server = await channel.listen<any>(urlFor(t), { ...options, ...listenExtras(t) });
  servers.add(server);
  const peerProc = startPeer('channel-peer', ['connect', server.url, JSON.stringify(options)]);
  live.add(peerProc.child);
  const peer = control(peerProc.child);
  const it = server[Symbol.asyncIterator]();
  const [conn, hello] = await Promise.all([it.next(), peer.next()]);
  assert.equal(hello.ready, true);
  return { ch: conn.value as Channel<any>, peer, server, url: server.url, done: () => finish(conn.value, peer, server) };
}

async function finish(ch: Channel<any>, peer: Control, server: ChannelServer<any> | null): Promise<void> {
  await ch.close();
  peer.child.stdin!.end();
  await peer.exited;
  live.delete(peer.child);
  if (server) {
    await server.close();
    servers.delete(server);
  }
}

function seq(i: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32LE(i, 0);
  b.writeUInt32LE(~i >>> 0, 4);
  return b;
}

/** Resolves with a promise's outcome, or 'pending' if it has not settled after `ms` (detects a stall, not a wait for a peer). */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)))]).finally(() => clearTimeout(timer));
}

const ONE_WAY = 'fifo: is one-way (the test process is the reader here); this test needs both directions';

for (const t of TRANSPORTS) {
  const twoWay = t === 'fifo' ? { ...T, skip: ONE_WAY } : T;
  describe(`channel over ${t}`, () => {
    test('1,000,000 messages each way: in order, none lost, none duplicated', T, async () => {
      const N = 1_000_000;
      const { ch, peer, done } = await pair(t, { codec: 'raw' });
      // fifo: one way only: the peer writes, we read (the writing end's own test is below).
      if (t !== 'fifo') {
        peer.send({ op: 'expect', count: N });
        let last: Promise<void> = Promise.resolve();
        for (let i = 0; i < N; i++) {
          last = ch.send(seq(i));
          if ((i & 4095) === 4095) await last;
        }
        await last;
        assert.deepEqual(await peer.next(), { op: 'expect', received: N, firstError: null });
      }

      peer.send({ op: 'emit', count: N, size: 8 });
      let i = 0;
      for await (const m of ch) {
        const n = (m as Buffer).readUInt32LE(0);
        if (n !== i) assert.fail(`message ${i} arrived as ${n}`);
        if (++i === N) break;
      }
      assert.deepEqual(await peer.next(), { op: 'emit', sent: N });
      // Nothing after the last one: a duplicate would show up here first.
      peer.send({ op: 'close' });
      assert.deepEqual(await ch.next(), { value: undefined, done: true });
      assert.equal(ch.closeInfo?.reason, 'peer-closed');
      await done();
    });

    test('sendBatch / receiveBatch: 200,000 messages each way in order; batches bounded by max; a bad message sends nothing', T, async () => {
      const N = 200_000;
      const { ch, peer, done } = await pair(t, { codec: 'raw' });
      if (t !== 'fifo') {
        peer.send({ op: 'expect-batch', count: N, max: 500 });
        for (let i = 0; i < N; i += 1000) await ch.sendBatch(Array.from({ length: 1000 }, (_, k) => seq(i + k)));
        const got = await peer.next();
        assert.deepEqual({ ...got, batches: undefined }, { op: 'expect-batch', received: N, firstError: null, batches: undefined });
        assert.ok(got.batches >= N / 500 && got.batches < N, `${got.batches} batches`);
        // Validation comes first: one message the codec refuses, and none of the batch goes out.
        await assert.rejects(ch.sendBatch([seq(1), 'not bytes' as unknown as Buffer]), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
        await assert.rejects(ch.sendBatch([seq(2), Buffer.alloc(ch.maxMessageSize + 1)]), { code: 'ERR_IPCKIT_MESSAGE_TOO_LARGE' });
        assert.throws(() => ch.sendBatch(seq(3) as unknown as Buffer[]), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
        await ch.sendBatch([]);
        peer.send({ op: 'expect-batch', count: 1, from: 777 });
        await ch.sendBatch([seq(777)]);
        assert.deepEqual(await peer.next(), { op: 'expect-batch', received: 1, firstError: null, batches: 1 });
      } else {
        await assert.rejects(ch.sendBatch([seq(1)]), { code: 'ERR_IPCKIT_READ_ONLY' });
      }
      assert.throws(() => ch.receiveBatch(0), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
      assert.throws(() => ch.receiveBatch(1.5), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });

      peer.send({ op: 'emit-batch', count: N, batch: 700 });
      let i = 0;
      while (i < N) {
        const batch = await ch.receiveBatch(N - i);
        assert.ok(batch.length > 0);
        for (const m of batch) {
          const n = (m as Buffer).readUInt32LE(0);
          if (n !== i) assert.fail(`message ${i} arrived as ${n}`);
          i++;
        }
      }
      assert.deepEqual(await peer.next(), { op: 'emit-batch', sent: N });
      peer.send({ op: 'close' });
      assert.deepEqual(await ch.receiveBatch(), []);
      assert.equal(ch.closeInfo?.reason, 'peer-closed');
      await done();
    });

    test('request-reply: 2000 concurrent requests each get their own answer; errors and timeouts', twoWay, async () => {
      const { ch, peer, done } = await pair(t, { codec: 'json' });
      const answers = await Promise.all(Array.from({ length: 2000 }, (_, n) => ch.request({ n })));
      answers.forEach((a: any, n) => assert.deepEqual(a, { re: n, pid: peer.child.pid }));
      await assert.rejects(ch.request({ fail: 'no such job' }), (e: any) => e.code === 'ERR_IPCKIT_REMOTE' && /no such job/.test(e.message) && e.remoteCode === 'E_TEST');
      await assert.rejects(ch.request({ hang: true }, { timeout: 50 }), { code: 'ERR_IPCKIT_TIMEOUT' });
      // Plain messages and requests share the channel without mixing.
      peer.send({ op: 'echo' });
      await peer.next();
      const [echo, reply] = await Promise.all([(await ch.send({ plain: 1 }), ch.next()), ch.request({ n: 7 })]);
      assert.deepEqual(echo.value, { plain: 1 });
      assert.deepEqual(reply, { re: 7, pid: peer.child.pid });
      await done();
    });

    test('backpressure: a consumer that stops reading stalls send() at a bounded number of bytes', twoWay, async () => {
      const size = 4096;
      const { ch, peer, done } = await pair(t, { codec: 'raw', highWaterMark: 64 });
      // The peer does not read. Keep sending until a send() stays pending.
      const limit = 16384; // 64 MiB if nothing pushed back
      let accepted = 0;
      let stalled: Promise<void> | null = null;
      for (; accepted < limit; accepted++) {
        const p = ch.send(seq(accepted).length ? Buffer.alloc(size, accepted & 0xff) : Buffer.alloc(0));
        if ((await settledWithin(p, 300)) === 'pending') {
          stalled = p;
          break;
        }
      }
      assert.ok(stalled, `all ${limit} sends of ${size} bytes were accepted with nobody reading`);
      // Ring/socket buffers plus the peer's 64-message inbox: well under 32 MiB.
      assert.ok(accepted * size < 32 * 1024 * 1024, `${accepted} messages (${(accepted * size) >> 20} MiB) in flight`);
      peer.send({ op: 'expect', count: accepted + 1 });
      await stalled;
      const r = await peer.next();
      assert.equal(r.received, accepted + 1);
      await done();
    });

    test('peer killed with SIGKILL: close with reason peer-lost within 1 s, and a new peer can connect', T, async (tt) => {
      const { ch, peer, server, done } = await pair(t, { codec: 'json' });
      const closed = new Promise<any>((resolve) => ch.once('close', resolve));
      // fifo: (we read, the peer writes) has no requests and no sends on this end.
      const pending = t === 'fifo' ? null : ch.request({ hang: true });
      const start = performance.now();
      peer.child.kill('SIGKILL');
      const info = await closed;
      const ms = performance.now() - start;
      assert.equal(info.reason, 'peer-lost');
      assert.ok(ms < 1000, `close after ${ms.toFixed(0)} ms`);
      if (pending) await assert.rejects(pending, { code: 'ERR_IPCKIT_PEER_LOST' });
      if (t !== 'fifo') await assert.rejects(ch.send(1), { code: 'ERR_IPCKIT_PEER_LOST' });
      await done();
      if (!server) return tt.diagnostic('pipe: has no listener to reconnect to');
    });

    if (t !== 'pipe') {
      test('listener killed with SIGKILL: the connected side gets peer-lost within 1 s; a restarted listener takes the same name', t === 'fifo' ? { ...T, skip: 'fifo: a writer learns of a dead reader at its next write (covered by "fifo: the writing end: …" below)' } : T, async () => {
        // unix: the dead listener leaves its socket file; the new one replaces it. tcp: a fixed port from round 1.
        let url = t === 'tcp' ? 'tcp://127.0.0.1:0' : urlFor(t);
        for (let round = 0; round < 2; round++) {
          const p = startPeer('channel-peer', ['listen', url, JSON.stringify({ codec: 'json', ...listenExtras(t) })]);
          live.add(p.child);
          const peer = control(p.child);
          url = (await peer.next()).listening;
          const ch = await channel.connect<any>(url, { codec: 'json' });
          assert.equal((await peer.next()).ready, true);
          assert.deepEqual(await ch.request({ n: round }), { re: round, pid: p.child.pid });
          const closed = new Promise<any>((r) => ch.once('close', r));
          const start = performance.now();
          p.child.kill('SIGKILL');
          const info = await closed;
          const ms = performance.now() - start;
          assert.equal(info.reason, 'peer-lost');
          assert.ok(ms < 1000, `close after ${ms.toFixed(0)} ms`);
          await p.exited;
          live.delete(p.child);
        }
        if (t === 'unix') rmSync(url.slice(5), { force: true });
        if (t === 'unix-seqpacket') rmSync(url.slice('unix-seqpacket:'.length), { force: true });
      });

      test('a restarted peer reconnects to the same name', t === 'fifo' ? { ...T, skip: 'uses request-reply; fifo: one writer after another is covered by "fifo: listen makes a 0600 FIFO …" below' } : T, async () => {
        const server = await channel.listen<any>(urlFor(t), { codec: 'json', ...listenExtras(t) });
        servers.add(server);
        const it = server[Symbol.asyncIterator]();
        for (let round = 0; round < 2; round++) {
          const p = startPeer('channel-peer', ['connect', server.url, '{"codec":"json"}']);
          const peer = control(p.child);
          const [conn] = await Promise.all([it.next(), peer.next()]);
          const ch = conn.value as Channel<any>;
          assert.deepEqual(await ch.request({ n: round }), { re: round, pid: p.child.pid });
          const closed = new Promise<any>((r) => ch.once('close', r));
          p.child.kill('SIGKILL');
          assert.equal((await closed).reason, 'peer-lost');
          await p.exited;
        }
        await server.close();
        servers.delete(server);
      });
    }

    test('an oversized or corrupt incoming frame is an error on that channel, not an allocation or a crash', t === 'fifo' ? { ...T, skip: 'fifo: has one writer at a time, so no second, forged peer next to a good one; covered by "fifo: listen makes a 0600 FIFO …" below' } : T, async () => {
      const { ch, peer, server, done } = await pair(t, { codec: 'raw', maxMessageSize: 1024 });
      await assert.rejects(ch.send(Buffer.alloc(1025)), { code: 'ERR_IPCKIT_MESSAGE_TOO_LARGE' });
      if (t === 'pipe') {
        const closed = new Promise<any>((r) => ch.once('close', r));
        peer.send({ op: 'garbage', length: 0xfffffff0 });
        const info = await closed;
        assert.equal(info.reason, 'error');
        assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
        assert.match(info.error.message, /exceeds maxMessageSize/);
        await assert.rejects(ch.next(), { code: 'ERR_IPCKIT_BAD_FRAME' });
      } else {
        const victim = await (t === 'shm' || t === 'shm-nospin' ? forgeShmPeer(server!) : t === 'shm-shared' ? forgeSharedPeer(server!, 'frame') : t === 'mq' ? forgeMqPeer(server!) : t === 'sysvmq' ? forgeSysvPeer(server!) : t === 'unix-seqpacket' ? forgeSeqpacketPeer(server!) : forgeStreamPeer(server!, t));
        assert.equal(victim.reason, 'error');
        assert.equal(victim.error.code, 'ERR_IPCKIT_BAD_FRAME');
      }
      // The good channel next to it is unaffected.
      if (t !== 'pipe') {
        peer.send({ op: 'echo' });
        await peer.next();
        await ch.send(Buffer.from('still fine'));
        assert.equal(String((await ch.next()).value), 'still fine');
      }
      await done();
    });
  });
}

/** Connects a raw seqpacket socket and sends one message longer than the listener's maxMessageSize. */
async function forgeSeqpacketPeer(server: ChannelServer<any>): Promise<any> {
  const conn = server[Symbol.asyncIterator]().next();
  const sock = await unix.connect(server.url.slice('unix-seqpacket:'.length), { type: 'seqpacket' });
  sock.on('error', () => {});
  await sock.send(streamHello(hello('unix-seqpacket')).subarray(4));
  const ch = (await conn).value as Channel<any>;
  const closed = new Promise<any>((r) => ch.once('close', r));
  await sock.send(Buffer.alloc(4096, 0));
  const info = await closed;
  sock.close();
  return info;
}

/** Connects a raw socket to a stream listener and sends a frame header claiming 4 GiB. */
async function forgeStreamPeer(server: ChannelServer<any>, t: string): Promise<any> {
  const conn = server[Symbol.asyncIterator]().next();
  const sock = await rawStream(server.url);
  sock.on('error', () => {});
  sock.on('data', () => {});
  sock.write(streamHello(hello(t)));
  const ch = (await conn).value as Channel<any>;
  const closed = new Promise<any>((r) => ch.once('close', r));
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0xfffffff0, 0);
  sock.write(b);
  const info = await closed;
  sock.destroy();
  return info;
}

/** Speaks the mq: handshake by hand (two queue descriptors by SCM_RIGHTS) and queues a frame of an unknown kind. */
async function forgeMqPeer(server: ChannelServer<any>): Promise<any> {
  const base = `/ipckit-test-forged-${process.pid}-${randomBytes(6).toString('hex')}`;
  const up = mq.open(`${base}-up`, { create: true, exclusive: true, messageSize: 1029 });
  const down = mq.open(`${base}-down`, { create: true, exclusive: true, messageSize: 1029 });
  const upR = mq.open(up.name, { readOnly: true });
  const downW = mq.open(down.name, { writeOnly: true });
  for (const n of [up.name, down.name]) mq.unlink(n);
  try {
    up.trySend(Buffer.from([9, 1, 2, 3]));
    const conn = server[Symbol.asyncIterator]().next();
    const client = await controlClient('mq', server.url.slice(3).replace(/^\/+/, ''), hello('mq'), [upR.fd, downW.fd]);
    const ch = (await conn).value as Channel<any>;
    const info = ch.closeInfo ?? (await new Promise<any>((res) => ch.once('close', res)));
    client.close();
    return info;
  } finally {
    for (const q of [up, down, upR, downW]) q.close();
  }
}

/** Speaks the sysvmq: handshake by hand and queues a frame of an unknown kind. */
async function forgeSysvPeer(server: ChannelServer<any>): Promise<any> {
  const up = mq.sysv.get('private');
  const down = mq.sysv.get('private');
  try {
    up.trySend(1, Buffer.from([9, 1, 2, 3]));
    const conn = server[Symbol.asyncIterator]().next();
    const client = await controlClient('sysvmq', server.url.slice(7), hello('sysvmq', { up: up.id, down: down.id }));
    const ch = (await conn).value as Channel<any>;
    const info = ch.closeInfo ?? (await new Promise<any>((res) => ch.once('close', res)));
    client.close();
    return info;
  } finally {
    for (const q of [up, down]) {
      try {
        q.remove();
      } catch {}
    }
  }
}

/** Speaks the shm: handshake by hand and puts a record with an impossible length in the ring. */
async function forgeShmPeer(server: ChannelServer<any>): Promise<any> {
  const conn = server[Symbol.asyncIterator]().next();
  const forged = await forgeShm(server.url.slice(4));
  forged.publish(forged.place(new Uint8Array(8), 0x7ffffff0)); // record length far beyond maxFrame
  const ch = (await conn).value as Channel<any>;
  const info = ch.closeInfo ?? (await new Promise<any>((res) => ch.once('close', res)));
  forged.close();
  forged.mem.close();
  return info;
}

/**
 * A connector of a shared-ring listener that speaks the handshake by hand and
 * maps the shared ring itself (layout in src/channel/ring.ts), to play a
 * writer that dies holding the lock or writes garbage.
 */
async function sharedRingPeer(server: ChannelServer<any>) {
  const conn = server[Symbol.asyncIterator]().next();
  const forged = await forgeShm(server.url.slice(4));
  const ch = (await conn).value as Channel<any>;
  const hand = sharedRingHand(forged);
  return {
    ch,
    i32: hand.i32,
    slot: hand.slot,
    closed: new Promise<any>((res) => (ch.closeInfo ? res(ch.closeInfo) : ch.once('close', res))),
    place: hand.place,
    publish: hand.publish,
    /** The writer "dies": its control socket closes (what the kernel does at exit). */
    die(): void {
      forged.close();
    },
    cleanup(): void {
      forged.close();
      hand.close();
      forged.mem.close();
    },
  };
}

/** The one forged-peer case of the parametrised suite: a malformed frame (kind 0xee) in a well-formed record hurts only its own connection. */
async function forgeSharedPeer(server: ChannelServer<any>, _what: 'frame'): Promise<any> {
  const forged = await sharedRingPeer(server);
  forged.publish(forged.place(Uint8Array.of(0xee, 1, 2, 3)));
  const info = await forged.closed;
  forged.cleanup();
  return info;
}

/** Resolves once `check` holds, looking once per event-loop turn (synchronises on state another process changes). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

/** A shared-ring listener (sharedRing) in this process and `count` peer processes connected to it, one channel each. */
async function sharedGroup(count: number, options: ChannelOptions<any>, peerOptions: ChannelOptions<any> = { codec: options.codec }) {
  const server = await channel.listen<any>(urlFor('shm'), { ...options, sharedRing: true });
  servers.add(server);
  const it = server[Symbol.asyncIterator]();
  const peers: Control[] = [];
  const chans: Channel<any>[] = [];
  for (let k = 0; k < count; k++) {
    const p = startPeer('channel-peer', ['connect', server.url, JSON.stringify(peerOptions)]);
    live.add(p.child);
    peers.push(control(p.child));
    const [conn, hello] = await Promise.all([it.next(), peers[k]!.next()]);
    assert.equal(hello.ready, true);
    chans.push(conn.value as Channel<any>);
  }
  /** Closes the channels of the peers still alive (`alive`: their indices), then the listener. */
  const done = async (alive = peers.map((_, k) => k)) => {
    for (const k of alive) await finish(chans[k]!, peers[k]!, null);
    await server.close();
    servers.delete(server);
  };
  return { server, peers, chans, done };
}

describe('channel over shm: with a shared ring (sharedRing: every connector writes into one ring)', () => {
  for (const spin of ['auto', false] as const) test(`four writer processes, spin ${spin}: each one's 250,000 messages arrive on its own channel in order; requests to each are answered by that one`, T, async () => {
    const { peers, chans, done } = await sharedGroup(4, { codec: 'json', spin }, { codec: 'json', spin });
    // Which channel belongs to which process: ask each.
    const pids = await Promise.all(chans.map(async (ch) => (await ch.request({ n: 0 })).pid as number));
    assert.deepEqual([...pids].sort(), peers.map((p) => p.child.pid).sort());
    const N = 250_000;
    for (const p of peers) p.send({ op: 'emit', count: N });
    await Promise.all(
      chans.map(async (ch) => {
        let i = 0;
        for await (const m of ch) {
          if (m !== i) assert.fail(`message ${i} arrived as ${m}`);
          if (++i === N) break;
        }
      }),
    );
    for (const p of peers) assert.deepEqual(await p.next(), { op: 'emit', sent: N });
    // 500 concurrent requests on every channel at once: replies come back through the shared ring to the right one.
    await Promise.all(
      chans.map(async (ch, k) => {
        const replies = await Promise.all(Array.from({ length: 500 }, (_, n) => ch.request({ n })));
        replies.forEach((r, n) => assert.deepEqual(r, { re: n, pid: pids[k] }));
      }),
    );
    await done();
  });

  test('a writer killed with SIGKILL mid-stream: its channel gets peer-lost after every message it wrote; the others carry on', T, async () => {
    const { peers, chans, done } = await sharedGroup(2, { codec: 'raw' }, { codec: 'raw' });
    const N = 200_000;
    for (const p of peers) p.send({ op: 'emit', count: N, size: 8 });
    const victim = chans[0]!;
    let got = 0;
    const victimDone = (async () => {
      try {
        for await (const m of victim) {
          if ((m as Buffer).readUInt32LE(0) !== got) assert.fail(`victim: message ${got} arrived as ${(m as Buffer).readUInt32LE(0)}`);
          if (++got === 1000) peers[0]!.child.kill('SIGKILL');
        }
      } catch (e) {
        // A read pending when the peer died ends with its error.
        assert.equal((e as { code?: string }).code, 'ERR_IPCKIT_PEER_LOST');
      }
      return victim.closeInfo!;
    })();
    let i = 0;
    for await (const m of chans[1]!) {
      if ((m as Buffer).readUInt32LE(0) !== i) assert.fail(`survivor: message ${i} arrived as ${(m as Buffer).readUInt32LE(0)}`);
      if (++i === N) break;
    }
    assert.deepEqual(await peers[1]!.next(), { op: 'emit', sent: N });
    const info = await victimDone;
    assert.equal(info.reason, 'peer-lost');
    assert.ok(got >= 1000 && got <= N, `the victim's ${got} messages`);
    await peers[0]!.exited;
    live.delete(peers[0]!.child);
    await done([1]);
  });

  test('backpressure through the shared ring: while one channel is not read, the others go on until the ring is full, then every writer waits (bounded); reading it again lets all finish in order', T, async () => {
    const { peers, chans, done } = await sharedGroup(2, { codec: 'raw', highWaterMark: 64 }, { codec: 'raw' });
    // The first writer puts 2 MiB into the 4 MiB ring and is done; nobody reads its channel.
    const NA = 2000;
    peers[0]!.send({ op: 'emit', count: NA, size: 1024 });
    assert.deepEqual(await peers[0]!.next(), { op: 'emit', sent: NA });
    // Then 20 MiB from the second writer, whose channel is read.
    const N = 20_000;
    peers[1]!.send({ op: 'emit', count: N, size: 1024 });
    const readAll = async (ch: Channel<any>, counter: { n: number }, count: number) => {
      for await (const m of ch) {
        if ((m as Buffer).readUInt32LE(0) !== counter.n) assert.fail(`message ${counter.n} arrived as ${(m as Buffer).readUInt32LE(0)}`);
        if (++counter.n === count) break;
      }
    };
    const a = { n: 0 };
    const b = { n: 0 };
    // The first channel fills its inbox and pauses; the hub passes over its frames, which stay in the ring and hold the tail.
    const bDone = readAll(chans[1]!, b, N);
    // The second channel gets the ~2 MiB of the ring left, far beyond what head-of-line blocking would give it...
    await until(() => b.n >= 1024);
    // ...but not everything: the ring is full, and every writer waits.
    assert.equal(await settledWithin(bDone, 500), 'pending');
    assert.ok(b.n < 4096, `the second channel got ${b.n} messages while the first was not read`);
    // Reading the first channel again frees the ring: both finish, each in order.
    await Promise.all([readAll(chans[0]!, a, NA), bDone]);
    assert.deepEqual([a.n, b.n], [NA, N]);
    assert.deepEqual(await peers[1]!.next(), { op: 'emit', sent: N });
    await done();
  });

  test('a writer that dies holding the ring\'s lock: the listener frees it when that connection closes; the writer waiting for it carries on', T, async () => {
    const { ch, peer, server, done } = await pair('shm-shared', { codec: 'raw' });
    const forged = await sharedRingPeer(server!);
    // Take the lock and leave a half-written record after the head, as a writer killed mid-write would.
    assert.equal(Atomics.compareExchange(forged.i32, 80, 0, forged.slot), 0);
    forged.place(Buffer.alloc(64, 0xee), 0x7ffffff0);
    peer.send({ op: 'emit', count: 10_000, size: 8 });
    // The other writer finds the lock taken, spins, and goes to sleep waiting.
    await until(() => Atomics.load(forged.i32, 64) > 0);
    forged.die();
    assert.equal((await forged.closed).reason, 'peer-lost');
    let i = 0;
    for await (const m of ch) {
      if ((m as Buffer).readUInt32LE(0) !== i) assert.fail(`message ${i} arrived as ${(m as Buffer).readUInt32LE(0)}`);
      if (++i === 10_000) break;
    }
    assert.deepEqual(await peer.next(), { op: 'emit', sent: 10_000 });
    assert.equal(Atomics.load(forged.i32, 80), 0);
    forged.cleanup();
    await done();
  });

  test('a corrupt record in the shared ring fails every channel through it (ERR_IPCKIT_BAD_FRAME); newcomers get a fresh ring', T, async () => {
    const { ch, peer, server } = await pair('shm-shared', { codec: 'raw', maxMessageSize: 1024 });
    const forged = await sharedRingPeer(server!);
    const good = new Promise<any>((r) => ch.once('close', r));
    forged.publish(forged.place(Buffer.alloc(16), 0x7ffffff0));
    for (const info of [await forged.closed, await good]) {
      assert.equal(info.reason, 'error');
      assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
      assert.match(info.error.message, /shared ring/);
    }
    // The listener goes on with a new shared ring: a newcomer is served.
    const conn = server![Symbol.asyncIterator]().next();
    const client = await channel.connect<any>(server!.url, { codec: 'raw' });
    const fresh = (await conn).value as Channel<any>;
    await client.send(Buffer.from('after the corruption'));
    assert.equal(String((await fresh.next()).value), 'after the corruption');
    await client.close();
    await fresh.close();
    forged.cleanup();
    peer.child.stdin!.end();
    await peer.exited;
    live.delete(peer.child);
    await server!.close();
    servers.delete(server!);
  });

  test('what a shared ring changes: loan() lends a Buffer on the connecting side; nextSync() is refused on the listening side; sharedRing needs shm: and no zeroCopy', T, async () => {
    const server = await channel.listen<any>(urlFor('shm'), { codec: 'raw', sharedRing: true });
    servers.add(server);
    const conn = server[Symbol.asyncIterator]().next();
    const client = await channel.connect<any>(server.url, { codec: 'raw' });
    const ch = (await conn).value as Channel<any>;
    const view = await client.loan(5);
    assert.ok(Buffer.isBuffer(view), 'a plain Buffer, not ring memory');
    view.set(Buffer.from('hello'));
    await client.publish(view);
    assert.equal(String((await ch.next()).value), 'hello');
    assert.throws(() => ch.nextSync({ timeout: 0 }), { code: 'ERR_IPCKIT_UNSUPPORTED' });
    await client.close();
    await ch.close();
    await server.close();
    servers.delete(server);
    await assert.rejects(channel.listen(urlFor('unix'), { sharedRing: true }), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.listen(urlFor('shm'), { codec: 'raw', zeroCopy: true, sharedRing: true }), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.listen(urlFor('shm'), { sharedRing: 1 as any }), { name: 'TypeError' });
  });
});

describe('channel codecs and API', () => {
  test('v8 carries Map, Date, BigInt and typed arrays; msgpack and json round-trip', T, async () => {
    for (const codec of ['v8', 'msgpack', 'json'] as const) {
      const { ch, peer, done } = await pair('shm', { codec });
      peer.send({ op: 'echo' });
      await peer.next();
      const value =
        codec === 'v8'
          ? { m: new Map([[1, 'a']]), d: new Date(1e12), b: 2n ** 70n, f: new Float64Array([1.5, -2]) }
          : { s: 'héllo', n: [1, 2.5, null], nested: { ok: true } };
      await ch.send(value);
      assert.deepEqual((await ch.next()).value, value);
      await done();
    }
  });

  test('zero-copy over shm: loan/publish, views released in any order, sizes 64 B..1 MiB', T, async () => {
    const options = { codec: 'raw' as const, zeroCopy: true, maxMessageSize: 1 << 20 };
    const { ch, peer, done } = await pair('shm', options);
    peer.send({ op: 'zc-echo' });
    await peer.next();
    const held: Array<Uint8Array & { release(): void }> = [];
    for (const size of [64, 4096, 65536, 1 << 20, 64, 1 << 20, 100]) {
      const view = await ch.loan(size);
      for (let i = 0; i < size; i += 4096) view[i] = (i / 4096 + size) & 0xff;
      view[size - 1] = 0x5a;
      await ch.publish(view);
      const back = (await ch.next()).value as Uint8Array & { release(): void };
      assert.equal(back.byteLength, size);
      assert.ok(back.buffer instanceof SharedArrayBuffer, 'the received message is a view into the ring');
      assert.equal(back[size - 1], 0x5a);
      for (let i = 0; i < size; i += 4096) assert.equal(back[i], (i / 4096 + size) & 0xff);
      held.push(back);
    }
    // Release out of order; then the ring must be fully usable again (4 MiB of 1 MiB messages).
    for (const v of held.reverse()) v.release();
    for (let k = 0; k < 8; k++) {
      const view = await ch.loan(1 << 20);
      view[0] = k;
      await ch.publish(view);
      const back = (await ch.next()).value as Uint8Array & { release(): void };
      assert.equal(back[0], k);
      back.release();
    }
    // publish() of a shorter length, and misuse.
    const v = await ch.loan(1000);
    v[0] = 7;
    await ch.publish(v, 1);
    const short = (await ch.next()).value as Uint8Array & { release(): void };
    assert.equal(short.byteLength, 1);
    short.release();
    // A send() while a loan is open waits behind it (and the event loop keeps turning).
    const open = await ch.loan(3);
    open.set([1, 2, 3]);
    const queued = ch.send(Buffer.from('after'));
    await new Promise((r) => setImmediate(r));
    await ch.publish(open);
    await queued;
    const first = (await ch.next()).value as Uint8Array & { release(): void };
    const second = (await ch.next()).value as Uint8Array & { release(): void };
    assert.deepEqual([...first], [1, 2, 3]);
    assert.equal(Buffer.from(second).toString(), 'after');
    first.release();
    second.release();
    assert.throws(() => ch.publish(new Uint8Array(4)), { code: 'ERR_IPCKIT_LOAN' });
    assert.throws(() => ch.loan((1 << 20) + 1), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await done();
  });

  for (const spin of ['auto', false] as const) test(`shm: with the smallest ring (4 KiB), spin ${spin}: varied sizes, single sends and batches mixed, every byte intact both ways`, T, async () => {
    const N = 50_000;
    const { ch, peer, done } = await pair('shm', { codec: 'raw', ringSize: 4096, maxMessageSize: 1000, spin });
    const varied = (i: number) => {
      const b = Buffer.alloc(1 + ((i * 7919) % 1000));
      for (let k = 0; k < b.length; k++) b[k] = (i + k) & 255;
      return b;
    };
    // Each direction wraps the ring ~6,000 times and waits for room at almost every batch.
    peer.send({ op: 'expect-varied', count: N });
    for (let i = 0; i < N; ) {
      const batch = [];
      for (let k = 0; k < 1 + (i % 37) && i < N; k++) batch.push(varied(i++));
      if (batch.length === 1) await ch.send(batch[0]!);
      else await ch.sendBatch(batch);
    }
    assert.deepEqual(await peer.next(), { op: 'expect-varied', received: N, firstError: null });
    peer.send({ op: 'emit-varied', count: N });
    let i = 0;
    for await (const m of ch) {
      if (!varied(i).equals(m as Buffer)) assert.fail(`message ${i}: ${(m as Buffer).length} bytes, expected ${varied(i).length}`);
      if (++i === N) break;
    }
    assert.deepEqual(await peer.next(), { op: 'emit-varied', sent: N });
    await done();
  });

  test('nextSync(): a worker thread in another process receives with blocking waits (spin, then doorbell), times out, sees the end', T, async () => {
    const N = 100_000;
    const server = await channel.listen<any>(`shm:ipckit-test-${tag()}`, { codec: 'json' });
    servers.add(server);
    const peer = startPeer('channel-sync-peer', [server.url, String(N)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    peer.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const ch = (await server[Symbol.asyncIterator]().next()).value as Channel<any>;
    // Bursts with pauses between them, so the worker both spins and sleeps on the doorbell.
    for (let i = 0; i < N; i += 10_000) {
      await ch.sendBatch(Array.from({ length: 10_000 }, (_, k) => i + k));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual((await ch.next()).value, { received: N, firstError: null, timeoutCode: 'ETIMEDOUT' });
    await ch.close();
    assert.deepEqual(await peer.next(), { done: true });
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
    // The worker's channel closed its descriptors without Node's "closed but not opened" warnings.
    assert.equal(stderr, '');
    // Other transports say so instead of blocking.
    const a = await channel.listen<any>(`unix-abstract:ipckit-test-${tag()}`);
    servers.add(a);
    const c = await channel.connect<any>(a.url);
    assert.throws(() => c.nextSync(), { code: 'ERR_IPCKIT_UNSUPPORTED' });
    assert.throws(() => c.nextSync({ timeout: -1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await c.close();
    await a.close();
    servers.delete(a);
    await server.close();
    servers.delete(server);
  });

  test('ipckit send / recv talk to a program using the library', T, async () => {
    const cli = join(fixturesDir, '..', '..', 'dist', 'cli', 'main.js');
    const exec = (args: string[], input?: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        live.add(child);
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.stdin.end(input ?? '');
        child.on('exit', (code) => {
          live.delete(child);
          resolve({ code, out, err });
        });
      });
    for (const t of ['shm', 'unix'] as const) {
      const server = await channel.listen<any>(urlFor(t), { codec: 'json' });
      servers.add(server);
      const it = server[Symbol.asyncIterator]();
      // send: argument, stdin, and a request whose reply is printed.
      const sent = exec(['send', server.url, '{"n":1}', '--codec', 'json']);
      const ch1 = (await it.next()).value as Channel<any>;
      assert.deepEqual((await ch1.next()).value, { n: 1 });
      assert.equal((await sent).code, 0);
      const piped = exec(['send', server.url, '--codec', 'json'], '[1,"two"]');
      const ch2 = (await it.next()).value as Channel<any>;
      assert.deepEqual((await ch2.next()).value, [1, 'two']);
      assert.equal((await piped).code, 0);
      const asked = exec(['send', server.url, '{"q":5}', '--codec', 'json', '--request']);
      const ch3 = (await it.next()).value as Channel<any>;
      ch3.onRequest((m) => ({ answer: m.q * 2 }));
      assert.deepEqual(JSON.parse((await asked).out), { answer: 10 });
      // recv --connect: prints what we send, one JSON line each, and stops at --count.
      const got = exec(['recv', server.url, '--connect', '--count', '2', '--codec', 'json']);
      const ch4 = (await it.next()).value as Channel<any>;
      await ch4.send({ a: 1 });
      await ch4.send('b');
      const r = await got;
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, '{"a":1}\n"b"\n');
      for (const ch of [ch1, ch2, ch3, ch4]) await ch.close();
      await server.close();
      servers.delete(server);
    }
    const bad = await exec(['send', `shm:nobody-${tag()}`, 'x']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /ECONNREFUSED/);
  });

  test('close() completes even when the peer stopped reading (grace period, then cut)', T, async () => {
    for (const t of ['unix', 'shm'] as const) {
      const { ch, peer, done } = await pair(t, { codec: 'raw', highWaterMark: 4 });
      // Fill everything between us and the peer's paused inbox.
      let p: Promise<void> = Promise.resolve();
      for (let i = 0; (await settledWithin(p, 200)) !== 'pending' && i < 100_000; i++) p = ch.send(Buffer.alloc(65536));
      p.catch(() => {});
      const start = performance.now();
      await ch.close();
      assert.ok(performance.now() - start < 10_000);
      assert.equal(ch.closeInfo?.reason, 'closed');
      await done();
    }
  });

  test('invalid URLs and options are TypeErrors/RangeErrors before any system call', T, async () => {
    await assert.rejects(channel.connect('carrier-pigeon:x'), { code: 'ERR_IPCKIT_INVALID_URL' });
    await assert.rejects(channel.connect('tcp://host'), { code: 'ERR_IPCKIT_INVALID_URL' });
    await assert.rejects(channel.listen('shm:x', { codec: 'yaml' as any }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.listen('shm:x', { spin: -1 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(channel.connect(`shm:nobody-${tag()}`), { code: 'ECONNREFUSED' });
  });

  test('unix: the server removes its socket file on close, and replaces a stale one', T, async () => {
    const url = urlFor('unix');
    const path = url.slice(5);
    const s1 = await channel.listen(url);
    assert.ok(existsSync(path));
    await s1.close();
    assert.ok(!existsSync(path));
    // A file left by a server that died: Python binds and exits without unlinking.
    run('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path]);
    assert.ok(existsSync(path));
    await assert.rejects(channel.listen(url, { unlink: false }), { code: 'EADDRINUSE' });
    const s2 = await channel.listen(url);
    await s2.close();
    assert.ok(!existsSync(path));
  });

  test('fork() over shm: a child and a ready channel; close() is idempotent and async-disposable', T, async () => {
    const { child, channel: ch } = await channel.fork<any>(join(fixturesDir, 'channel-peer.js'), ['forked'], { fork: { stdio: ['pipe', 'pipe', 'inherit'] } });
    live.add(child);
    const peer = control(child);
    assert.equal((await peer.next()).transport, 'shm');
    assert.equal(ch.transport, 'shm');
    assert.deepEqual(await ch.request({ n: 2 }), { re: 2, pid: child.pid });
    {
      await using c = ch;
      void c;
    }
    await ch.close();
    assert.equal(ch.closeInfo?.reason, 'closed');
    assert.equal((await peer.next()).reason, 'peer-closed');
    child.stdin!.end();
    await peer.exited;
    live.delete(child);
  });
});

// Nothing for shm: may remain in /dev/shm (it uses memfd only); run-tests.mjs checks too.


describe('channel over fifo: the one-way specifics', () => {
  test('fifo: the writing end: send only, backpressure bounds what is in flight, a killed reader is peer-lost at the next write', T, async () => {
    const p = startPeer('channel-peer', ['listen', urlFor('fifo'), '{"codec":"raw","highWaterMark":64}']);
    live.add(p.child);
    const peer = control(p.child);
    const url = (await peer.next()).listening;
    const ch = await channel.connect<any>(url, { codec: 'raw', timeout: 10_000 });
    assert.equal((await peer.next()).ready, true);
    await assert.rejects(ch.next(), { code: 'ERR_IPCKIT_WRITE_ONLY' });
    await assert.rejects(ch.request(Buffer.from('?')), { code: 'ERR_IPCKIT_ONE_WAY' });
    assert.throws(() => ch.onRequest((m) => m), { code: 'ERR_IPCKIT_ONE_WAY' });
    // The peer does not read yet: sends stall once the pipe and the peer's inbox are full.
    let accepted = 0;
    let stalled: Promise<void> | null = null;
    for (; accepted < 16384; accepted++) {
      const s = ch.send(Buffer.alloc(4096, accepted & 0xff));
      if ((await settledWithin(s, 300)) === 'pending') {
        stalled = s;
        break;
      }
    }
    assert.ok(stalled, 'every send was accepted with nobody reading');
    assert.ok(accepted * 4096 < 32 * 1024 * 1024, `${accepted} messages in flight`);
    peer.send({ op: 'expect', count: accepted + 1 });
    await stalled;
    assert.equal((await peer.next()).received, accepted + 1);
    // Kill the reader: the next writes fail with EPIPE, which closes the channel as peer-lost.
    const closed = new Promise<any>((r) => ch.once('close', r));
    p.child.kill('SIGKILL');
    await p.exited;
    live.delete(p.child);
    for (let i = 0; i < 1000 && !ch.closeInfo; i++) await ch.send(Buffer.alloc(16)).catch(() => {});
    assert.equal((await closed).reason, 'peer-lost');
  });

  test('fifo: listen makes a 0600 FIFO and close removes it (unlink:false keeps it); one writer after another; an oversized frame; the writer waits with timeout and AbortSignal', T, async () => {
    const url = urlFor('fifo');
    const path = url.slice(5);
    const server = await channel.listen<any>(url, { codec: 'raw', maxMessageSize: 1024 });
    servers.add(server);
    const st = statSync(path);
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o777, 0o600);
    const it = server[Symbol.asyncIterator]();
    for (let round = 0; round < 2; round++) {
      const w = await channel.connect<any>(url, { codec: 'raw' });
      const r = (await it.next()).value as Channel<any>;
      await assert.rejects(r.send(Buffer.from('x')), { code: 'ERR_IPCKIT_READ_ONLY' });
      await w.send(Buffer.from(`round ${round}`));
      assert.equal(String((await r.next()).value), `round ${round}`);
      await w.close();
      assert.deepEqual(await r.next(), { value: undefined, done: true });
      assert.equal(r.closeInfo?.reason, 'peer-closed');
    }
    // A writer allowed bigger messages than the reader: its frame is an error on the reading end.
    const big = await channel.connect<any>(url, { codec: 'raw', maxMessageSize: 1 << 20 });
    const victim = (await it.next()).value as Channel<any>;
    const closed = new Promise<any>((r) => victim.once('close', r));
    await big.send(Buffer.alloc(2000));
    const info = await closed;
    assert.equal(info.reason, 'error');
    assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
    await big.close();
    await server.close();
    servers.delete(server);
    assert.ok(!existsSync(path));
    // Nobody reads: the writer's wait ends by timeout or by its AbortSignal.
    const kept = await channel.listen<any>(url, { unlink: false });
    await kept.close();
    assert.ok(existsSync(path), 'unlink: false keeps the FIFO');
    try {
      await assert.rejects(channel.connect(url, { timeout: 100 }), { code: 'ETIMEDOUT' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('gave up')), 50);
      await assert.rejects(channel.connect(url, { signal: ac.signal }), /gave up/);
    } finally {
      rmSync(path, { force: true });
    }
  });
});

describe('channel over unix-seqpacket: specifics', () => {
  test('unix-seqpacket: one frame per message (a plain seqpacket socket speaks it); maxMessageSize is capped by the socket buffer; close removes the socket file; -abstract works', T, async () => {
    const url = urlFor('unix-seqpacket');
    const path = url.slice('unix-seqpacket:'.length);
    const server = await channel.listen<any>(url, { codec: 'raw', maxMessageSize: 1 << 20 });
    servers.add(server);
    const it = server[Symbol.asyncIterator]();
    const sock = await unix.connect(path, { type: 'seqpacket' });
    // The hello first, each way: kind byte 5 + JSON, one message.
    const theirs = new Promise<Buffer>((r) => sock.once('message', r));
    await sock.send(Buffer.concat([Buffer.of(5), Buffer.from(JSON.stringify({ ipckit: 2, transport: 'unix-seqpacket', codec: 'raw', max: 1 << 20 }))]));
    const ch = (await it.next()).value as Channel<any>;
    const listenerHello = await theirs;
    assert.equal(listenerHello[0], 5);
    assert.deepEqual(JSON.parse(listenerHello.subarray(1).toString()), { ipckit: 2, transport: 'unix-seqpacket', codec: 'raw', max: 1 << 20 });
    // Frame = kind byte 0 + payload, one message each, no length prefix.
    await sock.send(Buffer.from('\0hello'));
    assert.equal(String((await ch.next()).value), 'hello');
    const reply = new Promise<Buffer>((r) => sock.once('message', r));
    await ch.send(Buffer.from('back'));
    assert.deepEqual(await reply, Buffer.from('\0back'));
    const limit = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8')) - 32 - 5;
    assert.equal(ch.maxMessageSize, limit);
    await assert.rejects(ch.send(Buffer.alloc(limit + 1)), { code: 'ERR_IPCKIT_MESSAGE_TOO_LARGE' });
    const full = new Promise<Buffer>((r) => sock.once('message', r));
    await ch.send(Buffer.alloc(limit, 7));
    assert.equal((await full).length, limit + 1);
    sock.close();
    await ch.close();
    await server.close();
    servers.delete(server);
    assert.ok(!existsSync(path));

    const aserver = await channel.listen<any>(`unix-seqpacket-abstract:ipckit-test-${tag()}`, { codec: 'json' });
    servers.add(aserver);
    const c = await channel.connect<any>(aserver.url, { codec: 'json' });
    const s = (await aserver[Symbol.asyncIterator]().next()).value as Channel<any>;
    s.onRequest((m) => m * 2);
    assert.equal(await c.request(21), 42);
    await c.close();
    assert.deepEqual(await s.next(), { value: undefined, done: true });
    assert.equal(s.closeInfo?.reason, 'peer-closed');
    await aserver.close();
    servers.delete(aserver);
  });
});
