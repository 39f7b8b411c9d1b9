// The run behind the jetstream:// server-restart tests (channel-jetstream.test.ts
// and, heavier, stress/channel-jetstream.stress.ts): `channels` channels to
// peer processes streaming `count` messages both ways while nats-server is
// killed with SIGKILL and restarted on its store `kills` times, each at a
// point further into the stream; every message must arrive exactly once, in
// order, each way, and the channels' streams must be gone after the close.
import assert from 'node:assert/strict';
import { channel, type Channel } from 'ipckit';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { startPeer } from '../helpers.js';
import { control, live, servers, seq, tag, until, type Control } from './channel-pair.js';
import { NatsServer } from './nats-server.js';

export const jsUrl = (server: NatsServer, name = `ipckit-test-${tag()}`) => `jetstream://127.0.0.1:${server.port}/${name}`;

/** A raw client and JetStream manager on `server`, to look at and meddle with the channels' streams. */
export async function inspect(server: NatsServer): Promise<{ nc: NatsConnection; jsm: JetStreamManager; streams(): Promise<Array<{ name: string; subjects: string[] }>>; anchors(): Promise<string[]>; close(): Promise<void> }> {
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  const jsm = await jetstreamManager(nc);
  return {
    nc,
    jsm,
    /** The channels' streams (a listener's own IPCKIT_L_ stream, kept while it listens, is not one; anchors() lists those). */
    async streams() {
      const out = [];
      for await (const s of jsm.streams.list()) if (!s.config.name.startsWith('IPCKIT_L_')) out.push({ name: s.config.name, subjects: s.config.subjects });
      return out;
    },
    async anchors() {
      const out: string[] = [];
      for await (const s of jsm.streams.list()) if (s.config.name.startsWith('IPCKIT_L_')) out.push(s.config.name);
      return out;
    },
    close: () => nc.close(),
  };
}

export async function restartRun({ channels, count, kills }: { channels: number; count: number; kills: number }): Promise<void> {
  const server = await NatsServer.start();
  const url = jsUrl(server);
  const listener = await channel.listen<any>(url, { codec: 'raw' });
  servers.add(listener);
  const it = listener[Symbol.asyncIterator]();
  const pairs: Array<{ ch: Channel<any>; peer: Control; got: number; sent: number }> = [];
  for (let k = 0; k < channels; k++) {
    const p = startPeer('channel-peer', ['connect', url, '{"codec":"raw"}']);
    live.add(p.child);
    const peer = control(p.child);
    const [conn, hello] = await Promise.all([it.next(), peer.next()]);
    assert.equal(hello.ready, true);
    pairs.push({ ch: conn.value as Channel<any>, peer, got: 0, sent: 0 });
  }
  const streaming = pairs.flatMap((c) => [
    (async () => {
      c.peer.send({ op: 'emit', count, size: 8 });
      for await (const m of c.ch) {
        const n = (m as Buffer).readUInt32LE(0);
        if (n !== c.got) assert.fail(`message ${c.got} arrived as ${n}`);
        if (++c.got === count) break;
      }
    })(),
    (async () => {
      c.peer.send({ op: 'expect', count });
      for (; c.sent < count; c.sent++) {
        const s = c.ch.send(seq(c.sent));
        if ((c.sent & 4095) === 4095) await s;
      }
    })(),
  ]);
  // Kill k of `kills` when every channel is past (k + 1) / (kills + 2) of the stream both ways.
  for (let k = 0; k < kills; k++) {
    const mark = Math.floor((count * (k + 1)) / (kills + 2));
    await until(() => pairs.every((c) => c.got > mark && c.sent > mark));
    await server.kill();
    const at = pairs.map((c) => ({ got: c.got, sent: c.sent }));
    // The first kill with both directions of every channel mid-stream; later ones with at least one.
    const mid = (c: { got: number; sent: number }) => (k === 0 ? c.got < count && c.sent < count : c.got < count || c.sent < count);
    assert.ok(at.every(mid), `the server was killed mid-stream (${JSON.stringify(at)})`);
    await server.restart();
  }
  await Promise.all(streaming);
  for (const { ch, peer } of pairs) {
    const answers = [await peer.next(), await peer.next()];
    assert.deepEqual(answers.find((a) => a.op === 'emit'), { op: 'emit', sent: count });
    assert.deepEqual(answers.find((a) => a.op === 'expect'), { op: 'expect', received: count, firstError: null });
    // Nothing after the last one (a duplicate would show up here first), then the peer's bye.
    peer.send({ op: 'close' });
    assert.deepEqual(await ch.next(), { value: undefined, done: true });
    assert.equal(ch.closeInfo?.reason, 'peer-closed');
    peer.child.stdin!.end();
    await peer.exited;
    live.delete(peer.child);
  }
  await listener.close();
  servers.delete(listener);
  const look = await inspect(server);
  assert.deepEqual(await look.streams(), [], 'the channels deleted their streams');
  assert.deepEqual(await look.anchors(), [], 'the closed listener deleted its own stream');
  await look.close();
  await server.stop();
}
