// Channel.receiveEach() on every transport, between real processes (the peer
// is test/fixtures/channel-peer.ts): every message once, in order, every byte
// checked, with a Buffer per message and in place (raw codec: bytes, start,
// end); `max`; timeout and abort; a handler that throws; messages that
// arrived before the first call; 0 at the end. On shm: the in-place bytes are
// the ring itself: copies taken inside the handler stay right across many
// wrap-arounds, while the ring space itself is reused after the call.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MessageChannel } from 'node:worker_threads';
import { channel, type Channel, type RawChannel } from 'ipckit';
import { T, TRANSPORTS, pair, transportSkip, type Transport } from './channel-pair.js';

/** Message i of the peer's 'emit-varied': 1..1000 bytes, every byte derived from i (as in the fixture). */
function varied(i: number): Buffer {
  const b = Buffer.alloc(1 + ((i * 7919) % 1000));
  for (let k = 0; k < b.length; k++) b[k] = (i + k) & 255;
  return b;
}

const isShm = (t: Transport) => t === 'shm' || t === 'shm-nospin' || t === 'shm-shared';

/** Receives `n` messages in place; `check(i, bytes, start, end)` for each, in order. */
async function eachInPlace(ch: Channel<any>, n: number, check: (i: number, bytes: Buffer, start: number, end: number) => void): Promise<number> {
  let i = 0;
  let calls = 0;
  while (i < n) {
    const got = await ch.receiveEach((bytes: Buffer, start: number, end: number) => check(i++, bytes, start, end), { inPlace: true, timeout: 30_000 });
    assert.ok(got > 0, `the channel ended after ${i} of ${n}`);
    calls++;
  }
  assert.equal(i, n);
  return calls;
}

/** The sequence numbers of messages from the peer's 'emit' (u32 LE first). */
async function seqs(ch: Channel<any>, n: number, max?: number): Promise<{ got: number[]; calls: number[] }> {
  const got: number[] = [];
  const calls: number[] = [];
  while (got.length < n) {
    const k = await ch.receiveEach((m: Buffer) => got.push(m.readUInt32LE(0)), { timeout: 30_000, ...(max ? { max } : {}) });
    assert.ok(k > 0, `the channel ended after ${got.length} of ${n}`);
    calls.push(k);
  }
  return { got, calls };
}

const upTo = (n: number, from = 0) => Array.from({ length: n }, (_, k) => from + k);

