// Channel<Send, Receive>: typed messages over any Link, with send backpressure, an
// async-iterator receive side with a bounded queue, and request-reply. The
// per-message paths are here; the parts are in outbox.ts (send queue, write
// tickets), inbox.ts, requests.ts and loan.ts.
// Imported, not the global: the global Buffer is a getter, paid on every message here.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { abortError, fromHere, rangeError, stateError, typeError } from '../core/errors.js';
import { checkWaitOptions } from '../core/waiter.js';
import { copyRange, decodeError, decodesIntoOwnMemory, encodeBatch, encodeError, raw as rawCodec, type Codec } from './codec.js';
import { KIND_ERROR, KIND_MESSAGE, KIND_REQUEST, MESSAGE_HEADER, badFrame, checkFrame, correlatedHeader, headerLength, readId } from './frame.js';
import type { PeerCredentials } from './access.js';
import type { AnyListener, ChannelEvents, EventMethod, OtherEvent } from './events.js';
import type { CloseInfo, Link } from './link.js';
import { checkChannelWait, type ChannelWaitOptions, type CheckedChannelWait } from './cancel.js';
import { EACH_OPTIONS, EachReader, type InPlaceHandler, type ReceiveEachOptions } from './each.js';
import { checkOptions } from '../core/validate.js';
import { CLOSE_GRACE_MS } from './stream.js';
import { closedError, oneWayError, peerLost } from './channel-errors.js';
import { Outbox } from './outbox.js';
import { EMPTY, Inbox, ReadHold } from './inbox.js';
import { PendingRequests, Responder } from './requests.js';
import { Lender } from './loan.js';
import { TAKE_MIN, giveBack, releasable } from './kept.js';

export interface RequestOptions {
  /** Milliseconds before the request rejects with IpcError ETIMEDOUT. Default: the channel's requestTimeout (none). */
  timeout?: number;
  /** Cancels the request: it rejects with an AbortError (`cause`: `signal.reason`); a late reply is dropped. */
  signal?: AbortSignal;
}

export type RequestHandler<Request = unknown, Reply = Request> = (request: Request) => Reply | Promise<Reply>;

interface ChannelSettings<Send, Receive = Send> {
  codec: Codec<Send, Receive>;
  maxMessageSize: number;
  highWaterMark: number;
  requestTimeout?: number;
}

const RESOLVED = Promise.resolve();
const noop = (): void => {};

/**
 * T, never inferred from where the value goes (what TypeScript 5.4's
 * NoInfer does; this form also works for users on older compilers).
 */
