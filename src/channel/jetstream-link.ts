// JetStreamLink: a Link through a JetStream stream, so a channel survives its
// NATS server being killed and restarted on the same store. Each channel has
// one stream (file storage, work-queue retention) with a subject per
// direction; each side reads its own subject through a push consumer of its
// own, delivering to a private subject, and acks each message as it arrives
// (work-queue retention: an acked message leaves the store).
//
// Underneath, delivery is at least once: a publish retried after a lost
// PubAck, a message delivered again after a lost ack or a server restart.
// The link makes it exactly once and in order:
//   - every message carries the sender's link sequence number (0, 1, 2...);
//     the receiver hands them over in that order, drops what it already had,
//     and keeps what arrives ahead of a missing one (within the windows) until
//     the missing one comes;
//   - the sender keeps every message until the peer's credit says it was
//     received (the credit carries the peer's next expected sequence number),
//     and after a reconnect publishes them all again, with their Nats-Msg-Id
//     (the stream drops those it still has within its duplicate window): a
//     message the server acked and then lost with its process comes back;
//   - after a reconnect the consumer is made anew, delivering everything the
//     stream still has for this side (what was not acked).
// send() resolves once the server acked (PubAck) its message; at most
// MAX_PUBLISHING publishes are waiting for their acks, and the credit windows
// of nats-link.ts bound what is unconsumed. Probes, as on nats://, go through
// core NATS to the peer's private subject.
// Every message of a link:
//   byte 0      kind: 0 data (a channel frame follows), 1 credit (float64 LE
//               each: bytes consumed, data messages consumed, the next
//               sequence number expected), 2 bye
//   bytes 1..6  sequence number (u48 LE), 0, 1, 2... per direction
import { performance } from 'node:perf_hooks';
import { badFrame } from './frame.js';
import type { JetStreamContext } from './jetstream-client.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';
import { isNoResponders, isPermissionViolation, isTimeout, type NatsMsg, type NatsSession, type NatsSubscription, type SessionMember } from './nats-client.js';
import { FRAME_WINDOW, windowFor, type ProbeSettings } from './nats-link.js';
import { CreditReceiver } from './credit-receiver.js';
import { CreditSender, readCredit } from './credit-sender.js';
import { CLOSE_GRACE_MS } from './stream.js';

const KIND_DATA = 0;
const KIND_CREDIT = 1;
const KIND_BYE = 2;
const JS_HEADER = 7;
/** What maxMessageSize leaves of max_payload: the link header, the frame's longest header, the Nats-Msg-Id header. */
export const JS_OVERHEAD = JS_HEADER + 5 + 64;
const CREDIT_LENGTH = JS_HEADER + 24;
/** Publishes waiting for their PubAck at most: send() waits beyond it. */
const MAX_PUBLISHING = 1024;
const MAX_PROBES = 64;
const EMPTY = new Uint8Array(0);
const ACK = Buffer.from('+ACK');
const SECOND_NS = 1_000_000_000;
/** How long the stream keeps a message nobody acked (a side that crashed): then it expires. */
const MAX_AGE_S = 3600;
/** How long the stream remembers a Nats-Msg-Id (drops a republished message it still has). */
const DUPLICATE_WINDOW_S = 120;
/** How long a consumer nobody reads (its side crashed) stays on the server. */
const INACTIVE_S = 3600;
/** How long the server waits for an ack before it delivers a message again. */
const ACK_WAIT_S = 5;
/** Pause before a failed publish or consumer creation is tried again, doubling up to RETRY_MAX_MS. */
const RETRY_MS = 50;
const RETRY_MAX_MS = 500;
/** A publish without its PubAck this long is published again. */
const ACK_TIMEOUT_MS = 2000;
/** JetStream's error code for a stream it does not have (JSStreamNotFoundErr), and the tries of a consumer that meets it. */
const STREAM_NOT_FOUND = 10059;
const CONSUMER_ATTEMPTS = 4;

