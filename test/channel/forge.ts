// Forged peers: speak each channel rendezvous by hand (the wire format in
// docs/security.md), with the public unix socket API and shared memory, so
// that tests can play a hostile peer: wrong hellos, wrong descriptors,
// corrupt rings, truncated memory, held locks.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { closeSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { mq, shm, unix, type Channel, type ChannelServer, type MessageSocket, type FdRegion, type SysvQueue } from 'ipckit';

export const PROTOCOL = 3;

export function hello(transport: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ipckit: PROTOCOL, transport, codec: 'raw', max: 1024, ...extra };
}

/** The layout of a shm: connection's memory (src/channel/ring.ts), in Int32 words and bytes. */
export const LAYOUT = {
  CONTROL: 4096,
  MAGIC: 0x69706b63,
  /** ring 0: connector -> listener; ring 1: listener -> connector. */
  head: (ring: 0 | 1) => 16 + ring * 64,
  closed: (ring: 0 | 1) => 17 + ring * 64,
  tail: (ring: 0 | 1) => 32 + ring * 64,
  consumerSleeping: (ring: 0 | 1) => 48 + ring * 64,
  producerSleeping: (ring: 0 | 1) => 64 + ring * 64,
  data: (ring: 0 | 1, R: number) => 4096 + ring * R,
  WRAP: -1,
  /** Shared ring words. */
  S_HEAD: 16,
  S_TAIL: 32,
  S_CONSUMER_SLEEPING: 48,
  S_WAITING: 64,
  S_LOCK: 80,
} as const;

/** A shm: connection's memory: a memfd of 4096 + 2R bytes (sealed unless told otherwise) with its control block. */
export function connectionMemory(R = 8192, options: { sealed?: boolean; bytes?: number } = {}): FdRegion {
  const mem = shm.anonymous(options.bytes ?? 4096 + 2 * R, { sealed: options.sealed ?? true });
  const i32 = new Int32Array(mem.buffer);
  i32[1] = 1;
  i32[2] = R;
  i32[3] = 1029;
  Atomics.store(i32, 0, LAYOUT.MAGIC);
  return mem;
}

export interface ControlClient {
  sock: MessageSocket;
  /** The listener's answer (its hello or a refusal). */
  reply: Record<string, any>;
  /** Descriptors that came with the answer (ours to close). */
  fds: number[];
  /** One doorbell byte on the control socket. */
  ring(): void;
  close(): void;
}

function framed(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  const b = Buffer.alloc(4 + json.length);
  b.writeUInt32LE(json.length, 0);
  json.copy(b, 4);
  return b;
}

/**
 * Connects to the control socket of a local transport's listener
 * ("\0ipckit-<transport>/<name>"), sends `message` (a hello, or any bytes)
 * with `fds`, and reads the answer.
 */
export async function controlClient(transport: 'shm' | 'mq' | 'sysvmq', name: string, message: unknown, fds: number[] = []): Promise<ControlClient> {
  const sock = await unix.connect({ abstract: `ipckit-${transport}/${name}` }, { fds: true });
  sock.on('error', () => {});
  const got: number[] = [];
  let bytes = Buffer.alloc(0);
  const reply = new Promise<Record<string, any>>((resolve, reject) => {
    const onMessage = (data: Buffer, info: { takeFds(): number[] }) => {
      got.push(...info.takeFds());
      bytes = Buffer.concat([bytes, data]);
      if (bytes.length >= 4 && bytes.length >= 4 + bytes.readUInt32LE(0)) {
        sock.off('message', onMessage);
        resolve(JSON.parse(bytes.toString('utf8', 4, 4 + bytes.readUInt32LE(0))));
      }
    };
    sock.on('message', onMessage);
    sock.once('end', () => reject(new Error('the listener hung up without an answer')));
  });
  await sock.send(Buffer.isBuffer(message) ? message : framed(message), { fds });
  const answer = await reply;
  return {
    sock,
    reply: answer,
    fds: got,
    ring: () => {
      // A doorbell after the listener hung up goes nowhere (send() refuses a closed socket at once).
      if (!sock.closed) void sock.send(Buffer.of(1)).catch(() => {});
    },
    close: () => sock.close(),
  };
}

/** A forged shm: connector: its memory, its control socket, and ways to write its ring 0 by hand. */
export interface ShmForgery extends ControlClient {
  mem: FdRegion;
  i32: Int32Array;
  u8: Uint8Array;
  R: number;
  /** Writes a record [length][frame] at ring 0's head; returns the head after it (unpublished). */
  place(frame: Uint8Array, length?: number, at?: number): number;
  /** Publishes ring 0 up to `head` and rings the listener. */
  publish(head: number): void;
}

export async function forgeShm(name: string, options: { R?: number; helloExtra?: Record<string, unknown>; memory?: FdRegion; fds?: number[] } = {}): Promise<ShmForgery> {
  const R = options.R ?? 8192;
  const mem = options.memory ?? connectionMemory(R);
  const client = await controlClient('shm', name, hello('shm', { ring: R, shared: true, ...options.helloExtra }), options.fds ?? [mem.fd]);
  const i32 = new Int32Array(mem.buffer);
  const u8 = new Uint8Array(mem.buffer);
  return {
    ...client,
    mem,
    i32,
    u8,
    R,
    place(frame, length = frame.byteLength, at = Atomics.load(i32, LAYOUT.head(0))) {
      const off = 4096 + (at & (R - 1));
      i32[off >> 2] = length;
      u8.set(frame, off + 4);
      return (at + ((4 + frame.byteLength + 7) & ~7)) | 0;
    },
    publish(head) {
      Atomics.store(i32, LAYOUT.head(0), head);
      client.ring();
    },
    close() {
      client.close();
      for (const fd of client.fds) closeSync(fd);
    },
  };
}

