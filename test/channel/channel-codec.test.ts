// Codec failures, on every transport: a message the codec cannot encode is
// refused by send() with ERR_IPCKIT_CODEC and nothing is sent; loan() and
// publish() (bytes as they are) are refused on a channel whose codec is not
// 'raw'; a frame the receiving codec cannot decode (a buggy or hostile peer)
// fails that channel alone, never the process.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { Packr } from 'msgpackr';
import { channel, type Channel, type ChannelServer, type Codec } from 'ipckit';
import { forgeSysv, type SysvForgery } from './forge.js';
import { fixturesDir } from '../helpers.js';
import { T, TRANSPORTS, control, listenExtras, live, pair, servers, transportSkip, urlFor, type Transport } from './channel-pair.js';

type CodecName = 'json' | 'v8' | 'msgpack';
const CODECS: readonly CodecName[] = ['json', 'v8', 'msgpack'];

function cyclic(): object {
  const o: Record<string, unknown> = { name: 'loop' };
  o.self = o;
  return o;
}

/** What each codec refuses to encode (json: BigInt, cycles; v8: functions, symbols; msgpack: symbols, BigInt beyond 64 bits, cycles). */
const UNENCODABLE: Record<CodecName, Array<[string, unknown]>> = {
  json: [
    ['a BigInt', { n: 1n }],
    ['a cycle', cyclic()],
  ],
  v8: [
    ['a function', { f: () => 1 }],
    ['a symbol', { s: Symbol('s') }],
  ],
  msgpack: [
    ['a symbol', { s: Symbol('s') }],
    ['a BigInt beyond 64 bits', { n: 2n ** 70n }],
    ['a cycle', cyclic()],
  ],
};

/** Bytes each codec cannot decode. */
const UNDECODABLE: Record<CodecName, Uint8Array> = {
  json: Buffer.from('{"unterminated": '),
  v8: Buffer.from([1, 2, 3]),
  msgpack: Buffer.from([0x92, 0x01]), // an array of two that holds one element
};

const packr = new Packr({ useRecords: false });
const encoders: Record<CodecName, (v: unknown) => Uint8Array> = {
  json: (v) => Buffer.from(JSON.stringify(v)),
  v8: (v) => serialize(v),
  msgpack: (v) => packr.pack(v),
};

/**
 * A peer's codec that goes by `name` (so the handshake passes) but sends
 * bytes that codec cannot decode for the message 'garbage' (a buggy or
 * hostile peer); everything else it encodes properly.
 */
function liar(name: CodecName): Codec<unknown> {
  return {
    name,
    encode: (v) => (v === 'garbage' ? UNDECODABLE[name] : encoders[name](v)),
    decode: () => assert.fail('the lying end only sends'),
  };
}

/** A codec of the user's own whose decode throws what is not an Error (null: reading its message throws in turn). */
const buggy: Codec<unknown> = {
  name: 'buggy',
  encode: (v) => Buffer.from(JSON.stringify(v)),
  decode: (b) => {
    const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString();
    if (text === '"garbage"') throw null;
    return JSON.parse(text);
  },
};

/**
 * Options every end of transport `t` needs besides the test's own; small
 * messages, so that mq: queues stay small (all of a user's queues share
 * RLIMIT_MSGQUEUE, 800 KiB by default).
 */
const extras = (t: Transport): { spin?: false; maxMessageSize: number } => ({ maxMessageSize: 1024, ...(t === 'shm-nospin' ? { spin: false } : {}) });

/** Channels a failed assertion left open: closed in teardown, so that the file ends. */
const opened = new Set<Channel<any>>();
after(async () => {
  for (const ch of opened) await ch.close();
});
function track<C extends Channel<any>>(ch: C): C {
  opened.add(ch);
  ch.once('close', () => opened.delete(ch));
  return ch;
}

interface SendingEnd {
  tx: Channel<any>;
  /** The receiving end when it is in this process (not pipe:, whose far end is a forked peer). */
  rx: Channel<any> | null;
  /** The next message that reached the far end. */
  arrived(): Promise<unknown>;
  done(): Promise<void>;
}

/**
 * A channel over `t` whose end `tx` sends: a listener and its connector in
 * this process (fifo: the connector is the writing end), or for pipe: a
 * forked peer that echoes what it gets and answers requests with { re: n }.
 */
async function sendingEnd(t: Transport, codec: CodecName | 'raw', answer: (m: any) => unknown = (m) => ({ re: m.n })): Promise<SendingEnd> {
  if (t === 'pipe') {
    const { ch, peer, done } = await pair('pipe', { codec });
    track(ch);
    peer.send({ op: 'echo' });
    await peer.next();
    return { tx: ch, rx: null, arrived: async () => (await ch.next()).value, done };
  }
  const server = await channel.listen<any>(urlFor(t), { codec, ...extras(t), ...listenExtras(t) });
  servers.add(server);
  const accepted = server[Symbol.asyncIterator]().next();
  const tx = track(await channel.connect<any>(server.url, { codec, ...extras(t) }));
  const rx = track((await accepted).value as Channel<any>);
  if (t !== 'fifo') rx.onRequest(answer);
  return {
    tx,
    rx,
    arrived: async () => (await rx.next()).value,
    done: async () => {
      await tx.close();
      await rx.close();
      await server.close();
      servers.delete(server);
    },
  };
}

