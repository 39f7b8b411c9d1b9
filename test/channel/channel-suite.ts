// The channel suite every transport must pass, between real processes: test
// files call defineTransportSuite() with the transports they cover (split so
// that each file stays well within the runner's per-file time limit).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { channel, mq, unix, type Channel, type ChannelServer } from 'ipckit';
import { startPeer } from '../helpers.js';
import { controlClient, forgeMqFrames, forgeShm, hello, rawStream, streamHello } from './forge.js';
import { T, urlFor, control, connectExtras, listenExtras, live, servers, pair, seq, settledWithin, ONE_WAY, sharedRingPeer, transportSkip, type SuiteTransport } from './channel-pair.js';
import { forgeNats } from './nats-forge.js';

/**
 * Messages each way in the ordering tests: 100,000 in npm test, 1,000,000 in
 * npm run stress (test/stress/channel-suite.stress.ts sets
 * IPCKIT_SUITE_MESSAGES), where it runs over every transport.
 */
const MANY = Number(process.env.IPCKIT_SUITE_MESSAGES ?? 100_000);
/**
 * The share of the message counts of the volume tests a transport runs:
 * jetstream: stores and acks every message on the server (about 10,000 a
 * second on a 2-core machine), so it runs a tenth of them.
 */
const volume = (t: SuiteTransport, n: number): number => (t === 'jetstream' ? n / 10 : n);

