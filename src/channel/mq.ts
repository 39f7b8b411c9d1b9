// mq: transport: frames travel as whole POSIX message-queue messages
// (mq_send/mq_receive, src/mq-posix.ts), one queue per direction.
//
// Rendezvous and liveness as for shm: the listener owns the abstract socket
// "\0ipckit-mq/NAME"; a connector creates two private queues
// (/ipckit-mq-PID-RANDOM-up and -down, mode 0600, exclusive), sends their
// names; the listener opens both and answers; then both sides unlink the
// names (the queues live on while open), so nothing stays in /dev/mqueue
// (except if the connector is killed between creating and the listener's
// open: those two names are then left for `ipckit ls` / mq.unlink).
// The socket carries "bye" on a clean close; its hang-up without one is
// 'peer-lost'. Each message holds one frame, so maxMessageSize is bounded by
// the queue message size (/proc/sys/fs/mqueue/msgsize_max unless root).
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { IpcError, stateError } from '../errors.js';
import { open as mqOpen, unlink as mqUnlink, type PosixQueue } from '../mq-posix.js';
import type { CloseInfo, Link, LinkEvents } from './link.js';
import { HANDSHAKE_MS, readLine } from './shm.js';
import { CLOSE_GRACE_MS } from './stream.js';

export function mqSocketPath(name: string): string {
  return `\0ipckit-mq/${name}`;
}

const BYE = 'bye\n';

/** The queue was removed under us (System V: the peer's side ended). */
function isGone(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'EIDRM' || code === 'EINVAL';
}

/** The two directions of a message-queue connection, as QueueLink needs them. */
export interface QueuePair {
  /** Largest frame one message carries. */
  maxFrame: number;
  trySend(frame: Buffer): boolean;
  send(frame: Buffer, signal: AbortSignal): Promise<void>;
  /** Frames there now (possibly none). */
  tryReceiveMany(): Buffer[];
  receive(signal: AbortSignal): Promise<Buffer>;
  /** Releases the handles (and, for System V, removes the queue). */
  close(): void;
}

function posixPair(out: PosixQueue, inbound: PosixQueue): QueuePair {
  return {
    maxFrame: Math.min(out.messageSize, inbound.messageSize),
    trySend: (frame) => out.trySend(frame),
    send: (frame, signal) => out.send(frame, { signal }),
    tryReceiveMany: () => inbound.tryReceiveMany().map((m) => m.data),
    receive: async (signal) => (await inbound.receive({ signal })).data,
    close: () => {
      out.close();
      inbound.close();
    },
  };
}

/** A Link over a pair of message queues plus a rendezvous socket for liveness and the clean-close "bye". */
export class QueueLink implements Link {
  readonly transport: string;
  readonly maxFrame: number;
  readonly #q: QueuePair;
  readonly #socket: Socket;
  readonly #abort = new AbortController();
  #events: LinkEvents | null = null;
  #inflight = false;
  /** Settles when the frame waiting for room in the queue is sent (or failed). */
  #inflightDone: Promise<void> = Promise.resolve();
  #wantWritable = false;
  #paused = false;
  #reading = false;
  #closing: Promise<void> | null = null;
  #finished = false;
  #failure: Error | undefined;
  #peerSaidBye = false;

  constructor(transport: string, pair: QueuePair, socket: Socket) {
    this.transport = transport;
    this.#q = pair;
    this.#socket = socket;
    this.maxFrame = pair.maxFrame;
  }