function isCodecError(e: any, codec: string): true {
  assert.equal(e.code, 'ERR_IPCKIT_CODEC', e.message);
  assert.ok(e instanceof TypeError, `a TypeError, not ${e.constructor?.name}`);
  assert.ok(e.cause instanceof Error, 'cause: the codec error');
  assert.ok(e.message.includes(codec) && e.message.includes(e.cause.message), e.message);
  return true;
}

for (const t of TRANSPORTS) {
  const twoWay = t !== 'fifo';
  describe(`codec errors over ${t}`, { skip: transportSkip(t) }, () => {
    test('send(), sendBatch() and request() of what the codec cannot encode reject with ERR_IPCKIT_CODEC (cause: the codec error); nothing is sent; the channel stays usable', T, async () => {
      for (const codec of CODECS) {
        const [, unencodable] = UNENCODABLE[codec][0]!;
        const end = await sendingEnd(t, codec, (m) => (m.reply === 'unencodable' ? unencodable : { re: m.n }));
        for (const [what, value] of UNENCODABLE[codec]) {
          const label = `${codec}: ${what}`;
          await assert.rejects(end.tx.send(value), (e) => isCodecError(e, codec), label);
          await assert.rejects(end.tx.sendBatch([{ first: 'fine' }, value]), (e) => isCodecError(e, codec), label);
          if (twoWay) await assert.rejects(end.tx.request(value, { timeout: 10_000 }), (e) => isCodecError(e, codec), label);
        }
        // The first message to arrive is the next good one: nothing of the refused ones went out.
        await end.tx.send({ after: codec });
        assert.deepEqual(await end.arrived(), { after: codec });
        if (twoWay) assert.equal(((await end.tx.request({ n: 5 }, { timeout: 10_000 })) as { re: number }).re, 5);
        // A reply the answering side cannot encode fails that request, with the code, not the channel.
        if (twoWay && end.rx) {
          await assert.rejects(end.tx.request({ reply: 'unencodable' }, { timeout: 10_000 }), { code: 'ERR_IPCKIT_REMOTE', remoteCode: 'ERR_IPCKIT_CODEC' });
          assert.deepEqual(await end.tx.request({ n: 6 }, { timeout: 10_000 }), { re: 6 });
        }
        assert.equal(end.tx.closeInfo, null);
        assert.equal(end.rx?.closeInfo ?? null, null);
        await end.done();
      }
    });

    test('loan() and publish() on a channel whose codec is not raw are refused at once with ERR_IPCKIT_CODEC; the peer is unaffected', T, async () => {
      for (const codec of CODECS) {
        const end = await sendingEnd(t, codec);
        await assert.rejects(end.tx.loan(16), { code: 'ERR_IPCKIT_CODEC', message: new RegExp(`'raw'.*${codec}`) });
        assert.throws(() => end.tx.publish(Buffer.alloc(16)), { code: 'ERR_IPCKIT_CODEC' });
        await end.tx.send({ after: codec });
        assert.deepEqual(await end.arrived(), { after: codec });
        assert.equal(end.rx?.closeInfo ?? null, null);
        assert.equal(end.tx.closeInfo, null);
        await end.done();
      }
    });

    test('a frame the codec cannot decode fails only that channel with ERR_IPCKIT_CODEC (error event, iterator, closeInfo); nothing after it is delivered or answered; the process goes on', T, async () => {
      if (t === 'pipe') return await undecodableToForkedPeer();
      for (const codec of [...CODECS, buggy] as const) {
        const name = typeof codec === 'string' ? codec : codec.name;
        const server: ChannelServer<any> = await channel.listen<any>(urlFor(t), { codec, ...extras(t), ...listenExtras(t) });
        servers.add(server);
        const it = server[Symbol.asyncIterator]();
        const accepted = it.next();
        const bad = track(await channel.connect<any>(server.url, { codec: typeof codec === 'string' ? liar(codec) : codec, ...extras(t) }));
        const rx = track((await accepted).value as Channel<any>);
        // fifo: takes one writer at a time: no second channel next to the bad one.
        let good: { tx: Channel<any>; rx: Channel<any> } | null = null;
        if (twoWay) {
          const next = it.next();
          const tx: Channel<any> = track(await channel.connect<any>(server.url, { codec, ...extras(t) }));
          good = { tx, rx: track((await next).value as Channel<any>) };
          rx.onRequest(() => 'answered');
        }
        const errors: Error[] = [];
        rx.on('error', (e) => errors.push(e));
        const closed = new Promise<any>((resolve) => rx.once('close', resolve));
        const pending = rx.next();
        // Three frames written before the receiver runs: they reach it together.
        void bad.send('garbage').catch(() => {});
        void bad.send('after the garbage').catch(() => {});
        const request = twoWay ? bad.request('a question after the garbage', { timeout: 10_000 }).then((v) => ({ answered: v }), (e) => ({ code: e.code })) : null;

        await assert.rejects(pending, (e: any) => {
          assert.equal(e.code, 'ERR_IPCKIT_CODEC', `${name}: ${e.message}`);
          assert.ok(e.message.includes(name), e.message);
          if (codec === buggy) assert.ok('cause' in e && e.cause === null, 'cause: the null the codec threw');
          else assert.ok(e.cause instanceof Error, 'cause: the codec error');
          return true;
        });
        const info = await closed;
        assert.equal(info.reason, 'error');
        assert.equal(info.error.code, 'ERR_IPCKIT_CODEC');
        assert.deepEqual(errors, [info.error]);
        assert.equal(rx.closeInfo, info);
        assert.deepEqual(await rx.next(), { value: undefined, done: true }, `${name}: nothing after the undecodable frame is delivered`);
        if (request) assert.ok(!('answered' in (await request)), `${name}: a request after the undecodable frame is not answered`);
        // The channel next to it, on the same listener, goes on.
        if (good) {
          await good.tx.send({ still: name });
          assert.deepEqual((await good.rx.next()).value, { still: name });
          await good.tx.close();
          await good.rx.close();
        }
        await bad.close();
        await server.close();
        servers.delete(server);
      }
      // raw has no undecodable frame: whatever bytes come are the message.
      const end = await sendingEnd(t, 'raw');
      if (end.rx) {
        await end.tx.send(UNDECODABLE.v8);
        assert.deepEqual([...((await end.arrived()) as Buffer)], [...UNDECODABLE.v8]);
      }
      await end.done();
    });
  });
}