/** The stream of a channel and its subjects: one id, a side each ('c' the connector, 'l' the listener). */
export const streamName = (id: string): string => `IPCKIT_${id}`;
export const STREAM_NAME = /^IPCKIT_[0-9a-f]{32}$/;
const subjectFor = (id: string, side: 'c' | 'l'): string => `_IPCKJS.${id}.${side}`;

/** The channel's stream: file storage, work-queue retention, messages expire after MAX_AGE_S. */
export function streamConfig(id: string): Record<string, unknown> {
  return {
    name: streamName(id),
    subjects: [subjectFor(id, 'c'), subjectFor(id, 'l')],
    storage: 'file',
    retention: 'workqueue',
    max_age: MAX_AGE_S * SECOND_NS,
    duplicate_window: DUPLICATE_WINDOW_S * SECOND_NS,
    num_replicas: 1,
  };
}

interface Out {
  seq: number;
  msg: Buffer;
  data: boolean;
  /** The server has it (a PubAck, or the peer received it). */
  acked: boolean;
  publishing: boolean;
  /** When its first failed publish was: beyond probeTimeout of failures, the channel is lost. */
  failingSince: number;
  /** When it was last published. */
  sentAt: number;
  retry: NodeJS.Timeout | null;
}

export interface JetStreamParts {
  ctx: JetStreamContext;
  /** The channel's id (its stream is IPCKIT_<id>). */
  id: string;
  side: 'c' | 'l';
  /** This side's private core subject (probes) and the subject its consumer delivers to. */
  subject: string;
  deliverSubject: string;
  /** The prefix of the reply subjects of this side's publishes (their PubAcks). */
  ackSubject: string;
}

export class JetStreamLink implements Link, SessionMember {
  readonly transport = 'jetstream';
  readonly peer = null;
  readonly copiesOnWrite = true;
  maxFrame = 0;
  readonly window: number;
  readonly frameWindow = FRAME_WINDOW;
  /** Data messages taken in order: handed to the Channel or held, and the credit sent back. */
  readonly #in: CreditReceiver;
  readonly #session: NatsSession;
  readonly #ctx: JetStreamContext;
  readonly #stream: string;
  readonly #consumer: string;
  readonly #inbox: string;
  readonly #outbox: string;
  readonly #side: 'c' | 'l';
  readonly #deliverSubject: string;
  readonly #ackPrefix: string;
  readonly #probeSub: NatsSubscription;
  readonly #deliverSub: NatsSubscription;
  readonly #ackSubject: string;
  readonly #ackSub: NatsSubscription;
  readonly #maxIn: number;
  readonly #probe: ProbeSettings;
  #peerSubject = '';
  #events: LinkEvents | null = null;
  // Receiving: the next sequence number expected, what came ahead of it.
  #recvNext = 0;
  readonly #ahead = new Map<number, Uint8Array>();
  #aheadBytes = 0;
  /** Messages that arrived again and were dropped (a test counts them). */
  duplicates = 0;
  // Sending: every message until the peer received it; [#outHead] is the oldest.
  #out: Out[] = [];
  #outHead = 0;
  #sendSeq = 0;
  /** The next message whose PubAck send() still waits for. */
  #reportSeq = 0;
  #publishing = 0;
  /** Data sent against the peer's windows and credits. */
  readonly #credit = new CreditSender();
  /** The peer's count of this side's messages it received (in its credits). */
  #peerReceived = 0;
  readonly #tickets = new WriteTickets();
  #heard = false;
  #probes = 0;
  #probeTimer: NodeJS.Timeout | null = null;
  /** While the client reconnects: since when, and the timer that gives up. */
  #disconnectedAt = 0;
  #giveUp: NodeJS.Timeout | null = null;
  /** The last reconnect: the peer may not have subscribed again yet, so "no responders" waits probeTimeout. */
  #reconnectedAt = -Infinity;
  /** Connections lost so far. */
  #disconnects = 0;
  #consumerReady: Promise<void> = Promise.resolve();
  #consumerMade = false;
  /** The handshake is done: from then on, this side may delete the channel's stream. */
  #attached = false;
  #closing: Promise<void> | null = null;
  #finished: CloseInfo | null = null;
  #reported = false;
  #released: Promise<void> = Promise.resolve();

