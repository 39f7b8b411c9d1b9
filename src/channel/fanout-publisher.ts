// A publisher of a topic (fanout.ts): each message one PUB with its header
// (fanout-nats.ts); send() resolves once the message is in the kernel.
import { IpcError, errno, fromHere, rangeError, typeError } from '../core/errors.js';
import { encodeBatch, encodeError, type Codec } from './codec.js';
import { closedError, releaseWithin, TopicConnection } from './fanout-connection.js';
import { FANOUT_HEADER, KIND_END, KIND_MESSAGE, KIND_TICK, Sequencer, TICK_MS, topicSubject } from './fanout-nats.js';
import { isPermissionViolation, type NatsSession } from './nats-client.js';

/** Pause between two waits for a connection that is coming back. */
const RETRY_WRITTEN_MS = 20;

/**
 * Sends messages to every subscriber of a topic. `send()` resolves once the
 * message is in the kernel, in the socket buffer towards the server (as a
 * channel's send()); `flush()` once the server has everything sent so far.
 */
export class Publisher<T = unknown> extends TopicConnection {
  /** The largest message body this publisher sends. */
  readonly maxMessageSize: number;
  readonly #subject: string;
  readonly #codec: Codec<T, unknown>;
  readonly #seq = new Sequencer();
  #writing: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  /** Fires TICK_MS after the last message: a tick, so that subscribers see a loss at the end of a burst. */
  #tick: NodeJS.Timeout | null = null;
  /** The server refused this user the subject: it drops every message, so sends fail (EACCES). */
  #refused: Error | null = null;

  /** @internal */
  constructor(url: string, session: NatsSession, topic: string, codec: Codec<T, unknown>, maxMessageSize: number) {
    super(url, session);
    this.#subject = topicSubject(topic);
    this.#codec = codec;
    this.maxMessageSize = maxMessageSize;
    void this.#watchRefusal();
  }

  /** The server answers a publish it refuses with an error of the connection, not of the publish: watch for it. */
  async #watchRefusal(): Promise<void> {
    try {
      for await (const s of this.session.nc.status() as AsyncIterable<{ type: string; error?: Error }>) {
        if (s.type !== 'error' || !s.error || !isPermissionViolation(s.error) || !s.error.message.includes(`"${this.#subject}"`)) continue;
        const err = new IpcError(errno.EACCES, 'publish', { path: this.url }, s.error.message);
        err.cause = s.error;
        this.#refused ??= err;
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }

  /** This publisher's id as subscribers see it (16 hex digits; `publisher` in a loss). */
  get id(): string {
    return this.#seq.id.toString('hex');
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  send(message: T): Promise<void> {
    if (this.#closing) return Promise.reject(closedError(this.url));
    if (this.#refused) return Promise.reject(this.#refused);
    let body: Uint8Array;
    try {
      body = this.#codec.encode(message);
    } catch (e) {
      return Promise.reject(encodeError(this.#codec, 'the message', e));
    }
    if (body.length > this.maxMessageSize) {
      return Promise.reject(rangeError('ERR_IPCKIT_MESSAGE_TOO_LARGE', `a message of ${body.length} bytes exceeds maxMessageSize ${this.maxMessageSize}`));
    }
    const e = this.#publish(body);
    return e ? Promise.reject(e) : this.#written();
  }

  /** Sends every message, each checked first (one too large or not encodable: nothing is sent); one wait for all of them. */
  sendBatch(messages: readonly T[]): Promise<void> {
    if (this.#closing) return Promise.reject(closedError(this.url));
    if (this.#refused) return Promise.reject(this.#refused);
    if (!Array.isArray(messages)) return Promise.reject(typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'sendBatch() takes an array of messages'));
    const bodies = encodeBatch(this.#codec, messages, this.maxMessageSize);
    if (bodies instanceof Error) return Promise.reject(bodies);
    for (const body of bodies) {
      const e = this.#publish(body);
      if (e) return Promise.reject(e);
    }
    return this.#written();
  }

  /**
   * Resolves once the server has every message sent so far (a PING answered
   * by its PONG); rejects with IpcError EACCES when the server refused this
   * user the subject (it says so before the PONG).
   */
  flush(): Promise<void> {
    if (this.#closing) return Promise.reject(closedError(this.url));
    return fromHere(
      (async () => {
        await this.session.nc.flush().catch((e: unknown) => Promise.reject(closedError(this.url, e)));
        // The refusal reaches #watchRefusal() through the status iterator, a turn after the PONG.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.#refused) throw this.#refused;
      })(),
    );
  }

  #publish(body: Uint8Array): Error | null {
    const m = Buffer.allocUnsafe(FANOUT_HEADER + body.length);
    this.#seq.stamp(m, KIND_MESSAGE);
    m.set(body, FANOUT_HEADER);
    try {
      this.session.nc.publish(this.#subject, m);
    } catch (e) {
      return closedError(this.url, e);
    }
    // The tick goes TICK_MS after the last message (one Timeout, moved on by each message; it never keeps the process alive).
    if (this.#tick) this.#tick.refresh();
    else this.#tick = setTimeout(() => this.#marker(KIND_TICK), TICK_MS).unref();
    return null;
  }

  /** An end or a tick: the count of messages so far, nothing else. */
  #marker(kind: typeof KIND_END | typeof KIND_TICK): void {
    const m = Buffer.allocUnsafe(FANOUT_HEADER);
    this.#seq.stamp(m, kind);
    try {
      this.session.nc.publish(this.#subject, m);
    } catch {
      // The connection is already closed.
    }
  }

  /**
   * One wait for everything published in this turn of the event loop
   * (whenWritten() looks once the client has written it). It settles in a
   * later turn, never in a microtask: a loop that awaits each send() lets
   * timers and I/O run (its subscribers in the same process too).
   */
  #written(): Promise<void> {
    if (!this.#writing) {
      const p = this.#whenWritten().then(() => new Promise<void>((resolve) => setImmediate(resolve)));
      this.#writing = p;
      queueMicrotask(() => {
        if (this.#writing === p) this.#writing = null;
      });
    }
    return this.#writing;
  }

  /**
   * The client lost its connection to the server: it reconnects by itself
   * and drops what it had not written (subscribers see the gap), and each
   * wait fails at its every attempt. A send() waits for the connection to
   * come back (its backpressure); it fails only once the connection is
   * closed for good.
   */
  async #whenWritten(): Promise<void> {
    for (;;) {
      try {
        return await this.session.whenWritten();
      } catch (e) {
        if (this.session.nc.isClosed()) throw closedError(this.url, e);
        await new Promise((resolve) => setTimeout(resolve, RETRY_WRITTEN_MS));
      }
    }
  }

  /** Sends the end message (subscribers forget this publisher, and see a loss just before it), waits for the server to have it, and closes the connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#tick ?? undefined);
      this.#marker(KIND_END);
      await releaseWithin(this.session, this);
    })();
    return this.#closing;
  }
}