describe('receiveEach', () => {
  for (const t of TRANSPORTS) {
    describe(t, { skip: transportSkip(t) }, () => {
      test('every message once, in order, every byte checked: varied sizes in place and as Buffers, large frames, 0 at the end', T, async () => {
        const { ch, peer, done } = await pair(t, { codec: 'raw' });
        try {
          const N = 3000;
          peer.send({ op: 'emit-varied', count: N });
          let wrong: string | null = null;
          const calls = await eachInPlace(ch, N, (i, bytes, start, end) => {
            assert.ok(Buffer.isBuffer(bytes));
            if (wrong === null && !varied(i).equals(bytes.subarray(start, end))) wrong = `message ${i}: ${end - start} bytes`;
          });
          assert.equal(wrong, null);
          assert.ok(calls < N, `${calls} calls for ${N} messages: runs are handed out together`);
          assert.deepEqual(await peer.next(), { op: 'emit-varied', sent: N });

          // A Buffer per message (what next() gives): kept past the call, still right.
          peer.send({ op: 'emit-varied', count: N });
          const kept: Buffer[] = [];
          while (kept.length < N) assert.ok((await ch.receiveEach((m: Buffer) => kept.push(m), { timeout: 30_000 })) > 0);
          kept.forEach((m, i) => assert.ok(varied(i).equals(m), `message ${i}`));
          assert.deepEqual(await peer.next(), { op: 'emit-varied', sent: N });

          // Frames of 2 KiB and more (copied by memcpy on shm: when not read in place).
          peer.send({ op: 'emit', count: 300, size: 5000 });
          await eachInPlace(ch, 300, (i, bytes, start, end) => {
            assert.equal(end - start, 5000);
            assert.equal(bytes.readUInt32LE(start), i);
            assert.equal(bytes[end - 1], 0);
          });
          assert.deepEqual(await peer.next(), { op: 'emit', sent: 300 });

          peer.send({ op: 'close' });
          assert.equal(await ch.receiveEach(() => assert.fail('nothing is left')), 0);
          assert.equal(await ch.receiveEach(() => assert.fail('nothing is left'), { inPlace: true }), 0);
          assert.equal(ch.closeInfo?.reason, 'peer-closed');
        } finally {
          await done();
        }
      });

      test('max bounds each call; messages that arrived before the first call come first, in order', T, async () => {
        const { ch, peer, done } = await pair(t, { codec: 'raw' });
        try {
          peer.send({ op: 'emit', count: 500 });
          assert.deepEqual(await peer.next(), { op: 'emit', sent: 500 });
          // All 500 were sent: on shm: they are in the ring or the channel, so the first call hands out exactly max
          // (elsewhere the kernel may still hold some).
          const first: number[] = [];
          const k = await ch.receiveEach((b: Buffer, s: number) => first.push(b.readUInt32LE(s)), { inPlace: true, max: 7 });
          assert.ok(isShm(t) ? k === 7 : k >= 1 && k <= 7, `the first call handed out ${k}`);
          assert.deepEqual(first, upTo(k));
          const rest = await seqs(ch, 500 - k, 7);
          assert.deepEqual(rest.got, upTo(500 - k, k));
          assert.ok(rest.calls.every((k) => k <= 7), `calls of ${rest.calls.join(',')}`);

          // One taken by next() and the rest waiting in the channel, then 50 more: all in order.
          peer.send({ op: 'emit', count: 50 });
          assert.deepEqual(await peer.next(), { op: 'emit', sent: 50 });
          assert.equal(((await ch.next()).value as Buffer).readUInt32LE(0), 0);
          peer.send({ op: 'emit', count: 50 });
          assert.deepEqual(await peer.next(), { op: 'emit', sent: 50 });
          const got: number[] = [];
          while (got.length < 99) assert.ok((await ch.receiveEach((b: Buffer, s: number) => got.push(b.readUInt32LE(s)), { inPlace: true, timeout: 30_000 })) > 0);
          assert.deepEqual(got, [...upTo(49, 1), ...upTo(50)]);

          assert.throws(() => ch.receiveEach(() => {}, { max: 0 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
          assert.throws(() => ch.receiveEach(() => {}, { max: 1.5 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
          assert.throws(() => ch.receiveEach(() => {}, { maxx: 3 } as never), { code: 'ERR_IPCKIT_UNKNOWN_OPTION' });
          assert.throws(() => ch.receiveEach('no' as never), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
          assert.throws(() => ch.receiveEach(() => {}, { timeout: -1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
        } finally {
          await done();
        }
      });

      test('timeout and abort end the wait and take nothing (ETIMEDOUT, ABORT_ERR); the timer goes with the wait', T, async () => {
        const { ch, peer, done } = await pair(t, { codec: 'raw' });
        try {
          await assert.rejects(ch.receiveEach(() => assert.fail(), { timeout: 20 }), { code: 'ETIMEDOUT', syscall: 'recv' });
          await assert.rejects(ch.receiveEach(() => assert.fail(), { inPlace: true, timeout: 20 }), { code: 'ETIMEDOUT' });
          await assert.rejects(ch.receiveEach(() => assert.fail(), { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
          const ac = new AbortController();
          const a = ch.receiveEach(() => assert.fail(), { signal: ac.signal, inPlace: true });
          const b = ch.receiveEach(() => assert.fail(), { signal: ac.signal });
          ac.abort(new Error('stop'));
          await assert.rejects(a, (e: Error) => (e as { code?: string }).code === 'ABORT_ERR' && (e.cause as Error).message === 'stop');
          await assert.rejects(b, { code: 'ABORT_ERR' });
          const timers = () => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
          const idle = timers();
          const got: number[] = [];
          const live = ch.receiveEach((m: Buffer) => got.push(m.readUInt32LE(0)), { timeout: 60_000 });
          peer.send({ op: 'emit', count: 3 });
          assert.ok((await live) >= 1);
          assert.equal(got[0], 0, 'the first message went to the live call, none to the cancelled ones');
          assert.ok(timers() <= idle, 'the timeout of a finished wait is cleared');
          got.push(...(await seqs(ch, 3 - got.length)).got);
          assert.deepEqual(got, [0, 1, 2]);
          assert.deepEqual(await peer.next(), { op: 'emit', sent: 3 });
        } finally {
          await done();
        }
      });

      test('a handler that throws: what it was given is consumed, the call rejects with its error, the rest wait in order', T, async () => {
        const { ch, peer, done } = await pair(t, { codec: 'raw' });
        try {
          peer.send({ op: 'emit', count: 20 });
          assert.deepEqual(await peer.next(), { op: 'emit', sent: 20 });
          const boom = new Error('boom');
          const seen: number[] = [];
          // Calls until the handler throws at message `at` (what is "available now" depends on the transport).
          const throwAt = async (at: number, inPlace: boolean) => {
            const take = (n: number) => {
              seen.push(n);
              if (seen.length === at + 1) throw boom;
            };
            for (;;) {
              const call = inPlace
                ? ch.receiveEach((b: Buffer, s: number) => take(b.readUInt32LE(s)), { inPlace: true })
                : ch.receiveEach((m: Buffer) => take(m.readUInt32LE(0)));
              const outcome = await call.then((n) => n, (e: unknown) => e);
              if (outcome === boom) return;
              assert.ok(typeof outcome === 'number' && outcome > 0 && seen.length <= at, `resolved with ${String(outcome)}`);
            }
          };
          await throwAt(2, true);
          assert.deepEqual(seen, [0, 1, 2], 'the message the handler threw at is consumed');
          await throwAt(4, false);
          assert.deepEqual(seen, [0, 1, 2, 3, 4]);
          assert.deepEqual((await seqs(ch, 15)).got, upTo(15, 5));
        } finally {
          await done();
        }
      });

      if (isShm(t)) {
        test('in place on shm: bytes are the ring itself, reused after the call; copies taken in the handler stay right across many wrap-arounds', T, async () => {
          // A small ring: 20,000 messages of ~500 bytes go round it ~150 times.
          const { ch, peer, done } = await pair(t, { codec: 'raw', ringSize: 64 * 1024, maxMessageSize: 4096 });
          try {
            const N = 20_000;
            peer.send({ op: 'emit-varied', count: N });
            const copies: Buffer[] = [];
            const views: Array<{ bytes: Buffer; start: number; end: number }> = [];
            await eachInPlace(ch, N, (i, bytes, start, end) => {
              copies.push(Buffer.from(bytes.subarray(start, end)));
              if (i % 1000 === 0) views.push({ bytes, start, end });
            });
            assert.deepEqual(await peer.next(), { op: 'emit-varied', sent: N });
            copies.forEach((m, i) => assert.ok(varied(i).equals(m), `copy of message ${i}`));
            // Read in the ring itself (one Buffer over the whole memory), unless the link had already taken
            // them into the channel (messages that arrive between two calls wait there as Buffers).
            const inRing = views.filter((v) => v.bytes.length > 64 * 1024);
            assert.ok(inRing.length >= views.length / 2, `${inRing.length} of ${views.length} sampled messages read in the ring`);
            assert.ok(inRing.every((v) => v.bytes === inRing[0]!.bytes), 'one Buffer over the ring for every message');
            const stale = views.filter((v, k) => v.bytes.length > 64 * 1024 && !varied(k * 1000).equals(v.bytes.subarray(v.start, v.end)));
            assert.ok(stale.length > 0, 'the ring space of a message is reused after its call');
          } finally {
            await done();
          }
        });

        test('sendBatch on shm: runs of small records made aside and copied in at once land right across many wrap-arounds', T, async () => {
          const { ch, peer, done } = await pair(t, { codec: 'raw', ringSize: 64 * 1024, maxMessageSize: 4096 });
          try {
            const N = 20_000;
            peer.send({ op: 'expect-varied', count: N });
            // Batches of 1..97 messages of 1..1000 bytes: runs end anywhere, also exactly at the ring's end.
            for (let i = 0; i < N; ) {
              const batch: Buffer[] = [];
              for (let k = 0; k < 1 + (i % 97) && i < N; k++) batch.push(varied(i++));
              await ch.sendBatch(batch);
            }
            assert.deepEqual(await peer.next(), { op: 'expect-varied', received: N, firstError: null });
          } finally {
            await done();
          }
        });
      }
    });
  }

  for (const sharedRing of [false, true]) {
    test(`shm${sharedRing ? ' (a sharedRing listener)' : ''}: in place, a run of 50,176 messages allocates nothing per message`, T, async () => {
      const url = `shm:ipckit-test-each-alloc-${process.pid}-${sharedRing ? 's' : 'p'}`;
      const server = await channel.listen(url, { codec: 'raw', sharedRing });
      const accepted = new Promise<Channel<Buffer>>((resolve) => server.once('connection', (ch) => resolve(ch as Channel<Buffer>)));
      const tx = await channel.connect(url, { codec: 'raw' });
      const rx = await accepted;
      try {
        const N = 196 * 256;
        const batch = Array.from({ length: 256 }, (_, k) => Buffer.alloc(64, k));
        const growth: number[] = [];
        for (let round = 0; round < 6; round++) {
          let got = 0;
          let sum = 0;
          let first = 0;
          const add = (bytes: Buffer, start: number) => {
            if (got === 0) first = process.memoryUsage().heapUsed;
            sum += bytes[start]!;
            if (++got === N) growth.push(process.memoryUsage().heapUsed - first);
          };
          // Waiting before the messages are sent: the link hands them all to this call in one run.
          const call = rx.receiveEach(add, { inPlace: true, max: N });
          for (let i = 0; i < N; i += 256) void tx.sendBatch(batch);
          let n = await call;
          while (n < N) n += await rx.receiveEach(add, { inPlace: true, max: N - n });
          assert.equal(sum, (N / 256) * 255 * 128);
        }
        // After the JIT has warmed up, a run grows the heap by what memoryUsage() itself makes (no GC in between: >= 0).
        assert.ok(growth.some((g) => g >= 0 && g < N / 16), `heap growth over runs of ${N} messages: ${growth.join(', ')} bytes`);
      } finally {
        await tx.close();
        await rx.close();
        await server.close();
      }
    });
  }

  test("inPlace needs codec 'raw'; a 'message' listener takes messages instead, as with next()", T, async () => {
    const url = `unix-abstract:ipckit-test-each-${process.pid}`;
    const server = await channel.listen(url);
    const accepted = new Promise<Channel<unknown>>((resolve) => server.once('connection', resolve));
    const a = await channel.connect(url);
    const b = await accepted;
    try {
      // (The types refuse it too: inPlaceNeedsBytes below.)
      await assert.rejects((b as unknown as Channel<unknown, Buffer>).receiveEach(() => {}, { inPlace: true }), { code: 'ERR_IPCKIT_CODEC' });
      const got: unknown[] = [];
      await a.send({ n: 1 });
      assert.equal(await b.receiveEach((m) => got.push(m)), 1);
      assert.deepEqual(got, [{ n: 1 }]);
    } finally {
      await a.close();
      await b.close();
      await server.close();
    }
  });

  test('shm: a message listener added while receiveEach() waits in place takes the messages; the call waits, then gets the next', T, async () => {
    const url = `shm:ipckit-test-each-${process.pid}`;
    const server = await channel.listen(url, { codec: 'raw' });
    const accepted = new Promise<Channel<Buffer>>((resolve) => server.once('connection', (ch) => resolve(ch as Channel<Buffer>)));
    const tx = await channel.connect(url, { codec: 'raw' });
    const rx = await accepted;
    try {
      const inPlace: number[] = [];
      const waiting = rx.receiveEach((bytes: Buffer, start: number) => inPlace.push(bytes[start]!), { inPlace: true });
      const heard = new Promise<Buffer>((resolve) => rx.once('message', resolve));
      await tx.send(Buffer.from([1]));
      assert.deepEqual([...(await heard)], [1]);
      await tx.send(Buffer.from([2]));
      assert.equal(await waiting, 1);
      assert.deepEqual(inPlace, [2]);
    } finally {
      await tx.close();
      await rx.close();
      await server.close();
    }
  });

  test('shm: in-place bytes copy at memcpy speed, are not detached by a transfer (the channel goes on), and stay readable after close and collection', T, async () => {
    const url = `shm:ipckit-test-each-alias-${process.pid}`;
    const server = await channel.listen(url, { codec: 'raw' });
    const accepted = new Promise<Channel<Buffer>>((resolve) => server.once('connection', (ch) => resolve(ch as Channel<Buffer>)));
    const tx = await channel.connect(url, { codec: 'raw' });
    const rx = await accepted;
    const port = new MessageChannel();
    let kept: Buffer | null = null;
    try {
      const big = Buffer.alloc(64 * 1024);
      for (let k = 0; k < big.length; k++) big[k] = (k * 31 + 7) & 255;
      await tx.send(big);
      const local = Buffer.alloc(big.length);
      let lengthAfter = -1;
      assert.equal(
        await rx.receiveEach(
          (bytes: Buffer, start: number, end: number) => {
            // A plain ArrayBuffer over the ring (V8 copies into a SharedArrayBuffer byte by byte when misaligned).
            assert.ok(bytes.buffer instanceof ArrayBuffer);
            bytes.copy(local, 0, start, end);
            // Listed for transfer, it is copied instead (markAsUntransferable): the ring stays attached.
            port.port1.postMessage(null, [bytes.buffer]);
            lengthAfter = bytes.length;
            kept = bytes;
          },
          { inPlace: true },
        ),
        1,
      );
      assert.ok(local.equals(big), 'the copy taken in the handler has every byte');
      assert.ok(lengthAfter > 0, 'a transfer did not detach the ring');
      await tx.send(Buffer.from('after'));
      const after: string[] = [];
      assert.equal(await rx.receiveEach((m: Buffer) => after.push(m.toString()), { timeout: 10_000 }), 1);
      assert.deepEqual(after, ['after'], 'the channel goes on');
    } finally {
      port.port1.close();
      await tx.close();
      await rx.close();
      await server.close();
    }
    // The SharedArrayBuffer of the rings may be collected now; the plain one
    // still maps the range, so reading it cannot fault.
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    await new Promise((r) => setImmediate(r));
    let sum = 0;
    for (let k = 0; k < kept!.length; k += 4096) sum += kept![k]!;
    assert.ok(sum >= 0);
  });
});

// Types (checked by the compiler): the handler gets Receive; in place, (bytes, start, end) and only with inPlace: true.
export function typesOfReceiveEach(raw: RawChannel, json: Channel<{ a: number }>): void {
  void raw.receiveEach((m) => {
    const b: Buffer = m;
    void b;
  });
  void raw.receiveEach(
    (bytes, start, end) => {
      const b: Buffer = bytes;
      const n: number = start + end;
      void b, n;
    },
    { inPlace: true, max: 10, timeout: 5 },
  );
  void json.receiveEach((m) => {
    const n: number = m.a;
    void n;
  });
  // @ts-expect-error an in-place handler needs { inPlace: true }
  void raw.receiveEach((bytes: Buffer, start: number, end: number) => void [bytes, start, end]);
}
export function inPlaceNeedsBytes(json: Channel<{ a: number }>): void {
  // @ts-expect-error in place is for channels that receive Buffers (codec 'raw')
  void json.receiveEach((bytes: Buffer, start: number, end: number) => void [bytes, start, end], { inPlace: true });
}
