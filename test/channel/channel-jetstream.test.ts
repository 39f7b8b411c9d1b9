// jetstream:// channels: what only JetStream has, over a real nats-server
// (test/channel/nats-server.ts, JetStream on, its store in a temporary directory):
// the server killed with SIGKILL and restarted on its store mid-stream while
// both directions stream (every message exactly once, in order), duplicates
// forced into the stream, a hostile publisher, streams deleted on a clean
// close, options, a server without JetStream, and the package missing. The
// parametrised suite runs over jetstream from test/channel/channel-jetstream-suite.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { channel, type Channel } from 'ipckit';
import { T, servers, seq, tag, until } from './channel-pair.js';
import { inspect, jsUrl, restartRun } from './jetstream-restart.js';
import { NatsServer, natsServerSkip } from './nats-server.js';
import { freeLoopbackPort, spawnNatsServer } from '../../dist/bench/nats-server.js';

const J = { ...T, ...(natsServerSkip ? { skip: natsServerSkip } : {}) };
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const closedInfo = (ch: Channel<any>) => (ch.closeInfo ? Promise.resolve(ch.closeInfo) : new Promise<any>((r) => ch.once('close', r)));
/** A link message as jetstream-link.ts lays it out: kind, u48 sequence number, body. */
function linkMessage(kind: number, n: number, body: Uint8Array): Buffer {
  const m = Buffer.alloc(7 + body.length);
  m[0] = kind;
  m.writeUIntLE(n, 1, 6);
  m.set(body, 7);
  return m;
}
/** A data message carrying a plain channel message (frame kind 0) with `payload`. */
const dataMessage = (n: number, payload: Uint8Array) => linkMessage(0, n, Buffer.concat([Buffer.from([0]), payload]));

/** A listener here and a connector here, on `server`: one channel, both ends in this process. */
async function localPair(server: NatsServer) {
  const url = jsUrl(server);
  const listener = await channel.listen<any>(url, { codec: 'raw' });
  servers.add(listener);
  const accepted = listener[Symbol.asyncIterator]().next();
  const client = await channel.connect<any>(url, { codec: 'raw' });
  const here = (await accepted).value as Channel<any>;
  return { url, listener, client, here };
}

