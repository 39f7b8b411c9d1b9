// Helpers of the channel suites: a peer process at the other end of a channel over each transport.
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after } from 'node:test';
import { channel, type Channel, type ChannelOptions, type ChannelServer } from 'ipckit';
import { fixturesDir, startPeer } from '../helpers.js';
import { forgeShm, sharedRingHand } from './forge.js';
import { tlsMaterial } from './tls-material.js';
import { NatsServer, natsServerSkip } from './nats-server.js';

export const T = { timeout: 60_000 };
// 'shm-nospin' is shm: with spin:false, so both wait paths (spin then
// doorbell, and the doorbell alone) are covered; 'shm-shared' is shm: with a
// listener whose connectors all write into one shared ring (sharedRing).
// fifo: is one-way: here the test process listens (reads) and the peer writes;
// tests that need the other direction skip it and say so, and the fifo:
// describe block below covers the writing end.
// nats: runs against this file's own nats-server (test/channel/nats-server.ts);
// jetstream: too (that server has JetStream on).
export const TRANSPORTS = ['shm', 'shm-nospin', 'shm-shared', 'unix', 'unix-abstract', 'tcp', 'pipe', 'mq', 'sysvmq', 'unix-seqpacket', 'fifo', 'nats', 'jetstream'] as const;
/**
 * tls:// runs the suite of test/channel/channel-suite.ts from its own file
 * (channel-tcp.test.ts), not every loop over TRANSPORTS: its connectors need
 * the test CA (connectExtras), and it is the tcp:// link inside TLS.
 */
export type Transport = (typeof TRANSPORTS)[number];
/** What the suite of test/channel/channel-suite.ts runs over: TRANSPORTS and tls. */
export type SuiteTransport = Transport | 'tls';

/** The nats-server nats: channels of this test file use; null where nats-server is not installed. */
export const suiteNats: NatsServer | null = natsServerSkip ? null : await NatsServer.start();

/** Why tests over transport `t` cannot run here, or undefined. */
export const transportSkip = (t: SuiteTransport): string | undefined => ((t === 'nats' || t === 'jetstream') && natsServerSkip ? natsServerSkip : undefined);

export const tag = () => `${process.pid}-${randomBytes(4).toString('hex')}`;
export function urlFor(t: Exclude<SuiteTransport, 'pipe'>): string {
  switch (t) {
    case 'shm':
    case 'shm-nospin':
    case 'shm-shared':
      return `shm:ipckit-test-${tag()}`;
    case 'unix':
      return `unix:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`;
    case 'unix-abstract':
      return `unix-abstract:ipckit-test-${tag()}`;
    case 'tcp':
      return 'tcp://127.0.0.1:0';
    case 'tls':
      return 'tls://127.0.0.1:0';
    case 'mq':
      return `mq:/ipckit-test-${tag()}`;
    case 'sysvmq':
      return `sysvmq:ipckit-test-${tag()}`;
    case 'unix-seqpacket':
      return `unix-seqpacket:${join(tmpdir(), `ipckit-test-${tag()}.sock`)}`;
    case 'fifo':
      return `fifo:${join(tmpdir(), `ipckit-test-${tag()}.fifo`)}`;
    case 'nats':
      if (!suiteNats) throw new Error(natsServerSkip!);
      return suiteNats.url(`ipckit-test-${tag()}`);
    case 'jetstream':
      if (!suiteNats) throw new Error(natsServerSkip!);
      return `jetstream://127.0.0.1:${suiteNats.port}/ipckit-test-${tag()}`;
  }
}

export interface Control {
  child: ChildProcess;
  next<T = any>(): Promise<T>;
  send(cmd: unknown): void;
  exited: Promise<unknown>;
}

export function control(child: ChildProcess): Control {
  const queue: unknown[] = [];
  const waiting: Array<(v: unknown) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const v = JSON.parse(line);
    const w = waiting.shift();
    if (w) w(v);
    else queue.push(v);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    exited,
    next: () => (queue.length ? Promise.resolve(queue.shift() as any) : new Promise((r) => waiting.push(r as (v: unknown) => void))),
    send: (cmd) => child.stdin!.write(`${JSON.stringify(cmd)}\n`),
  };
}

/** Options a listener of transport `t` needs besides the test's own. */
export const listenExtras = (t: SuiteTransport): ChannelOptions<any> & { sharedRing?: boolean; tls?: object } => {
  if (t === 'tls') {
    const m = tlsMaterial()!;
    return { tls: { key: m.key, cert: m.cert } };
  }
  return t === 'shm-shared' ? { sharedRing: true } : {};
};
/** Options a connector of transport `t` needs besides the test's own (JSON, for peer processes too). */
export const connectExtras = (t: SuiteTransport): { tls?: object } => (t === 'tls' ? { tls: { ca: tlsMaterial()!.ca } } : {});

