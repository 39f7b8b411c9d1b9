// tcp:// and tls:// on real networks: the whole channel suite over tls://,
// heartbeats (a stopped peer is lost within the bound, a quiet or paused one
// is not), connect retry with jitter, and TLS refusals. Two hosts joined by a
// link that is cut: channel-netns.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { channel, type Channel } from 'ipckit';
import { retryPause } from '../../dist/channel/connect-policy.js';
import { defineTransportSuite } from './channel-suite.js';
import { T, connectExtras, listenExtras, pair, servers, urlFor } from './channel-pair.js';
import { noOpenssl, tlsMaterial } from './tls-material.js';

const tls = tlsMaterial();
if (tls) defineTransportSuite(['tls']);
else test('channel over tls', { skip: noOpenssl }, () => {});

const FAST = { interval: 100, timeout: 600 };
const NETS = ['tcp', 'tls'] as const;
const skipFor = (t: (typeof NETS)[number]) => (t === 'tls' && !tls ? { ...T, skip: noOpenssl } : T);
const closeOf = (ch: Channel<any>) => new Promise<any>((resolve) => (ch.closeInfo ? resolve(ch.closeInfo) : ch.once('close', resolve)));

describe('tcp:// and tls:// options', () => {
  test('heartbeat and tls are checked: unknown names, a timeout under 2 × interval, tls on tcp://, a tls:// listener without key and cert', T, async () => {
    await assert.rejects(channel.listen('tcp://127.0.0.1:0', { heartbeat: { intervl: 5 } as never }), { code: 'ERR_IPCKIT_UNKNOWN_OPTION', message: /did you mean interval/ });
    await assert.rejects(channel.listen('tcp://127.0.0.1:0', { heartbeat: { interval: 1000, timeout: 1500 } }), { name: 'RangeError', code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(channel.listen('tcp://127.0.0.1:0', { heartbeat: 'yes' as never }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(channel.connect('tcp://127.0.0.1:1', { tls: {} }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE', message: /tls:\/\/ channels only/ });
    await assert.rejects(channel.listen('tls://127.0.0.1:0'), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE', message: /needs options.tls.key and options.tls.cert/ });
    await assert.rejects(channel.listen('tls://127.0.0.1:0', { tls: { key: 'k', cert: 'c', ciphers: 'x' } as never }), { code: 'ERR_IPCKIT_UNKNOWN_OPTION' });
    await assert.rejects(channel.connect('tls://127.0.0.1:1', { tls: { ca: 7 } as never }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE', message: /options.tls.ca/ });
    await assert.rejects(channel.connect('tls://127.0.0.1:1', { tls: { rejectUnauthorized: 'no' } as never }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    await assert.rejects(channel.connect('tls://nohost'), { code: 'ERR_IPCKIT_INVALID_URL' });
  });

  test('retry pauses double up to maxDelay, each less a random part of up to half of it (jitter)', () => {
    const retry = { attempts: Infinity, delay: 50, maxDelay: 1000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => retryPause(retry, n, () => 1)), [50, 100, 200, 400, 800, 1000]);
    assert.deepEqual([1, 2, 6].map((n) => retryPause(retry, n, () => 0)), [25, 50, 500]);
    for (let n = 1; n < 40; n++) {
      const p = retryPause(retry, n);
      assert.ok(p >= 25 && p <= 1000, `pause ${p}`);
    }
  });
});

for (const t of NETS) {
  describe(`heartbeats over ${t}://`, () => {
    test('a peer that stops (SIGSTOP: its kernel still answers TCP) is peer-lost within the heartbeat timeout; pending requests and sends reject', skipFor(t), async (tt) => {
      const { ch, peer, done } = await pair(t, { codec: 'json', heartbeat: FAST });
      const closed = closeOf(ch);
      const pending = ch.request({ hang: true });
      const start = performance.now();
      peer.child.kill('SIGSTOP');
      try {
        const info = await closed;
        const ms = performance.now() - start;
        assert.equal(info.reason, 'peer-lost');
        assert.equal(info.error.code, 'ERR_IPCKIT_PEER_LOST');
        assert.equal(info.error.cause?.code, 'ETIMEDOUT');
        assert.match(info.error.cause.message, /heartbeat timeout 600 ms/);
        // Lost after `timeout` ms of silence, seen at the next tick (a quarter of the interval), plus scheduling; the
        // silence began with the peer's last ping, up to an interval and a tick before the signal.
        assert.ok(ms >= FAST.timeout - 2 * FAST.interval && ms < FAST.timeout + 600, `peer-lost after ${ms.toFixed(0)} ms`);
        tt.diagnostic(`peer-lost ${ms.toFixed(0)} ms after SIGSTOP`);
        await assert.rejects(pending, { code: 'ERR_IPCKIT_PEER_LOST' });
        await assert.rejects(ch.send(1), { code: 'ERR_IPCKIT_PEER_LOST' });
      } finally {
        peer.child.kill('SIGCONT');
      }
      await done();
    });

    test('a quiet peer, and a receiver paused by backpressure with the sender waiting, stay open for many timeouts; then every message arrives in order', skipFor(t), async () => {
      const { ch, peer, done } = await pair(t, { codec: 'raw', heartbeat: FAST, highWaterMark: 4 });
      ch.on('close', (info) => assert.fail(`closed while quiet: ${info.reason}`));
      // Quiet both ways: only pings.
      await new Promise((r) => setTimeout(r, 3 * FAST.timeout));
      // The peer floods us while we read nothing: our link pauses, its sends wait on a full socket.
      const N = 20_000;
      peer.send({ op: 'emit', count: N, size: 1024 });
      await new Promise((r) => setTimeout(r, 3 * FAST.timeout));
      assert.equal(ch.closed, false);
      ch.removeAllListeners('close');
      let i = 0;
      for await (const m of ch) {
        assert.equal((m as Buffer).readUInt32LE(0), i);
        if (++i === N) break;
      }
      assert.deepEqual(await peer.next(), { op: 'emit', sent: N });
      await done();
    });

    test('heartbeat: false on one side turns them off on both: the other side, which would call a silent peer lost after 600 ms, stays open', skipFor(t), async () => {
      const server = await channel.listen<any>(urlFor(t), { ...listenExtras(t), heartbeat: FAST });
      servers.add(server);
      const accepted = new Promise<Channel<any>>((r) => server.once('connection', r));
      const client = await channel.connect(server.url, { ...connectExtras(t), heartbeat: false });
      const peer = await accepted;
      await new Promise((r) => setTimeout(r, 3 * FAST.timeout));
      assert.equal(peer.closed, false);
      assert.equal(client.closed, false);
      await client.close();
      assert.equal((await closeOf(peer)).reason, 'peer-closed');
      await server.close();
      servers.delete(server);
    });
  });
}

describe('tls:// refusals', () => {
  const skip = tls ? T : { ...T, skip: noOpenssl };

  test('a connector that does not trust the certificate fails with ERR_IPCKIT_TLS saying so; a plain tcp:// connector fails its handshake; the listener serves the next good peer', skip, async () => {
    const m = tls!;
    const server = await channel.listen<any>('tls://127.0.0.1:0', { tls: { key: m.key, cert: m.cert } });
    servers.add(server);
    const errors: any[] = [];
    server.on('error', (e) => errors.push(e));
    // System CAs only, then another CA: the certificate does not verify.
    for (const tlsOptions of [{}, { ca: m.otherCa }]) {
      const e: any = await channel.connect(server.url, { tls: tlsOptions }).catch((e) => e);
      assert.equal(e.code, 'ERR_IPCKIT_TLS', e.message);
      assert.match(e.message, /TLS handshake failed: .*not trusted by this side \(give options.tls.ca/);
      assert.ok(e.cause?.code, 'the TLS error is the cause');
    }
    // The right CA, but a name the certificate does not carry.
    const port = new URL(server.url).port;
    const named: any = await channel.connect(`tls://127.0.0.1:${port}`, { tls: { ca: m.ca, servername: 'elsewhere.example' } }).catch((e) => e);
    assert.equal(named.code, 'ERR_IPCKIT_TLS');
    assert.equal(named.cause.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    // A plain TCP connector: its hello is no TLS record.
    const plain: any = await channel.connect(`tcp://127.0.0.1:${port}`, { timeout: 5000 }).catch((e) => e);
    assert.ok(['ERR_IPCKIT_HANDSHAKE', 'ECONNRESET'].includes(plain.code), `${plain.code}: ${plain.message}`);
    // The listener reported each failed handshake and goes on.
    const accepted = new Promise<Channel<any>>((r) => server.once('connection', r));
    const good = await channel.connect<any>(`tls://localhost:${port}`, { tls: { ca: m.ca } });
    const other = await accepted;
    await good.send({ over: 'tls' });
    assert.deepEqual((await other.next()).value, { over: 'tls' });
    assert.ok(errors.length >= 3, `${errors.length} handshake errors reported`);
    for (const e of errors) assert.equal(e.code, 'ERR_IPCKIT_TLS');
    await good.close();
    await other.close();
    await server.close();
    servers.delete(server);
  });
});
