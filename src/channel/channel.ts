// Channel<Send, Receive>: typed messages over any Link, with send backpressure, an
// async-iterator receive side with a bounded queue, and request-reply.
// Imported, not the global: the global Buffer is a getter, paid on every message here.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { abortError, fromHere, rangeError, stateError, timeoutError, typeError } from '../errors.js';
import { checkWaitOptions } from '../waiter.js';
import { checkOptions } from '../validate.js';
import { decodeError, encodeError, raw as rawCodec, type Codec } from './codec.js';
import {
  KIND_ERROR,
  KIND_MESSAGE,
  KIND_REPLY,
  KIND_REQUEST,
  MESSAGE_HEADER,
  badFrame,
  checkFrame,
  correlatedHeader,
  headerLength,
  readId,
} from './frame.js';
import type { PeerCredentials } from './access.js';
import type { AnyListener, ChannelEvents, EventMethod, OtherEvent } from './events.js';
import type { CloseInfo, Link } from './link.js';
import { cancellable, checkChannelWait, waitTimedOut, type ChannelWaitOptions, type CheckedChannelWait } from './cancel.js';
import { CLOSE_GRACE_MS } from './stream.js';

/** Bytes of replies waiting for room in the transport before this side stops reading the peer's requests. */
const REPLY_BYTES_MAX = 8 * 1024 * 1024;

export interface RequestOptions {
  /** Milliseconds before the request rejects with IpcError ETIMEDOUT. Default: the channel's requestTimeout (none). */
  timeout?: number;
  /** Cancels the request: it rejects with an AbortError (`cause`: `signal.reason`); a late reply is dropped. */
  signal?: AbortSignal;
}

export type RequestHandler<Request = unknown, Reply = Request> = (request: Request) => Reply | Promise<Reply>;

interface PendingSend {
  header: Uint8Array;
  body: Uint8Array;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A send (or flush) whose frames the link accepted into a userspace buffer: it settles when the kernel has them (ticket: Link.unwritten). */
interface WriteWaiter {
  ticket: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Why reading from the peer is paused: our inbox is full (the user is not
 * reading), or answers to the peer's requests pile up (the peer is not
 * reading them). Reading resumes when neither holds.
 */
const HELD_BY_INBOX = 1;
const HELD_BY_REPLIES = 2;

/** A pending next() (max 0) or receiveBatch(max). (resolve is a method so that Channel stays covariant in Receive.) */
interface Reader<Receive> {
  max: number;
  resolve(r: IteratorResult<Receive> | Receive[]): void;
  reject: (e: Error) => void;
}

const noop = (): void => {};

interface PendingRequest<T> {
  resolve(v: T): void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

export interface ChannelSettings<Send, Receive = Send> {
  codec: Codec<Send, Receive>;
  maxMessageSize: number;
  highWaterMark: number;
  requestTimeout?: number;
}

const RESOLVED = Promise.resolve();

/**
 * T, never inferred from where the value goes (what TypeScript 5.4's
 * NoInfer does; this form also works for users on older compilers).
 */
type AsWritten<T> = [T][T extends unknown ? 0 : never];

function closedError(info: CloseInfo | null): Error {
  const why = info ? ` (${info.reason}${info.error ? `: ${info.error.message}` : ''})` : '';
  const err = stateError(info?.reason === 'peer-lost' ? 'ERR_IPCKIT_PEER_LOST' : 'ERR_IPCKIT_CLOSED', `channel is closed${why}`);
  if (info?.error) (err as Error).cause = info.error;
  return err;
}

/**
 * A lost peer's close, the same on every transport: ERR_IPCKIT_PEER_LOST,
 * with what the transport saw (ECONNRESET, ETIMEDOUT...) as its cause.
 */
function peerLost(info: CloseInfo, transport: string): CloseInfo {
  const seen = info.error;
  if ((seen as { code?: unknown } | undefined)?.code === 'ERR_IPCKIT_PEER_LOST') return info;
  const error = stateError('ERR_IPCKIT_PEER_LOST', `the ${transport}: peer went away without closing (killed or crashed)${seen ? `: ${seen.message}` : ''}`);
  if (seen) (error as Error).cause = seen;
  return { reason: 'peer-lost', error };
}

/** Typed once()/off()... (on(), addListener() and prependListener() are typed in the class, which overrides them). */
export interface Channel<Send = unknown, out Receive = Send> {
  once: EventMethod<ChannelEvents<Receive>, this>;
  off: EventMethod<ChannelEvents<Receive>, this>;
  removeListener: EventMethod<ChannelEvents<Receive>, this>;
  prependOnceListener: EventMethod<ChannelEvents<Receive>, this>;
}

/**
 * One end of a message channel: sends Send, receives Receive (a client of
 * Channel<Request, Reply> talks to a server of Channel<Reply, Request>).
 * Events (ChannelEvents): 'message' (when listened to, messages go there
 * instead of the iterator), 'error' (protocol or system error; the channel
 * closes right after), 'close' ({ reason, error? }). Covariant in Receive
 * (a Channel<ArrayBufferView, Buffer> is a Channel<Uint8Array>); the fields
 * keep it so (method-style callbacks).
 */
export class Channel<Send = unknown, out Receive = Send> extends EventEmitter implements AsyncIterable<Receive>, AsyncDisposable {
  readonly #link: Link;
  /** The link lends its own memory for loan() (shm:); otherwise loan() hands out a Buffer that publish() sends. */
  readonly #lends: boolean;
  readonly #codec: Codec<Send, Receive>;
  readonly #maxMessageSize: number;
  readonly #hwm: number;
  readonly #requestTimeout: number | undefined;
  readonly #raw: boolean;

