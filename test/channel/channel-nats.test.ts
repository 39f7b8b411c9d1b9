// nats:// channels: the parametrised channel suite over a real nats-server
// (this file's own, test/channel/nats-server.ts), then what only NATS has: the
// server killed and restarted mid-stream, no responders, a hostile peer
// speaking the link protocol by hand, options, and the client package missing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { channel, type Channel, type ChannelListenOptions as ListenOptions, type ChannelServer } from 'ipckit';
import { has, run, startPeer } from '../helpers.js';
import { T, control, live, servers, seq, tag, until, type Control } from './channel-pair.js';
import { defineTransportSuite } from './channel-suite.js';
import { forgeNats } from './nats-forge.js';
import { NatsServer, natsServerSkip } from './nats-server.js';

defineTransportSuite(['nats']);

const N = { ...T, ...(natsServerSkip ? { skip: natsServerSkip } : {}) };
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const closedInfo = (ch: Channel<any>) => (ch.closeInfo ? Promise.resolve(ch.closeInfo) : new Promise<any>((r) => ch.once('close', r)));

/** A listener here (with `options`) and `count` peer processes connected to it over `server`. */
async function group(server: NatsServer, count: number, options: ListenOptions<any> = {}) {
  const url = server.url(`ipckit-test-${tag()}`);
  const listener = await channel.listen<any>(url, { codec: 'raw', ...options });
  servers.add(listener);
  const it = listener[Symbol.asyncIterator]();
  const pairs: Array<{ ch: Channel<any>; peer: Control }> = [];
  for (let k = 0; k < count; k++) {
    const p = startPeer('channel-peer', ['connect', url, '{"codec":"raw"}']);
    live.add(p.child);
    const peer = control(p.child);
    const [conn, hello] = await Promise.all([it.next(), peer.next()]);
    assert.equal(hello.ready, true);
    pairs.push({ ch: conn.value as Channel<any>, peer });
  }
  return { url, listener, pairs };
}

/** Ends the peers (SIGKILL for those still running), the listener and the server of a test. */
async function teardown(server: NatsServer, listener: ChannelServer<any>, peers: Control[]): Promise<void> {
  for (const peer of peers) {
    peer.child.kill('SIGKILL');
    await peer.exited;
    live.delete(peer.child);
  }
  await listener.close();
  servers.delete(listener);
  await server.stop();
}

