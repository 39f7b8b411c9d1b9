// Publish/subscribe: one way, from any number of publishers to every
// subscriber of a topic, over NATS subjects (the wire: fanout-nats.ts).
//
//   const sub = await channel.subscribe('nats://host:4222/prices');
//   for await (const msg of sub) ...
//   const pub = await channel.publish('nats://host:4222/prices');
//   await pub.send({ eur: 1.08 });
//
// Core NATS delivers at most once: a message can be lost (a slow consumer
// cut off by the server, a server restart) and NATS does not say so. A
// subscriber sees it by the publisher's sequence numbers and reports it: a
// 'lost' event where one is listened for, otherwise the iterator throws
// ERR_IPCKIT_MESSAGES_LOST at the place of the gap (and goes on after it).
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { IpcError, fromHere, rangeError, stateError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { encodeBatch, encodeError, resolveCodec, type Codec, type CodecName } from './codec.js';
import type { EventMethod } from './events.js';
import { FANOUT_HEADER, KIND_END, KIND_MESSAGE, SequenceCheck, Sequencer, topicSubject, type Parsed } from './fanout-nats.js';
import { NatsSession, isPermissionViolation, type NatsMsg, type NatsSubscription, type SessionMember } from './nats-client.js';
import { checkNatsOptions, type NatsOptions, type NatsSettings } from './nats-options.js';
import { CLOSE_GRACE_MS } from './stream.js';
import { MAX_LIMIT, urlError } from './transport.js';
import { nats, type NatsEndpoint } from './transports/nats.js';
import { SCHEMES } from './transports/index.js';

/** The schemes publish() and subscribe() take. */
export const FANOUT_SCHEMES = ['nats'] as const;

export interface FanoutOptions<T = unknown> {
  /** 'raw' | 'json' | 'v8' | 'msgpack' or your own { name, encode, decode }. Default 'json'. Publishers and subscribers of a topic must agree (nothing checks it: a message a subscriber cannot decode is dropped and counted as invalid). */
  codec?: CodecName | Codec<T, any>;
  /** Largest message payload in bytes: a publisher refuses to send more, a subscriber drops more (counted as invalid). Default and cap: the server's max_payload − 13 (1048563 with nats-server's default). */
  maxMessageSize?: number;
  /** ms to reach the NATS server. Default 10000. */
  timeout?: number;
  /** More servers, TLS, credentials, the client's name (as for nats:// channels; probeInterval/probeTimeout are for channels only). */
  nats?: Omit<NatsOptions, 'probeInterval' | 'probeTimeout'>;
}

export type PublishOptions<T = unknown> = FanoutOptions<T>;

export interface SubscribeOptions<T = unknown> extends FanoutOptions<T> {
  /** Received messages held for the reader; further ones are dropped and reported as lost, as a loss in the network would be. Default 65536. */
  highWaterMark?: number;
}

/** A loss a subscriber saw: `lost` messages of one publisher never arrived. */
export type MessagesLostError = Error & { code: 'ERR_IPCKIT_MESSAGES_LOST'; lost: number; publisher: string };

export interface SubscriberEvents {
  /** Messages of a publisher went missing (with a listener, losses come here instead of the iterator). */
  lost: (error: MessagesLostError) => void;
  /** A message that was dropped because it made no sense (ERR_IPCKIT_BAD_FRAME) or could not be decoded (ERR_IPCKIT_CODEC). */
  invalid: (error: Error) => void;
}

const COMMON = ['codec', 'maxMessageSize', 'timeout', 'nats'] as const;
const PUBLISH_OPTIONS = [...COMMON];
const SUBSCRIBE_OPTIONS = [...COMMON, 'highWaterMark'];
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_HIGH_WATER_MARK = 65_536;
/** Pause between two waits for a connection that is coming back. */
const RETRY_WRITTEN_MS = 20;

interface Checked<T> {
  ep: NatsEndpoint;
  codec: Codec<T, any>;
  maxMessageSize?: number;
  timeout: number;
  nats: NatsSettings;
}

/** The topic `url` names: nats:// only; another channel scheme, or an unknown one, is ERR_IPCKIT_INVALID_URL saying what is supported. */
function topicOf(url: string, what: string): NatsEndpoint {
  if (typeof url !== 'string') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what}(): url must be a string such as nats://127.0.0.1:4222/TOPIC`);
  const colon = url.indexOf(':');
  const scheme = colon < 0 ? '' : url.slice(0, colon);
  if (scheme === 'nats') return nats.parse('nats', url.slice(colon + 1), url);
  const supported = FANOUT_SCHEMES.map((s) => `${s}://`).join(', ');
  if (SCHEMES.includes(scheme)) {
    throw urlError(url, `${what}() supports ${supported}; ${scheme}: is a channel transport (one sender, one receiver). For fan-out between processes of one host, run a nats-server there (nats://127.0.0.1:4222/TOPIC)`);
  }
  throw urlError(url, `${scheme ? `unknown scheme '${scheme}'` : 'no scheme'}: ${what}() supports ${supported}`);
}

