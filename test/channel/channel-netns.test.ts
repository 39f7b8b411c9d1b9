// Two "hosts": two network namespaces joined by a veth pair, addresses in a
// private /30 of the test's own, a listener in one and a connector in the
// other (`ip netns exec`), over tcp:// and tls://. The connector starts
// before its network is up (retry waits out ENETUNREACH); then the link is
// cut mid-stream and both ends must close with peer-lost within the
// heartbeat bound, having received everything up to then in order. Over
// nats:// the same with a nats-server in the first namespace, listening on
// its veth address, and publish/subscribe across the two. Traffic stays
// between the two namespaces.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { spawnNatsServer, type RunningNatsServer } from '../../dist/bench/nats-server.js';
import { fixturesDir, startPeer, type Peer } from '../helpers.js';
import { natsServerSkip } from './nats-server.js';
import { noOpenssl, tlsMaterial } from './tls-material.js';

const HEARTBEAT = { interval: 200, timeout: 1000 };
const T = { timeout: 30_000 };

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Why namespaces cannot be made here, or '' when they can (checked once). */
const nsUnavailable = (() => {
  const probe = `ipckit-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const r = ip('netns', 'add', probe);
  if (!r.ok) return `network namespaces are not permitted here (ip netns add: ${r.err || 'failed'}; needs root and the ip command from iproute2)`;
  ip('netns', 'del', probe);
  return '';
})();

const made = new Set<string>();
after(() => {
  for (const ns of made) ip('netns', 'del', ns);
});

type Hosts = ReturnType<typeof hosts>;

/** Two namespaces and a veth pair between them; `b`'s address is added by `connectB()`. */
function hosts() {
  const id = randomBytes(3).toString('hex');
  const a = `ipckit-${process.pid}-${id}-a`;
  const b = `ipckit-${process.pid}-${id}-b`;
  const va = `ipk${id}a`;
  const vb = `ipk${id}b`;
  // A /30 in 10.0.0.0/8 of this test's own: two hosts, .1 and .2.
  const net = `10.${randomBytes(1)[0]}.${randomBytes(1)[0]}.${(randomBytes(1)[0]! & 0x3f) << 2}`.split('.').map(Number);
  const addr = (host: number) => `${net[0]}.${net[1]}.${net[2]}.${net[3]! + host}`;
  const must = (...args: string[]) => {
    const r = ip(...args);
    assert.ok(r.ok, `ip ${args.join(' ')}: ${r.err}`);
  };
  for (const ns of [a, b]) {
    must('netns', 'add', ns);
    made.add(ns);
    must('-n', ns, 'link', 'set', 'lo', 'up');
  }
  must('link', 'add', va, 'netns', a, 'type', 'veth', 'peer', 'name', vb, 'netns', b);
  must('-n', a, 'addr', 'add', `${addr(1)}/30`, 'dev', va);
  must('-n', a, 'link', 'set', va, 'up');
  return {
    a,
    b,
    addrA: addr(1),
    /** Brings b's end up, with its address: until then b has no route to a. */
    connectB() {
      must('-n', b, 'addr', 'add', `${addr(2)}/30`, 'dev', vb);
      must('-n', b, 'link', 'set', vb, 'up');
    },
    /** Cuts the link: a's end goes down (b's loses its carrier). */
    cut() {
      must('-n', a, 'link', 'set', va, 'down');
    },
    remove() {
      for (const ns of [a, b]) {
        ip('netns', 'del', ns);
        made.delete(ns);
      }
    },
  };
}

/** The ip command by its path (startPeer takes a bare name for a fixture). */
const IP = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim() || '/usr/sbin/ip';

/** A fixture (test/fixtures/NAME.js) run inside network namespace `ns`. */
function peerIn(ns: string, args: string[], fixture = 'net-peer'): Peer {
  return startPeer(IP, ['netns', 'exec', ns, process.execPath, join(fixturesDir, `${fixture}.js`), ...args]);
}

/**
 * The two net-peer.js ends of a link, connected: once messages flow both
 * ways the link is cut, and each must close with peer-lost within
 * `[min, max)` ms (its cause `cause`, if given), having received at least 500
 * messages, in order, none twice, nothing that was not sent; then they exit
 * cleanly.
 */
async function streamThenCut(t: TestContext, h: Hosts, listener: Peer, connector: Peer, [min, max]: [number, number], cause?: string): Promise<void> {
  assert.deepEqual(await connector.next(), { ready: true });
  assert.deepEqual(await listener.next(), { ready: true });
  assert.deepEqual(await listener.next(), { flowing: true });
  assert.deepEqual(await connector.next(), { flowing: true });
  const cutAt = Date.now();
  h.cut();
  const ends = await Promise.all([listener.next<any>(), connector.next<any>()]);
  for (const [side, end] of [['listener', ends[0]], ['connector', ends[1]]] as const) {
    assert.equal(end.event, 'close', side);
    assert.equal(end.reason, 'peer-lost', `${side}: ${JSON.stringify(end)}`);
    assert.equal(end.code, 'ERR_IPCKIT_PEER_LOST');
    if (cause) assert.equal(end.cause, cause, `${side}: the cause`);
    assert.equal(end.inOrder, true, `${side}: every message in order, none twice`);
    assert.ok(end.received >= 500, `${side} received ${end.received}`);
    const ms = end.at - cutAt;
    assert.ok(ms >= min && ms < max, `${side}: peer-lost ${ms} ms after the cut`);
    t.diagnostic(`${side}: peer-lost ${ms} ms after the cut, ${end.received} messages received in order`);
  }
  // Nothing is delivered that was not sent, nothing twice.
  assert.ok(ends[0].received <= ends[1].sent && ends[1].received <= ends[0].sent, JSON.stringify(ends));
  for (const p of [listener, connector]) {
    p.child.stdin!.end();
    assert.equal((await p.exited).code, 0);
  }
}

for (const scheme of ['tcp', 'tls'] as const) {
  const tls = scheme === 'tls' ? tlsMaterial() : null;
  const skip = nsUnavailable || (scheme === 'tls' && !tls ? noOpenssl : '');
  describe(`two hosts over ${scheme}://`, () => {
    test('a connector started before its network is up connects once it is (retry); a cut link mid-stream ends both sides with peer-lost within the heartbeat bound, everything before it received in order', skip ? { ...T, skip } : T, async (t) => {
      const h = hosts();
      try {
        const listenOptions = { heartbeat: HEARTBEAT, ...(tls ? { tls: { key: tls.key, cert: tls.cert } } : {}) };
        // The certificate names localhost: the connector checks that name whatever the address.
        const connectOptions = { heartbeat: HEARTBEAT, retry: { delay: 20, maxDelay: 200 }, timeout: 10_000, ...(tls ? { tls: { ca: tls.ca, servername: 'localhost' } } : {}) };
        const listener = peerIn(h.a, ['listen', `${scheme}://${h.addrA}:0`, JSON.stringify(listenOptions)]);
        const { listening } = await listener.next<{ listening: string }>();
        const connector = peerIn(h.b, ['connect', listening, JSON.stringify(connectOptions)]);
        // b has no address yet: no route to a.
        assert.equal((await connector.next<{ firstTry: string }>()).firstTry, 'ENETUNREACH');
        h.connectB();
        // The silence bound, a tick (a quarter of the interval) to see it, and scheduling slack; the heartbeat finds it.
        await streamThenCut(t, h, listener, connector, [HEARTBEAT.timeout - 250, HEARTBEAT.timeout + 1000], 'ETIMEDOUT');
      } finally {
        h.remove();
      }
    });
  });
}

