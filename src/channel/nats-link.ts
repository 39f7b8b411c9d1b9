// NatsLink: a Link over core NATS, one NATS message per frame on a private
// subject per direction (each side subscribes to its own and publishes to the
// peer's). Core NATS delivers at most once and says nothing when it drops a
// message (a server restart, a slow consumer cut off), so the link adds what
// the channel contract needs:
//   - a sequence number per direction on every message: a gap, or the client
//     losing its connection to the server, ends the link with peer-lost;
//     nothing is lost silently;
//   - credit-based flow control: the receiver announces a window of bytes and
//     one of messages in its hello and sends back the running totals it
//     consumed, so a sender never has more than a window in flight and send()
//     waits end to end (the window of messages bounds the receiver's memory
//     for small ones, and how long a sender's loop runs on without waiting);
//   - a bye message for a clean close (peer-closed);
//   - probes: a request to the peer's subject whenever nothing came from it
//     (not even a probe of its own) for probeInterval ms. The server answers
//     "no responders" at once when the peer's
//     subscription is gone (its process died or its connection closed):
//     peer-lost within milliseconds. No answer within probeTimeout (a
//     partition, a stalled peer) is peer-lost too.
// Every NATS message of a link:
//   byte 0      link kind: 0 data (a channel frame follows, see frame.ts),
//               1 credit (float64 LE: bytes of data messages consumed so far,
//               float64 LE: data messages consumed so far), 2 bye
//   bytes 1..4  sequence number (u32 LE), 0, 1, 2... per direction
// Probes carry a reply subject and are answered with an empty message; they
// take no sequence number.
import { performance } from 'node:perf_hooks';
import { badFrame } from './frame.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';
import { isNoResponders, isPermissionViolation, isTimeout, type NatsMsg, type NatsSession, type NatsSubscription, type SessionMember } from './nats-client.js';
import { CreditReceiver } from './credit-receiver.js';
import { CreditSender, readCredit } from './credit-sender.js';
import { CLOSE_GRACE_MS } from './stream.js';

const KIND_DATA = 0;
const KIND_CREDIT = 1;
const KIND_BYE = 2;
/** Bytes of the link's header in each NATS message. */
const LINK_HEADER = 5;
/** Link header + the channel frame's longest header: what maxMessageSize leaves of the server's max_payload. */
export const NATS_OVERHEAD = LINK_HEADER + 5;
const CREDIT_LENGTH = LINK_HEADER + 16;
/** Data messages a side lets the peer have in flight (announced in its hello as `frames`). */
export const FRAME_WINDOW = 8192;
/** Smallest receive window: enough for ~50,000 small messages in flight. */
const MIN_WINDOW = 4 * 1024 * 1024;
/** Probes in flight at most (a partition leaves them all unanswered until probeTimeout). */
const MAX_PROBES = 64;
const EMPTY = new Uint8Array(0);

/** A private subject: unguessable, so only the peer publishes to it. */
export const PRIVATE_SUBJECT = /^_IPCKIT\.[0-9a-f]{32}$/;

/** The receive window a side announces for frames of up to `maxFrame` bytes: a credit is sent every quarter, so a quarter plus a frame always fits. */
export function windowFor(maxFrame: number): number {
  return Math.max(MIN_WINDOW, 4 * (maxFrame + LINK_HEADER));
}

/** How often a silent peer is probed, and how long it may leave a probe unanswered (options.nats). */
export interface ProbeSettings {
  probeInterval: number;
  probeTimeout: number;
}

export class NatsLink implements Link, SessionMember {
  readonly transport = 'nats';
  readonly peer = null;
  /** tryWrite() builds a message of its own (link header + frame): the caller may reuse its buffer. */
  readonly copiesOnWrite = true;
  maxFrame = 0;
  readonly #session: NatsSession;
  readonly #subject: string;
  readonly #sub: NatsSubscription;
  /** Largest channel frame accepted. */
  readonly #maxIn: number;
  /** Bytes this side lets the peer have in flight (announced in its hello). */
  readonly window: number;
  readonly frameWindow = FRAME_WINDOW;
  /** Data messages received: handed to the Channel or held, and the credit sent back. */
  readonly #in: CreditReceiver;
  readonly #probe: ProbeSettings;
  #peerSubject = '';
  #events: LinkEvents | null = null;
  /** Frames received (in order, checked) not yet handed to the Channel: before start() or while paused. */
  #recvSeq = 0;
  #sendSeq = 0;
  /** What was sent against the peer's windows and credits. */
  readonly #out = new CreditSender();
  /** Bytes of data messages handed to the Channel, and the total last sent back as credit. */
  readonly #tickets = new WriteTickets();
  /** Frames accepted, and frames known to be in the kernel. */
  #accepted = 0;
  #confirmed = 0;
  #confirming = false;
  #heard = false;
  /** Probes in flight. */
  #probes = 0;
  #probeTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  #finished: CloseInfo | null = null;
  #reported = false;
  /** Settles once this link's hold on the connection is gone (the connection closed, if it was the last). */
  #released: Promise<void> = Promise.resolve();