describe('jetstream:// only', () => {
  test('nats-server killed with SIGKILL mid-stream and restarted on its store: the channel resumes, every message each way arrives exactly once, in order; the streams are gone after the close', J, async () => {
    await restartRun({ channels: 1, count: 30_000, kills: 1 });
  });

  test('duplicates forced into the stream (a publish retried with its Nats-Msg-Id, the same message stored twice, one stored ahead of its turn): the receiver gets each message once, in order', J, async () => {
    const server = await NatsServer.start();
    const { listener, client, here } = await localPair(server);
    const look = await inspect(server);
    const [stream] = await look.streams();
    const toListener = stream!.subjects.find((s) => s.endsWith('.l'))!;
    const got: number[] = [];
    here.on('message', (m: Buffer) => got.push(m.readUInt32LE(0)));
    for (let i = 0; i < 10; i++) await client.send(seq(i));
    await until(() => got.length === 10);
    const js = (await import('@nats-io/jetstream')).jetstream(look.nc);
    // The connector's retry of message 5 after a lost PubAck: the stream drops it (same Nats-Msg-Id).
    assert.equal((await js.publish(toListener, dataMessage(5, seq(5)), { msgID: 'c5' })).duplicate, true);
    // Messages 3 and 7 stored again under new ids: delivered again, dropped by their sequence numbers.
    for (const n of [3, 7]) assert.equal((await js.publish(toListener, dataMessage(n, seq(n)), { msgID: `again-${n}` })).duplicate, false);
    // Message 11 stored before 10 (a retry that overtook): held until 10 came; then its own copy is a duplicate.
    await js.publish(toListener, dataMessage(11, seq(11)), { msgID: 'early-11' });
    for (let i = 10; i < 20; i++) await client.send(seq(i));
    await until(() => got.length >= 20);
    // A round trip after them: anything still to arrive is in front of its answer.
    here.onRequest((m) => m);
    assert.equal(String(await client.request(Buffer.from('after'))), 'after');
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i));
    await client.close();
    assert.equal((await closedInfo(here)).reason, 'peer-closed');
    await listener.close();
    servers.delete(listener);
    await until(() => true);
    assert.deepEqual(await look.streams(), []);
    assert.deepEqual(await look.anchors(), [], 'the closed listener deleted its own stream');
    await look.close();
    await server.stop();
  });

  test('a hostile publisher fails only its channel: a message on the delivery subject not from the stream, an unknown kind, a sequence far ahead, a lie about credit are ERR_IPCKIT_BAD_FRAME', J, async () => {
    const server = await NatsServer.start();
    const look = await inspect(server);
    const js = (await import('@nats-io/jetstream')).jetstream(look.nc);
    const cases: Array<[string, (p: { toListener: string; deliver: string }) => Promise<unknown>]> = [
      ['not from the stream', async ({ deliver }) => look.nc.publish(deliver, dataMessage(0, seq(0)))],
      ['unknown kind', ({ toListener }) => js.publish(toListener, linkMessage(9, 0, Buffer.alloc(3)))],
      ['far ahead', ({ toListener }) => js.publish(toListener, dataMessage(1e9, seq(0)))],
      ['credit beyond what was sent', ({ toListener }) => js.publish(toListener, linkMessage(1, 0, Buffer.from(new Float64Array([1e6, 0, 0]).buffer)))],
      ['short credit', ({ toListener }) => js.publish(toListener, linkMessage(1, 0, Buffer.alloc(3)))],
    ];
    for (const [what, act] of cases) {
      // This channel's stream: the one that is new (an earlier case's may still be going).
      const before = new Set((await look.streams()).map((s) => s.name));
      const { listener, client, here } = await localPair(server);
      here.on('error', () => {});
      const stream = (await look.streams()).find((s) => !before.has(s.name));
      const toListener = stream!.subjects.find((s) => s.endsWith('.l'))!;
      const deliver = (await look.jsm.consumers.info(stream!.name, 'l')).config.deliver_subject!;
      await act({ toListener, deliver });
      const info = await closedInfo(here);
      assert.equal(info.reason, 'error', what);
      assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME', what);
      // The peer of the failed channel: its stream is gone, so it is lost within probeTimeout at most.
      client.on('error', () => {});
      await client.close();
      await listener.close();
      servers.delete(listener);
      await until(() => true);
    }
    await look.close();
    await server.stop();
  });

  test('options: allowUids refused, options.nats checked, URLs checked; a server without JetStream is a clear handshake error', J, async () => {
    const url = 'jetstream://127.0.0.1:4222/x';
    await assert.rejects(channel.listen(url, { allowUids: [0] }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.connect(url, { allowUids: [0] }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.connect(url, { nats: { server: ['a:1'] } as any }), { code: 'ERR_IPCKIT_UNKNOWN_OPTION', message: /did you mean servers/ });
    await assert.rejects(channel.connect(url, { nats: { probeTimeout: 5 } }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    for (const bad of ['jetstream://127.0.0.1:4222/', 'jetstream://127.0.0.1:4222/a*b', 'jetstream://127.0.0.1:4222/a..b', 'jetstream://127.0.0.1:4222/a?x=1', 'jetstream:///x']) {
      await assert.rejects(channel.connect(bad), { code: 'ERR_IPCKIT_INVALID_URL' }, bad);
    }
    // A server without -js.
    const port = await freeLoopbackPort();
    const plain = await spawnNatsServer(port);
    try {
      await assert.rejects(channel.listen(`jetstream://127.0.0.1:${port}/x`), { code: 'ERR_IPCKIT_HANDSHAKE', message: /no JetStream/ });
      // So nobody can listen there: a connect is refused.
      await assert.rejects(channel.connect(`jetstream://127.0.0.1:${port}/x`), { code: 'ECONNREFUSED' });
    } finally {
      plain.child.kill('SIGTERM');
      await plain.exited;
    }
  });
});

describe('without the JetStream client package', () => {
  test('a jetstream: URL is a clear error naming the package to install', T, async () => {
    // A resolve hook that answers for @nats-io/jetstream what Node's resolver says when a package is absent.
    const hook = `export async function resolve(s, c, next) { if (s === '@nats-io/jetstream') throw Object.assign(new Error("Cannot find package '" + s + "'"), { code: 'ERR_MODULE_NOT_FOUND' }); return next(s, c); }`;
    const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
    const script = `
      import { channel } from 'ipckit';
      const e = await channel.connect('jetstream://127.0.0.1:${await freeLoopbackPort()}/x').catch((e) => e);
      console.log(JSON.stringify({ code: e.code, message: e.message }));`;
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    assert.equal(await new Promise((r) => child.once('exit', r)), 0);
    const r = JSON.parse(out);
    // Nobody listens on that port: the package is missed before any connection is tried.
    assert.equal(r.code, 'ERR_IPCKIT_MISSING_PACKAGE');
    assert.match(r.message, /npm install @nats-io\/jetstream/);
  });
});