  /** Subscribes to this side's two subjects at once; createConsumer() then starts the deliveries. */
  constructor(session: NatsSession, parts: JetStreamParts, maxIn: number, probe: ProbeSettings) {
    this.#session = session;
    this.#ctx = parts.ctx;
    this.#side = parts.side;
    this.#stream = streamName(parts.id);
    this.#consumer = parts.side;
    this.#inbox = subjectFor(parts.id, parts.side);
    this.#outbox = subjectFor(parts.id, parts.side === 'c' ? 'l' : 'c');
    this.#deliverSubject = parts.deliverSubject;
    this.#ackPrefix = `$JS.ACK.${this.#stream}.${this.#consumer}.`;
    this.#maxIn = maxIn;
    this.window = windowFor(maxIn);
    this.#in = new CreditReceiver(this.window, FRAME_WINDOW, () => this.#grant());
    this.#probe = probe;
    this.#probeSub = session.nc.subscribe(parts.subject, { callback: (error, msg) => (error ? this.lost(error) : this.#onProbe(msg)) });
    this.#deliverSub = session.nc.subscribe(parts.deliverSubject, { callback: (error, msg) => (error ? this.lost(error) : this.#onDelivery(msg)) });
    this.#ackSubject = parts.ackSubject;
    this.#ackSub = session.nc.subscribe(`${parts.ackSubject}.*`, { callback: (error, msg) => (error ? this.lost(error) : this.#onPubAck(msg)) });
    session.hold(this);
    session.join(this);
  }

