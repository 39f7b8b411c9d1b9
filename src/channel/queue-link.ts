// QueueLink: a Link over a pair of message queues, one per direction, each
// frame one queue message (a frame longer than the largest queue message
// goes in parts, see long-frame.ts); the mq: and sysvmq: transports differ only in the
// QueuePair they give it and in how the queues are set up (mq.ts,
// sysvmq.ts). The control socket of the rendezvous (rendezvous.ts) is the
// liveness signal: its end of file says the peer went away; a clean close
// first sends a bye frame through the queue (after everything else), so end
// of file without it is 'peer-lost'.
import { Buffer } from 'node:buffer';
import { stateError } from '../core/errors.js';
import type { Access, PeerCredentials } from './access.js';
import type { ControlSocket } from './control.js';
import { KIND_BYE, badFrame, joinFrame } from './frame.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';
import { KIND_LONG, LongFrameReader, splitLong } from './long-frame.js';
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

const BYE_FRAME = Buffer.from([KIND_BYE]);

/** The queue was removed under us (System V: the peer's side ended). */
function isGone(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'EIDRM' || code === 'EINVAL';
}

/** The two directions of a message-queue connection, as QueueLink needs them. */
export interface QueuePair {
  /** Largest frame one message carries. */
  maxFrame: number;
  /** The largest queue message; a longer frame is sent in parts (long-frame.ts). Absent: frames are never longer than one message. */
  part?: number;
  trySend(frame: Buffer): boolean;
  send(frame: Buffer, signal: AbortSignal): Promise<void>;
  /** Frames there now (possibly none). */
  tryReceiveMany(): Buffer[];
  receive(signal: AbortSignal): Promise<Buffer>;
  /** Releases the handles (and, for System V, removes the queue). */
  close(): void;
}

/** A Link over a pair of message queues, with the control socket for liveness. */
export class QueueLink implements Link {
  /** tryWrite() joins header and body into a frame of its own (joinFrame). */
  readonly copiesOnWrite = true;
  readonly transport: string;
  readonly maxFrame: number;
  readonly peer: PeerCredentials;
  readonly #maxIn: number;
  readonly #part: number;
  readonly #q: QueuePair;
  readonly #longIn: LongFrameReader;
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
    this.#longIn = new LongFrameReader(maxIn);
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
    if (this.#longIn.busy || frame[0] === KIND_LONG) {
      this.#takePart(frame);
      return;
    }
    if (frame.length > this.#maxIn) {
      this.destroy(badFrame(`incoming frame of ${frame.length} bytes exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload)`));
      return;
    }
    this.#events!.onFrame(frame, true);
  }

  /** One part of a long frame (see long-frame.ts): the last delivers it. */
  #takePart(part: Buffer): void {
    let frame: Buffer | null;
    try {
      frame = this.#longIn.take(part);
    } catch (e) {
      this.destroy(e as Error);
      return;
    }
    if (frame !== null) this.#events!.onFrame(frame, true);
  }

  /** A frame longer than one queue message, as parts: what fits now is sent now, the rest in order as room appears. */
  #writeLong(frame: Buffer): void {
    const parts = splitLong(frame, this.#part);
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
    const frame = joinFrame(header, body);
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