/** A forged sysvmq: connector: its two private queues, its control socket, and the listener's channel for it. */
export interface SysvForgery {
  /** The connector's queues: up carries frames to the listener, down from it. */
  up: SysvQueue;
  down: SysvQueue;
  client: ControlClient;
  ch: Channel<any>;
  /** Removes the queues still there (a test may have removed them itself) and hangs up. */
  cleanup(): void;
}

/**
 * Connects to an mq: listener by hand (two queues whose names are removed,
 * passed by SCM_RIGHTS) with `frames` already waiting in the up queue;
 * resolves with how the listener's channel closed.
 */
export async function forgeMqFrames(server: ChannelServer<any>, frames: Buffer[], options: { messageSize: number; helloExtra?: Record<string, unknown> }): Promise<any> {
  const base = `/ipckit-test-forged-${process.pid}-${randomBytes(6).toString('hex')}`;
  const up = mq.open(`${base}-up`, { create: true, exclusive: true, messageSize: options.messageSize });
  const down = mq.open(`${base}-down`, { create: true, exclusive: true, messageSize: options.messageSize });
  const upR = mq.open(up.name, { readOnly: true });
  const downW = mq.open(down.name, { writeOnly: true });
  for (const n of [up.name, down.name]) mq.unlink(n);
  try {
    for (const frame of frames) if (!up.trySend(frame)) throw new Error('the forged up queue is full');
    const conn = server[Symbol.asyncIterator]().next();
    const client = await controlClient('mq', server.url.slice(3).replace(/^\/+/, ''), hello('mq', options.helloExtra), [upR.fd, downW.fd]);
    const ch = (await conn).value as Channel<any>;
    const info = ch.closeInfo ?? (await new Promise<any>((res) => ch.once('close', res)));
    client.close();
    return info;
  } finally {
    for (const q of [up, down, upR, downW]) q.close();
  }
}

/** Connects to a sysvmq: listener by hand (two private queues, the hello on the control socket). */
export async function forgeSysv(server: ChannelServer<any>): Promise<SysvForgery> {
  const up = mq.sysv.get('private');
  const down = mq.sysv.get('private');
  const removeQueues = () => {
    for (const q of [up, down]) {
      try {
        q.remove();
      } catch {}
    }
  };
  try {
    const conn = server[Symbol.asyncIterator]().next();
    const client = await controlClient('sysvmq', server.url.slice('sysvmq:'.length), hello('sysvmq', { up: up.id, down: down.id }));
    const ch = (await conn).value as Channel<any>;
    return {
      up,
      down,
      client,
      ch,
      cleanup() {
        client.close();
        removeQueues();
      },
    };
  } catch (e) {
    removeQueues();
    throw e;
  }
}

/** A forged connector's hand on the shared ring a sharedRing listener sent it (records [length][slot][frame]). */
export interface SharedRingHand {
  i32: Int32Array;
  slot: number;
  R: number;
  /** Writes one record at the shared head without publishing it; returns the head after it. */
  place(frame: Uint8Array, length?: number): number;
  /** Publishes up to `head` and rings the listener. */
  publish(head: number): void;
  close(): void;
}

export function sharedRingHand(forged: ShmForgery): SharedRingHand {
  const ring = shm.fromFd(forged.fds.shift()!, { closeFd: true });
  const i32 = new Int32Array(ring.buffer);
  const u8 = new Uint8Array(ring.buffer);
  const slot = forged.reply.shared.slot as number;
  const R = forged.reply.shared.ring as number;
  return {
    i32,
    slot,
    R,
    place(frame, length = frame.byteLength) {
      const head = Atomics.load(i32, LAYOUT.S_HEAD);
      const at = 4096 + (head & (R - 1));
      i32[at >> 2] = length;
      i32[(at >> 2) + 1] = slot;
      u8.set(frame, at + 8);
      return (head + ((8 + frame.byteLength + 7) & ~7)) | 0;
    },
    publish(head) {
      Atomics.store(i32, LAYOUT.S_HEAD, head);
      forged.ring();
    },
    close: () => ring.close(),
  };
}

/** Connects a raw byte stream (unix:, unix-abstract:, tcp://, tls:// trusting `ca`) to a listener URL. */
export function rawStream(url: string, ca?: string): Promise<Socket> {
  if (url.startsWith('tls://')) {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ port: Number(new URL(url).port), host: new URL(url).hostname, ...(ca ? { ca } : {}) });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
  }
  const target = url.startsWith('tcp://')
    ? { port: Number(new URL(url).port), host: new URL(url).hostname }
    : url.startsWith('unix-abstract:')
      ? { path: `\0${url.slice('unix-abstract:'.length)}` }
      : { path: url.slice('unix:'.length) };
  return new Promise((resolve, reject) => {
    const s = netConnect(target as { path: string });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A stream hello frame: [u32 length][kind 5][JSON]. */
export function streamHello(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  const b = Buffer.alloc(5 + json.length);
  b.writeUInt32LE(1 + json.length, 0);
  b[4] = 5;
  json.copy(b, 5);
  return b;
}