  /** Subscribes to this side's subject at once, so nothing the peer sends after the handshake is missed. */
  constructor(session: NatsSession, subject: string, maxIn: number, probe: ProbeSettings) {
    this.#session = session;
    this.#subject = subject;
    this.#maxIn = maxIn;
    this.window = windowFor(maxIn);
    this.#in = new CreditReceiver(this.window, FRAME_WINDOW, () => this.#grant());
    this.#probe = probe;
    this.#sub = session.nc.subscribe(subject, { callback: (error, msg) => (error ? this.lost(error) : this.#onMessage(msg)) });
    session.hold(this);
    session.join(this);
  }

  /** The handshake is done: the peer's subject, the largest frame it takes, its windows (bytes, messages). */
  attach(peerSubject: string, maxOut: number, peerWindow: number, peerFrameWindow: number): void {
    this.#peerSubject = peerSubject;
    this.maxFrame = maxOut;
    this.#out.attach(peerWindow, peerFrameWindow);
    this.#probeTimer = setInterval(() => this.#tick(), this.#probe.probeInterval).unref();
  }

  start(events: LinkEvents): void {
    this.#events = events;
    this.#in.events = events;
    this.#in.drain();
    if (this.#finished) this.#report();
  }

  #onMessage(msg: NatsMsg): void {
    if (this.#finished) return;
    // Anything from the peer, its probes too, says it is there: while it probes, this side need not.
    this.#heard = true;
    if (msg.reply) {
      msg.respond(EMPTY);
      return;
    }
    const d = msg.data;
    if (d.length < LINK_HEADER) return this.destroy(badFrame(`a NATS message of ${d.length} bytes on the channel's subject, shorter than the link header`));
    const seq = (d[1]! | (d[2]! << 8) | (d[3]! << 16) | (d[4]! << 24)) >>> 0;
    if (seq !== this.#recvSeq) {
      return this.lost(new Error(`NATS lost messages of this channel: expected message ${this.#recvSeq} of the peer, got ${seq}`));
    }
    this.#recvSeq = (this.#recvSeq + 1) >>> 0;
    switch (d[0]) {
      case KIND_DATA: {
        const len = d.length - LINK_HEADER;
        if (len > this.#maxIn) return this.destroy(badFrame(`incoming frame of ${len} bytes exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload)`));
        const error = this.#in.take(d, LINK_HEADER, d.length);
        if (error) this.destroy(badFrame(error));
        return;
      }
      case KIND_CREDIT: {
        const [consumed, frames] = readCredit(d, LINK_HEADER, 2) as [number, number];
        const wrong = this.#out.check(consumed, frames);
        if (wrong) return this.destroy(badFrame(`the peer's credit is wrong: ${wrong}`));
        this.#out.take(consumed, frames);
        return this.#out.writable(this.#events);
      }
      case KIND_BYE:
        if (d.length !== LINK_HEADER) return this.destroy(badFrame(`a bye of ${d.length} bytes`));
        return this.#finish({ reason: 'peer-closed' });
      default:
        return this.destroy(badFrame(`unknown link message kind ${d[0]}`));
    }
  }

  #grant(): void {
    if (this.#finished || this.#closing) return;
    const m = Buffer.allocUnsafe(CREDIT_LENGTH);
    m[0] = KIND_CREDIT;
    m.writeUInt32LE(this.#nextSeq(), 1);
    m.writeDoubleLE(this.#in.consumed, LINK_HEADER);
    m.writeDoubleLE(this.#in.consumedFrames, LINK_HEADER + 8);
    this.#in.granted();
    this.#publish(m);
  }

  #nextSeq(): number {
    const s = this.#sendSeq;
    this.#sendSeq = (s + 1) >>> 0;
    return s;
  }

  #publish(m: Uint8Array): boolean {
    try {
      this.#session.nc.publish(this.#peerSubject, m);
      return true;
    } catch (e) {
      this.lost(e as Error);
      return false;
    }
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    const len = LINK_HEADER + header.byteLength + body.byteLength;
    if (this.#finished || this.#closing || !this.#out.fits(len)) {
      this.#out.wantWritable = true;
      return false;
    }
    const m = Buffer.allocUnsafe(len);
    m[0] = KIND_DATA;
    m.writeUInt32LE(this.#nextSeq(), 1);
    m.set(header, LINK_HEADER);
    m.set(body, LINK_HEADER + header.byteLength);
    this.#out.counted(len);
    if (!this.#publish(m)) return false;
    this.#accepted++;
    this.#tickets.accepted();
    return true;
  }

  /** A send() resolves once its message is in the kernel (the socket buffer towards the server), as on tcp://. */
  unwritten(): number {
    const ticket = this.#tickets.unwritten(this.#accepted > this.#confirmed);
    if (ticket > 0) this.#confirmWritten();
    return ticket;
  }

  #confirmWritten(): void {
    if (this.#confirming || this.#finished) return;
    this.#confirming = true;
    const upTo = this.#accepted;
    this.#session.whenWritten().then(
      () => {
        this.#confirming = false;
        if (this.#finished) return;
        const n = upTo - this.#confirmed;
        this.#confirmed = upTo;
        if (n > 0) this.#tickets.written(this.#events, n);
        if (this.#accepted > this.#confirmed) this.#confirmWritten();
      },
      // The connection went: the session ends every link on it.
      () => (this.#confirming = false),
    );
  }

  /**
   * Nothing came from the peer since the last tick: probe it. A probe sent
   * just before the peer died is never answered, so each silent tick sends
   * a new one (at most MAX_PROBES in flight) rather than waiting out the
   * first one's timeout.
   */
  #tick(): void {
    if (this.#finished || this.#closing) return;
    if (this.#heard) {
      this.#heard = false;
      return;
    }
    if (this.#probes >= MAX_PROBES) return;
    this.#probes++;
    const started = performance.now();
    this.#session.nc.request(this.#peerSubject, EMPTY, { timeout: this.#probe.probeTimeout }).then(
      () => this.#probes--,
      (e) => {
        this.#probes--;
        if (this.#finished || this.#closing) return;
        if (isNoResponders(e)) this.lost(new Error("the peer's subject has no subscriber any more: its process or its connection to the NATS server ended"));
        else if (isTimeout(e)) this.lost(new Error(`no answer from the peer to a probe within ${Math.round(performance.now() - started)} ms (a partition, or a stalled peer)`));
        // The server refuses this user the peer's subject: this channel cannot work. (A lost connection: the session ends the link.)
        else if (isPermissionViolation(e)) this.destroy(e as Error);
      },
    );
  }

  pause(): void {
    this.#in.pause();
  }

  resume(): void {
    this.#in.resume();
  }

  /** SessionMember: the connection to the server is gone, or a message was lost. */
  lost(error: Error): void {
    this.#finish({ reason: 'peer-lost', error });
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (this.#finished) return this.#released;
      const bye = Buffer.allocUnsafe(LINK_HEADER);
      bye[0] = KIND_BYE;
      bye.writeUInt32LE(this.#nextSeq(), 1);
      if (this.#publish(bye)) {
        let timer: NodeJS.Timeout | undefined;
        // The server has the bye (and everything before it) once a flush after it returns.
        await Promise.race([this.#session.nc.flush().catch(() => {}), new Promise((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))]);
        clearTimeout(timer);
      }
      this.#finish({ reason: 'closed' });
      await this.#released;
    })();
    return this.#closing;
  }

  destroy(error?: Error): void {
    this.#finish(error ? { reason: 'error', error } : { reason: 'closed' });
  }

  #finish(info: CloseInfo): void {
    if (this.#finished) return;
    this.#finished = info;
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    // An error stops delivery at the frame that made no sense; a close or a loss first hands over what arrived intact.
    if (info.reason === 'error') this.#in.clear();
    try {
      this.#sub.unsubscribe();
    } catch {
      // The connection is already closed.
    }
    this.#session.leave(this);
    this.#released = this.#session.release(this);
    if (this.#events) this.#report();
  }

  #report(): void {
    if (this.#reported) return;
    this.#reported = true;
    // The peer said bye: what this side published before that is as settled as a write into a socket the peer closed.
    if (this.#finished!.reason === 'peer-closed' && this.#accepted > this.#confirmed) {
      const n = this.#accepted - this.#confirmed;
      this.#confirmed = this.#accepted;
      this.#tickets.written(this.#events, n);
    }
    this.#in.drain(true);
    this.#events!.onClose(this.#finished!);
  }

  ref(): void {
    this.#session.ref(this, true);
  }

  unref(): void {
    this.#session.ref(this, false);
  }
}