  #sendQueue: PendingSend[] = [];
  /** Sends handed to the link that wait for it to write them into the kernel, in ticket order. */
  #writeWaiters: WriteWaiter[] = [];
  /** flush() calls waiting for the send queue to empty. */
  #flushWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** The channel closed with sends not yet written (they rejected): a later flush() rejects too. */
  #lostAtClose = false;
  #inbox: Receive[] = [];
  #inboxHead = 0;
  #readers: Array<Reader<Receive>> = [];
  /** The array a receiveBatch() was just resolved with: messages delivered in the same run join it (see #deliver). */
  #openBatch: Receive[] | null = null;
  #openBatchMax = 0;
  #held = 0;
  /** Requests taken from the peer whose answers have not yet been handed to the transport. */
  #repliesOutstanding = 0;
  #replyBytesQueued = 0;
  #nextId = 1;
  #requests = new Map<number, PendingRequest<Receive>>();
  /** Untyped here: a field of type RequestHandler<Receive, Send> would make the class invariant (onRequest() types it). */
  #handler: RequestHandler<any, any> | null = null;
  #closeInfo: CloseInfo | null = null;
  /** #fail() was called: the link is being torn down and frames still arriving are dropped. */
  #failed = false;
  #closing: Promise<void> | null = null;
  #iteratorError: Error | null = null;

