// `ipckit bridge` between real processes: a local shm: or mq: channel and a
// tcp:// one, messages both ways in order, requests, a clean close (exit 0),
// backpressure (a receiver that does not read stops the bridge reading), and
// a lost side (exit 3, passed on as peer-lost).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { channel, type Channel } from 'ipckit';
import { startPeer } from '../helpers.js';
import { startCli } from './cli-run.js';
import { control, live, seq, settledWithin } from '../channel/channel-pair.js';

const T = { timeout: 60_000 };
const tag = () => `ipckit-bridge-${process.pid}-${randomBytes(4).toString('hex')}`;
const LISTENING = /^ipckit: listening on (\S+) \(pid \d+\)$/;
const listeningUrl = (line: string) => LISTENING.exec(line)![1]!;

/** A tcp:// listener in this process (the remote app) and its first channel, once a peer connects. */
async function remoteApp(options: { highWaterMark?: number } = {}) {
  const server = await channel.listen('tcp://127.0.0.1:0', { codec: 'raw', ...options });
  const accepted = new Promise<Channel<any>>((resolve) => server.once('connection', resolve));
  return { server, accepted };
}

/** The local app: channel-peer connected to `url` (raw codec), driven by JSON commands. */
async function localApp(url: string) {
  const p = startPeer('channel-peer', ['connect', url, JSON.stringify({ codec: 'raw' })]);
  live.add(p.child);
  const peer = control(p.child);
  assert.equal((await peer.next()).ready, true);
  return peer;
}

/** The peer's next line with `op` (its 'close' event line may come first). */
async function reply(peer: Awaited<ReturnType<typeof localApp>>, op: string): Promise<any> {
  for (;;) {
    const line = await peer.next();
    if (line.op === op) return line;
  }
}

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('ipckit bridge', () => {
  for (const local of ['shm', 'mq'] as const) {
    test(`${local}: ⇄ tcp://: 10,000 messages each way in order, requests through it, a clean close ends the bridge with 0 and the far side with peer-closed`, T, async () => {
      const N = 10_000;
      const remote = await remoteApp();
      const localUrl = local === 'shm' ? `shm:${tag()}` : `mq:/${tag()}`;
      const bridge = startCli(['bridge', '--listen-local', localUrl, remote.server.url]);
      assert.equal(listeningUrl(await bridge.stderrLine(LISTENING)), localUrl);
      const peer = await localApp(localUrl);
      const far = await remote.accepted;
      await bridge.stderrLine(/^ipckit: bridging /);
      // Both ways at once: the local app emits 0..N-1 while the remote app sends it 0..N-1.
      peer.send({ op: 'emit', count: N, size: 64 });
      const sending = (async () => {
        for (let i = 0; i < N; i++) {
          const p = far.send(seq(i));
          if ((i & 1023) === 1023) await p;
        }
      })();
      peer.send({ op: 'expect', count: N });
      let i = 0;
      for await (const m of far) {
        assert.equal((m as Buffer).readUInt32LE(0), i, `message ${i}`);
        if (++i === N) break;
      }
      await sending;
      const replies = [await peer.next(), await peer.next()];
      assert.deepEqual(replies.find((r) => r.op === 'emit'), { op: 'emit', sent: N });
      assert.deepEqual(replies.find((r) => r.op === 'expect'), { op: 'expect', received: N, firstError: null });
      // A request from the remote app is answered by the local one (channel-peer answers "re:" + the request).
      assert.equal(String(await far.request(Buffer.from('ping'), { timeout: 5000 })), 're:ping');
      // The local app closes: the bridge closes the remote side cleanly and exits with 0.
      const farClosed = new Promise<any>((r) => (far.closeInfo ? r(far.closeInfo) : far.once('close', r)));
      peer.send({ op: 'close' });
      await reply(peer, 'closed');
      assert.equal((await farClosed).reason, 'peer-closed');
      const r = await bridge.done;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /the local side \S+ closed/);
      assert.deepEqual(await far.next(), { value: undefined, done: true }, 'nothing after the last message');
      peer.child.stdin!.end();
      await peer.exited;
      await remote.server.close();
    });
  }

  test('backpressure: a remote app that does not read stops the bridge reading (the local sender waits, the bridge does not grow); then everything arrives in order', T, async () => {
    const N = 30_000;
    const SIZE = 1024;
    // The remote app takes nothing: its channel holds 16 messages, then the socket stops being read.
    const remote = await remoteApp({ highWaterMark: 16 });
    const localUrl = `shm:${tag()}`;
    const bridge = startCli(['bridge', '--listen-local', localUrl, remote.server.url]);
    await bridge.stderrLine(LISTENING);
    const peer = await localApp(localUrl);
    const far = await remote.accepted;
    await bridge.stderrLine(/^ipckit: bridging /);
    const before = rssKiB(bridge.child.pid!);
    peer.send({ op: 'emit', count: N, size: SIZE });
    // 30 MB would pass in well under a second; the local sender is still waiting a second later.
    const emitted = peer.next();
    assert.equal(await settledWithin(emitted, 1000), 'pending', 'the local sender finished: the bridge read everything');
    const grown = rssKiB(bridge.child.pid!) - before;
    assert.ok(grown < 64 * 1024, `the bridge grew by ${grown} KiB while its receiver did not read`);
    let i = 0;
    for await (const m of far) {
      if ((m as Buffer).readUInt32LE(0) !== i) assert.fail(`message ${i} arrived as ${(m as Buffer).readUInt32LE(0)}`);
      if (++i === N) break;
    }
    assert.deepEqual(await emitted, { op: 'emit', sent: N });
    peer.send({ op: 'close' });
    await reply(peer, 'closed');
    assert.equal((await bridge.done).code, 0);
    peer.child.stdin!.end();
    await peer.exited;
    await remote.server.close();
  });

  test('a lost side: the remote app killed, the bridge exits with 3 and the local app sees peer-lost after every message the remote sent', T, async () => {
    // The remote app is a process this time (channel-peer listening on tcp://), the local app this process, over mq:.
    const p = startPeer('channel-peer', ['listen', 'tcp://127.0.0.1:0', JSON.stringify({ codec: 'raw' })]);
    live.add(p.child);
    const far = control(p.child);
    const { listening } = await far.next();
    const localUrl = `mq:/${tag()}`;
    const bridge = startCli(['bridge', '--listen-local', localUrl, listening]);
    await bridge.stderrLine(LISTENING);
    const ch = await channel.connect(localUrl, { codec: 'raw' });
    assert.equal((await far.next()).ready, true);
    far.send({ op: 'emit', count: 500, size: 16 });
    assert.deepEqual(await far.next(), { op: 'emit', sent: 500 });
    p.child.kill('SIGKILL');
    const r = await bridge.done;
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /the remote side \(tcp:\/\/127\.0\.0\.1:\d+\) was lost/);
    let i = 0;
    for await (const m of ch) assert.equal((m as Buffer).readUInt32LE(0), i++);
    assert.equal(i, 500);
    assert.equal(ch.closeInfo?.reason, 'peer-lost');
    await ch.close();
    live.delete(p.child);
  });

  test('usage: a fifo: end, a bad codec and an unknown URL are usage errors (2)', T, async () => {
    for (const args of [['fifo:/tmp/x', 'tcp://127.0.0.1:1'], ['--codec', 'xml', 'shm:a', 'tcp://127.0.0.1:1'], ['nope:x', 'tcp://127.0.0.1:1']]) {
      const r = await startCli(['bridge', ...args]).done;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
