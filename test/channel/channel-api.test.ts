// Channels: codecs, the API, and the specifics of fifo: and unix-seqpacket:, between real processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { channel, unix, type Channel } from 'ipckit';
import { fixturesDir, run, startPeer } from '../helpers.js';
import { T, tag, urlFor, control, live, servers, pair, settledWithin } from './channel-pair.js';

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
      const reason = new Error('gave up');
      setTimeout(() => ac.abort(reason), 50);
      await assert.rejects(channel.connect(url, { signal: ac.signal }), { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
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
    await sock.send(Buffer.concat([Buffer.of(5), Buffer.from(JSON.stringify({ ipckit: 3, transport: 'unix-seqpacket', codec: 'raw', max: 1 << 20 }))]));
    const ch = (await it.next()).value as Channel<any>;
    const listenerHello = await theirs;
    assert.equal(listenerHello[0], 5);
    assert.deepEqual(JSON.parse(listenerHello.subarray(1).toString()), { ipckit: 3, transport: 'unix-seqpacket', codec: 'raw', max: 1 << 20 });
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