  /**
   * Creates this side's consumer (`again`: after a reconnect, in place of the
   * old one): everything the stream still has for this side is delivered.
   */
  async createConsumer(again = false): Promise<void> {
    const { jsm } = this.#ctx;
    if (again) await jsm.consumers.delete(this.#stream, this.#consumer).catch(() => false);
    const config = {
      durable_name: this.#consumer,
      deliver_subject: this.#deliverSubject,
      filter_subject: this.#inbox,
      deliver_policy: 'all',
      ack_policy: 'explicit',
      ack_wait: ACK_WAIT_S * SECOND_NS,
      max_ack_pending: 2 * FRAME_WINDOW + MAX_PUBLISHING,
      inactive_threshold: INACTIVE_S * SECOND_NS,
    } as const;
    // nats-server 2.9 has answered "stream not found" to a consumer made a
    // few milliseconds after the peer's stream was created and acknowledged
    // (once in about 25 × 16 channels made in a row): tried again, a few
    // times, a few milliseconds apart; a stream that is really gone still fails.
    for (let attempt = 1; ; attempt++) {
      try {
        await jsm.consumers.add(this.#stream, config);
        break;
      } catch (e) {
        // JetStreamApiError: `code` is the API's err_code.
        if ((e as { code?: unknown })?.code !== STREAM_NOT_FOUND || attempt === CONSUMER_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, 10 * attempt));
      }
    }
    this.#consumerMade = true;
  }

  attach(peerSubject: string, maxOut: number, peerWindow: number, peerFrameWindow: number): void {
    this.#peerSubject = peerSubject;
    this.maxFrame = maxOut;
    this.#credit.attach(peerWindow, peerFrameWindow);
    this.#attached = true;
    this.#probeTimer = setInterval(() => this.#tick(), this.#probe.probeInterval).unref();
  }

  start(events: LinkEvents): void {
    this.#events = events;
    this.#in.events = events;
    this.#in.drain();
    if (this.#finished) this.#report();
  }

  #onProbe(msg: NatsMsg): void {
    if (this.#finished) return;
    this.#heard = true;
    if (msg.reply) msg.respond(EMPTY);
  }

  #onDelivery(msg: NatsMsg): void {
    if (this.#finished) return;
    this.#heard = true;
    // Only the stream's consumer delivers here (its ack subject says which); anything else is forged.
    const reply = msg.reply;
    if (!reply || !reply.startsWith(this.#ackPrefix)) return this.destroy(badFrame(`a message on the channel's delivery subject that its stream's consumer did not send (reply ${JSON.stringify(reply ?? null)})`));
    const d = msg.data;
    if (d.length < JS_HEADER) return this.destroy(badFrame(`a JetStream message of ${d.length} bytes, shorter than the link header`));
    if (d.length > this.#maxIn + JS_HEADER) return this.destroy(badFrame(`incoming frame of ${d.length - JS_HEADER} bytes exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload)`));
    const seq = Buffer.from(d.buffer, d.byteOffset, d.length).readUIntLE(1, 6);
    // Acked as it arrives: it is in this process now (handed over, held, or already had).
    this.#session.nc.publish(reply, ACK);
    if (seq < this.#recvNext || this.#ahead.has(seq)) {
      this.duplicates++;
      return;
    }
    if (seq > this.#recvNext) {
      // Ahead of one still missing (retried, or delivered again): kept until it comes, within what the windows allow.
      if (seq - this.#recvNext > 2 * (this.frameWindow + MAX_PUBLISHING) || this.#aheadBytes + d.length > 2 * this.window) {
        return this.destroy(badFrame(`message ${seq} of the peer is beyond what its windows allow ahead of ${this.#recvNext}`));
      }
      this.#ahead.set(seq, d);
      this.#aheadBytes += d.length;
      return;
    }
    this.#take(d);
    for (let next = this.#ahead.get(this.#recvNext); next && !this.#finished; next = this.#ahead.get(this.#recvNext)) {
      this.#ahead.delete(this.#recvNext);
      this.#aheadBytes -= next.length;
      this.#take(next);
    }
  }

  /** The next message in order. */
  #take(d: Uint8Array): void {
    this.#recvNext++;
    switch (d[0]) {
      case KIND_DATA: {
        // (Its length was checked against maxMessageSize as it arrived.)
        const error = this.#in.take(d, JS_HEADER, d.length);
        if (error) this.destroy(badFrame(error));
        return;
      }
      case KIND_CREDIT: {
        const [consumed, frames, received] = readCredit(d, JS_HEADER, 3) as [number, number, number];
        const wrong =
          this.#credit.check(consumed, frames) ??
          (!Number.isInteger(received) || received < this.#peerReceived || received > this.#sendSeq
            ? `${received} messages received, not between the last credit (${this.#peerReceived}) and what was sent (${this.#sendSeq})`
            : null);
        if (wrong) return this.destroy(badFrame(`the peer's credit is wrong: ${wrong}`));
        this.#credit.take(consumed, frames);
        this.#peerReceived = received;
        this.#settle();
        return this.#credit.writable(this.#events);
      }
      case KIND_BYE:
        if (d.length !== JS_HEADER) return this.destroy(badFrame(`a bye of ${d.length} bytes`));
        return this.#finish({ reason: 'peer-closed' });
      default:
        return this.destroy(badFrame(`unknown link message kind ${d[0]}`));
    }
  }

  #grant(): void {
    if (this.#finished || this.#closing) return;
    const m = this.#message(KIND_CREDIT, CREDIT_LENGTH);
    m.writeDoubleLE(this.#in.consumed, JS_HEADER);
    m.writeDoubleLE(this.#in.consumedFrames, JS_HEADER + 8);
    m.writeDoubleLE(this.#recvNext, JS_HEADER + 16);
    this.#in.granted();
    this.#enqueue(m, false);
  }

  /** A link message of `kind` and `length` bytes with the next sequence number. */
  #message(kind: number, length: number): Buffer {
    const m = Buffer.allocUnsafe(length);
    m[0] = kind;
    m.writeUIntLE(this.#sendSeq, 1, 6);
    return m;
  }

  #enqueue(msg: Buffer, data: boolean): void {
    const o: Out = { seq: this.#sendSeq++, msg, data, acked: false, publishing: false, failingSince: 0, sentAt: 0, retry: null };
    this.#out.push(o);
    if (!this.#disconnectedAt) this.#publish(o);
  }

  /** Publishes `o` (again) with its Nats-Msg-Id; the stream's PubAck comes to this side's ack subject. */
  #send(o: Out): void {
    o.sentAt = performance.now();
    const h = this.#ctx.headers();
    h.set('Nats-Msg-Id', `${this.#side}${o.seq}`);
    try {
      this.#session.nc.publish(this.#outbox, o.msg, { reply: `${this.#ackSubject}.${o.seq}`, headers: h });
    } catch (e) {
      this.lost(e as Error);
    }
  }

  #publish(o: Out): void {
    if (this.#finished) return;
    if (!o.publishing) {
      o.publishing = true;
      this.#publishing++;
    }
    this.#send(o);
  }

  /** The message of sequence number `seq`, while this side still keeps it. */
  #outAt(seq: number): Out | undefined {
    const k = this.#out.length > 0 ? seq - this.#out[0]!.seq : -1;
    return Number.isInteger(k) && k >= this.#outHead && k < this.#out.length ? this.#out[k] : undefined;
  }

  /**
   * The server's answer to a publish: a PubAck ({ stream, seq }), an error
   * ({ error }), or a 503 status (no stream takes the subject now: JetStream
   * still starting after a restart, or the stream gone).
   */
  #onPubAck(msg: NatsMsg): void {
    if (this.#finished) return;
    const o = this.#outAt(Number(msg.subject.slice(this.#ackSubject.length + 1)));
    // An answer to an earlier try of a message settled since, or to nothing this side sent.
    if (!o || o.acked) return;
    let ack: { stream?: unknown; seq?: unknown; error?: { description?: string } } | null = null;
    if (msg.data.length > 0 && msg.data.length < 4096) {
      try {
        ack = JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.length).toString('utf8'));
      } catch {
        ack = null;
      }
    }
    if (!ack || typeof ack !== 'object') return this.#failed(o, new Error(msg.data.length === 0 ? 'no stream takes the subject (JetStream not ready, or the stream is gone)' : 'a malformed PubAck'));
    if (ack.error) return this.#failed(o, new Error(`JetStream refused the message: ${String(ack.error.description ?? JSON.stringify(ack.error))}`));
    if (ack.stream !== this.#stream || !Number.isInteger(ack.seq) || (ack.seq as number) < 1) {
      return this.destroy(new Error(`the JetStream ack of message ${o.seq} names stream ${JSON.stringify(ack.stream)}, sequence ${JSON.stringify(ack.seq)}: not this channel's stream ${this.#stream}`));
    }
    o.publishing = false;
    this.#publishing--;
    o.acked = true;
    o.failingSince = 0;
    if (o.retry) clearTimeout(o.retry);
    o.retry = null;
    this.#settle();
    if (this.#publishing < MAX_PUBLISHING / 2) this.#credit.writable(this.#events);
  }

  /**
   * A publish that failed (no PubAck within ACK_TIMEOUT_MS, JetStream not
   * ready yet after a restart): tried again after a pause, unless the client
   * is reconnecting (then everything is published again once it is back).
   * Failing for probeTimeout is peer-lost.
   */
  #failed(o: Out, e: Error): void {
    if (this.#finished || o.acked || o.retry) return;
    const now = performance.now();
    o.failingSince ||= now;
    if (now - o.failingSince >= this.#probe.probeTimeout) {
      return this.lost(new Error(`JetStream did not take message ${o.seq} of this channel for ${Math.round(now - o.failingSince)} ms: ${e.message}`));
    }
    if (this.#disconnectedAt) return;
    const wait = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** Math.min(8, Math.floor((now - o.failingSince) / RETRY_MS)));
    o.retry = setTimeout(() => {
      o.retry = null;
      if (!this.#disconnectedAt && !o.acked && !this.#finished) this.#send(o);
    }, wait);
  }

  /** Publishes whose PubAck is overdue are tried again (the stream drops a copy it already has). */
  #checkAcks(): void {
    const now = performance.now();
    for (let k = this.#outHead; k < this.#out.length; k++) {
      const o = this.#out[k]!;
      if (o.publishing && !o.acked && !o.retry && now - o.sentAt > ACK_TIMEOUT_MS) this.#failed(o, new Error(`no PubAck within ${ACK_TIMEOUT_MS} ms`));
    }
  }

  /** Messages the server has and the peer received leave the sender; send()s waiting for acks in order resolve. */
  #settle(): void {
    let n = 0;
    // #out holds consecutive sequence numbers from its index 0 (trimmed or not).
    const base = this.#out.length > 0 ? this.#out[0]!.seq : this.#sendSeq;
    for (let k = this.#reportSeq - base; k < this.#out.length; k++) {
      const o = this.#out[k]!;
      if (o.seq < this.#peerReceived) o.acked = true;
      if (!o.acked) break;
      if (o.data) n++;
      this.#reportSeq = o.seq + 1;
    }
    while (this.#outHead < this.#out.length) {
      const o = this.#out[this.#outHead]!;
      if (o.seq >= this.#peerReceived || o.seq >= this.#reportSeq) break;
      if (o.retry) clearTimeout(o.retry);
      this.#outHead++;
    }
    if (this.#outHead > 1024 && this.#outHead * 2 > this.#out.length) {
      this.#out = this.#out.slice(this.#outHead);
      this.#outHead = 0;
    }
    if (n > 0) this.#tickets.written(this.#events, n);
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    const len = JS_HEADER + header.byteLength + body.byteLength;
    if (this.#finished || this.#closing || this.#publishing >= MAX_PUBLISHING || !this.#credit.fits(len)) {
      this.#credit.wantWritable = true;
      return false;
    }
    const m = this.#message(KIND_DATA, len);
    m.set(header, JS_HEADER);
    m.set(body, JS_HEADER + header.byteLength);
    this.#credit.counted(len);
    this.#tickets.accepted();
    this.#enqueue(m, true);
    return true;
  }

  /** A send() resolves once the server acked its message (PubAck): it is in the stream's store. */
  unwritten(): number {
    // 0 once every data message accepted was acked (WriteTickets counts them).
    return this.#tickets.unwritten(true);
  }

  #tick(): void {
    if (this.#finished || this.#disconnectedAt) return;
    this.#checkAcks();
    if (this.#closing) return;
    if (this.#heard) {
      this.#heard = false;
      return;
    }
    if (this.#probes >= MAX_PROBES) return;
    this.#probes++;
    const started = performance.now();
    const disconnects = this.#disconnects;
    this.#session.nc.request(this.#peerSubject, EMPTY, { timeout: this.#probe.probeTimeout }).then(
      () => this.#probes--,
      (e) => {
        this.#probes--;
        // A probe sent before the connection was lost says nothing: it or its answer may have died with the server.
        if (this.#finished || this.#closing || this.#disconnectedAt || disconnects !== this.#disconnects) return;
        if (isNoResponders(e)) {
          // Right after a reconnect the peer's client may not have subscribed again yet: it gets probeTimeout to.
          if (performance.now() - this.#reconnectedAt < this.#probe.probeTimeout) return;
          this.lost(new Error("the peer's subject has no subscriber any more: its process or its connection to the NATS server ended"));
        } else if (isTimeout(e)) this.lost(new Error(`no answer from the peer to a probe within ${Math.round(performance.now() - started)} ms (a partition, or a stalled peer)`));
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

  /** SessionMember: the client lost the server and reconnects; the channel waits for it up to probeTimeout. */
  disconnected(): void {
    if (this.#finished || this.#disconnectedAt) return;
    this.#disconnectedAt = performance.now();
    this.#disconnects++;
    this.#giveUp = setTimeout(() => this.lost(new Error(`the NATS server was unreachable for ${this.#probe.probeTimeout} ms`)), this.#probe.probeTimeout);
    this.#giveUp.unref();
  }

  /** SessionMember: connected again: a new consumer, and every message the peer has not received published again. */
  reconnected(): void {
    if (this.#finished || !this.#disconnectedAt) return;
    this.#disconnectedAt = 0;
    if (this.#giveUp) clearTimeout(this.#giveUp);
    this.#giveUp = null;
    this.#reconnectedAt = performance.now();
    this.#consumerReady = this.#retryConsumer(performance.now());
    for (let k = this.#outHead; k < this.#out.length; k++) {
      const o = this.#out[k]!;
      if (o.retry) clearTimeout(o.retry);
      o.retry = null;
      // Acked ones too: the server may have lost what it acked just before it died.
      if (o.acked) this.#send(o);
      else this.#publish(o);
    }
    this.#credit.writable(this.#events);
  }

  /** After a restart JetStream may need a moment before it takes requests: tried again until probeTimeout. */
  async #retryConsumer(since: number): Promise<void> {
    for (let wait = RETRY_MS; !this.#finished && !this.#disconnectedAt; wait = Math.min(RETRY_MAX_MS, wait * 2)) {
      try {
        await this.createConsumer(true);
        return;
      } catch (e) {
        if (performance.now() - since >= this.#probe.probeTimeout) return this.lost(new Error(`could not create this channel's JetStream consumer again: ${(e as Error)?.message ?? e}`));
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  lost(error: Error): void {
    this.#finish({ reason: 'peer-lost', error });
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (this.#finished) return this.#released;
      this.#enqueue(this.#message(KIND_BYE, JS_HEADER), false);
      // The bye and everything before it are in the stream once their PubAcks came (or the grace ran out).
      const deadline = performance.now() + Math.max(CLOSE_GRACE_MS, this.#probe.probeTimeout);
      while (!this.#finished && this.#reportSeq < this.#sendSeq && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      this.#finish({ reason: 'closed' });
      await this.#released;
    })();
    return this.#closing;
  }

  /** Settles once this link's clean-up is done and its hold on the connection is gone. */
  released(): Promise<void> {
    return this.#released;
  }

  destroy(error?: Error): void {
    this.#finish(error ? { reason: 'error', error } : { reason: 'closed' });
  }

  #finish(info: CloseInfo): void {
    if (this.#finished) return;
    this.#finished = info;
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    if (this.#giveUp) clearTimeout(this.#giveUp);
    for (let k = this.#outHead; k < this.#out.length; k++) if (this.#out[k]!.retry) clearTimeout(this.#out[k]!.retry!);
    if (info.reason === 'error') this.#in.clear();
    this.#ahead.clear();
    for (const sub of [this.#probeSub, this.#deliverSub, this.#ackSub]) {
      try {
        sub.unsubscribe();
      } catch {
        // The connection is already closed.
      }
    }
    this.#session.leave(this);
    this.#released = this.#cleanUp(info).finally(() => this.#session.release(this));
    if (this.#events) this.#report();
  }

  /**
   * The consumer of this side goes; the stream too once nobody needs it: the
   * peer closed, was lost or misbehaved, or its consumer is gone already (the
   * peer's own close deletes it, and whichever side is last deletes the
   * stream). Bounded by CLOSE_GRACE_MS: a server that is gone keeps them
   * until they expire (MAX_AGE_S, INACTIVE_S).
   */
  async #cleanUp(info: CloseInfo): Promise<void> {
    if (this.#disconnectedAt || this.#session.nc.isClosed() || !this.#consumerMade) return;
    const { jsm } = this.#ctx;
    const work = (async () => {
      await this.#consumerReady.catch(() => {});
      await jsm.consumers.delete(this.#stream, this.#consumer).catch(() => false);
      // A handshake that failed: the stream is the connector's to delete (it made it).
      if (!this.#attached) return;
      let last = info.reason !== 'closed';
      if (!last) last = await jsm.streams.info(this.#stream).then((i) => i.state.consumer_count === 0, () => false);
      if (last) await jsm.streams.delete(this.#stream).catch(() => false);
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([work, new Promise((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
  }

  #report(): void {
    if (this.#reported) return;
    this.#reported = true;
    // The peer said bye: what this side sent before that is as settled as a write into a socket the peer closed.
    if (this.#finished!.reason === 'peer-closed') {
      let n = 0;
      for (let k = this.#outHead; k < this.#out.length; k++) {
        const o = this.#out[k]!;
        if (o.seq >= this.#reportSeq && o.data) n++;
      }
      this.#reportSeq = this.#sendSeq;
      if (n > 0) this.#tickets.written(this.#events, n);
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
