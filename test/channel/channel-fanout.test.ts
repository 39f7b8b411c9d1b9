// channel.publish / channel.subscribe over a real nats-server
// (test/channel/nats-server.ts): every subscriber gets every message, in order per
// publisher, from the moment it subscribed; a loss is reported, never
// silent; malformed messages hurt only their publisher's stream; options,
// URLs, close and dispose. Forged publishers speak the wire format by hand
// with the raw NATS client (layout: src/channel/fanout-nats.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { channel, type MessagesLostError, type Publisher, type PublishOptions, type SubscribeOptions, type Subscriber } from 'ipckit';
import { startPeer } from '../helpers.js';
import { NatsServer, natsServerSkip } from './nats-server.js';

const T = { timeout: 30_000, ...(natsServerSkip ? { skip: natsServerSkip } : {}) };
const topic = () => `fanout-${process.pid}-${randomBytes(4).toString('hex')}`;
const HEADER = 13;

// Publishers and subscribers reconnect forever: whatever a failed test left open is closed at the end, or the file would never exit.
const opened = new Set<{ close(): Promise<void> }>();
after(() => Promise.all([...opened].map((o) => o.close())));
async function subscribe<T>(url: string, options?: SubscribeOptions<T>) {
  const sub = await channel.subscribe<T>(url, options);
  opened.add(sub);
  return sub;
}
async function publish<T>(url: string, options?: PublishOptions<T>) {
  const pub = await channel.publish<T>(url, options);
  opened.add(pub);
  return pub;
}

/** A publisher played by hand: messages of `kind` with any sequence number, or any bytes at all. */
async function forge(server: NatsServer, name: string) {
  const { connect } = await import('@nats-io/transport-node');
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  const id = randomBytes(8);
  const subject = `ipckit-pub.${name}`;
  return {
    id: id.toString('hex'),
    message(kind: number, seq: number, body: Uint8Array = Buffer.alloc(0)): Buffer {
      const m = Buffer.alloc(HEADER + body.length);
      m[0] = kind;
      id.copy(m, 1);
      m.writeUInt32LE(seq, 9);
      m.set(body, HEADER);
      return m;
    },
    json(seq: number, value: unknown): Buffer {
      return this.message(1, seq, Buffer.from(JSON.stringify(value)));
    },
    send(m: Uint8Array): void {
      nc.publish(subject, m);
    },
    async close(): Promise<void> {
      await nc.flush();
      await nc.close();
    },
  };
}

/** Resolves once `sub` has emitted `n` events `name` (listening from now), with what they carried. */
function events<E>(sub: Subscriber<any>, name: 'lost' | 'invalid', n: number): Promise<E[]> {
  const seen: E[] = [];
  return new Promise((resolve) => {
    sub.on(name, (e: any) => {
      seen.push(e);
      if (seen.length === n) resolve(seen);
    });
  });
}

async function take<T>(sub: Subscriber<T>, n: number): Promise<T[]> {
  const got: T[] = [];
  for (let k = 0; k < n; k++) got.push((await sub.next()).value as T);
  return got;
}