function checkCommon<T>(url: string, options: FanoutOptions<T> | undefined, what: string, known: readonly string[]): Checked<T> & { o: SubscribeOptions<T> } {
  const o = checkOptions(options, 'options', known) as SubscribeOptions<T>;
  const ep = topicOf(url, what);
  const codec = resolveCodec<T>(o.codec as CodecName | Codec<T> | undefined);
  const maxMessageSize = o.maxMessageSize === undefined ? undefined : checkInteger(o.maxMessageSize, 'options.maxMessageSize', 1, MAX_LIMIT);
  const timeout = checkInteger(o.timeout, 'options.timeout', 1, 2 ** 31 - 1, DEFAULT_TIMEOUT_MS);
  const given = o.nats as NatsOptions | undefined;
  if (given?.probeInterval !== undefined || given?.probeTimeout !== undefined) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.nats.probeInterval/probeTimeout are for nats:// channels: ${what}() has no peer to probe`);
  }
  return { o, ep, codec, ...(maxMessageSize !== undefined ? { maxMessageSize } : {}), timeout, nats: checkNatsOptions(given) };
}

/** The largest message body: options.maxMessageSize within what the server carries. */
function bodyLimit(given: number | undefined, session: NatsSession): number {
  const server = session.maxPayload - FANOUT_HEADER;
  return given === undefined ? server : Math.min(given, server);
}

/** A publisher's or subscriber's own connection, which reconnects (and subscribes again) by itself after the server comes back. */
function openSession(c: Checked<unknown>, url: string): Promise<NatsSession> {
  return NatsSession.open(c.ep, c.nats, url, true, c.timeout);
}

/** Closes a session within CLOSE_GRACE_MS: what was published goes first while the server is there; a server that is gone does not hold close() up. */
async function releaseWithin(session: NatsSession, holder: object): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const released = session.release(holder);
  const inTime = await Promise.race([released.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(r, CLOSE_GRACE_MS, false)))]);
  clearTimeout(timer);
  if (!inTime) await session.nc.close().catch(() => {});
}

function closedError(url: string, cause?: unknown): Error {
  const err = stateError('ERR_IPCKIT_CLOSED', `${url}: closed${cause instanceof Error ? ` (${cause.message})` : ''}`);
  if (cause !== undefined) (err as Error).cause = cause;
  return err;
}

/** The server refused the subscription (its permissions: IpcError EACCES), or it ended otherwise. */
function subscribeError(url: string, error: Error): Error {
  if (!isPermissionViolation(error)) return closedError(url, error);
  const err = new IpcError(constants.errno.EACCES, 'subscribe', { path: url }, error.message);
  err.cause = error;
  return err;
}

/** `url` with its password, if any, hidden: what errors and `url` show (they end up in logs). */
function withoutPassword(url: string): string {
  return url.replace(/^(nats:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** What a publisher and a subscriber share: their own connection to the server, closed by close() or dispose. */
abstract class TopicConnection extends EventEmitter implements AsyncDisposable {
  /** The URL given, its password (if any) shown as ***. */
  readonly url: string;
  /** @internal */
  protected readonly session: NatsSession;

  constructor(url: string, session: NatsSession) {
    super();
    this.url = withoutPassword(url);
    this.session = session;
    session.hold(this);
  }

  abstract close(): Promise<void>;

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Whether the connection keeps the process alive (default true). */
  ref(): this {
    this.session.ref(this, true);
    return this;
  }

  unref(): this {
    this.session.ref(this, false);
    return this;
  }
}

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
        const err = new IpcError(constants.errno.EACCES, 'publish', { path: this.url }, s.error.message);
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
      return null;
    } catch (e) {
      return closedError(this.url, e);
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
      const end = Buffer.allocUnsafe(FANOUT_HEADER);
      this.#seq.stamp(end, KIND_END);
      try {
        this.session.nc.publish(this.#subject, end);
      } catch {
        // The connection is already closed.
      }
      await releaseWithin(this.session, this);
    })();
    return this.#closing;
  }

}