describe('nats:// only', () => {
  test('nats-server killed with SIGKILL mid-stream, then restarted: every channel ends with peer-lost, what arrived is in order, and the listener serves again', N, async () => {
    const server = await NatsServer.start();
    const { url, listener, pairs } = await group(server, 3);
    const COUNT = 2_000_000;
    // Both ways on every channel: the peer emits, this side sends to a peer that expects.
    const got = pairs.map(() => 0);
    const readers = pairs.map(async ({ ch, peer }, k) => {
      peer.send({ op: 'emit', count: COUNT, size: 8 });
      for await (const m of ch) {
        const n = (m as Buffer).readUInt32LE(0);
        if (n !== got[k]) assert.fail(`message ${got[k]} arrived as ${n}`);
        got[k]!++;
      }
      return got[k]!;
    });
    const writers = pairs.map(async ({ ch, peer }) => {
      peer.send({ op: 'expect', count: COUNT });
      let sent = 0;
      try {
        for (; sent < COUNT; sent++) {
          const p = ch.send(seq(sent));
          p.catch(() => {});
          if ((sent & 1023) === 1023) await p;
        }
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'ERR_IPCKIT_PEER_LOST');
      }
      return sent;
    });
    // Mid-stream: once every channel has carried thousands of messages.
    await until(() => got.every((n) => n > 5000));
    await server.kill();
    const infos = await Promise.all(pairs.map(({ ch }) => closedInfo(ch)));
    for (const info of infos) {
      assert.equal(info.reason, 'peer-lost');
      assert.equal(info.error.code, 'ERR_IPCKIT_PEER_LOST');
    }
    const received = await Promise.all(readers);
    await Promise.all(writers);
    for (const got of received) assert.ok(got > 0 && got < COUNT, `${got} of ${COUNT} received before the loss`);
    // The peers saw the same: their channel ended with peer-lost, and what they read was in order.
    for (const { peer } of pairs) {
      const lines = [await peer.next(), await peer.next(), await peer.next()];
      const close = lines.find((l) => l.event === 'close');
      assert.equal(close?.reason, 'peer-lost', JSON.stringify(lines));
      const expect = lines.find((l) => l.op === 'expect');
      assert.match(expect.firstError, /^channel ended after \d+$/, JSON.stringify(lines));
      assert.ok(expect.received > 0 && expect.received < COUNT);
    }
    for (const { peer } of pairs) {
      peer.child.stdin!.end();
      await peer.exited;
      live.delete(peer.child);
    }
    // The listener's client reconnects and subscribes again: a new connect (retrying while it does) is served.
    await server.restart();
    const accepted = listener[Symbol.asyncIterator]().next();
    const again = await channel.connect<any>(url, { codec: 'raw', retry: { delay: 20, maxDelay: 100 }, timeout: 20_000 });
    const ch = (await accepted).value as Channel<any>;
    await again.send(Buffer.from('after the restart'));
    assert.equal(String((await ch.next()).value), 'after the restart');
    await again.close();
    assert.equal((await closedInfo(ch)).reason, 'peer-closed');
    await teardown(server, listener, []);
  });

  test('a peer process killed with SIGKILL while this side streams to it: send() rejects with peer-lost within 1 s', N, async () => {
    const server = await NatsServer.start();
    const { listener, pairs } = await group(server, 1);
    const { ch, peer } = pairs[0]!;
    peer.send({ op: 'expect', count: 1e9 });
    const closed = closedInfo(ch);
    let killedAt = 0;
    const sending = (async () => {
      for (let i = 0; ; i++) {
        const p = ch.send(seq(i));
        p.catch(() => {});
        if (i === 50_000) {
          killedAt = performance.now();
          peer.child.kill('SIGKILL');
        }
        if ((i & 1023) === 1023) await p;
      }
    })();
    await assert.rejects(sending, { code: 'ERR_IPCKIT_PEER_LOST' });
    const ms = performance.now() - killedAt;
    assert.equal((await closed).reason, 'peer-lost');
    assert.ok(ms < 1000, `peer-lost after ${ms.toFixed(0)} ms`);
    await teardown(server, listener, [peer]);
  });

  test('a partition (the peer stopped with SIGSTOP: its connection and subscription stay, nothing answers) is peer-lost after probeTimeout', N, async () => {
    const server = await NatsServer.start();
    const { listener, pairs } = await group(server, 1, { nats: { probeInterval: 50, probeTimeout: 500 } });
    const { ch, peer } = pairs[0]!;
    const start = performance.now();
    peer.child.kill('SIGSTOP');
    const info = await closedInfo(ch);
    const ms = performance.now() - start;
    assert.equal(info.reason, 'peer-lost');
    assert.match(info.error.cause?.message ?? info.error.message, /no answer from the peer to a probe/);
    assert.ok(ms >= 500 && ms < 3000, `peer-lost after ${ms.toFixed(0)} ms (probeTimeout 500)`);
    await teardown(server, listener, [peer]);
  });

  test('nobody listening: connect() rejects with ECONNREFUSED at once; no server at all: ECONNREFUSED too', N, async () => {
    const server = await NatsServer.start();
    const start = performance.now();
    await assert.rejects(channel.connect(server.url(`nobody-${tag()}`)), { name: 'IpcError', code: 'ECONNREFUSED', syscall: 'connect' });
    const ms = performance.now() - start;
    assert.ok(ms < 1000, `refused after ${ms.toFixed(0)} ms`);
    const port = server.port;
    await server.stop();
    await assert.rejects(channel.connect(`nats://127.0.0.1:${port}/x`), { name: 'IpcError', code: 'ECONNREFUSED' });
  });

  test('a hostile peer only fails its own channel: a gap in the sequence is peer-lost, an unknown kind, a frame too long or a lie about credit is ERR_IPCKIT_BAD_FRAME', N, async () => {
    const server = await NatsServer.start();
    const url = server.url(`ipckit-test-${tag()}`);
    const listener = await channel.listen<any>(url, { codec: 'raw', maxMessageSize: 1024 });
    servers.add(listener);
    const it = listener[Symbol.asyncIterator]();
    const good = await channel.connect<any>(url, { codec: 'raw' });
    const goodHere = (await it.next()).value as Channel<any>;

    const cases: Array<[string, (f: Awaited<ReturnType<typeof forgeNats>>) => void, string, string?]> = [
      ['gap', (f) => (f.send(f.data(Buffer.from('one'))), f.send(f.message(0, Buffer.from([0, 1]), 5))), 'peer-lost', 'one'],
      ['unknown kind', (f) => f.send(f.message(9, Buffer.alloc(3))), 'error'],
      ['too long', (f) => f.send(f.data(Buffer.alloc(2000))), 'error'],
      ['empty data', (f) => f.send(f.message(0, Buffer.alloc(0))), 'error'],
      ['credit beyond what was sent', (f) => f.send(f.message(1, Buffer.from(new Float64Array([1e6, 0]).buffer))), 'error'],
      ['credit for messages never sent', (f) => f.send(f.message(1, Buffer.from(new Float64Array([0, 5]).buffer))), 'error'],
      ['short credit', (f) => f.send(f.message(1, Buffer.alloc(3))), 'error'],
      ['channel frame of an unknown kind', (f) => f.send(f.message(0, Buffer.from([0xee, 1, 2]))), 'error'],
    ];
    for (const [what, act, reason, delivered] of cases) {
      const conn = it.next();
      const f = await forgeNats(url, { codec: 'raw' });
      const ch = (await conn).value as Channel<any>;
      const got: string[] = [];
      ch.on('message', (m) => got.push(String(m)));
      ch.on('error', () => {});
      act(f);
      const info = await closedInfo(ch);
      assert.equal(info.reason, reason, `${what}: ${info.error?.message}`);
      if (reason === 'error') assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME', what);
      if (delivered) assert.deepEqual(got, [delivered], `${what}: what came before it was delivered`);
      await f.close();
    }
    // A peer that ignores credit: the channel here does not read (highWaterMark reached), so nothing is granted back.
    {
      // 5 MB in 1000-byte messages: beyond the 4 MiB window of bytes; then 9000 one-byte messages: beyond the 8192 of the window of messages.
      for (const [count, size] of [[5000, 1000], [9000, 1]] as const) {
        const conn = it.next();
        const f = await forgeNats(url, { codec: 'raw' });
        const ch = (await conn).value as Channel<any>;
        ch.on('error', () => {});
        for (let k = 0; k < count; k++) f.send(f.data(Buffer.alloc(size)));
        const info = await closedInfo(ch);
        assert.equal(info.reason, 'error');
        assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME');
        assert.match(info.error.message, /beyond the credit/);
        await f.close();
      }
    }
        // A hello that names a subject of its own choosing is refused: the listener never publishes where a peer says.
    await assert.rejects(forgeHello(url, { subject: 'ipckit.elsewhere' }), /private subject/);
    await assert.rejects(forgeHello(url, { window: 10 }), /window/);
    await assert.rejects(forgeHello(url, { frames: 0 }), /window of messages/);
    await assert.rejects(forgeHello(url, { codec: 'json' }), /codec/);
    // The good channel next to them is unaffected.
    await good.send(Buffer.from('still fine'));
    assert.equal(String((await goodHere.next()).value), 'still fine');
    await good.close();
    await goodHere.close();
    await teardown(server, listener, []);
  });

  test('several listeners of one name share the connections (queue group)', N, async () => {
    const server = await NatsServer.start();
    const url = server.url(`ipckit-test-${tag()}`);
    const a = await channel.listen<any>(url);
    const b = await channel.listen<any>(url);
    const counts = { a: 0, b: 0 };
    a.on('connection', (ch) => (counts.a++, ch.onRequest(() => 'a')));
    b.on('connection', (ch) => (counts.b++, ch.onRequest(() => 'b')));
    const answers = new Set<unknown>();
    for (let k = 0; k < 24 && answers.size < 2; k++) {
      const ch = await channel.connect<any>(url);
      answers.add(await ch.request('who'));
      await ch.close();
    }
    assert.deepEqual([...answers].sort(), ['a', 'b']);
    assert.ok(counts.a > 0 && counts.b > 0);
    await a.close();
    await b.close();
    await server.stop();
  });

  test('options: allowUids refused (NATS cannot tell who is at the other end), options.nats checked, URLs checked', N, async () => {
    const url = 'nats://127.0.0.1:4222/x';
    await assert.rejects(channel.listen(url, { allowUids: [0] }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.connect(url, { allowUids: [0] }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    await assert.rejects(channel.connect(url, { nats: { server: ['a:1'] } as any }), { code: 'ERR_IPCKIT_UNKNOWN_OPTION', message: /did you mean servers/ });
    await assert.rejects(channel.connect(url, { nats: { servers: 'a:1' } as any }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(channel.connect(url, { nats: { probeTimeout: 5 } }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(channel.connect(url, { nats: { probeInterval: 5 } }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    for (const bad of ['nats://127.0.0.1:4222/', 'nats://127.0.0.1:4222/a*b', 'nats://127.0.0.1:4222/a..b', 'nats://127.0.0.1:4222/a?x=1', 'nats:///x']) {
      await assert.rejects(channel.connect(bad), { code: 'ERR_IPCKIT_INVALID_URL' }, bad);
    }
  });

  test('user and password in the URL reach the server; wrong ones are an error, not a hang', N, async () => {
    const server = await NatsServer.start(['--user', 'ipckit', '--pass', 'p@ss word']);
    const url = `nats://ipckit:${encodeURIComponent('p@ss word')}@127.0.0.1:${server.port}/auth-${tag()}`;
    const listener = await channel.listen<any>(url);
    listener.on('connection', (ch) => ch.onRequest((m) => m));
    const ch = await channel.connect<any>(url);
    assert.equal(await ch.request('ok'), 'ok');
    await ch.close();
    await assert.rejects(channel.connect(url.replace('ipckit:', 'someone:')), (e: any) => /auth/i.test(e.message));
    await listener.close();
    await server.stop();
  });
});

describe('nats:// over TLS', () => {
  const skip = natsServerSkip ?? (has('openssl') ? undefined : 'openssl is not installed (it makes the test certificates)');
  test('options.nats.tls reaches the client: with the CA the channel works, without it the connect fails', { ...T, ...(skip ? { skip } : {}) }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-nats-tls-'));
    try {
      // A CA and a server certificate for 127.0.0.1 (the client checks the name localhost for it), made here.
      const ssl = (...args: string[]) => run('openssl', args);
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=ipckit test CA', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'));
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'));
      writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
      ssl('x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', join(dir, 'san.ext'), '-out', join(dir, 'server.pem'));
      const server = await NatsServer.start(['--tls', '--tlscert', join(dir, 'server.pem'), '--tlskey', join(dir, 'server.key')]);
      const url = server.url(`tls-${tag()}`);
      const nats = { tls: { caFile: join(dir, 'ca.pem') } };
      const listener = await channel.listen<any>(url, { nats });
      listener.on('connection', (ch) => ch.onRequest((m) => m));
      const ch = await channel.connect<any>(url, { nats });
      assert.equal(await ch.request('over tls'), 'over tls');
      await ch.close();
      // The server's certificate is not signed by any CA the system trusts.
      await assert.rejects(channel.connect(url, { timeout: 5000 }));
      await listener.close();
      await server.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('without the NATS client package', () => {
  test('a nats: URL is a clear error naming the package to install; other transports work', T, async () => {
    // A resolve hook that answers for @nats-io/* what Node's resolver says when a package is absent.
    const hook = `export async function resolve(s, c, next) { if (s.startsWith('@nats-io/')) throw Object.assign(new Error("Cannot find package '" + s + "'"), { code: 'ERR_MODULE_NOT_FOUND' }); return next(s, c); }`;
    const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
    const script = `
      import { channel } from 'ipckit';
      const e = await channel.connect('nats://127.0.0.1:4222/x').catch((e) => e);
      const server = await channel.listen('unix-abstract:ipckit-test-nonats-${tag()}');
      const ch = await channel.connect(server.url);
      await ch.close(); await server.close();
      console.log(JSON.stringify({ code: e.code, message: e.message, unix: 'ok' }));`;
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
    const r = JSON.parse(out);
    assert.equal(r.code, 'ERR_IPCKIT_MISSING_PACKAGE');
    assert.match(r.message, /npm install @nats-io\/transport-node/);
    assert.equal(r.unix, 'ok');
  });
});

/** A hello by hand with some fields replaced; resolves with the listener's answer, rejects with its refusal. */
async function forgeHello(url: string, fields: Record<string, unknown>): Promise<unknown> {
  const { connect } = await import('@nats-io/transport-node');
  const u = new URL(url);
  const nc = await connect({ servers: `${u.hostname}:${u.port}` });
  try {
    const hello = { ipckit: 3, transport: 'nats', codec: 'raw', max: 1000, subject: `_IPCKIT.${'0'.repeat(32)}`, window: 1 << 22, frames: 8192, ...fields };
    const reply = (await nc.request(`ipckit.${u.pathname.slice(1)}`, JSON.stringify(hello), { timeout: 5000 })).json<any>();
    if (reply.error) throw new Error(reply.message);
    return reply;
  } finally {
    await nc.close();
  }
}
