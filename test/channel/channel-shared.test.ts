// Channels over shm: with a shared ring (sharedRing): many writers, one ring, between real processes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { channel, type Channel } from 'ipckit';
import { T, urlFor, live, servers, pair, settledWithin, sharedRingPeer, until, sharedGroup } from './channel-pair.js';

describe('channel over shm: with a shared ring (sharedRing: every connector writes into one ring)', () => {
  for (const spin of ['auto', false] as const) test(`four writer processes, spin ${spin}: each one's 100,000 messages arrive on its own channel in order; requests to each are answered by that one`, T, async () => {
    const { peers, chans, done } = await sharedGroup(4, { codec: 'json', spin }, { codec: 'json', spin });
    // Which channel belongs to which process: ask each.
    const pids = await Promise.all(chans.map(async (ch) => (await ch.request({ n: 0 })).pid as number));
    assert.deepEqual([...pids].sort(), peers.map((p) => p.child.pid).sort());
    const N = 100_000;
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

