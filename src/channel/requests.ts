// Request-reply on a Channel. PendingRequests: this side's requests waiting
// for their reply (by id), with their timeout and abort. Responder: answers
// the peer's requests with the onRequest() handler, and counts the answers
// not yet handed to the transport, so that a peer that sends requests and
// never reads the answers stops being read (bounded memory).
import { Buffer } from 'node:buffer';
import { abortError, rangeError, stateError, timeoutError } from '../core/errors.js';
import { checkOptions } from '../core/validate.js';
import type { RequestHandler, RequestOptions } from './channel.js';
import type { ChannelState } from './channel-errors.js';
import { encodeError, type Codec } from './codec.js';
import { KIND_ERROR, KIND_REPLY, correlatedHeader } from './frame.js';
import { copyForQueue } from './send-copies.js';
import { HELD_BY_REPLIES, type ReadHold } from './inbox.js';
import type { Outbox } from './outbox.js';

/** Bytes of replies waiting for room in the transport before this side stops reading the peer's requests. */
const REPLY_BYTES_MAX = 8 * 1024 * 1024;

interface PendingRequest<T> {
  resolve(v: T): void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

export class PendingRequests<Reply> {
  /** The channel's requestTimeout (ms), for requests that set none. */
  readonly #defaultTimeout: number | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, PendingRequest<Reply>>();

  constructor(defaultTimeout: number | undefined) {
    this.#defaultTimeout = defaultTimeout;
  }

  /** request()'s options, checked: the timeout in ms; undefined: none. */
  timeoutOf(options: RequestOptions): number | undefined {
    checkOptions(options, 'options', ['timeout', 'signal']);
    const timeout = options.timeout ?? this.#defaultTimeout;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', 'options.timeout must be a non-negative number of milliseconds');
    }
    return timeout;
  }

  /** The id of the next request (1 to 2^32 - 1, then round again). */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId = (id + 1) >>> 0 || 1;
    return id;
  }

  /** The reply to request `id`: rejects with IpcError ETIMEDOUT after `timeout` ms, with an AbortError on `signal`. */
  reply(id: number, timeout: number | undefined, signal: AbortSignal | undefined): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.#pending.get(id)?.cleanup();
        reject(abortError(signal!));
      };
      const cleanup = () => {
        this.#pending.delete(id);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.#pending.set(id, { resolve, reject, cleanup });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(timeoutError('request', {}, `no reply to request ${id} within ${timeout} ms`));
        }, timeout);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Request `id` could not be sent: it rejects with `error`. */
  failed(id: number, error: Error): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    pending.cleanup();
    pending.reject(error);
  }

  /** The reply to request `id`. */
  settle(id: number, value: Reply): void {
    const pending = this.#pending.get(id);
    if (!pending) return; // timed out or aborted: a late reply is dropped
    pending.cleanup();
    pending.resolve(value);
  }

  /** An error reply to request `id`: `body` is the peer's error as JSON. false: it is not JSON (a corrupt frame). */
  settleError(id: number, body: Uint8Array): boolean {
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      return false;
    }
    const pending = this.#pending.get(id);
    if (!pending) return true; // timed out or aborted: a late reply is dropped
    pending.cleanup();
    const p = (payload ?? {}) as { message?: string; code?: string; name?: string };
    const err = stateError('ERR_IPCKIT_REMOTE', `request failed in the peer: ${p.message ?? 'unknown error'}`);
    Object.assign(err, { remoteCode: p.code, remoteName: p.name });
    pending.reject(err);
    return true;
  }

  /** The channel closed: every pending request rejects with `err`. */
  rejectAll(err: Error): void {
    for (const r of [...this.#pending.values()]) {
      r.cleanup();
      r.reject(err);
    }
  }
}

/** What Responder needs of its Channel's settings. */
export interface ResponderSettings {
  codec: Codec<any, unknown>;
  maxMessageSize: number;
  /** Answers outstanding at which reading the peer is held (released at half). */
  highWaterMark: number;
}

export class Responder {
  readonly #channel: ChannelState;
  readonly #out: Outbox;
  readonly #hold: ReadHold;
  readonly #codec: Codec<any, unknown>;
  readonly #maxMessageSize: number;
  readonly #hwm: number;
  /** Untyped here: a typed handler would make Channel invariant (Channel.onRequest() types it). */
  #handler: RequestHandler<any, any> | null = null;
  /** Requests that arrived while no handler was set: they wait for one (counted as outstanding answers). */
  #unanswered: Array<{ id: number; request: unknown }> = [];
  /** Requests taken from the peer whose answers have not yet been handed to the transport. */
  #outstanding = 0;
  #bytesQueued = 0;

  constructor(channel: ChannelState, out: Outbox, hold: ReadHold, settings: ResponderSettings) {
    this.#channel = channel;
    this.#out = out;
    this.#hold = hold;
    this.#codec = settings.codec;
    this.#maxMessageSize = settings.maxMessageSize;
    this.#hwm = settings.highWaterMark;
  }

  /** One handler; null removes it. Requests that arrived before there was a handler are answered now, in order. */
  setHandler(handler: RequestHandler<any, any> | null): void {
    this.#handler = handler;
    if (handler) for (const r of this.#unanswered.splice(0)) this.answer(r.id, r.request, true);
  }

  /** The channel closed: requests still waiting for a handler are dropped. */
  dropUnanswered(): void {
    this.#unanswered = [];
  }

  /** Request `id` from the peer; `counted`: already counted as outstanding (it waited for a handler). */
  answer(id: number, request: unknown, counted = false): void {
    const handler = this.#handler;
    // Every answer is counted until the transport took it: a peer that sends
    // requests and never reads the answers stops being read (bounded memory).
    if (!counted) {
      this.#outstanding++;
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
      this.#outstanding--;
      this.#checkReplies();
    };
    // Replies still go out while close() is flushing; only a closed link stops them.
    const fail = (e: unknown) => {
      if (this.#channel.closeInfo) return sent();
      const err = e instanceof Error ? e : new Error(String(e));
      const body = Buffer.from(JSON.stringify({ message: err.message, code: (err as { code?: unknown }).code, name: err.name }));
      this.#sendReplyBytes(correlatedHeader(KIND_ERROR, id), body, sent);
    };
    let result: unknown;
    try {
      result = handler(request);
    } catch (e) {
      return fail(e);
    }
    Promise.resolve(result).then(
      (answer) => {
        if (this.#channel.closeInfo) return sent();
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
    if (this.#out.tryWrite(header, body)) return sent();
    // A copy: the codec may hand back a view it reuses.
    const copy = copyForQueue(body);
    this.#bytesQueued += copy.byteLength;
    this.#checkReplies();
    const done = () => {
      this.#bytesQueued -= copy.byteLength;
      sent();
    };
    this.#out.push(header, copy, done, done);
  }

  /** Holds reading while too many answers to the peer are outstanding; lets it go at half. */
  #checkReplies(): void {
    const over = this.#outstanding >= this.#hwm || this.#bytesQueued >= REPLY_BYTES_MAX;
    const under = this.#outstanding <= this.#hwm >> 1 && this.#bytesQueued <= REPLY_BYTES_MAX >> 1;
    if (over) this.#hold.hold(HELD_BY_REPLIES);
    else if (under) this.#hold.release(HELD_BY_REPLIES);
  }
}