  /** @internal Channels come from channel.connect(), channel.listen(), channel.fork(). */
  constructor(link: Link, settings: ChannelSettings<Send, Receive>) {
    super();
    this.#link = link;
    this.#lends = typeof link.loan === 'function' && link.canLoan !== false;
    this.#codec = settings.codec;
    this.#maxMessageSize = Math.min(settings.maxMessageSize, link.maxFrame - 5);
    this.#hwm = settings.highWaterMark;
    this.#requestTimeout = settings.requestTimeout;
    this.#raw = this.#codec === (rawCodec as Codec<unknown>);

    link.start({
      onFrame: (frame, owned, loaned) => (loaned ? this.#deliver(loaned as Receive) : this.#onFrame(frame, 0, frame.byteLength, owned === true)),
      onFrameAt: (buffer, start, end) => this.#onFrame(buffer, start, end, true),
      onWritable: () => this.#flush(),
      onWritten: (upTo) => this.#onWritten(upTo),
      onClose: (info) => this.#onClose(info),
    });
  }

  /** Transport scheme: 'shm', 'unix', 'tcp', 'pipe', ... */
  get transport(): string {
    return this.#link.transport;
  }

  /**
   * Who is at the other end, as the kernel told it when the channel was made
   * (SO_PEERCRED on the Unix socket local transports meet on): pid, uid and
   * gid. null where the kernel cannot tell (tcp://, fifo:).
   */
  get peer(): PeerCredentials | null {
    return this.#link.peer ?? null;
  }

  get codec(): string {
    return this.#codec.name;
  }

  get maxMessageSize(): number {
    return this.#maxMessageSize;
  }

  /** Null while open; then why it closed. */
  get closeInfo(): CloseInfo | null {
    return this.#closeInfo;
  }

  get closed(): boolean {
    return this.#closeInfo !== null || this.#closing !== null;
  }

  /** @internal */
  get link(): Link {
    return this.#link;
  }

  /**
   * Sends one message. Resolves once it is in the kernel (socket buffer,
   * message queue) or the shm: ring, in order: from then on it reaches the
   * peer even if this process dies, unless the peer (or the kernel object)
   * goes too. While the transport is full the promise waits, which is the
   * backpressure: await it (or every Nth) to bound memory. `signal` /
   * `timeout` end the wait (AbortError / IpcError ETIMEDOUT): a message still
   * in this channel's own queue is then never sent; one the transport took
   * already may still arrive.
   */
  send(message: Send, options?: ChannelWaitOptions): Promise<void> {
    if (this.#link.direction === 'receive') return Promise.reject(this.#oneWay('send', 'ERR_IPCKIT_READ_ONLY'));
    if (options !== undefined) return this.#sendFrame(MESSAGE_HEADER, message, checkChannelWait(options));
    return this.#sendFrame(MESSAGE_HEADER, message);
  }

  /**
   * Sends messages in order, as many as fit at once (on shm: one publish and
   * at most one wake-up for the lot). Every message is encoded and checked
   * before any is sent, so a bad one rejects the call with nothing sent.
   * Resolves once the last one is in the kernel or the ring (as send()).
   * `signal` / `timeout` as for send(): the messages still in this channel's
   * queue are not sent, those the transport took may arrive.
   */
  sendBatch(messages: readonly Send[], options?: ChannelWaitOptions): Promise<void> {
    if (!Array.isArray(messages)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'messages must be an array');
    const wait = options === undefined ? undefined : checkChannelWait(options);
    if (this.#link.direction === 'receive') return Promise.reject(this.#oneWay('sendBatch', 'ERR_IPCKIT_READ_ONLY'));
    if (this.#closeInfo || this.#closing) return Promise.reject(closedError(this.#closeInfo));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    const n = messages.length;
    const bodies: Uint8Array[] = new Array(n);
    for (let i = 0; i < n; i++) {
      let body: Uint8Array;
      try {
        body = this.#codec.encode(messages[i]!);
      } catch (e) {
        return Promise.reject(encodeError(this.#codec, `message ${i} of the batch`, e));
      }
      if (body.byteLength > this.#maxMessageSize) {
        return Promise.reject(rangeError('ERR_IPCKIT_MESSAGE_TOO_LARGE', `message ${i} of ${body.byteLength} bytes exceeds maxMessageSize ${this.#maxMessageSize}`));
      }
      bodies[i] = body;
    }
    const link = this.#link;
    let sent = 0;
    if (this.#sendQueue.length === 0) {
      link.cork?.();
      while (sent < n && link.tryWrite(MESSAGE_HEADER, bodies[sent]!)) sent++;
      link.uncork?.();
    }
    if (sent === n) return this.#whenWritten(wait, 'sendBatch()');
    // Copies, as in #sendFrame: the codec may hand back the caller's buffers.
    for (let i = sent; i < n; i++) bodies[i] = bodies[i]!.slice();
    return this.#enqueue(bodies.slice(sent), MESSAGE_HEADER, wait, 'sendBatch()');
  }

  /**
   * Queues frames behind those already waiting; resolves once the last is
   * written (see #whenWritten). Under `wait`, an abort or timeout takes out
   * the ones still queued: they are never sent.
   */
  #enqueue(bodies: Uint8Array[], header: Uint8Array, wait: CheckedChannelWait | undefined, what: string): Promise<void> {
    const start = (resolve: () => void, reject: (e: Error) => void) => {
      const last = bodies.length - 1;
      const entries = bodies.map((body, i): PendingSend => ({ header, body, resolve: i === last ? resolve : noop, reject }));
      for (const e of entries) this.#sendQueue.push(e);
      return () => this.#withdraw(entries);
    };
    if (!wait) return new Promise<void>((resolve, reject) => void start(resolve, reject));
    return cancellable(wait, () => waitTimedOut('send', what, wait.timeoutMs), start);
  }

  /** Takes cancelled sends out of the send queue (those still in it). */
  #withdraw(entries: PendingSend[]): void {
    const gone = new Set(entries);
    const q = this.#sendQueue;
    const kept = q.filter((p) => !gone.has(p));
    if (kept.length === q.length) return;
    this.#sendQueue = kept;
    if (kept.length === 0) this.#queueEmptied();
  }

  /**
   * After the link took frames: resolved at once when they are all in the
   * kernel or ring (the fast path: no allocation), else once the link says
   * it wrote them (a link that goes down first rejects them at close).
   */
  #whenWritten(wait?: CheckedChannelWait, what = 'send()'): Promise<void> {
    const ticket = this.#link.unwritten?.() ?? 0;
    if (ticket === 0) return RESOLVED;
    if (!wait) {
      // Sends made while the link still holds earlier ones share one waiter
      // (no allocation per message): what it holds goes out in one write.
      const last = this.#writeWaiters[this.#writeWaiters.length - 1];
      if (last !== undefined && last === this.#shared?.waiter) {
        last.ticket = ticket;
        return this.#shared.promise;
      }
      let waiter!: WriteWaiter;
      const promise = new Promise<void>((resolve, reject) => (waiter = { ticket, resolve, reject }));
      this.#writeWaiters.push(waiter);
      this.#shared = { waiter, promise };
      return promise;
    }
    const start = (resolve: () => void, reject: (e: Error) => void) => {
      const w: WriteWaiter = { ticket, resolve, reject };
      this.#writeWaiters.push(w);
      return () => {
        const at = this.#writeWaiters.indexOf(w);
        if (at >= 0) this.#writeWaiters.splice(at, 1);
      };
    };
    return cancellable(wait, () => waitTimedOut('send', what, wait.timeoutMs), start);
  }

  /** The last waiter #whenWritten made without a signal, and its promise. */
  #shared: { waiter: WriteWaiter; promise: Promise<void> } | null = null;

  /** The link wrote every frame up to `upTo` into the kernel. */
  #onWritten(upTo: number): void {
    const w = this.#writeWaiters;
    let n = 0;
    while (n < w.length && w[n]!.ticket <= upTo) n++;
    if (n === 0) return;
    for (const x of w.splice(0, n)) x.resolve();
  }

  /**
   * Resolves once everything sent so far is in the kernel or the ring (the
   * send queue is empty and the link wrote what it took); rejects if the
   * channel closes first with some of it unwritten. `signal` / `timeout` end
   * the wait only (nothing is taken back).
   */
  flush(options?: ChannelWaitOptions): Promise<void> {
    const wait = options === undefined ? undefined : checkChannelWait(options);
    if (this.#link.direction === 'receive') return Promise.reject(this.#oneWay('flush', 'ERR_IPCKIT_READ_ONLY'));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    if (this.#closeInfo) return this.#lostAtClose ? Promise.reject(closedError(this.#closeInfo)) : RESOLVED;
    if (this.#sendQueue.length === 0) return this.#whenWritten(wait, 'flush()');
    const start = (resolve: () => void, reject: (e: Error) => void) => {
      const w = { resolve, reject };
      this.#flushWaiters.push(w);
      return () => {
        const at = this.#flushWaiters.indexOf(w);
        if (at >= 0) this.#flushWaiters.splice(at, 1);
      };
    };
    if (!wait) return new Promise<void>((resolve, reject) => void start(resolve, reject));
    return cancellable(wait, () => waitTimedOut('send', 'flush()', wait.timeoutMs), start);
  }

  /**
   * Sends `message` as a request and resolves with the peer's onRequest()
   * answer. The reply, timeout and abort all settle it from callbacks:
   * fromHere() gives their errors the caller's stack.
   * `request<R>()` narrows the reply where Receive is a union (one reply type
   * per request type): the caller's word, not checked at run time, and only
   * when written out (never inferred from where the reply goes).
   */
  request<R extends Receive = Receive>(message: Send, options?: RequestOptions): Promise<AsWritten<R>>;
  request(message: Send, options: RequestOptions = {}): Promise<Receive> {
    checkOptions(options, 'options', ['timeout', 'signal']);
    const timeout = options.timeout ?? this.#requestTimeout;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', 'options.timeout must be a non-negative number of milliseconds');
    }
    if (this.#link.direction) return Promise.reject(this.#oneWay('request'));
    if (this.closed) return Promise.reject(closedError(this.#closeInfo));
    if (options.signal?.aborted) return Promise.reject(abortError(options.signal));
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    return fromHere(new Promise<Receive>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.#requests.get(id)?.cleanup();
        reject(abortError(options.signal!));
      };
      const cleanup = () => {
        this.#requests.delete(id);
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      this.#requests.set(id, { resolve, reject, cleanup });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(timeoutError('request', {}, `no reply to request ${id} within ${timeout} ms`));
        }, timeout);
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#sendFrame(correlatedHeader(KIND_REQUEST, id), message).catch((e: Error) => {
        cleanup();
        reject(e);
      });
    }));
  }

