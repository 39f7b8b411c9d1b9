// mq: transport: frames travel as whole POSIX message-queue messages
// (mq_send/mq_receive, src/mq-posix.ts), one queue per direction.
//
// Rendezvous (rendezvous.ts): the listener owns the abstract socket
// "\0ipckit-mq/NAME". A connector creates two private queues (exclusive,
// mode 0600), opens each a second time with the access the listener needs
// (the "up" queue read-only, the "down" queue write-only), removes both
// names at once and sends those two descriptors with its hello by
// SCM_RIGHTS. The listener checks what it got (fstatfs: the mqueue
// filesystem; the access modes) and never opens a queue by name, so it can
// only do with them what the connector itself could, and no name is left in
// /dev/mqueue whenever a process dies.
// The control socket's end of file says the peer went away; a clean close
// first sends a bye frame through the queue (after everything else), so end
// of file without it is 'peer-lost'.
// Queue memory is charged to the connecting user's RLIMIT_MSGQUEUE (819200
// bytes by default; see queueBytes in mq-posix.ts), so a connection's queues
// are small: 10 messages of at most 1 KiB each way, 22,400 bytes a
// connection, 36 connections at the default limit. A frame longer than one
// queue message travels in parts: a first message [KIND_LONG, total length
// u32 LE, first bytes], then the rest of the frame in full messages, in
// order (one writer per queue).
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { readLimit, stateError } from '../errors.js';
import { fromFd as mqFromFd, open as mqOpen, queueBytes, rlimitMsgqueue, unlink as mqUnlink, type PosixQueue } from '../mq-posix.js';
import { native } from '../native.js';
import type { Access, PeerCredentials } from './access.js';
import { closeAll, type ControlSocket } from './control.js';
import { KIND_BYE, badFrame } from './frame.js';
import { Refusal, makeHello, type Hello } from './hello.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';
import { LocalListener, connectLocal, type LocalListenerEvents } from './rendezvous.js';
import { CLOSE_GRACE_MS } from './stream.js';

/** What connectMq/listenMq (and the sysvmq: transport) need besides the name. */
export interface QueueSettings {
  codec: string;
  maxMessageSize: number;
  access: Access;
  timeout?: number;
}

export interface QueueListener {
  close(): void;
  ref(): void;
  unref(): void;
  /** mq: how many connections the connecting user's RLIMIT_MSGQUEUE holds (see ChannelServer.maxConnections). */
  readonly maxConnections?: number;
}

export function mqSocketName(name: string): string {
  return `ipckit-mq/${name}`;
}

const BYE_FRAME = Buffer.from([KIND_BYE]);
/** mq: only, never reaches the Channel: the first part of a frame longer than one queue message. */
const KIND_LONG = 6;
const LONG_HEADER = 5;
/** Queue messages of a connection: enough for small frames to stream (the queue wakes a reader per batch), small enough for many connections. */
const QUEUE_MESSAGES = 10;
const QUEUE_MESSAGE_SIZE = 1024;
/** Smallest queue message a listener accepts: a long frame's first part must carry some of the frame. */
const MIN_QUEUE_MESSAGE = 16;

/** The queues a connector whose frames are at most `maxFrame` bytes creates. */
function queueShape(maxFrame: number): { maxMessages: number; messageSize: number } {
  const msgMax = readLimit('/proc/sys/fs/mqueue/msg_max').value;
  return {
    maxMessages: typeof msgMax === 'number' ? Math.max(1, Math.min(QUEUE_MESSAGES, msgMax)) : QUEUE_MESSAGES,
    messageSize: Math.max(MIN_QUEUE_MESSAGE, Math.min(maxFrame, QUEUE_MESSAGE_SIZE)),
  };
}

/** How many connections of `maxFrame` this user's RLIMIT_MSGQUEUE holds when it has no other queues. */
function connectionsAllowed(maxFrame: number): number {
  const limit = rlimitMsgqueue().value;
  const { maxMessages, messageSize } = queueShape(maxFrame);
  return typeof limit === 'number' ? Math.floor(limit / (2 * queueBytes(maxMessages, messageSize))) : Infinity;
}

/** The queue was removed under us (System V: the peer's side ended). */
function isGone(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'EIDRM' || code === 'EINVAL';
}