describe('two hosts over nats://', () => {
  const PROBE = { probeInterval: 50, probeTimeout: 1000 };
  const skip = nsUnavailable || natsServerSkip || '';
  test('a nats-server in one namespace on its veth address; a listener there, a connector in the other started before it (retry): a round trip, a stream each way in order, a cut link ends both with peer-lost within probeTimeout; publish/subscribe across the two', skip ? { ...T, skip } : T, async (t) => {
    const h = hosts();
    let server: RunningNatsServer | null = null;
    try {
      h.connectB();
      // Its own network: the default port is free there.
      server = await spawnNatsServer(4222, ['-a', h.addrA], [IP, 'netns', 'exec', h.a]);
      const topic = `nats://${h.addrA}:4222/ipckit-netns-fanout`;
      // Publish/subscribe: a subscriber on each side, a publisher on each side; every subscriber gets both streams whole, in order.
      const COUNT = 3000;
      const subs = [h.a, h.b].map((ns) => peerIn(ns, ['subscribe', topic, String(2 * COUNT)], 'fanout-peer'));
      for (const s of subs) assert.deepEqual(await s.next(), { subscribed: true });
      const pubs = [h.a, h.b].map((ns, k) => peerIn(ns, ['publish', topic, String(COUNT), String(k + 1)], 'fanout-peer'));
      for (const p of pubs) assert.deepEqual(await p.next(), { published: COUNT });
      for (const s of subs) assert.deepEqual(await s.next(), { received: 2 * COUNT, inOrder: true, lost: 0, invalid: 0, publishers: 2 });
      for (const p of [...subs, ...pubs]) assert.equal((await p.exited).code, 0);

      // A channel through the server.
      const url = `nats://${h.addrA}:4222/ipckit-netns`;
      // The connector starts first: nobody subscribes to the name yet (the server says so at once), and retry waits for the listener.
      const connector = peerIn(h.b, ['connect', url, JSON.stringify({ nats: PROBE, retry: { delay: 20, maxDelay: 200 }, timeout: 10_000 }), 'roundTrip']);
      assert.equal((await connector.next<{ firstTry: string }>()).firstTry, 'ECONNREFUSED');
      const listener = peerIn(h.a, ['listen', url, JSON.stringify({ nats: PROBE })]);
      assert.equal((await listener.next<{ listening: string }>()).listening, url);
      assert.deepEqual(await connector.next(), { roundTrip: true });
      // Cut, b loses the server (and with it the listener): neither side hears the other's answers to its probes.
      // The probe timeout, up to two intervals to send the probe, and scheduling slack.
      await streamThenCut(t, h, listener, connector, [PROBE.probeTimeout - 50, PROBE.probeTimeout + 1500]);
    } finally {
      if (server) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
      h.remove();
    }
  });
});