type AsWritten<T> = [T][T extends unknown ? 0 : never];

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
  readonly #codec: Codec<Send, Receive>;
  readonly #maxMessageSize: number;
  readonly #hwm: number;
  readonly #raw: boolean;
  /** The codec decodes into memory of its own: a decoded frame's kept block can go back at once. */
  readonly #decodeCopies: boolean;
  readonly #out: Outbox;
  readonly #inbox: Inbox<Receive>;
  readonly #requests: PendingRequests<Receive>;
  readonly #responder: Responder;
  readonly #lender: Lender;
  #closeInfo: CloseInfo | null = null;
  /** #fail() was called: the link is being torn down and frames still arriving are dropped. */
  #failed = false;
  #closing: Promise<void> | null = null;
  /** The receiveEach() the link hands messages to in place (Link.inPlace), if any. */
  #sink: EachReader | null = null;

  /** @internal Channels come from channel.connect(), channel.listen(), channel.fork(). */
  constructor(link: Link, settings: ChannelSettings<Send, Receive>) {
    super();
    this.#link = link;
    this.#codec = settings.codec;
    this.#maxMessageSize = Math.min(settings.maxMessageSize, link.maxFrame - 5);
    this.#hwm = settings.highWaterMark;
    this.#raw = this.#codec === (rawCodec as Codec<unknown>);
    this.#decodeCopies = decodesIntoOwnMemory(this.#codec as Codec<unknown, unknown>);
    this.#requests = new PendingRequests(settings.requestTimeout);
    const hold = new ReadHold(link, this);
    this.#out = new Outbox(link, { emptied: () => this.#lender.emptied(), failed: (e) => this.#lender.failed(e) });
    this.#lender = new Lender(link, this.#out, this, { raw: this.#raw, codecName: this.#codec.name, maxMessageSize: this.#maxMessageSize });
    this.#inbox = new Inbox(this, hold, this.#hwm);
    this.#responder = new Responder(this, this.#out, hold, { codec: this.#codec, maxMessageSize: this.#maxMessageSize, highWaterMark: this.#hwm });

    link.start({
      onFrame: (frame, owned, loaned) => (loaned ? this.#deliver(loaned as Receive) : this.#onFrame(frame, 0, frame.length, owned === true)),
      onFrameAt: (buffer, start, end, owned) => this.#onFrame(buffer, start, end, owned !== false),
      onWritable: () => this.#out.pump(),
      onWritten: (upTo) => this.#out.onWritten(upTo),
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
    if (this.#link.direction === 'receive') return Promise.reject(oneWayError(this.#link, 'send', 'ERR_IPCKIT_READ_ONLY'));
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
    if (this.#link.direction === 'receive') return Promise.reject(oneWayError(this.#link, 'sendBatch', 'ERR_IPCKIT_READ_ONLY'));
    if (this.#closeInfo || this.#closing) return Promise.reject(closedError(this.#closeInfo));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    const bodies = encodeBatch(this.#codec, messages, this.#maxMessageSize);
    if (bodies instanceof Error) return Promise.reject(bodies);
    return this.#out.sendRun(MESSAGE_HEADER, bodies, wait);
  }

  /**
   * Resolves once everything sent so far is in the kernel or the ring (the
   * send queue is empty and the link wrote what it took); rejects if the
   * channel closes first with some of it unwritten. `signal` / `timeout` end
   * the wait only (nothing is taken back).
   */
  flush(options?: ChannelWaitOptions): Promise<void> {
    const wait = options === undefined ? undefined : checkChannelWait(options);
    if (this.#link.direction === 'receive') return Promise.reject(oneWayError(this.#link, 'flush', 'ERR_IPCKIT_READ_ONLY'));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    if (this.#closeInfo) return this.#out.lostAtClose ? Promise.reject(closedError(this.#closeInfo)) : RESOLVED;
    return this.#out.flush(wait);
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
    const timeout = this.#requests.timeoutOf(options);
    if (this.#link.direction) return Promise.reject(oneWayError(this.#link, 'request'));
    if (this.closed) return Promise.reject(closedError(this.#closeInfo));
    if (options.signal?.aborted) return Promise.reject(abortError(options.signal));
    const id = this.#requests.nextId();
    const reply = this.#requests.reply(id, timeout, options.signal);
    this.#sendFrame(correlatedHeader(KIND_REQUEST, id), message).catch((e: Error) => this.#requests.failed(id, e));
    return fromHere(reply);
  }

  /** Answers the peer's request() calls; a throw (or rejection) becomes the requester's rejection. One handler; null removes it. */
  onRequest(handler: RequestHandler<Receive, Send> | null): this {
    if (handler !== null && typeof handler !== 'function') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'handler must be a function');
    if (handler !== null && this.#link.direction) throw oneWayError(this.#link, 'onRequest');
    this.#responder.setHandler(handler);
    return this;
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
    // length, not byteLength (the same for a Uint8Array): V8 inlines the first and calls a builtin for the second.
    if (body.length > this.#maxMessageSize) {
      return Promise.reject(
        rangeError('ERR_IPCKIT_MESSAGE_TOO_LARGE', `message of ${body.length} bytes exceeds maxMessageSize ${this.#maxMessageSize}`),
      );
    }
    return this.#out.send(header, body, wait);
  }

  /**
   * Zero-copy send: resolves with a writable view of `size` bytes. Fill it,
   * then publish(view). On shm: the view is inside the ring, so nothing is
   * copied; elsewhere it is a plain Buffer sent by publish(). One loan at a
   * time; other sends wait behind it. The bytes bypass the codec, so both
   * ends must use codec 'raw' (ERR_IPCKIT_CODEC otherwise); zeroCopy on the
   * receiving shm: end gets a view.
   */
  loan(size: number): Promise<Uint8Array> {
    if (this.#link.direction === 'receive') return Promise.reject(oneWayError(this.#link, 'loan', 'ERR_IPCKIT_READ_ONLY'));
    return this.#lender.loan(size);
  }

  /** Sends the view from loan() (its first `length` bytes, default all). */
  publish(view: Uint8Array, length: number = view.byteLength): Promise<void> {
    return this.#lender.publish(view, length);
  }

  /** The frame at frame[start..end); `owned`: those bytes are ours to keep (no copy needed for raw). */
  #onFrame(frame: Uint8Array, start: number, end: number, owned: boolean): void {
    if (this.#closeInfo || this.#failed) return;
    // The common case first: a plain message, raw codec, in bytes that are
    // already ours (a view of them), or that are not (a copy, made straight
    // from the frame: no view of it first).
    if (this.#raw && frame[start] === KIND_MESSAGE && end > start) {
      if (!owned) return this.#deliver(copyRange(frame, start + 1, end - start - 1) as Receive);
      const message = Buffer.from(frame.buffer, frame.byteOffset + start + 1, end - start - 1);
      return this.#deliver((end - start >= TAKE_MIN ? releasable(frame, message) : message) as Receive);
    }
    const problem = checkFrame(frame, start, end);
    if (problem) return this.#fail(badFrame(`corrupt frame on ${this.transport}: channel: ${problem}`));
    const kind = frame[start]!;
    const hl = headerLength(kind);
    if (kind === KIND_ERROR) {
      // An error reply's body is JSON whatever the codec (frame.ts): one that is not is a corrupt frame.
      if (this.#requests.settleError(readId(frame, start), frame.subarray(start + hl, end))) return;
      return this.#fail(badFrame(`corrupt frame on ${this.transport}: channel: an error reply whose body is not JSON`));
    }
    let value: Receive;
    try {
      // raw needs no second copy of a frame the link already copied for us.
      if (owned && this.#raw) value = Buffer.from(frame.buffer, frame.byteOffset + start + hl, end - start - hl) as Receive;
      else {
        value = this.#codec.decode(frame.subarray(start + hl, end));
        // Decoded into memory of its own: a kept block goes back now.
        if (owned && this.#decodeCopies && end - start >= TAKE_MIN) giveBack(frame);
      }
    } catch (e) {
      return this.#fail(decodeError(this.#codec, end - start, e));
    }
    if (kind === KIND_MESSAGE) return this.#deliver(value);
    const id = readId(frame, start);
    if (kind === KIND_REQUEST) return this.#responder.answer(id, value);
    this.#requests.settle(id, value);
  }

  #deliver(value: Receive): void {
    if (this.listenerCount('message') > 0) {
      if (this.#inbox.isEmpty()) {
        this.emit('message', value);
        return;
      }
      // Older messages wait for the drain a new listener queued: this one goes behind them.
      this.#inbox.queueDrain();
      this.#inbox.push(value);
    } else this.#inbox.put(value);
  }

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
    if (event !== 'message') return this;
    if (!this.#inbox.isEmpty()) this.#inbox.queueDrain();
    // Messages go to 'message' listeners: a receiveEach() waits, as next() does.
    if (this.#sink !== null) this.#detachSink(this.#sink);
    return this;
  }

  /**
   * Next message, or done once the channel is closed and everything received
   * was read. `signal` / `timeout` end the wait (AbortError / IpcError
   * ETIMEDOUT) without taking a message: the next one stays for the next read.
   */
  next(options?: ChannelWaitOptions): Promise<IteratorResult<Receive>> {
    const wait = options === undefined ? undefined : checkChannelWait(options);
    if (this.#link.direction === 'send') return Promise.reject(oneWayError(this.#link, 'next', 'ERR_IPCKIT_WRITE_ONLY'));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    const value = this.#inbox.take();
    if (value !== EMPTY) return Promise.resolve({ value, done: false });
    return this.#inbox.read<IteratorResult<Receive>>(0, wait, 'next()', this.#closeInfo);
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
    if (this.#link.direction === 'send') throw oneWayError(this.#link, 'nextSync', 'ERR_IPCKIT_WRITE_ONLY');
    const value = this.#inbox.takeSync(this.#link, timeoutNs);
    return value === EMPTY ? { value: undefined, done: true } : { value, done: false };
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
    if (this.#link.direction === 'send') return Promise.reject(oneWayError(this.#link, 'receiveBatch', 'ERR_IPCKIT_WRITE_ONLY'));
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    const batch = this.#inbox.takeBatch(max);
    if (batch !== null) return Promise.resolve(batch);
    return this.#inbox.read<Receive[]>(max, wait, 'receiveBatch()', this.#closeInfo);
  }

  /**
   * Waits until at least one message is there, then calls `handler`
   * synchronously for each message available now (at most `max`, default
   * highWaterMark), in order, and resolves with how many it handled: no
   * promise and no array per message. 0 once the channel is closed and
   * everything was read. Messages already received are handed out first. If
   * the handler throws, the messages it was given are consumed, the call
   * rejects with what it threw, and the rest wait for the next read.
   * `timeout` / `signal` end the wait for the first message as for next().
   *
   * With `inPlace: true` (raw codec only) the handler gets
   * (bytes, start, end) instead of a Buffer per message: the message is
   * bytes[start..end), valid ONLY during the call. On shm: `bytes` is the
   * ring itself, whose space is reused once the handler returns, so nothing
   * is allocated or copied per message; copy what you keep.
   */
  receiveEach(handler: (message: Receive) => void, options?: ReceiveEachOptions & { inPlace?: false }): Promise<number>;
  receiveEach(this: Channel<Send, Uint8Array>, handler: InPlaceHandler, options: ReceiveEachOptions & { inPlace: true }): Promise<number>;
  receiveEach(handler: ((message: Receive) => void) | InPlaceHandler, options?: ReceiveEachOptions): Promise<number> {
    if (typeof handler !== 'function') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'handler must be a function');
    const o = checkOptions(options, 'options', EACH_OPTIONS) as ReceiveEachOptions;
    const max = o.max ?? this.#hwm;
    if (!Number.isSafeInteger(max) || max < 1) throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', 'options.max must be a positive integer');
    if (o.inPlace !== undefined && typeof o.inPlace !== 'boolean') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.inPlace must be a boolean');
    const wait = o.timeout === undefined && o.signal === undefined ? undefined : checkChannelWait({ timeout: o.timeout, signal: o.signal });
    if (this.#link.direction === 'send') return Promise.reject(oneWayError(this.#link, 'receiveEach', 'ERR_IPCKIT_WRITE_ONLY'));
    const inPlace = o.inPlace === true;
    if (inPlace && !this.#raw) {
      return Promise.reject(typeError('ERR_IPCKIT_CODEC', `receiveEach() with inPlace hands out raw bytes: it needs codec 'raw' (this channel's is '${this.#codec.name}')`));
    }
    if (wait?.signal?.aborted) return Promise.reject(abortError(wait.signal));
    const each = new EachReader(handler, inPlace, max);
    this.#inbox.takeEach(each);
    if (each.count > 0) return each.result();
    return this.#inbox.readEach(each, wait, this.#closeInfo, (first) => {
      // First in line and nobody else takes messages: the link may hand them over in place.
      if (!inPlace || !first || !this.#link.inPlace || this.listenerCount('message') > 0) return noop;
      this.#sink = each;
      this.#link.inPlace(each);
      return () => this.#detachSink(each);
    });
  }

  #detachSink(each: EachReader): void {
    if (this.#sink !== each) return;
    this.#sink = null;
    this.#link.inPlace!(null);
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
    if (!this.#inbox.isEmpty() && this.listenerCount('message') > 0) this.#inbox.drain();
    const err = closedError(info);
    this.#out.fail(err);
    this.#requests.rejectAll(err);
    this.#responder.dropUnanswered();
    if (info.reason === 'error' && info.error) {
      // Errors end the iteration with a throw, so `for await` users see them;
      // 'error' listeners get them too. Without either, the error is in closeInfo.
      // A peer that went away is no error of this channel: the iteration just ends.
      this.#inbox.fail(info.error);
      if (this.listenerCount('error') > 0) this.emit('error', info.error);
    }
    this.#inbox.end();
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
      if (!this.#out.isEmpty()) {
        await this.#out.whenEmpty(CLOSE_GRACE_MS);
        this.#out.abandon(stateError('ERR_IPCKIT_CLOSED', `channel closed before the peer took this message (it stopped reading for ${CLOSE_GRACE_MS} ms)`));
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