/** Typed on()/once()/off()... (SubscriberEvents). */
export interface Subscriber<T = unknown> {
  on: EventMethod<SubscriberEvents, this>;
  once: EventMethod<SubscriberEvents, this>;
  off: EventMethod<SubscriberEvents, this>;
  addListener: EventMethod<SubscriberEvents, this>;
  removeListener: EventMethod<SubscriberEvents, this>;
  prependListener: EventMethod<SubscriberEvents, this>;
  prependOnceListener: EventMethod<SubscriberEvents, this>;
}

/** A loss, queued in its place among the messages for a reader without a 'lost' listener. */
class LossMark {
  constructor(readonly error: MessagesLostError) {}
}

/**
 * Every message published to a topic after subscribe() resolved, in order
 * per publisher: `for await (const msg of sub)` or next(). Losses are never
 * silent (the `lost` count, the 'lost' event, or ERR_IPCKIT_MESSAGES_LOST
 * thrown by the iterator); malformed messages are dropped and counted
 * (`invalid`, the 'invalid' event).
 */
export class Subscriber<T = unknown> extends TopicConnection implements AsyncIterable<T> {
  /** The largest message body accepted. */
  readonly maxMessageSize: number;
  readonly highWaterMark: number;
  readonly #codec: Codec<unknown, T>;
  readonly #check: SequenceCheck;
  readonly #sub: NatsSubscription;
  #items: Array<T | LossMark> = [];
  #head = 0;
  #waiting: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void }> = [];
  #lost = 0;
  #invalid = 0;
  /** Why no more messages come: null while subscribed. */
  #ended: Error | 'closed' | null = null;
  #closing: Promise<void> | null = null;
  /**
   * Told when the connection goes. A disconnect is waited out (the client
   * reconnects and subscribes again; what was missed shows as a loss); a
   * connection closed for good ends the subscription.
   */
  readonly #member: SessionMember = {
    lost: (error) => {
      if (this.session.nc.isClosed()) this.#end(closedError(this.url, error));
    },
  };

  /** @internal Subscribes at once. */
  constructor(url: string, session: NatsSession, topic: string, codec: Codec<unknown, T>, maxMessageSize: number, highWaterMark: number) {
    super(url, session);
    this.#codec = codec;
    this.maxMessageSize = maxMessageSize;
    this.highWaterMark = highWaterMark;
    this.#check = new SequenceCheck(maxMessageSize);
    this.#sub = session.nc.subscribe(topicSubject(topic), { callback: (error, msg) => (error ? this.#end(subscribeError(this.url, error)) : this.#onMessage(msg)) });
    session.join(this.#member);
  }

  /** Messages known lost so far (all publishers). */
  get lost(): number {
    return this.#lost;
  }

  /** Messages dropped so far because they made no sense or could not be decoded. */
  get invalid(): number {
    return this.#invalid;
  }

  get closed(): boolean {
    return this.#ended !== null;
  }

  /** @internal Why the subscription ended before it was used (a permission refused by the server), or null. */
  get failure(): Error | null {
    return this.#ended instanceof Error ? this.#ended : null;
  }

  #onMessage(msg: NatsMsg): void {
    if (this.#ended) return;
    const p = this.#check.check(msg.data);
    if (p instanceof Error) return this.#drop(p);
    if (p.kind === KIND_MESSAGE && this.#items.length - this.#head >= this.highWaterMark) return this.#check.dropped(p);
    this.#check.taken(p);
    if (p.lost > 0) this.#reportLoss(p);
    if (p.kind === KIND_END) return;
    let value: T;
    try {
      value = this.#codec.decode(p.body);
    } catch (e) {
      const err = stateError('ERR_IPCKIT_CODEC', `a message of ${p.body.length} bytes from publisher ${p.publisher} cannot be decoded with the ${this.#codec.name} codec: ${(e as Error)?.message ?? String(e)}`);
      err.cause = e;
      return this.#drop(err);
    }
    this.#push(value);
  }

  #drop(error: Error): void {
    this.#invalid++;
    if (this.listenerCount('invalid') > 0) this.emit('invalid', error);
  }

  #reportLoss(p: Parsed): void {
    this.#lost += p.lost;
    const err = stateError(
      'ERR_IPCKIT_MESSAGES_LOST',
      `${p.lost} message${p.lost === 1 ? '' : 's'} of publisher ${p.publisher} on ${this.url} never arrived (core NATS delivers at most once: a slow consumer cut off, a server restart, or this subscriber's highWaterMark reached)`,
    ) as MessagesLostError;
    err.lost = p.lost;
    err.publisher = p.publisher;
    if (this.listenerCount('lost') > 0) this.emit('lost', err);
    else this.#push(new LossMark(err));
  }

  #push(item: T | LossMark): void {
    const w = this.#waiting.shift();
    if (!w) {
      this.#items.push(item);
      return;
    }
    if (item instanceof LossMark) w.reject(item.error);
    else w.resolve({ value: item, done: false });
  }

  /** The next message; rejects with ERR_IPCKIT_MESSAGES_LOST where messages went missing (call again to go on); done once closed. */
  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const item = this.#items[this.#head]!;
      this.#items[this.#head++] = undefined as T;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return item instanceof LossMark ? Promise.reject(item.error) : Promise.resolve({ value: item, done: false });
    }
    if (this.#ended === 'closed') return Promise.resolve({ value: undefined, done: true });
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      // Breaking out of `for await` does not unsubscribe (as with a Channel): close() does.
      return: async () => ({ value: undefined, done: true }),
    };
  }

  #end(why: Error | 'closed'): void {
    if (this.#ended) return;
    this.#ended = why;
    if (why === 'closed') this.#items = [];
    try {
      this.#sub.unsubscribe();
    } catch {
      // The connection is already closed.
    }
    this.session.leave(this.#member);
    for (const w of this.#waiting.splice(0)) {
      if (why === 'closed') w.resolve({ value: undefined, done: true });
      else w.reject(why);
    }
  }

  /** Unsubscribes and closes the connection; pending and later next() calls are done. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#end('closed');
      await releaseWithin(this.session, this);
    })();
    return this.#closing;
  }

}

/** Connects to the server of `url` (nats://host[:port]/TOPIC) and resolves with a publisher to TOPIC. */
export function publish(url: string, options: PublishOptions<ArrayBufferView> & { codec: 'raw' }): Promise<Publisher<ArrayBufferView>>;
export function publish<T = unknown>(url: string, options?: PublishOptions<T>): Promise<Publisher<T>>;
export function publish<T = unknown>(url: string, options?: PublishOptions<T>): Promise<Publisher<T>> {
  return fromHere(
    (async () => {
      const c = checkCommon<T>(url, options, 'publish', PUBLISH_OPTIONS);
      const session = await openSession(c, url);
      return new Publisher<T>(url, session, c.ep.name, c.codec, bodyLimit(c.maxMessageSize, session));
    })(),
  );
}

/** Connects to the server of `url` and subscribes to TOPIC; resolves once the server has the subscription (every message published after that arrives). */
export function subscribe(url: string, options: SubscribeOptions<Buffer> & { codec: 'raw' }): Promise<Subscriber<Buffer>>;
export function subscribe<T = unknown>(url: string, options?: SubscribeOptions<T>): Promise<Subscriber<T>>;
export function subscribe<T = unknown>(url: string, options?: SubscribeOptions<T>): Promise<Subscriber<T>> {
  return fromHere(
    (async () => {
      const c = checkCommon<T>(url, options, 'subscribe', SUBSCRIBE_OPTIONS);
      const highWaterMark = checkInteger(c.o.highWaterMark, 'options.highWaterMark', 1, 1 << 24, DEFAULT_HIGH_WATER_MARK);
      const session = await openSession(c, url);
      let sub: Subscriber<T>;
      try {
        sub = new Subscriber<T>(url, session, c.ep.name, c.codec as Codec<unknown, T>, bodyLimit(c.maxMessageSize, session), highWaterMark);
      } catch (e) {
        // Nothing of it can be used: the connection goes too.
        void session.nc.close().catch(() => {});
        throw e;
      }
      try {
        await session.nc.flush();
      } catch (e) {
        await sub.close();
        throw closedError(sub.url, e);
      }
      // The server refuses this user the subject: it says so before the PONG.
      const failure = sub.failure;
      if (failure) {
        await sub.close();
        throw failure;
      }
      return sub;
    })(),
  );
}