  start(events: LinkEvents): void {
    this.#events = events;
    let text = '';
    this.#socket.on('data', (d: Buffer) => {
      text = (text + d.toString('latin1')).slice(-16);
      if (text.includes(BYE)) this.#peerSaidBye = true;
    });
    this.#socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') this.#failure ??= e;
    });
    this.#socket.on('end', () => {
      if (!this.#closing) this.#socket.end();
    });
    this.#socket.on('close', () => this.#finish());
    void this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      while (!this.#paused && !this.#finished) {
        const batch = this.#q.tryReceiveMany();
        if (batch.length === 0) {
          this.#deliver(await this.#q.receive(this.#abort.signal));
          continue;
        }
        for (const m of batch) {
          this.#deliver(m);
          if (this.#finished) break;
        }
      }
    } catch (e) {
      // EIDRM: the peer removed its System V queues as its side ended; the
      // socket hang-up (with or without "bye") says how.
      if (!this.#abort.signal.aborted && !isGone(e)) this.destroy(e as Error);
    } finally {
      this.#reading = false;
    }
  }

  #deliver(frame: Buffer): void {
    if (!this.#finished) this.#events!.onFrame(frame, true);
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    if (this.#closing || this.#finished || this.#inflight) {
      this.#wantWritable = true;
      return false;
    }
    const frame = Buffer.allocUnsafe(header.byteLength + body.byteLength);
    frame.set(header, 0);
    frame.set(body, header.byteLength);
    if (this.#q.trySend(frame)) return true;
    // Full: this one frame is accepted and waits in mq_send's queue; the next waits for it.
    this.#inflight = true;
    this.#inflightDone = this.#q.send(frame, this.#abort.signal).then(
      () => {
        this.#inflight = false;
        if (this.#wantWritable) {
          this.#wantWritable = false;
          this.#events!.onWritable();
        }
      },
      (e: Error) => {
        if (!this.#abort.signal.aborted && !isGone(e)) this.destroy(e);
      },
    );
    return true;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    void this.#readLoop();
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      if (this.#finished) return resolve();
      const timer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // A frame still waiting for room goes first: "bye" must not overtake it.
      void this.#inflightDone.then(() => this.#socket.end(BYE));
    });
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (error) this.#failure ??= error;
    this.#socket.destroy();
  }

  #finish(): void {
    if (this.#finished) return;
    // What the peer sent before it went away is still in the queue.
    if (!this.#failure) {
      try {
        for (let b = this.#q.tryReceiveMany(); b.length > 0; b = this.#q.tryReceiveMany()) for (const m of b) this.#deliver(m);
      } catch {}
    }
    this.#finished = true;
    this.#abort.abort();
    const info: CloseInfo = this.#failure
      ? { reason: 'error', error: this.#failure }
      : this.#closing
        ? { reason: 'closed' }
        : this.#peerSaidBye
          ? { reason: 'peer-closed' }
          : { reason: 'peer-lost', error: stateError('ERR_IPCKIT_PEER_LOST', `the ${this.transport}: peer went away without closing (killed or crashed)`) };
    try {
      this.#q.close();
    } catch {}
    this.#events?.onClose(info);
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }
}

function queueOptions(maxFrame: number) {
  return { create: true, exclusive: true, mode: 0o600, messageSize: maxFrame };
}

export async function connectMq(name: string, maxMessageSize: number): Promise<Link> {
  const url = `mq:${name}`;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect(mqSocketPath(name));
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => reject(e.errno ? new IpcError(Math.abs(e.errno), 'connect', { path: url }) : e));
  });
  const base = `/ipckit-mq-${process.pid}-${randomBytes(6).toString('hex')}`;
  const names = { up: `${base}-up`, down: `${base}-down` };
  let up: PosixQueue | null = null;
  let down: PosixQueue | null = null;
  try {
    up = mqOpen(names.up, { ...queueOptions(maxMessageSize + 5), writeOnly: true });
    down = mqOpen(names.down, { ...queueOptions(maxMessageSize + 5), readOnly: true });
    socket.write(`${JSON.stringify({ v: 1, up: names.up, down: names.down })}\n`);
    const reply = await readLine(socket, url, HANDSHAKE_MS);
    if (reply.error) throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: the listener refused: ${String(reply.error)}`);
    return new QueueLink('mq', posixPair(up, down), socket);
  } catch (e) {
    socket.destroy();
    up?.close();
    down?.close();
    throw e;
  } finally {
    // Open on both sides (or failed): the names are no longer needed.
    for (const n of [names.up, names.down]) {
      try {
        mqUnlink(n);
      } catch {}
    }
  }
}

export async function listenMq(name: string, onLink: (link: Link) => void, onError: (e: Error) => void): Promise<Server> {
  const url = `mq:${name}`;
  const server = createServer((socket) => {
    (async () => {
      const hello = await readLine(socket, url, HANDSHAKE_MS);
      const up = String(hello.up);
      const down = String(hello.down);
      if (!/^\/ipckit-mq-\d+-[0-9a-f]+-up$/.test(up) || down !== up.replace(/-up$/, '-down')) {
        socket.end(`${JSON.stringify({ error: 'bad queue names' })}\n`);
        throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: a peer offered queue names outside ipckit's pattern`);
      }
      const inbound = mqOpen(up, { readOnly: true });
      let out: PosixQueue;
      try {
        out = mqOpen(down, { writeOnly: true });
      } catch (e) {
        inbound.close();
        throw e;
      }
      for (const n of [up, down]) {
        try {
          mqUnlink(n);
        } catch {}
      }
      socket.write(`${JSON.stringify({ v: 1 })}\n`);
      return new QueueLink('mq', posixPair(out, inbound), socket);
    })().then(onLink, (e: Error) => {
      socket.destroy();
      onError(e);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.errno ? new IpcError(Math.abs(e.errno), 'bind', { path: url }) : e));
    server.listen(mqSocketPath(name), () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  return server;
}