  /** Answers the peer's request() calls; a throw (or rejection) becomes the requester's rejection. One handler; null removes it. */
  onRequest(handler: RequestHandler<Receive, Send> | null): this {
    if (handler !== null && typeof handler !== 'function') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'handler must be a function');
    if (handler !== null && this.#link.direction) throw this.#oneWay('onRequest');
    this.#handler = handler;
    // Requests that arrived before there was a handler are answered now, in order.
    if (handler) for (const r of this.#unanswered.splice(0)) this.#answer(r.id, r.request, true);
    return this;
  }

  /** Requests that arrived while no handler was set: they wait for onRequest() (counted as outstanding answers). */
  #unanswered: Array<{ id: number; request: Receive }> = [];

  /** Misuse of a one-way channel (fifo:): the error says which end can do what. */
  #oneWay(what: string, code: 'ERR_IPCKIT_READ_ONLY' | 'ERR_IPCKIT_WRITE_ONLY' | 'ERR_IPCKIT_ONE_WAY' = 'ERR_IPCKIT_ONE_WAY'): Error {
    const end = this.#link.direction === 'send' ? 'the writing end (send only)' : 'the reading end (receive only)';
    const why = code === 'ERR_IPCKIT_ONE_WAY' ? 'needs both directions' : 'is not possible here';
    return stateError(code, `${what}() ${why}: this ${this.transport}: channel is one-way and this is ${end}`);
  }

