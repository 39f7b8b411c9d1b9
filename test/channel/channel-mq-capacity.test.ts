// How many mq: connections one user can hold: each connection's two queues
// are charged to the connecting user's RLIMIT_MSGQUEUE (819200 bytes by
// default), and the listener says how many connections that allows.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { channel, mq, type Channel, type ChannelServer } from 'ipckit';
import { forgeMqFrames } from './forge.js';
import { fixturesDir, otherUserFixtureSkip, startPeer, type Peer } from '../helpers.js';
import { urlFor } from './channel-pair.js';

const T = { timeout: 60_000 };
const peers = new Set<Peer>();
const servers = new Set<ChannelServer<unknown>>();
after(async () => {
  for (const p of peers) p.child.kill('SIGKILL');
  for (const s of servers) await s.close();
});

/** This process's soft RLIMIT_MSGQUEUE, as prlimit(1) reports it. */
function msgqueueLimit(): number {
  return Number(execFileSync('prlimit', ['--msgqueue', '--output=SOFT', '--noheadings', '--raw'], { encoding: 'utf8' }).trim());
}

/** A command run as `uid` (needs root to switch; our own uid runs it as it is). */
function asUser(uid: number, cmd: string, args: string[]): [string, string[]] {
  if (uid === process.getuid!()) return [cmd, args];
  return ['/usr/bin/setpriv', [`--reuid=${uid}`, '--regid=65534', '--clear-groups', '--', cmd, ...args]];
}

/**
 * What the kernel charges for one queue (ipc/mqueue.c): per message slot one
 * struct msg_msg (48 bytes on 64-bit) and the message size, plus one
 * priority-tree node (48 bytes) per slot up to MQ_PRIO_MAX.
 */
const queueBytes = (maxMessages: number, messageSize: number) => maxMessages * (48 + messageSize) + Math.min(maxMessages, 32768) * 48;