describe('publish/subscribe over nats://', () => {
  test('three subscribers in three processes each get every message of two publishers, in order per publisher', T, async () => {
    const server = await NatsServer.start();
    const url = server.url(topic());
    const COUNT = 20_000;
    const subs = [0, 1, 2].map(() => startPeer('fanout-peer', ['subscribe', url, String(2 * COUNT)]));
    for (const s of subs) assert.deepEqual(await s.next(), { subscribed: true });
    // One publisher here, one in a process of its own.
    const pub = await publish(url, { codec: 'raw' });
    const other = startPeer('fanout-peer', ['publish', url, String(COUNT), '2']);
    const m = Buffer.alloc(8);
    m.writeUInt32LE(1, 0);
    for (let n = 0; n < COUNT; n++) {
      m.writeUInt32LE(n, 4);
      const sent = pub.send(m);
      if ((n & 255) === 255) await sent;
    }
    await pub.close();
    assert.deepEqual(await other.next(), { published: COUNT });
    for (const s of subs) {
      assert.deepEqual(await s.next(), { received: 2 * COUNT, inOrder: true, lost: 0, invalid: 0, publishers: 2 });
      assert.equal((await s.exited).code, 0);
    }
    assert.equal((await other.exited).code, 0);
    await server.stop();
  });

  test('a subscriber that joins late gets exactly the messages published after subscribe() resolved; sendBatch() and flush()', T, async () => {
    const server = await NatsServer.start();
    const url = server.url(topic());
    const pub = await publish<number>(url);
    await pub.sendBatch(Array.from({ length: 100 }, (_, i) => i));
    // flush(): the server has them (and has handed them to the subscribers it had: none).
    await pub.flush();
    const sub = await subscribe<number>(url);
    for (let i = 100; i < 200; i++) void pub.send(i);
    await pub.flush();
    assert.deepEqual(await take(sub, 100), Array.from({ length: 100 }, (_, i) => 100 + i));
    // The end of a publisher that lost nothing reports nothing; a second publisher's message comes after it.
    await pub.close();
    const second = await publish<string>(url);
    await second.send('after');
    assert.equal((await sub.next()).value, 'after');
    assert.equal(sub.lost, 0);
    await second.close();
    await sub.close();
    await server.stop();
  });

  test('the channel codecs: v8 carries a Map, msgpack and json objects, raw bytes; a custom codec', T, async () => {
    const server = await NatsServer.start();
    const upper = { name: 'upper', encode: (s: string) => Buffer.from(s.toUpperCase()), decode: (b: Uint8Array) => Buffer.from(b).toString() };
    const cases: Array<[any, unknown, unknown]> = [
      ['v8', new Map([['eur', 108n]]), new Map([['eur', 108n]])],
      ['msgpack', { eur: 1.08, at: [1, 2] }, { eur: 1.08, at: [1, 2] }],
      ['json', { eur: 1.08 }, { eur: 1.08 }],
      ['raw', Buffer.from([0, 255, 7]), Buffer.from([0, 255, 7])],
      [upper, 'quiet', 'QUIET'],
    ];
    for (const [codec, sent, received] of cases) {
      const url = server.url(topic());
      const sub = await subscribe<unknown>(url, { codec });
      const pub = await publish<unknown>(url, { codec });
      await pub.send(sent);
      assert.deepEqual((await sub.next()).value, received, String(codec.name ?? codec));
      await pub.close();
      await sub.close();
    }
    await server.stop();
  });

  test('a gap in a publisher\'s sequence numbers: the iterator throws ERR_IPCKIT_MESSAGES_LOST in its place and goes on; with a listener, the \'lost\' event; an end message shows a loss just before it', T, async () => {
    const server = await NatsServer.start();
    const name = topic();
    const url = server.url(name);
    const plain = await subscribe<number>(url);
    const heard = await subscribe<number>(url);
    const losses = events<MessagesLostError>(heard, 'lost', 3);
    const f = await forge(server, name);
    for (const seq of [0, 1, 2, 5, 6]) f.send(f.json(seq, seq));
    // A tick says 8 messages were published so far (7 never came), then the end says 9 (8 never came).
    f.send(f.message(3, 8));
    f.send(f.message(2, 9));
    await f.close();

    assert.deepEqual(await take(plain, 3), [0, 1, 2]);
    const isLoss = (n: number) => (e: any) => e.code === 'ERR_IPCKIT_MESSAGES_LOST' && e.lost === n && e.publisher === f.id && new RegExp(`${n} messages? of publisher [0-9a-f]{16}`).test(e.message);
    await assert.rejects(plain.next(), isLoss(2));
    // The same iterator goes on after the gap: for await, catching the loss.
    const rest: number[] = [];
    let caught = 0;
    for (;;) {
      try {
        for await (const m of plain) {
          rest.push(m);
          if (rest.length === 2) break;
        }
        break;
      } catch (e) {
        assert.ok(isLoss(2)(e));
        caught++;
      }
    }
    assert.deepEqual(rest, [5, 6]);
    await assert.rejects(plain.next(), isLoss(1));
    await assert.rejects(plain.next(), isLoss(1));
    assert.equal(plain.lost, 4);

    assert.deepEqual(await take(heard, 5), [0, 1, 2, 5, 6]);
    const seen = await losses;
    assert.deepEqual(seen.map((e) => [e.code, e.lost, e.publisher]), [['ERR_IPCKIT_MESSAGES_LOST', 2, f.id], ['ERR_IPCKIT_MESSAGES_LOST', 1, f.id], ['ERR_IPCKIT_MESSAGES_LOST', 1, f.id]]);
    assert.equal(heard.lost, 4);
    assert.equal(caught, 0);
    await plain.close();
    await heard.close();
    await server.stop();
  });

  test('a subscriber that does not read holds highWaterMark messages and drops the rest, reported as lost: by the publisher\'s tick after its burst, by its end', T, async () => {
    const server = await NatsServer.start();
    const url = server.url(topic());
    const sub = await subscribe<number>(url, { highWaterMark: 10 });
    const lost = events<MessagesLostError>(sub, 'lost', 1);
    const pub = await publish<number>(url);
    const start = performance.now();
    await pub.sendBatch(Array.from({ length: 30 }, (_, i) => i));
    // Nothing follows the 30 but the publisher's tick, half a second later: by then 10 are held and 20 were dropped.
    const [e] = await lost;
    const ms = performance.now() - start;
    assert.equal(e!.lost, 20);
    assert.ok(ms >= 450 && ms < 3000, `the tick came ${ms.toFixed(0)} ms after the burst`);
    assert.deepEqual(await take(sub, 10), Array.from({ length: 10 }, (_, i) => i));
    // Another burst, then the end: the loss at its end is seen at once.
    const more = events<MessagesLostError>(sub, 'lost', 1);
    await pub.sendBatch(Array.from({ length: 15 }, (_, i) => 30 + i));
    await pub.close();
    assert.equal((await more)[0]!.lost, 5);
    assert.deepEqual(await take(sub, 10), Array.from({ length: 10 }, (_, i) => 30 + i));
    assert.equal(sub.lost, 25);
    await sub.close();
    await server.stop();
  });

  test('nats-server killed with SIGKILL mid-stream and restarted: both clients reconnect, the subscriber gets the rest in order, and every message is either received or counted as lost', T, async (t) => {
    const server = await NatsServer.start();
    const url = server.url(topic());
    const sub = await subscribe<number>(url);
    const pub = await publish<number>(url);
    try {
      let sent = 0;
      let stop = false;
      let stopped!: () => void;
      const stopping = new Promise<void>((r) => (stopped = r));
      let killedAt = -1;
      const publishing = (async () => {
        while (!stop) await pub.send(sent++);
      })();
      const got: number[] = [];
      let total = -1;
      let check!: () => void;
      const done = new Promise<void>((resolve) => (check = () => total >= 0 && got.length + sub.lost === total && resolve()));
      sub.on('lost', () => check());
      void (async () => {
        for await (const m of sub) {
          got.push(m);
          if (got.length === 2000 && killedAt < 0) {
            killedAt = sent;
            void server.kill().then(() => server.restart());
          }
          // Messages flow again, from after the restart: the stream can end.
          if (killedAt >= 0 && m > killedAt + 500 && !stop) {
            stop = true;
            stopped();
          }
          check();
        }
      })();
      await stopping;
      await publishing;
      total = sent;
      check();
      // The end message makes a loss after the last message that arrived visible too.
      await pub.close();
      await done;
      for (let k = 1; k < got.length; k++) assert.ok(got[k]! > got[k - 1]!, `message ${got[k]} after ${got[k - 1]}`);
      assert.equal(got.length + sub.lost, total);
      t.diagnostic(`${total} sent, ${got.length} received, ${sub.lost} reported lost`);
    } finally {
      await pub.close();
      await sub.close();
      await server.stop();
    }
  });

  test('hostile bytes are dropped and counted (ERR_IPCKIT_BAD_FRAME, ERR_IPCKIT_CODEC); the other publishers\' messages and the forger\'s own good ones arrive', T, async () => {
    const server = await NatsServer.start();
    const name = topic();
    const url = server.url(name);
    const sub = await subscribe<unknown>(url, { maxMessageSize: 64 });
    const quiet = await subscribe<unknown>(url, { maxMessageSize: 64 });
    const invalid = events<any>(sub, 'invalid', 8);
    const good = await publish<unknown>(url);
    await good.send('a');
    await good.flush();
    const f = await forge(server, name);
    f.send(Buffer.from([1, 2, 3, 4, 5]));                        // shorter than the header
    f.send(Buffer.alloc(0));                                     // empty
    f.send(f.message(9, 0, Buffer.from('"x"')));                  // unknown kind
    f.send(f.message(2, 0, Buffer.from('"x"')));                  // an end with a body
    f.send(f.message(3, 0, Buffer.from('"x"')));                  // a tick with a body
    f.send(f.json(0, 'x'.repeat(100)));                          // beyond maxMessageSize
    f.send(f.json(0, 'forged 0'));
    f.send(f.message(1, 1, Buffer.from('{not json')));            // takes its number, not decodable
    f.send(f.json(2, 'forged 2'));
    f.send(f.json(1, 'replayed 1'));                              // behind: a replay
    await f.close();
    await good.send('b');
    const expected = ['a', 'forged 0', 'forged 2', 'b'];
    assert.deepEqual(await take(sub, 4), expected);
    assert.deepEqual(await take(quiet, 4), expected);
    const codes = (await invalid).map((e) => e.code);
    assert.deepEqual(codes, [...Array(6).fill('ERR_IPCKIT_BAD_FRAME'), 'ERR_IPCKIT_CODEC', 'ERR_IPCKIT_BAD_FRAME']);
    for (const s of [sub, quiet]) {
      assert.equal(s.invalid, 8);
      assert.equal(s.lost, 0);
    }
    await good.close();
    await sub.close();
    await quiet.close();
    await server.stop();
  });

  test('the server\'s permissions: a subscription it refuses rejects subscribe() with EACCES; a publisher it refuses learns it at flush() and its sends fail with EACCES', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-fanout-'));
    try {
      const conf = join(dir, 'server.conf');
      const deny = { deny: ['ipckit-pub.secret'] };
      writeFileSync(conf, `authorization { users = [ { user: "app", password: "pw", permissions: ${JSON.stringify({ publish: deny, subscribe: deny })} } ] }\n`);
      const server = await NatsServer.start(['-c', conf]);
      const at = (name: string) => `nats://app:pw@127.0.0.1:${server.port}/${name}`;
      await assert.rejects(channel.subscribe(at('secret')), { name: 'IpcError', code: 'EACCES', syscall: 'subscribe', path: `nats://app:***@127.0.0.1:${server.port}/secret`, message: /Permissions Violation for Subscription to "ipckit-pub.secret"/ });
      const pub = await publish(at('secret'));
      // The password never shows (errors end up in logs).
      assert.equal(pub.url, `nats://app:***@127.0.0.1:${server.port}/secret`);
      await pub.send('dropped by the server');
      await assert.rejects(pub.flush(), { name: 'IpcError', code: 'EACCES', syscall: 'publish' });
      await assert.rejects(pub.send('again'), { code: 'EACCES' });
      await pub.close();
      // A wrong password: the server's refusal, which does not name the password either.
      const wrong = await channel.subscribe(`nats://app:not-it@127.0.0.1:${server.port}/open`, { timeout: 5000 }).catch((e) => e);
      assert.ok(wrong instanceof Error && !/not-it/.test(`${wrong.message} ${(wrong as any).path}`), String(wrong));
      // Other topics are allowed.
      const sub = await subscribe(at('open'));
      const ok = await publish(at('open'));
      await ok.send('fine');
      assert.equal((await sub.next()).value, 'fine');
      await ok.close();
      await sub.close();
      await server.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('close() and dispose: pending next() resolves done, send()/flush() after close reject with ERR_IPCKIT_CLOSED, close is idempotent', T, async () => {
    const server = await NatsServer.start();
    const url = server.url(topic());
    const sub = await subscribe(url);
    const pending = sub.next();
    await sub.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.deepEqual(await sub.next(), { value: undefined, done: true });
    assert.equal(sub.closed, true);
    await sub.close();
    const pub = await publish(url);
    assert.match(pub.id, /^[0-9a-f]{16}$/);
    await pub[Symbol.asyncDispose]();
    assert.equal(pub.closed, true);
    for (const call of [() => pub.send(1), () => pub.sendBatch([1]), () => pub.flush()]) await assert.rejects(call(), { code: 'ERR_IPCKIT_CLOSED' });
    await pub.close();
    const again = await subscribe(url);
    await again[Symbol.asyncDispose]();
    assert.equal(again.closed, true);
    await server.stop();
  });

  test('options and URLs are checked: other schemes name what is supported, sends are checked before anything goes out', T, async () => {
    const server = await NatsServer.start();
    const url = server.url(topic());
    for (const call of [() => channel.publish(url, { highWaterMark: 1 } as any), () => channel.subscribe(url, { codc: 'raw' } as any), () => channel.subscribe(url, { nats: { server: ['a:1'] } as any })]) {
      await assert.rejects(call(), { code: 'ERR_IPCKIT_UNKNOWN_OPTION' });
    }
    await assert.rejects(channel.subscribe(url, { codec: 'nope' as any }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.publish(url, { nats: { probeInterval: 100 } as any }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE', message: /probe/ });
    for (const options of [{ maxMessageSize: 0 }, { highWaterMark: 0 }, { timeout: -1 }]) {
      await assert.rejects(channel.subscribe(url, options), { code: 'ERR_IPCKIT_OUT_OF_RANGE' }, JSON.stringify(options));
    }
    for (const bad of ['shm:prices', 'unix:/tmp/x.sock', 'tcp://127.0.0.1:1']) {
      await assert.rejects(channel.publish(bad), { code: 'ERR_IPCKIT_INVALID_URL', message: /supports nats:\/\/; \w[\w-]*: is a channel transport/ }, bad);
    }
    await assert.rejects(channel.subscribe('foo:x'), { code: 'ERR_IPCKIT_INVALID_URL', message: /unknown scheme 'foo': subscribe\(\) supports nats:\/\// });
    await assert.rejects(channel.subscribe('prices'), { code: 'ERR_IPCKIT_INVALID_URL', message: /no scheme/ });
    await assert.rejects(channel.subscribe(42 as any), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    for (const bad of [`nats://127.0.0.1:${server.port}/`, `nats://127.0.0.1:${server.port}/a*b`, `nats://127.0.0.1:${server.port}/a.>`]) {
      await assert.rejects(channel.subscribe(bad), { code: 'ERR_IPCKIT_INVALID_URL' }, bad);
    }
    const port = server.port;
    // Sends are checked one by one; a batch as a whole.
    const sub = await subscribe<any>(url);
    const raw = await publish(url, { codec: 'raw', maxMessageSize: 8 });
    assert.equal(raw.maxMessageSize, 8);
    await assert.rejects(raw.send('text' as any), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(raw.send(Buffer.alloc(9)), { code: 'ERR_IPCKIT_MESSAGE_TOO_LARGE' });
    await assert.rejects(raw.sendBatch([Buffer.from('"ok"'), Buffer.alloc(9)]), { code: 'ERR_IPCKIT_MESSAGE_TOO_LARGE' });
    const json = await publish<unknown>(url);
    await assert.rejects(json.send(undefined), { code: 'ERR_IPCKIT_CODEC' });
    await json.send('only this');
    assert.equal((await sub.next()).value, 'only this');
    await raw.close();
    await json.close();
    await sub.close();
    await server.stop();
    // No server: the socket's refusal.
    await assert.rejects(channel.subscribe(`nats://127.0.0.1:${port}/x`), { name: 'IpcError', code: 'ECONNREFUSED' });
  });
});

// ---- types: `tsc -p test` builds this part, so a type regression breaks the build (never called) ----
type Same<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function same<A, B>(_: Same<A, B>): void {}

export async function fanoutTypes(url: string): Promise<void> {
  const raw = await channel.publish(url, { codec: 'raw' });
  same<typeof raw, Publisher<ArrayBufferView>>(true);
  const rawSub = await channel.subscribe(url, { codec: 'raw' });
  same<typeof rawSub, Subscriber<Buffer>>(true);
  const prices = await channel.subscribe<{ eur: number }>(url);
  for await (const m of prices) same<typeof m, { eur: number }>(true);
  prices.on('lost', (e) => same<[typeof e.lost, typeof e.publisher, typeof e.code], [number, string, 'ERR_IPCKIT_MESSAGES_LOST']>(true));
  prices.on('invalid', (e) => same<typeof e, Error>(true));
  const numbers = await channel.publish<number>(url);
  // @ts-expect-error a Publisher<number> sends numbers
  await numbers.send('text');
  // @ts-expect-error publish() has no highWaterMark
  await channel.publish(url, { highWaterMark: 1 });
}