/** The two directions of a message-queue connection, as QueueLink needs them. */
export interface QueuePair {
  /** Largest frame one message carries. */
  maxFrame: number;
  /** POSIX: the largest queue message; a longer frame is sent in parts. Absent: frames are never longer than one message. */
  part?: number;
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
    maxFrame: Number.MAX_SAFE_INTEGER,
    part: out.messageSize,
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

/** A Link over a pair of message queues, with the control socket for liveness. */
export class QueueLink implements Link {
  readonly transport: string;
  readonly maxFrame: number;
  readonly peer: PeerCredentials;
  readonly #maxIn: number;
  readonly #part: number;
  readonly #q: QueuePair;
  /** The long frame being put together from its parts, and how much of it has arrived. */
  #long: Buffer | null = null;
  #longAt = 0;
  readonly #ctrl: ControlSocket;
  readonly #abort = new AbortController();
  #events: LinkEvents | null = null;
  #inflight = false;
  /** Settles when the frame waiting for room in the queue is sent (or failed). */
  #inflightDone: Promise<void> = Promise.resolve();
  /** The frame waiting for room is accepted but not in the queue yet (see Link.unwritten). */
  readonly #tickets = new WriteTickets();
  #wantWritable = false;
  #paused = false;
  #closing: Promise<void> | null = null;
  #finished = false;
  #failure: Error | undefined;
  #peerSaidBye = false;
  #graceTimer: NodeJS.Timeout | null = null;
  #closeResolve: (() => void) | null = null;

  /** `maxOut`: largest frame sent (the peer's limit, and what one message holds); `maxIn`: this side's own limit on what it receives. */
  constructor(transport: string, pair: QueuePair, ctrl: ControlSocket, peer: PeerCredentials, maxIn: number, maxOut: number) {
    this.transport = transport;
    this.#q = pair;
    this.#ctrl = ctrl;
    this.peer = peer;
    this.#maxIn = maxIn;
    this.maxFrame = Math.min(pair.maxFrame, maxOut);
    this.#part = pair.part ?? Infinity;
  }

  start(events: LinkEvents): void {
    this.#events = events;
    // Nothing but end of file is expected on the control socket: anything else is drained and ignored.
    this.#ctrl.watch(() => {
      if (this.#ctrl.drain() < 0) this.#hangup();
    });
    this.#readLoop();
  }

  /**
   * The peer's end of file: a receive in progress may already hold its last
   * frames (the bye among them), so it is cancelled and allowed to settle,
   * then whatever is left in the queue is read, and only then the close is
   * judged clean or not. The control socket stays open until then: our end
   * of file lets the peer finish, and a System V peer removes the queues as
   * it finishes, with whatever we had not read yet.
   */
  #hangup(): void {
    this.#ctrl.unwatch();
    this.#abort.abort();
    if (this.#loop) void this.#loop.then(() => this.#finish());
    else this.#finish();
  }

  #loop: Promise<void> | null = null;
  /** The peer removed the queues (EIDRM): nothing more can be read; its hang-up says how it ended. */
  #queuesGone = false;
  #goneTimer: NodeJS.Timeout | null = null;