  #sendFrame(header: Uint8Array, message: Send, wait?: CheckedChannelWait): Promise<void> {
    if (this.#closeInfo || (this.#closing && header === MESSAGE_HEADER)) return Promise.reject(closedError(this.#closeInfo));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    let body: Uint8Array;
    try {
      body = this.#codec.encode(message);
    } catch (e) {
      return Promise.reject(encodeError(this.#codec, header[0] === KIND_REQUEST ? 'the request' : 'the message', e));
    }
    if (body.byteLength > this.#maxMessageSize) {
      return Promise.reject(
        rangeError('ERR_IPCKIT_MESSAGE_TOO_LARGE', `message of ${body.byteLength} bytes exceeds maxMessageSize ${this.#maxMessageSize}`),
      );
    }
    if (this.#sendQueue.length === 0 && this.#link.tryWrite(header, body)) return this.#whenWritten(wait);
    if (wait) return this.#enqueue([body.slice()], header, wait, 'send()');
    return new Promise<void>((resolve, reject) => {
      // The codec may hand back a view it reuses (raw: the caller's buffer): keep a copy while queued.
      this.#sendQueue.push({ header, body: body.slice(), resolve, reject });
    });
  }

  #flush(): void {
    const q = this.#sendQueue;
    let i = 0;
    this.#link.cork?.();
    while (i < q.length && this.#link.tryWrite(q[i]!.header, q[i]!.body)) i++;
    this.#link.uncork?.();
    // What the link took but holds in userspace settles once written (#onWritten).
    const ticket = i > 0 ? (this.#link.unwritten?.() ?? 0) : 0;
    for (let k = 0; k < i; k++) {
      const p = q[k]!;
      if (ticket === 0) p.resolve();
      else this.#writeWaiters.push({ ticket, resolve: p.resolve, reject: p.reject });
    }
    if (i > 0) q.splice(0, i);
    if (q.length === 0) this.#queueEmptied();
  }

  /** The send queue just emptied: a waiting loan, close() and flush() go on. */
  #queueEmptied(): void {
    if (this.#loanWaiter) {
      const w = this.#loanWaiter;
      const view = this.#link.loan!(w.size);
      if (view) {
        this.#loanWaiter = null;
        w.resolve(view);
      }
    }
    if (this.#flushed) {
      this.#flushed();
      this.#flushed = null;
    }
    if (this.#flushWaiters.length > 0) {
      const ticket = this.#link.unwritten?.() ?? 0;
      for (const w of this.#flushWaiters.splice(0)) {
        if (ticket === 0) w.resolve();
        else this.#writeWaiters.push({ ticket, ...w });
      }
    }
  }

  #flushed: (() => void) | null = null;
  #loanWaiter: { size: number; resolve: (v: Uint8Array) => void; reject: (e: Error) => void } | null = null;
  #loaned: Uint8Array | null = null;

  /**
   * Zero-copy send: resolves with a writable view of `size` bytes. Fill it,
   * then publish(view). On shm: the view is inside the ring, so nothing is
   * copied; elsewhere it is a plain Buffer sent by publish(). One loan at a
   * time; other sends wait behind it. The bytes bypass the codec, so both
   * ends must use codec 'raw' (ERR_IPCKIT_CODEC otherwise); zeroCopy on the
   * receiving shm: end gets a view.
   */
  loan(size: number): Promise<Uint8Array> {
    if (this.#link.direction === 'receive') return Promise.reject(this.#oneWay('loan', 'ERR_IPCKIT_READ_ONLY'));
    if (!this.#raw) return Promise.reject(this.#notRaw('loan'));
    if (!Number.isSafeInteger(size) || size < 0 || size > this.#maxMessageSize) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `size must be an integer 0..${this.#maxMessageSize} (maxMessageSize)`);
    }
    if (this.#loaned || this.#loanWaiter) return Promise.reject(stateError('ERR_IPCKIT_LOAN', 'publish() the current loan before taking another'));
    if (this.closed) return Promise.reject(closedError(this.#closeInfo));
    if (!this.#lends) {
      const view = Buffer.allocUnsafe(size);
      this.#loaned = view;
      return Promise.resolve(view);
    }
    const view = this.#sendQueue.length === 0 ? this.#link.loan!(size) : null;
    if (view) {
      this.#loaned = view;
      return Promise.resolve(view);
    }
    return new Promise((resolve, reject) => {
      this.#loanWaiter = {
        size,
        resolve: (v) => {
          this.#loaned = v;
          resolve(v);
        },
        reject,
      };
    });
  }

  /**
   * loan()/publish() send bytes as they are, past the codec: a peer whose
   * codec is not raw could not decode them and would fail the channel.
   */
  #notRaw(what: string): Error {
    return stateError('ERR_IPCKIT_CODEC', `${what}() sends bytes as they are, which needs codec 'raw' at both ends; this channel's codec is ${this.#codec.name} (use send())`);
  }

  /** Sends the view from loan() (its first `length` bytes, default all). */
  publish(view: Uint8Array, length: number = view.byteLength): Promise<void> {
    if (!this.#raw) throw this.#notRaw('publish');
    if (view !== this.#loaned) throw stateError('ERR_IPCKIT_LOAN', 'publish() takes the view returned by the last loan()');
    if (!Number.isSafeInteger(length) || length < 0 || length > view.byteLength) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `length must be an integer 0..${view.byteLength}`);
    }
    this.#loaned = null;
    if (this.closed) return Promise.reject(closedError(this.#closeInfo));
    if (!this.#lends) {
      const body = view.subarray(0, length);
      if (this.#sendQueue.length === 0 && this.#link.tryWrite(MESSAGE_HEADER, body)) return this.#whenWritten();
      return new Promise<void>((resolve, reject) => this.#sendQueue.push({ header: MESSAGE_HEADER, body, resolve, reject }));
    }
    this.#link.publish!(view, length);
    return RESOLVED;
  }

  /** The frame at frame[start..end); `owned`: those bytes are ours to keep (no copy needed for raw). */
  #onFrame(frame: Uint8Array, start: number, end: number, owned: boolean): void {
    if (this.#closeInfo || this.#failed) return;
    // The common case first: a plain message in bytes that are already ours, raw codec.
    if (owned && this.#raw && frame[start] === KIND_MESSAGE && end > start) {
      return this.#deliver(Buffer.from(frame.buffer, frame.byteOffset + start + 1, end - start - 1) as Receive);
    }
    const problem = checkFrame(frame, start, end);
    if (problem) return this.#fail(badFrame(`corrupt frame on ${this.transport}: channel: ${problem}`));
    const kind = frame[start]!;
    const hl = headerLength(kind);
    let value: Receive;
    let payload: unknown;
    if (kind === KIND_ERROR) {
      // An error reply's body is JSON whatever the codec (frame.ts): one that is not is a corrupt frame.
      try {
        payload = JSON.parse(Buffer.from(frame.subarray(start + hl, end)).toString('utf8'));
      } catch {
        return this.#fail(badFrame(`corrupt frame on ${this.transport}: channel: an error reply whose body is not JSON`));
      }
    } else {
      try {
        // raw needs no second copy of a frame the link already copied for us.
        if (owned && this.#raw) value = Buffer.from(frame.buffer, frame.byteOffset + start + hl, end - start - hl) as Receive;
        else value = this.#codec.decode(frame.subarray(start + hl, end));
      } catch (e) {
        return this.#fail(decodeError(this.#codec, end - start, e));
      }
    }
    if (kind === KIND_MESSAGE) return this.#deliver(value!);
    const id = readId(frame, start);
    if (kind === KIND_REQUEST) return this.#answer(id, value!);
    const pending = this.#requests.get(id);
    if (!pending) return; // timed out or aborted: a late reply is dropped
    pending.cleanup();
    if (kind === KIND_REPLY) pending.resolve(value!);
    else {
      const p = (payload ?? {}) as { message?: string; code?: string; name?: string };
      const err = stateError('ERR_IPCKIT_REMOTE', `request failed in the peer: ${p.message ?? 'unknown error'}`);
      Object.assign(err, { remoteCode: p.code, remoteName: p.name });
      pending.reject(err);
    }
  }

  #answer(id: number, request: Receive, counted = false): void {
    const handler = this.#handler;
    // Every answer is counted until the transport took it: a peer that sends
    // requests and never reads the answers stops being read (bounded memory).
    if (!counted) {
      this.#repliesOutstanding++;
      this.#checkReplies();
    }
    if (!handler) {
      // No handler yet (the channel is younger than the code that will set
      // one): the request waits for it; the requester's timeout bounds the wait.
      this.#unanswered.push({ id, request });
      return;
    }
    let settled = false;
    const sent = () => {
      if (settled) return;
      settled = true;
      this.#repliesOutstanding--;
      this.#checkReplies();
    };
    // Replies still go out while close() is flushing; only a closed link stops them.
    const fail = (e: unknown) => {
      if (this.#closeInfo) return sent();
      const err = e instanceof Error ? e : new Error(String(e));
      const body = Buffer.from(JSON.stringify({ message: err.message, code: (err as { code?: unknown }).code, name: err.name }));
      this.#sendReplyBytes(correlatedHeader(KIND_ERROR, id), body, sent);
    };
    let result: Send | Promise<Send>;
    try {
      result = handler(request);
    } catch (e) {
      return fail(e);
    }
    Promise.resolve(result).then(
      (answer) => {
        if (this.#closeInfo) return sent();
        let body: Uint8Array;
        try {
          body = this.#codec.encode(answer);
        } catch (e) {
          return fail(encodeError(this.#codec, 'the reply', e));
        }
        if (body.byteLength > this.#maxMessageSize) {
          return fail(rangeError('ERR_IPCKIT_MESSAGE_TOO_LARGE', `reply of ${body.byteLength} bytes exceeds maxMessageSize ${this.#maxMessageSize}`));
        }
        this.#sendReplyBytes(correlatedHeader(KIND_REPLY, id), body, sent);
      },
      fail,
    );
  }

  #sendReplyBytes(header: Uint8Array, body: Uint8Array, sent: () => void): void {
    if (this.#sendQueue.length === 0 && this.#link.tryWrite(header, body)) return sent();
    // A copy: the codec may hand back a view it reuses.
    const copy = body.slice();
    this.#replyBytesQueued += copy.byteLength;
    this.#checkReplies();
    const done = () => {
      this.#replyBytesQueued -= copy.byteLength;
      sent();
    };
    this.#sendQueue.push({ header, body: copy, resolve: done, reject: done });
  }

  /** Holds reading while too many answers to the peer are outstanding; lets it go at half. */
  #checkReplies(): void {
    const over = this.#repliesOutstanding >= this.#hwm || this.#replyBytesQueued >= REPLY_BYTES_MAX;
    const under = this.#repliesOutstanding <= this.#hwm >> 1 && this.#replyBytesQueued <= REPLY_BYTES_MAX >> 1;
    if (over) this.#hold(HELD_BY_REPLIES);
    else if (under) this.#release(HELD_BY_REPLIES);
  }

  #hold(reason: number): void {
    const was = this.#held;
    this.#held |= reason;
    if (was === 0 && !this.#closeInfo) this.#link.pause();
  }

  #release(reason: number): void {
    if ((this.#held & reason) === 0) return;
    this.#held &= ~reason;
    if (this.#held === 0 && !this.#closeInfo) this.#link.resume();
  }

  #deliver(value: Receive): void {
    if (this.listenerCount('message') > 0) {
      if (this.#inboxHead === this.#inbox.length) {
        this.emit('message', value);
        return;
      }
      // Older messages wait for the drain a new listener queued: this one goes behind them.
      this.#queueDrain();
    } else {
      const open = this.#openBatch;
      if (open !== null && open.length < this.#openBatchMax) {
        open.push(value);
        return;
      }
      const reader = this.#readers.shift();
      if (reader) {
        if (reader.max === 0) return reader.resolve({ value, done: false });
        // The reader's code runs after this delivery run (a microtask later):
        // until then, messages that arrive in the same run join its batch.
        const batch = [value];
        reader.resolve(batch);
        if (reader.max > 1) {
          if (this.#openBatch === null) RESOLVED.then(this.#endBatch);
          this.#openBatch = batch;
          this.#openBatchMax = reader.max;
        }
        return;
      }
    }
    this.#inbox.push(value);
    if (this.#inbox.length - this.#inboxHead >= this.#hwm) this.#hold(HELD_BY_INBOX);
  }

  readonly #endBatch = (): void => {
    this.#openBatch = null;
  };

  // Messages that arrived before any consumer was attached wait in the inbox
  // (the link may deliver before the code that got the channel runs on, and
  // when depends on the transport). A 'message' listener added later takes
  // them first, a microtask later, in order; next(), for await and
  // receiveBatch() read the inbox anyway. (once() and prependOnceListener()
  // go through on() and prependListener().)
  override on<E extends keyof ChannelEvents<Receive>>(event: E, listener: ChannelEvents<Receive>[E]): this;
  override on<E extends string | symbol>(event: OtherEvent<E, ChannelEvents<Receive>>, listener: AnyListener): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    return this.#added(event);
  }

  override addListener<E extends keyof ChannelEvents<Receive>>(event: E, listener: ChannelEvents<Receive>[E]): this;
  override addListener<E extends string | symbol>(event: OtherEvent<E, ChannelEvents<Receive>>, listener: AnyListener): this;
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    super.addListener(event, listener);
    return this.#added(event);
  }

  override prependListener<E extends keyof ChannelEvents<Receive>>(event: E, listener: ChannelEvents<Receive>[E]): this;
  override prependListener<E extends string | symbol>(event: OtherEvent<E, ChannelEvents<Receive>>, listener: AnyListener): this;
  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    super.prependListener(event, listener);
    return this.#added(event);
  }

  #added(event: string | symbol): this {
    if (event === 'message' && this.#inboxHead < this.#inbox.length) this.#queueDrain();
    return this;
  }

  #drainQueued = false;

  #queueDrain(): void {
    if (this.#drainQueued) return;
    this.#drainQueued = true;
    RESOLVED.then(this.#drain);
  }

  /** Hands the inbox to the 'message' listeners while there are any (a once() listener takes one). */
  readonly #drain = (): void => {
    this.#drainQueued = false;
    try {
      while (this.#inboxHead < this.#inbox.length && this.listenerCount('message') > 0) {
        const value = this.#inbox[this.#inboxHead]!;
        this.#inbox[this.#inboxHead++] = undefined as Receive;
        this.emit('message', value);
      }
    } finally {
      this.#tookFromInbox();
    }
  };

  /**
   * Next message, or done once the channel is closed and everything received
   * was read. `signal` / `timeout` end the wait (AbortError / IpcError
   * ETIMEDOUT) without taking a message: the next one stays for the next read.
   */
  next(options?: ChannelWaitOptions): Promise<IteratorResult<Receive>> {
    const wait = options === undefined ? undefined : checkChannelWait(options);
    if (this.#link.direction === 'send') return Promise.reject(this.#oneWay('next', 'ERR_IPCKIT_WRITE_ONLY'));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    if (this.#inboxHead < this.#inbox.length) {
      const value = this.#inbox[this.#inboxHead]!;
      this.#inbox[this.#inboxHead++] = undefined as Receive;
      this.#tookFromInbox();
      return Promise.resolve({ value, done: false });
    }
    const ended = this.#endOfInput();
    if (ended) return ended as Promise<IteratorResult<Receive>>;
    if (wait) return this.#readWithin<IteratorResult<Receive>>(0, wait, 'next()');
    return new Promise((resolve, reject) => this.#readers.push({ max: 0, resolve: resolve as Reader<Receive>['resolve'], reject }));
  }

  /** A pending next() (max 0) or receiveBatch(max) under a signal / timeout: withdrawn from the readers when it ends first. */
  #readWithin<R>(max: number, wait: CheckedChannelWait, what: string): Promise<R> {
    return cancellable<R>(wait, () => waitTimedOut('recv', what, wait.timeoutMs), (resolve, reject) => {
      const reader: Reader<Receive> = { max, resolve: resolve as Reader<Receive>['resolve'], reject };
      this.#readers.push(reader);
      return () => {
        const at = this.#readers.indexOf(reader);
        if (at >= 0) this.#readers.splice(at, 1);
      };
    });
  }

  /**
   * next() that blocks this thread until a message arrives: for worker
   * threads (on the main thread it stalls the event loop). shm: only. Spins
   * for the channel's spin budget, then sleeps on the doorbell. Returns
   * { done: true } once the peer has closed or gone and everything was read
   * (the 'close' event itself comes when the event loop runs). Throws
   * IpcError ETIMEDOUT when `timeout` ms pass first.
   */
  nextSync(options?: { timeout?: number }): IteratorResult<Receive> {
    const { timeoutNs } = checkWaitOptions(options, false);
    if (this.#link.direction === 'send') throw this.#oneWay('nextSync', 'ERR_IPCKIT_WRITE_ONLY');
    if (!this.#link.waitSync) throw stateError('ERR_IPCKIT_UNSUPPORTED', `nextSync() needs the shm: transport (this is ${this.transport}:)`);
    if (this.#readers.length > 0) throw stateError('ERR_IPCKIT_UNSUPPORTED', 'nextSync() while a next() or receiveBatch() is pending on this channel');
    if (this.listenerCount('message') > 0) throw stateError('ERR_IPCKIT_UNSUPPORTED', "nextSync() on a channel with 'message' listeners (they take every message)");
    const start = process.hrtime.bigint();
    while (this.#inboxHead === this.#inbox.length) {
      if (this.#iteratorError) {
        const e = this.#iteratorError;
        this.#iteratorError = null;
        throw e;
      }
      // A wait can end with only replies or requests delivered: wait again for what is left of the timeout.
      const left = timeoutNs < 0 ? -1 : Math.max(0, timeoutNs - Number(process.hrtime.bigint() - start));
      if (this.#closeInfo || !this.#link.waitSync(left)) return { value: undefined, done: true };
    }
    const value = this.#inbox[this.#inboxHead]!;
    this.#inbox[this.#inboxHead++] = undefined as Receive;
    this.#tookFromInbox();
    return { value, done: false };
  }

  /**
   * Every message already received, in order (at most `max`), or, when none
   * is, the next run of messages as soon as it arrives. Resolves with [] once
   * the channel is closed and everything was read. One promise per batch
   * instead of one per message: the fast way to drain a busy channel.
   * `max` defaults to the channel's highWaterMark. `signal` / `timeout` end
   * the wait as for next().
   */
  receiveBatch(max: number = this.#hwm, options?: ChannelWaitOptions): Promise<Receive[]> {
    if (!Number.isSafeInteger(max) || max < 1) throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', 'max must be a positive integer');
    const wait = options === undefined ? undefined : checkChannelWait(options);
    if (this.#link.direction === 'send') return Promise.reject(this.#oneWay('receiveBatch', 'ERR_IPCKIT_WRITE_ONLY'));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    const head = this.#inboxHead;
    const available = this.#inbox.length - head;
    if (available > 0) {
      let batch: Receive[];
      if (head === 0 && available <= max) {
        batch = this.#inbox;
        this.#inbox = [];
      } else {
        const end = head + Math.min(available, max);
        batch = this.#inbox.slice(head, end);
        this.#inbox.fill(undefined as Receive, head, end);
        this.#inboxHead = end;
      }
      this.#tookFromInbox();
      return Promise.resolve(batch);
    }
    const ended = this.#endOfInput();
    if (ended) return ended.then(() => []);
    if (wait) return this.#readWithin<Receive[]>(max, wait, 'receiveBatch()');
    return new Promise((resolve, reject) => this.#readers.push({ max, resolve: resolve as Reader<Receive>['resolve'], reject }));
  }

  /** After messages left the inbox: compacts it and resumes a paused link below half the high-water mark. */
  #tookFromInbox(): void {
    const left = this.#inbox.length - this.#inboxHead;
    if (left === 0) {
      this.#inbox = [];
      this.#inboxHead = 0;
    } else if (this.#inboxHead > 1024 && this.#inboxHead * 2 > this.#inbox.length) {
      this.#inbox = this.#inbox.slice(this.#inboxHead);
      this.#inboxHead = 0;
    }
    if (left <= this.#hwm >> 1) this.#release(HELD_BY_INBOX);
  }

  /** With the inbox empty: the pending error or end of input, or null while the channel is open. */
  #endOfInput(): Promise<IteratorResult<Receive>> | null {
    if (this.#iteratorError) {
      const e = this.#iteratorError;
      this.#iteratorError = null;
      return Promise.reject(e);
    }
    if (this.#closeInfo) return Promise.resolve({ value: undefined, done: true });
    return null;
  }

  [Symbol.asyncIterator](): AsyncIterator<Receive> {
    return {
      next: () => this.next(),
      // Breaking out of `for await` does not close the channel: it stays usable.
      return: async () => ({ value: undefined, done: true }),
    };
  }

  /**
   * A frame from the peer made no sense: the link is torn down (its 'close'
   * comes a tick later) and, from now on, no frame that came after that one
   * is delivered or answered.
   */
  #fail(error: Error): void {
    if (this.#closeInfo || this.#failed) return;
    this.#failed = true;
    this.#link.destroy(error);
  }

  #onClose(info: CloseInfo): void {
    if (this.#closeInfo) return;
    if (info.reason === 'peer-lost') info = peerLost(info, this.transport);
    this.#closeInfo = info;
    // Messages received before the close reach 'message' listeners before 'close' does.
    if (this.#inboxHead < this.#inbox.length && this.listenerCount('message') > 0) this.#drain();
    const err = closedError(info);
    if (this.#sendQueue.length > 0 || this.#writeWaiters.length > 0) this.#lostAtClose = true;
    for (const p of this.#sendQueue.splice(0)) p.reject(err);
    for (const w of this.#writeWaiters.splice(0)) w.reject(err);
    for (const w of this.#flushWaiters.splice(0)) w.reject(err);
    this.#loanWaiter?.reject(err);
    this.#loanWaiter = null;
    this.#flushed?.();
    this.#flushed = null;
    for (const r of [...this.#requests.values()]) {
      r.cleanup();
      r.reject(err);
    }
    this.#unanswered = [];
    if (info.reason === 'error' && info.error) {
      // Errors end the iteration with a throw, so `for await` users see them;
      // 'error' listeners get them too. Without either, the error is in closeInfo.
      // A peer that went away is no error of this channel: the iteration just ends.
      if (this.#readers.length > 0) this.#readers.shift()!.reject(info.error);
      else this.#iteratorError = info.error;
      if (this.listenerCount('error') > 0) this.emit('error', info.error);
    }
    for (const r of this.#readers.splice(0)) r.resolve(r.max === 0 ? { value: undefined, done: true } : []);
    this.emit('close', info);
  }

  /**
   * Closes this end: later send() calls reject, messages already accepted
   * still reach the peer, the iterator ends after what was received. Resolves
   * once the transport is down. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#closeInfo) return (this.#closing = RESOLVED);
    this.#closing = (async () => {
      // Messages send() is still waiting to place go out first — for a grace
      // period: a peer that stopped reading would otherwise hold close() forever.
      if (this.#sendQueue.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          this.#flushed = resolve;
          timer = setTimeout(resolve, CLOSE_GRACE_MS).unref();
        });
        clearTimeout(timer);
        this.#flushed = null;
        const err = stateError('ERR_IPCKIT_CLOSED', `channel closed before the peer took this message (it stopped reading for ${CLOSE_GRACE_MS} ms)`);
        if (this.#sendQueue.length > 0) this.#lostAtClose = true;
        for (const p of this.#sendQueue.splice(0)) p.reject(err);
        for (const w of this.#flushWaiters.splice(0)) w.reject(err);
      }
      await this.#link.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Whether this channel keeps the process alive (default true). */
  ref(): this {
    this.#link.ref();
    return this;
  }

  unref(): this {
    this.#link.unref();
    return this;
  }
}