describe('mq: connections per user', () => {
  test('30 concurrent connections from 3 other processes all connect and answer a request', T, async () => {
    // The connectors' queues are charged to their user: one of its own (when we may switch), whose budget no other process shares.
    const uid = otherUserFixtureSkip === null ? randomInt(40000, 50000) : process.getuid!();
    const server = await channel.listen<unknown>(urlFor('mq'), { allowUids: [uid] });
    servers.add(server);
    const answered: Promise<unknown>[] = [];
    let allAccepted: () => void;
    const thirty = new Promise<void>((resolve) => (allAccepted = resolve));
    server.on('connection', (ch: Channel<unknown>) => {
      // The connector says hello first, so its request handler is in place before the request.
      const n = answered.length;
      answered.push(ch.next().then(() => ch.request({ n })));
      if (answered.length === 30) allAccepted();
    });
    const remote = [0, 1, 2].map(() => {
      const p = startPeer(...asUser(uid, process.execPath, [`${fixturesDir}/mq-capacity-peer.js`, 'connect', server.url, '10']));
      peers.add(p);
      return p;
    });
    for (const p of remote) {
      const r = await p.next<{ connected: number; error: { message: string } | null }>();
      assert.equal(r.error, null, `connection ${answered.length + 1} of 30 failed: ${r.error?.message}`);
      assert.equal(r.connected, 10);
    }
    await thirty;
    const replies = (await Promise.all(answered)) as Array<{ re: number; pid: number }>;
    assert.deepEqual(replies.map((r) => r.re), [...Array(30).keys()]);
    assert.equal(new Set(replies.map((r) => r.pid)).size, 3);
    for (const p of remote) {
      p.child.stdin!.end();
      assert.deepEqual(await p.exited, { code: 0, signal: null });
      peers.delete(p);
    }
    await server.close();
    servers.delete(server);
  });

  test('frames longer than one queue message travel in parts, in order, both ways, up to a large maxMessageSize', T, async () => {
    const maxMessageSize = 200_000;
    const server = await channel.listen<Buffer>(urlFor('mq'), { codec: 'raw', maxMessageSize });
    servers.add(server);
    const accepted = new Promise<Channel<Buffer>>((resolve) => server.once('connection', resolve));
    const client = await channel.connect<Buffer>(server.url, { codec: 'raw', maxMessageSize });
    const far = await accepted;
    far.onRequest((m) => Buffer.concat([m, m]));
    // Sizes around the part boundaries (1024-byte queue messages, a 5-byte first-part header) and up to the limit.
    const sizes = [1, 1018, 1019, 1020, 1024, 2043, 2044, 2045, 8187, 65_536, maxMessageSize];
    const body = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, k) => (seed * 31 + k) & 255));
    const sent = Promise.all(sizes.flatMap((size, i) => [client.send(body(size, i)), far.send(body(size, i + 100))]));
    for (const [ch, seed] of [[far, 0], [client, 100]] as const) {
      let i = 0;
      for await (const m of ch) {
        assert.ok(m.equals(body(sizes[i]!, i + seed)), `message ${i} (${sizes[i]} bytes)`);
        if (++i === sizes.length) break;
      }
    }
    await sent;
    const half = body(maxMessageSize / 2, 7);
    assert.ok(((await client.request(half)) as Buffer).equals(Buffer.concat([half, half])));
    await Promise.all([client.close(), far.close()]);
    await server.close();
    servers.delete(server);
  });

  test('a long frame whose parts lie is an error on that channel, before anything is allocated for it', T, async () => {
    const server = await channel.listen<Buffer>(urlFor('mq'), { codec: 'raw', maxMessageSize: 4096 });
    servers.add(server);
    const first = (total: number, bytes: number) => {
      const b = Buffer.alloc(5 + bytes, 7);
      b[0] = 6;
      b.writeUInt32LE(total, 1);
      return b;
    };
    const lies: Array<[string, Buffer[]]> = [
      ['announces more than maxMessageSize', [first(0xffffffff, 100)]],
      ['announces no more than its first part', [first(50, 100)]],
      ['has parts beyond what it announced', [first(300, 100), Buffer.alloc(201)]],
      ['first part shorter than its header', [Buffer.from([6, 1])]],
    ];
    for (const [what, parts] of lies) {
      const info = await forgeMqFrames(server, parts, { messageSize: 1024, helloExtra: { max: 4096 } });
      assert.equal(info.reason, 'error', what);
      assert.equal(info.error.code, 'ERR_IPCKIT_BAD_FRAME', what);
    }
    // The listener goes on: an honest long frame after the lies.
    const accepted = new Promise<Channel<Buffer>>((resolve) => server.once('connection', resolve));
    const client = await channel.connect<Buffer>(server.url, { codec: 'raw', maxMessageSize: 4096 });
    const far = await accepted;
    await client.send(Buffer.alloc(4096, 1));
    assert.ok(((await far.next()).value as Buffer).equals(Buffer.alloc(4096, 1)));
    await Promise.all([client.close(), far.close()]);
    await server.close();
    servers.delete(server);
  });

  test('the listener says how many connections the limit allows: at least 25 at the default limit', T, async () => {
    const server = await channel.listen<unknown>(urlFor('mq'));
    servers.add(server);
    const limit = msgqueueLimit();
    const perConnection = 2 * queueBytes(10, 1024);
    assert.equal(server.maxConnections, Math.floor(limit / perConnection));
    if (limit >= 819200) assert.ok(server.maxConnections! >= 25, `${server.maxConnections} connections`);
    // Small messages need smaller queues; transports without a per-user budget say nothing.
    const small = await channel.listen<unknown>(urlFor('mq'), { maxMessageSize: 59 });
    servers.add(small);
    assert.equal(small.maxConnections, Math.floor(limit / (2 * queueBytes(10, 64))));
    const unix = await channel.listen<unknown>(urlFor('unix-abstract'));
    servers.add(unix);
    assert.equal(unix.maxConnections, undefined);
    for (const s of [server, small, unix]) {
      await s.close();
      servers.delete(s);
    }
  });

  test('past a lowered limit, connect fails with EMFILE naming RLIMIT_MSGQUEUE', T, async () => {
    const perConnection = 2 * queueBytes(10, 1024);
    const limit = 3 * perConnection + 100;
    // A user of its own (when we may switch), so that no other process's queues share its budget.
    const own = otherUserFixtureSkip === null;
    const [cmd, args] = asUser(own ? randomInt(40000, 50000) : process.getuid!(), process.execPath, [`${fixturesDir}/mq-capacity-peer.js`, 'exhaust', urlFor('mq')]);
    const p = startPeer('/usr/bin/prlimit', [`--msgqueue=${limit}`, '--', cmd, ...args]);
    peers.add(p);
    assert.deepEqual(await p.next(), { maxConnections: 3 });
    const r = await p.next<{ connected: number; error: { code: string; message: string; limit: { name: string; value: number } } | null }>();
    assert.ok(r.error, `no connect failed (${r.connected} connections)`);
    if (own) assert.equal(r.connected, 3);
    else assert.ok(r.connected <= 3, `${r.connected} connections`);
    assert.equal(r.error.code, 'EMFILE');
    assert.deepEqual(r.error.limit, { name: 'RLIMIT_MSGQUEUE (ulimit -q)', value: limit });
    assert.match(r.error.message, /RLIMIT_MSGQUEUE/);
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    peers.delete(p);
  });
});
