// Timeouts, AbortSignals and retry on a channel's waits, over every
// transport where each applies: connect(url, { timeout, signal, retry }) (a
// client may start before its server; an aborted connect leaves nothing
// open), send/sendBatch/flush({ signal, timeout }) while the peer does not
// read (a send cancelled in the channel's own queue is never sent), and
// next/receiveBatch({ signal, timeout }) (a cancelled read takes nothing).
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { channel, type Channel, type ChannelOptions } from 'ipckit';
import { ONE_WAY, TRANSPORTS, listenExtras, pair, settledWithin, transportSkip, urlFor, type Transport } from './channel-pair.js';
import { startPeer } from '../helpers.js';
import { openFds } from './shm-fuzz.js';

const T = { timeout: 60_000 };
const CONNECTING = TRANSPORTS.filter((t): t is Exclude<Transport, 'pipe'> => t !== 'pipe');
/** What a connect says when nobody listens yet: no socket bound to the name, or no file. */
const NOBODY = /^(ECONNREFUSED|ENOENT)$/;

/** A port nobody listens on now (tcp:// needs the address before its listener exists). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function fixedUrl(t: Exclude<Transport, 'pipe'>): Promise<string> {
  return t === 'tcp' ? `tcp://127.0.0.1:${await freePort()}` : urlFor(t);
}

const sideOptions = (t: Transport): ChannelOptions<any> => (t === 'shm-nospin' ? { spin: false } : {});

/** Descriptors come back to `before` (some close a turn after their handle). */
async function fdsBackTo(before: number): Promise<number> {
  const end = Date.now() + 2000;
  while (openFds() > before && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return openFds();
}

/**
 * The open descriptor count once it stops changing: a socket the previous
 * test closed (a NATS client's, whose close() resolves before libuv's close
 * callback) may still be going away, and must not count as this test's.
 */
async function settledFds(): Promise<number> {
  let n = openFds();
  for (let same = 0; same < 3; ) {
    await new Promise((r) => setTimeout(r, 10));
    const now = openFds();
    same = now === n ? same + 1 : 0;
    n = now;
  }
  return n;
}

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('connect: retry, timeout, signal', () => {
  for (const t of CONNECTING) {
    test(`${t}: a client started before its server connects with retry once the server listens`, { ...T, skip: transportSkip(t) }, async () => {
      const url = await fixedUrl(t);
      await assert.rejects(channel.connect(url), (e: any) => NOBODY.test(e.code), 'nobody listens yet');
      const connecting = channel.connect<string>(url, { ...sideOptions(t), retry: { delay: 5, maxDelay: 20 }, timeout: 20_000 });
      // Let the client go first (a few refused attempts); the server then comes up.
      await new Promise((r) => setTimeout(r, 30));
      const server = await channel.listen<string>(url, { ...sideOptions(t), ...listenExtras(t) });
      try {
        const accepted = new Promise<Channel<string>>((resolve) => server.once('connection', resolve));
        const [ch, sch] = await Promise.all([connecting, accepted]);
        await ch.send('hello');
        assert.deepEqual(await sch.next(), { value: 'hello', done: false });
        await ch.close();
        await sch.close();
      } finally {
        await server.close();
      }
    });

    test(`${t}: nobody listens: the error at once without retry; with retry ETIMEDOUT at the timeout, the last error after attempts, ABORT_ERR on abort`, { ...T, skip: transportSkip(t) }, async () => {
      const url = await fixedUrl(t);
      const before = await settledFds();
      await assert.rejects(channel.connect(url), (e: any) => NOBODY.test(e.code));
      let t0 = Date.now();
      await assert.rejects(channel.connect(url, { retry: true, timeout: 300 }), (e: any) => {
        assert.equal(e.code, 'ETIMEDOUT');
        assert.match(e.cause?.code ?? '', NOBODY);
        return true;
      });
      const took = Date.now() - t0;
      assert.ok(took >= 290 && took < 1500, `ETIMEDOUT after ${took} ms (timeout 300)`);
      await assert.rejects(channel.connect(url, { retry: { attempts: 3, delay: 1 } }), (e: any) => NOBODY.test(e.code));
      t0 = Date.now();
      await assert.rejects(channel.connect(url, { retry: true, signal: AbortSignal.timeout(100) }), { code: 'ABORT_ERR', name: 'AbortError' });
      assert.ok(Date.now() - t0 < 1500, 'the abort ends the retries at once');
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      await assert.rejects(channel.connect(url, { signal: ac.signal }), (e: any) => e.code === 'ABORT_ERR' && e.cause?.message === 'stop');
      assert.equal(await fdsBackTo(before), before, 'no descriptor left');
    });
  }

  for (const t of CONNECTING) {
    test(`${t}: an abort during the handshake (listener stopped) rejects at once and leaves nothing open`, { ...T, skip: transportSkip(t) }, async (ctx) => {
      if (t === 'fifo') return ctx.skip('a fifo: writer has no handshake to wait in (abort while waiting for a reader is in fifo.test)');
      if (t === 'shm-shared') return ctx.skip('the same connector as shm: (the shared ring is the listener side)');
      const listener = startPeer('channel-peer', ['listen', t === 'tcp' ? 'tcp://127.0.0.1:0' : urlFor(t), JSON.stringify(sideOptions(t))]);
      try {
        const { listening } = await listener.next<{ listening: string }>();
        const before = await settledFds();
        listener.child.kill('SIGSTOP');
        const ac = new AbortController();
        const connecting = channel.connect(listening, { ...sideOptions(t), signal: ac.signal });
        const outcome = await settledWithin(connecting.then(() => 'connected', (e) => e), 100);
        assert.equal(outcome, 'pending', 'the stopped listener cannot answer the hello');
        const t0 = Date.now();
        ac.abort();
        await assert.rejects(connecting, { code: 'ABORT_ERR' });
        assert.ok(Date.now() - t0 < 500, 'rejected at once');
        listener.child.kill('SIGCONT');
        // The attempt the abort overtook completes now and is closed: the listener sees its channel close.
        // (It says it is ready first.)
        let seen: { event?: string; reason?: string };
        do seen = await listener.next<{ event?: string; reason?: string }>();
        while (seen.event !== 'close');
        assert.match(seen.reason!, /^peer-(closed|lost)$/);
        assert.equal(await fdsBackTo(before), before, 'no descriptor left');
      } finally {
        listener.child.kill('SIGCONT');
        listener.child.kill('SIGKILL');
        await listener.exited;
      }
    });
  }

  test('retry options are checked', async () => {
    await assert.rejects(channel.connect('shm:x', { retry: { attempt: 3 } as any }), { code: 'ERR_IPCKIT_UNKNOWN_OPTION' });
    await assert.rejects(channel.connect('shm:x', { retry: { attempts: 0 } }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(channel.connect('shm:x', { retry: 'yes' as any }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(channel.connect('shm:x', { signal: {} as any }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });
});

/** A cancelled message: were it sent, the peer would see this number out of sequence. */
const NOT_READ = 0xffffffff;
/** Message i: 4000 bytes, the number first (what channel-peer's expect checks). */
function big(i: number): Buffer {
  const b = Buffer.alloc(4000);
  b.writeUInt32LE(i, 0);
  return b;
}

describe('send, sendBatch, flush under a signal or timeout while the peer does not read', () => {
  for (const t of TRANSPORTS) {
    test(`${t}: a send cancelled while queued rejects (ABORT_ERR / ETIMEDOUT) and is never sent; the others arrive in order`, { ...T, skip: transportSkip(t) }, async (ctx) => {
      if (t === 'fifo') return ctx.skip(ONE_WAY);
      if (t === 'jetstream') return ctx.skip("jetstream: a send() resolves on the server's PubAck, so one pending 20 ms does not mean the transport is full, which this test needs to queue sends");
      const p = await pair(t, { codec: 'raw', highWaterMark: 16, maxMessageSize: 8000, ...(t.startsWith('shm') ? { ringSize: 65536 } : {}) });
      const { ch, peer } = p;
      try {
        // Fill the transport: send until a send stays pending, then enough
        // more to be sure the channel's own queue holds some.
        let n = 0;
        let last: Promise<void> = Promise.resolve();
        const all: Promise<void>[] = [];
        const push = () => all.push((last = ch.send(big(n++))));
        while (n < 100_000) {
          for (let k = 0; k < 32; k++) push();
          if ((await settledWithin(last, 20)) === 'pending') break;
        }
        for (let k = 0; k < 256; k++) push();
        assert.equal(await settledWithin(ch.flush({ timeout: 20 }).catch((e) => e.code), 1000), 'ETIMEDOUT', 'flush() waits while sends are queued');

        const ac = new AbortController();
        const aborted = ch.send(big(NOT_READ), { signal: ac.signal });
        const batch = ch.sendBatch([big(NOT_READ), big(NOT_READ)], { signal: ac.signal });
        ac.abort();
        await assert.rejects(aborted, { code: 'ABORT_ERR' });
        await assert.rejects(batch, { code: 'ABORT_ERR' });
        await assert.rejects(ch.send(big(NOT_READ), { timeout: 10 }), { code: 'ETIMEDOUT' });
        await assert.rejects(ch.send(big(NOT_READ), { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
        push();
        const flushed = ch.flush();
        peer.send({ op: 'expect', count: n });
        const got = await peer.next();
        assert.deepEqual(got, { op: 'expect', received: n, firstError: null }, 'every message but the cancelled ones, in order');
        await Promise.all(all);
        await flushed;
      } finally {
        await p.done();
      }
    });
  }
});

describe('next and receiveBatch under a signal or timeout', () => {
  for (const t of TRANSPORTS) {
    test(`${t}: a cancelled next()/receiveBatch() rejects (ABORT_ERR / ETIMEDOUT) and takes nothing; its timer goes when the wait ends`, { ...T, skip: transportSkip(t) }, async () => {
      const p = await pair(t, { codec: 'raw' });
      const { ch, peer } = p;
      try {
        await assert.rejects(ch.next({ timeout: 20 }), { code: 'ETIMEDOUT' });
        await assert.rejects(ch.receiveBatch(8, { timeout: 20 }), { code: 'ETIMEDOUT' });
        const ac = new AbortController();
        const next = ch.next({ signal: ac.signal });
        const batch = ch.receiveBatch(8, { signal: ac.signal });
        ac.abort();
        await assert.rejects(next, { code: 'ABORT_ERR' });
        await assert.rejects(batch, { code: 'ABORT_ERR' });
        await assert.rejects(ch.next({ signal: AbortSignal.abort() }), { code: 'ABORT_ERR' });
        const idle = timers();
        const first = ch.next({ timeout: 60_000 });
        peer.send({ op: 'emit', count: 3 });
        const r = await first;
        assert.equal((r.value as Buffer).readUInt32LE(0), 0, 'the first message went to the live read, none to the cancelled ones');
        assert.ok(timers() <= idle, 'the timeout of a finished wait is cleared');
        const rest: Buffer[] = [];
        while (rest.length < 2) rest.push(...((await ch.receiveBatch(8, { timeout: 30_000 })) as Buffer[]));
        assert.deepEqual(rest.map((b) => b.readUInt32LE(0)), [1, 2]);
        assert.equal((await peer.next()).op, 'emit');
      } finally {
        await p.done();
      }
    });
  }
});