export const live = new Set<ChildProcess>();
export const servers = new Set<ChannelServer<any>>();
after(async () => {
  for (const c of live) c.kill('SIGKILL');
  for (const s of servers) await s.close();
});

export interface Pair {
  ch: Channel<any>;
  peer: Control;
  server: ChannelServer<any> | null;
  url: string;
  done(): Promise<void>;
}

/** This process's end of a channel to a fresh peer process over transport `t`. */
export async function pair(t: SuiteTransport, options: ChannelOptions<any> & { heartbeat?: object | boolean } = {}): Promise<Pair> {
  if (t === 'shm-nospin') options = { ...options, spin: false };
  if (t === 'pipe') {
    const { child, channel: ch } = await channel.fork(join(fixturesDir, 'channel-peer.js'), ['forked', '', JSON.stringify(options)], {
      ...options,
      transport: 'pipe',
      fork: { stdio: ['pipe', 'pipe', 'inherit'] },
    });
    live.add(child);
    const peer = control(child);
    assert.equal((await peer.next()).ready, true);
    return { ch, peer, server: null, url: 'pipe:', done: () => finish(ch, peer, null) };
  }
  const server = await channel.listen<any>(urlFor(t), { ...options, ...listenExtras(t) });
  servers.add(server);
  const peerProc = startPeer('channel-peer', ['connect', server.url, JSON.stringify({ ...options, ...connectExtras(t) })]);
  live.add(peerProc.child);
  const peer = control(peerProc.child);
  const it = server[Symbol.asyncIterator]();
  const [conn, hello] = await Promise.all([it.next(), peer.next()]);
  assert.equal(hello.ready, true);
  return { ch: conn.value as Channel<any>, peer, server, url: server.url, done: () => finish(conn.value, peer, server) };
}

export async function finish(ch: Channel<any>, peer: Control, server: ChannelServer<any> | null): Promise<void> {
  await ch.close();
  peer.child.stdin!.end();
  await peer.exited;
  live.delete(peer.child);
  if (server) {
    await server.close();
    servers.delete(server);
  }
}

export function seq(i: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32LE(i, 0);
  b.writeUInt32LE(~i >>> 0, 4);
  return b;
}

/** Resolves with a promise's outcome, or 'pending' if it has not settled after `ms` (detects a stall, not a wait for a peer). */
export function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)))]).finally(() => clearTimeout(timer));
}

export const ONE_WAY = 'fifo: is one-way (the test process is the reader here); this test needs both directions';


/**
 * A connector of a shared-ring listener that speaks the handshake by hand and
 * maps the shared ring itself (layout in src/channel/ring.ts), to play a
 * writer that dies holding the lock or writes garbage.
 */
export async function sharedRingPeer(server: ChannelServer<any>) {
  const conn = server[Symbol.asyncIterator]().next();
  const forged = await forgeShm(server.url.slice(4));
  const ch = (await conn).value as Channel<any>;
  const hand = sharedRingHand(forged);
  return {
    ch,
    i32: hand.i32,
    slot: hand.slot,
    closed: new Promise<any>((res) => (ch.closeInfo ? res(ch.closeInfo) : ch.once('close', res))),
    place: hand.place,
    publish: hand.publish,
    /** The writer "dies": its control socket closes (what the kernel does at exit). */
    die(): void {
      forged.close();
    },
    cleanup(): void {
      forged.close();
      hand.close();
      forged.mem.close();
    },
  };
}

/** Resolves once `check` holds, looking once per event-loop turn (synchronises on state another process changes). */
export async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

/** A shared-ring listener (sharedRing) in this process and `count` peer processes connected to it, one channel each. */
export async function sharedGroup(count: number, options: ChannelOptions<any>, peerOptions: ChannelOptions<any> = { codec: options.codec }) {
  const server = await channel.listen<any>(urlFor('shm'), { ...options, sharedRing: true });
  servers.add(server);
  const it = server[Symbol.asyncIterator]();
  const peers: Control[] = [];
  const chans: Channel<any>[] = [];
  for (let k = 0; k < count; k++) {
    const p = startPeer('channel-peer', ['connect', server.url, JSON.stringify(peerOptions)]);
    live.add(p.child);
    peers.push(control(p.child));
    const [conn, hello] = await Promise.all([it.next(), peers[k]!.next()]);
    assert.equal(hello.ready, true);
    chans.push(conn.value as Channel<any>);
  }
  /** Closes the channels of the peers still alive (`alive`: their indices), then the listener. */
  const done = async (alive = peers.map((_, k) => k)) => {
    for (const k of alive) await finish(chans[k]!, peers[k]!, null);
    await server.close();
    servers.delete(server);
  };
  return { server, peers, chans, done };
}