  #readLoop(): void {
    if (this.#loop || this.#finished || this.#queuesGone) return;
    this.#loop = this.#read().finally(() => {
      this.#loop = null;
      // Resumed while a receive was still in progress: that loop ended at the pause; start again.
      if (!this.#paused && !this.#finished && !this.#abort.signal.aborted) this.#readLoop();
    });
  }

  /**
   * The queues are gone: a peer removes them as its side ends and then hangs
   * up, and that hang-up (with or without "bye") decides the close. Reading
   * again would fail at once, and a loop of promptly failing reads would
   * starve the event loop before the hang-up could be seen, so reading stops
   * here; a peer that removed them and stays connected is cut after a grace
   * period.
   */
  #onQueuesGone(): void {
    if (this.#queuesGone) return;
    this.#queuesGone = true;
    this.#goneTimer = setTimeout(() => this.destroy(stateError('ERR_IPCKIT_PEER_LOST', `the ${this.transport}: peer removed the queues but did not hang up`)), CLOSE_GRACE_MS).unref();
  }

  async #read(): Promise<void> {
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
      if (this.#abort.signal.aborted) return;
      // EIDRM: the peer removed its System V queues as its side ended.
      if (isGone(e)) this.#onQueuesGone();
      else this.destroy(e as Error);
    }
  }

  #deliver(frame: Buffer): void {
    // After a bad frame, what follows it in the same batch is not read.
    if (this.#finished || this.#failure) return;
    if (frame.length === 1 && frame[0] === KIND_BYE) {
      this.#peerSaidBye = true;
      return;
    }
    if (this.#long !== null || frame[0] === KIND_LONG) {
      this.#takePart(frame);
      return;
    }
    if (frame.length > this.#maxIn) {
      this.destroy(badFrame(`incoming frame of ${frame.length} bytes exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload)`));
      return;
    }
    this.#events!.onFrame(frame, true);
  }

  /** One part of a long frame: the first allocates it (after checking its length), the last delivers it. */
  #takePart(part: Buffer): void {
    const long = this.#long;
    if (long === null) {
      const total = part.length > LONG_HEADER ? part.readUInt32LE(1) : -1;
      if (total < 0) {
        this.destroy(badFrame(`a long frame's first part of ${part.length} bytes is no longer than its header`));
      } else if (total > this.#maxIn) {
        this.destroy(badFrame(`incoming frame of ${total} bytes exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload)`));
      } else if (total <= part.length - LONG_HEADER) {
        this.destroy(badFrame(`a long frame's first part of ${part.length} bytes announces ${total} bytes`));
      } else {
        this.#long = Buffer.allocUnsafe(total);
        this.#longAt = part.copy(this.#long, 0, LONG_HEADER);
      }
      return;
    }
    if (part.length > long.length - this.#longAt) {
      this.destroy(badFrame(`a long frame's parts exceed its announced ${long.length} bytes`));
      return;
    }
    this.#longAt += part.copy(long, this.#longAt);
    if (this.#longAt < long.length) return;
    this.#long = null;
    this.#events!.onFrame(long, true);
  }

  /** A frame longer than one queue message, as parts: what fits now is sent now, the rest in order as room appears. */
  #writeLong(frame: Buffer): void {
    const parts: Buffer[] = [];
    const first = Buffer.allocUnsafe(this.#part);
    first[0] = KIND_LONG;
    first.writeUInt32LE(frame.length, 1);
    let at = frame.copy(first, LONG_HEADER, 0, this.#part - LONG_HEADER);
    parts.push(first);
    for (; at < frame.length; at += this.#part) parts.push(frame.subarray(at, at + this.#part));
    let i = 0;
    while (i < parts.length && this.#q.trySend(parts[i]!)) i++;
    if (i < parts.length) {
      this.#sendLater(async () => {
        for (; i < parts.length; i++) await this.#q.send(parts[i]!, this.#abort.signal);
      });
    }
  }

  /** The queue is full: `sending` waits for room; writes after it wait for it (the frame itself is accepted). */
  #sendLater(sending: () => Promise<void>): void {
    this.#inflight = true;
    this.#inflightDone = sending().then(
      () => {
        this.#inflight = false;
        this.#tickets.written(this.#events);
        if (this.#wantWritable) {
          this.#wantWritable = false;
          this.#events!.onWritable();
        }
      },
      (e: Error) => {
        if (!this.#abort.signal.aborted && !isGone(e)) this.destroy(e);
      },
    );
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    if (this.#closing || this.#finished || this.#inflight) {
      this.#wantWritable = true;
      return false;
    }
    const frame = Buffer.allocUnsafe(header.byteLength + body.byteLength);
    frame.set(header, 0);
    frame.set(body, header.byteLength);
    this.#tickets.accepted();
    try {
      if (frame.length > this.#part) this.#writeLong(frame);
      // Full: this one frame is accepted and waits in mq_send's queue; the next waits for it.
      else if (!this.#q.trySend(frame)) this.#sendLater(() => this.#q.send(frame, this.#abort.signal));
    } catch (e) {
      // Never a throw into send() (or into a reply sent from a promise, where
      // it would be an unhandled rejection). EINVAL/EIDRM: the peer removed
      // the queues as its side ended, and its hang-up decides the close; this
      // frame then fails with the channel, as those queued behind it do.
      if (isGone(e)) this.#onQueuesGone();
      else this.destroy(e as Error);
      this.#wantWritable = true;
      return false;
    }
    return true;
  }

  unwritten(): number {
    return this.#tickets.unwritten(this.#inflight);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#readLoop();
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      if (this.#finished) return resolve();
      this.#closeResolve = resolve;
      // The peer answers our end of file by closing its end; if its loop is stuck, cut after a grace period.
      this.#graceTimer = setTimeout(() => this.#hangup(), CLOSE_GRACE_MS).unref();
      // A frame still waiting for room goes first, then the bye frame behind it, then end of file.
      void this.#inflightDone
        .then(() => (this.#finished ? undefined : this.#q.trySend(BYE_FRAME) ? undefined : this.#q.send(BYE_FRAME, this.#abort.signal)))
        .catch(() => {})
        .then(() => this.#ctrl.shutdown());
    });
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (error) this.#failure ??= error;
    this.#ctrl.close();
    process.nextTick(() => this.#finish());
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
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    if (this.#goneTimer) clearTimeout(this.#goneTimer);
    this.#ctrl.close();
    const info: CloseInfo = this.#failure
      ? { reason: 'error', error: this.#failure }
      : this.#closing
        ? { reason: 'closed' }
        : this.#peerSaidBye
          ? { reason: 'peer-closed' }
          : { reason: 'peer-lost' };
    try {
      this.#q.close();
    } catch {}
    this.#closeResolve?.();
    this.#events?.onClose(info);
  }

  ref(): void {
    this.#ctrl.ref();
  }

  unref(): void {
    this.#ctrl.unref();
  }
}

/** A fresh queue, opened twice: `keep` for this side, `give` (the other access) for the listener. */
function queueFor(name: string, maxFrame: number, keepWrites: boolean): { keep: PosixQueue; give: PosixQueue } {
  const keep = mqOpen(name, { create: true, exclusive: true, mode: 0o600, ...queueShape(maxFrame), ...(keepWrites ? { writeOnly: true } : { readOnly: true }) });
  try {
    return { keep, give: mqOpen(name, keepWrites ? { readOnly: true } : { writeOnly: true }) };
  } catch (e) {
    keep.close();
    throw e;
  } finally {
    // Both opens done (or failed): the name is not needed, so nothing can be left behind.
    try {
      mqUnlink(name);
    } catch {}
  }
}

export async function connectMq(name: string, s: QueueSettings): Promise<Link> {
  const url = `mq:${name}`;
  const maxFrame = s.maxMessageSize + 5;
  const base = `/ipckit-mq-${process.pid}-${randomBytes(6).toString('hex')}`;
  const made: PosixQueue[] = [];
  try {
    const up = queueFor(`${base}-up`, maxFrame, true);
    made.push(up.keep, up.give);
    const down = queueFor(`${base}-down`, maxFrame, false);
    made.push(down.keep, down.give);
    const hello = makeHello('mq', s.codec, s.maxMessageSize);
    const conn = await connectLocal(mqSocketName(name), url, () => ({ hello, fds: [up.give.fd, down.give.fd] }), s.access, 0, s.timeout);
    // The listener has its own copies of the two it needed.
    up.give.close();
    down.give.close();
    return new QueueLink('mq', posixPair(up.keep, down.keep), conn.ctrl, conn.peer, maxFrame, conn.reply.max + 5);
  } catch (e) {
    for (const q of made) q.close();
    throw e;
  }
}

/** Checks the two queue descriptors a connector sent: POSIX queues, the first readable, the second writable. */
function receivedQueues(fds: number[], url: string): { inbound: PosixQueue; out: PosixQueue } {
  if (fds.length !== 2) throw new Refusal('EPROTO', `expected two queue descriptors, got ${fds.length}`);
  const access = fds.map((fd) => native.fdInspect(fd));
  if (access.some((a) => a.fsType !== native.shmConstants.MQUEUE_MAGIC)) throw new Refusal('EPROTO', 'the descriptors sent are not POSIX message queues');
  if (access[0]!.access !== fsc.O_RDONLY || access[1]!.access !== fsc.O_WRONLY) {
    throw new Refusal('EPROTO', 'the queues sent must be open read-only (up) and write-only (down)');
  }
  const inbound = mqFromFd(fds[0]!, `${url} (up)`);
  fds[0] = -1;
  try {
    const out = mqFromFd(fds[1]!, `${url} (down)`);
    fds[1] = -1;
    if (out.messageSize < MIN_QUEUE_MESSAGE) {
      out.close();
      throw new Refusal('EPROTO', `the down queue's messages (${out.messageSize} bytes) are shorter than ${MIN_QUEUE_MESSAGE}`);
    }
    return { inbound, out };
  } catch (e) {
    inbound.close();
    throw e;
  }
}

export function listenMq(name: string, s: QueueSettings, onLink: (link: Link) => void, events: LocalListenerEvents): QueueListener {
  const url = `mq:${name}`;
  const maxIn = s.maxMessageSize + 5;
  const handshake = (ctrl: ControlSocket, hello: Hello, fds: number[], peer: PeerCredentials) => {
    try {
      const { inbound, out } = receivedQueues(fds, url);
      const link = new QueueLink('mq', posixPair(out, inbound), ctrl, peer, maxIn, hello.max + 5);
      return { reply: makeHello('mq', s.codec, s.maxMessageSize), done: () => onLink(link), failed: () => link.destroy() };
    } finally {
      closeAll(fds);
    }
  };
  const listener = new LocalListener(mqSocketName(name), url, 'mq', s.codec, s.access, 2, handshake, events);
  return { close: () => listener.close(), ref: () => listener.ref(), unref: () => listener.unref(), maxConnections: connectionsAllowed(maxIn) };
}