export function defineTransportSuite(transports: readonly SuiteTransport[]): void {
  for (const t of transports) {
    const twoWay = t === 'fifo' ? { ...T, skip: ONE_WAY } : T;
    describe(`channel over ${t}`, { skip: transportSkip(t) }, () => {
      test(`${volume(t, MANY).toLocaleString('en')} messages each way: in order, none lost, none duplicated`, T, async () => {
        const N = volume(t, MANY);
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

      const sender = t === 'fifo' ? { ...T, skip: 'fifo: the test process is the reading end here (the sending side is the same Channel code on every transport)' } : T;
      test('a sender that reuses one Buffer, changing it as soon as send()/sendBatch() returned: every message arrives as it was sent', sender, async () => {
        const N = volume(t, 100_000);
        const { ch, peer, done } = await pair(t, { codec: 'raw' });
        // One buffer for every message, rewritten right after each send():
        // a frame still waiting for room must have been copied.
        const buf = Buffer.alloc(8);
        peer.send({ op: 'expect', count: 2 * N });
        let last: Promise<void> = Promise.resolve();
        for (let i = 0; i < N; i++) {
          buf.writeUInt32LE(i, 0);
          buf.writeUInt32LE(~i >>> 0, 4);
          last = ch.send(buf);
          if ((i & 4095) === 4095) await last;
        }
        const batch = Array.from({ length: 500 }, () => Buffer.alloc(8));
        for (let i = N; i < 2 * N; i += batch.length) {
          batch.forEach((b, k) => {
            b.writeUInt32LE(i + k, 0);
            b.writeUInt32LE(~(i + k) >>> 0, 4);
          });
          last = ch.sendBatch(batch);
          if (((i - N) / batch.length) % 8 === 7) await last;
        }
        await last;
        assert.deepEqual(await peer.next(), { op: 'expect', received: 2 * N, firstError: null });
        await done();
      });

      test('every size class from 1 B to 4 MiB, echoed: every byte intact, and a received Buffer kept across garbage collections is never reused', twoWay, async () => {
        // Sizes on both sides of each copy-path boundary (the run copy of
        // small frames, memcpy from 2 KiB, size classes of reused receive
        // memory, malloc's 128 KiB mmap threshold, queue message limits).
        const { ch, peer, done } = await pair(t, { codec: 'raw', maxMessageSize: 5 << 20 });
        // unix-seqpacket: caps it at the socket's largest message.
        const sizes = [1, 7, 2046, 2047, 2048, 2049, 4095, 4096, 4097, 16383, 16385, 65535, 65536, 65537, 131071, 131073, (1 << 20) - 1, (1 << 20) + 1, 4 << 20].filter((n) => n <= ch.maxMessageSize);
        const pattern = Buffer.allocUnsafe((4 << 20) + 256);
        for (let k = 0; k < pattern.length; k++) pattern[k] = (k * 131 + (k >> 9)) & 255;
        const message = (i: number) => pattern.subarray(i % 251, (i % 251) + sizes[i % sizes.length]!);
        peer.send({ op: 'echo' });
        assert.deepEqual(await peer.next(), { op: 'echo' });
        const kept: Array<{ i: number; m: Buffer }> = [];
        const check = (i: number, m: Buffer) => {
          if (!message(i).equals(m)) assert.fail(`message ${i} (${sizes[i % sizes.length]} bytes) came back as ${m.length} bytes, not the same`);
        };
        const receive = async (i: number) => {
          const r = await ch.next();
          assert.equal(r.done, false, `the channel ended before message ${i} came back`);
          check(i, r.value);
          return r.value as Buffer;
        };
        // One at a time, keeping some of what comes back, with garbage
        // collections between rounds (so the memory of dropped Buffers is
        // free to be reused while the kept ones are still in use)...
        let i = 0;
        for (let round = 0; round < 2; round++) {
          for (const _ of sizes) {
            await ch.send(message(i));
            const m = await receive(i);
            if (i % 3 === 0) kept.push({ i, m });
            i++;
          }
          await collectGarbage();
        }
        // ...then a whole round in flight at once (records back to back in a ring).
        for (let round = 0; round < 2; round++) {
          const from = i;
          await Promise.all(sizes.map((_, k) => ch.send(message(from + k))));
          for (const _ of sizes) await receive(i++);
          await collectGarbage();
        }
        await collectGarbage();
        for (const { i, m } of kept) check(i, m);
        await done();
      });

      test(`sendBatch / receiveBatch: ${volume(t, MANY).toLocaleString('en')} messages each way in order; batches bounded by max; a bad message sends nothing`, T, async () => {
        const N = volume(t, MANY);
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
        await assert.rejects(ch.request({ hang: true }, { timeout: 50 }), { name: 'IpcError', code: 'ETIMEDOUT', syscall: 'request' });
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
            const ch: Channel<any> = await channel.connect<any>(url, { codec: 'json', ...connectExtras(t) });
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
            const p = startPeer('channel-peer', ['connect', server.url, JSON.stringify({ codec: 'json', ...connectExtras(t) })]);
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
          const victim = await (t === 'shm' || t === 'shm-nospin' ? forgeShmPeer(server!) : t === 'shm-shared' ? forgeSharedPeer(server!, 'frame') : t === 'mq' ? forgeMqFrames(server!, [Buffer.from([9, 1, 2, 3])], { messageSize: 1029 }) : t === 'sysvmq' ? forgeSysvPeer(server!) : t === 'unix-seqpacket' ? forgeSeqpacketPeer(server!) : t === 'nats' ? forgeNatsPeer(server!) : t === 'jetstream' ? forgeJetStreamPeer(server!) : forgeStreamPeer(server!, t));
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
}

/** Speaks the nats: handshake with the raw client and sends a frame longer than the listener's maxMessageSize. */
async function forgeNatsPeer(server: ChannelServer<any>): Promise<any> {
  const conn = server[Symbol.asyncIterator]().next();
  const forged = await forgeNats(server.url, { codec: 'raw' });
  const ch = (await conn).value as Channel<any>;
  const closed = new Promise<any>((r) => ch.once('close', r));
  forged.send(forged.data(Buffer.alloc(4096, 0)));
  const info = await closed;
  await forged.close();
  return info;
}

/**
 * A second, real connector of a jetstream: listener, then a data message
 * longer than the listener's maxMessageSize published by hand into the
 * listener's subject of that connector's stream (the one that is new).
 */
async function forgeJetStreamPeer(server: ChannelServer<any>): Promise<any> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
  const u = new URL(server.url);
  const nc = await connect({ servers: `${u.hostname}:${u.port}` });
  const jsm = await jetstreamManager(nc);
  const streams = async () => {
    const out = new Map<string, string[]>();
    for await (const s of jsm.streams.list()) out.set(s.config.name, s.config.subjects);
    return out;
  };
  const before = await streams();
  const conn = server[Symbol.asyncIterator]().next();
  const good = await channel.connect<any>(server.url, { codec: 'raw' });
  const ch = (await conn).value as Channel<any>;
  const closed = new Promise<any>((r) => ch.once('close', r));
  const [, subjects] = [...(await streams())].find(([name]) => !before.has(name))!;
  const m = Buffer.alloc(7 + 4096);
  await jetstream(nc).publish(subjects.find((s) => s.endsWith('.l'))!, m);
  const info = await closed;
  good.on('error', () => {});
  await good.close();
  await nc.close();
  return info;
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
  const sock = await rawStream(server.url, (connectExtras(t as SuiteTransport).tls as { ca?: string } | undefined)?.ca);
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

/** The one forged-peer case of the parametrised suite: a malformed frame (kind 0xee) in a well-formed record hurts only its own connection. */
async function forgeSharedPeer(server: ChannelServer<any>, _what: 'frame'): Promise<any> {
  const forged = await sharedRingPeer(server);
  forged.publish(forged.place(Uint8Array.of(0xee, 1, 2, 3)));
  const info = await forged.closed;
  forged.cleanup();
  return info;
}

/** A full garbage collection, then a turn of the event loop (finalizers of collected Buffers run there). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  await new Promise((r) => setImmediate(r));
}