/** pipe:'s far end is a forked peer: this process lies, the peer's channel fails alone and the peer goes on (and exits 0). */
async function undecodableToForkedPeer(): Promise<void> {
  for (const codec of CODECS) {
    const { child, channel: forked } = await channel.fork(join(fixturesDir, 'channel-peer.js'), ['forked', '', JSON.stringify({ codec })], {
      codec: liar(codec),
      transport: 'pipe',
      fork: { stdio: ['pipe', 'pipe', 'inherit'] },
    });
    const ch = track(forked);
    live.add(child);
    const peer = control(child);
    assert.equal((await peer.next()).ready, true);
    // The peer reads one message: the undecodable frame comes first, then a good one.
    peer.send({ op: 'expect', count: 1 });
    void ch.send('garbage').catch(() => {});
    void ch.send(0).catch(() => {});
    const request = ch.request({ n: 1 }, { timeout: 10_000 }).then((v) => ({ answered: v }), (e) => ({ code: e.code }));
    const lines = [await peer.next(), await peer.next()];
    const closed = lines.find((l) => 'event' in l);
    const read = lines.find((l) => !('event' in l));
    assert.deepEqual(closed, { event: 'close', reason: 'error', code: 'ERR_IPCKIT_CODEC' });
    assert.equal(read?.error?.code, 'ERR_IPCKIT_CODEC', `${codec}: the peer's read fails with the codec error, not with the message after it: ${JSON.stringify(read)}`);
    assert.ok(!('answered' in (await request)), `${codec}: a request after the undecodable frame is not answered`);
    // The peer is alive and still answers on its control channel.
    peer.send({ op: 'close' });
    assert.deepEqual(await peer.next(), { op: 'closed', reason: 'error' });
    await ch.close();
    child.stdin!.end();
    assert.equal(await peer.exited, 0);
    live.delete(child);
  }
}

describe('codec errors: the queue a peer removed', () => {
  test('sysvmq: a send after the peer removed its queues (as its side ends) is a rejected promise, never a throw', T, async () => {
    const server = await channel.listen<any>(urlFor('sysvmq'), { codec: 'raw' });
    servers.add(server);
    let forged: SysvForgery | undefined;
    try {
      forged = await forgeSysv(server);
      const ch = track(forged.ch);
      const closed = new Promise<any>((resolve) => ch.once('close', resolve));
      // What a peer does as its side ends, before its hang-up arrives.
      forged.up.remove();
      forged.down.remove();
      let sent!: Promise<void>;
      assert.doesNotThrow(() => (sent = ch.send(Buffer.from('to nobody'))));
      const outcome = sent.then(() => 'resolved', (e) => e.code);
      forged.client.close();
      assert.equal((await closed).reason, 'peer-lost');
      assert.equal(await outcome, 'ERR_IPCKIT_PEER_LOST');
    } finally {
      forged?.cleanup();
      await server.close();
      servers.delete(server);
    }
  });
});
