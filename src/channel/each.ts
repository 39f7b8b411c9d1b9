// One pending Channel.receiveEach(): hands each message to the caller's
// handler as it is taken (from the inbox, from a delivery run, or in place
// from a link's memory), counts them, and settles once the run is over.
import type { Buffer } from 'node:buffer';
import { abortError } from '../core/errors.js';
import { waitTimedOut, type CheckedChannelWait } from './cancel.js';
import type { InPlaceSink } from './link.js';

/** receiveEach() with `inPlace`: a message is bytes[start..end), valid only during the call. */
export type InPlaceHandler = (bytes: Buffer, start: number, end: number) => void;

export interface ReceiveEachOptions {
  /** Most messages handed to the handler in this call. Default: the channel's highWaterMark. */
  max?: number;
  /** Milliseconds to wait for the first message before rejecting with IpcError ETIMEDOUT. Default: none. */
  timeout?: number;
  /** Cancels the wait for the first message: it rejects with an AbortError (`cause`: `signal.reason`). */
  signal?: AbortSignal;
  /**
   * raw codec only: the handler gets (bytes, start, end) instead of a Buffer
   * per message, valid only during the call; on shm: a view of the ring
   * itself, so nothing is allocated or copied per message.
   */
  inPlace?: boolean;
}

export const EACH_OPTIONS = ['max', 'timeout', 'signal', 'inPlace'] as const;

const RESOLVED = Promise.resolve();

export class EachReader implements InPlaceSink {
  readonly max: number;
  /** Messages handed to the handler (one that threw counts: it was consumed). */
  count = 0;
  readonly #handler: ((message: unknown) => void) | null;
  readonly #inPlace: InPlaceHandler | null;
  /** What the handler threw (settles the call with it). */
  #thrown: { error: unknown } | null = null;
  #settled = false;
  #endQueued = false;
  #resolve: ((n: number) => void) | null = null;
  #reject: ((e: unknown) => void) | null = null;
  #timer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  /** Takes this reader out of wherever it waits (the inbox's readers, the link's sink). */
  #withdraw: () => void = () => {};

  constructor(handler: ((message: never) => void) | InPlaceHandler, inPlace: boolean, max: number) {
    this.max = max;
    this.#handler = inPlace ? null : (handler as (message: unknown) => void);
    this.#inPlace = inPlace ? (handler as InPlaceHandler) : null;
  }

  /** Whether it takes another message. */
  get open(): boolean {
    return !this.#settled && this.#thrown === null && this.count < this.max;
  }

  /** A message from the inbox or a delivery run (raw with `inPlace`: a Buffer, handed over whole). Whether it takes more. */
  take(value: unknown): boolean {
    this.count++;
    try {
      if (this.#handler !== null) this.#handler(value);
      else {
        const bytes = value as unknown as Buffer & { release?: () => void };
        try {
          this.#inPlace!(bytes, 0, bytes.length);
        } finally {
          // Valid only during the call: memory that can go back now does (a kept block, a zero-copy view's ring space).
          bytes.release?.();
        }
      }
    } catch (e) {
      this.#thrown = { error: e };
      return false;
    }
    return this.count < this.max;
  }

  /** InPlaceSink: a message in a link's memory. */
  message(bytes: Buffer, start: number, end: number): boolean {
    if (!this.open) return false;
    if (!this.#endQueued) this.#queueEnd();
    this.count++;
    try {
      this.#inPlace!(bytes, start, end);
    } catch (e) {
      this.#thrown = { error: e };
      return false;
    }
    return this.count < this.max;
  }

  /** Ends the call a microtask from now: messages delivered in the same run join it first. */
  #queueEnd(): void {
    this.#endQueued = true;
    RESOLVED.then(this.#endLater);
  }

  readonly #endLater = (): void => this.end();

  /** After a take() from a delivery run: ends now when full, else once the run is over. */
  taken(more: boolean): void {
    if (!more) this.end();
    else if (!this.#endQueued) this.#queueEnd();
  }

  /** Settled at once (the inbox held messages, or the channel ended): the call's result. */
  result(): Promise<number> {
    this.#settled = true;
    return this.#thrown ? Promise.reject(this.#thrown.error) : Promise.resolve(this.count);
  }

  /**
   * Waits for messages: `register` puts the reader where deliveries find it
   * and returns how to take it out again; `wait`'s timeout and signal end a
   * wait that got nothing yet.
   */
  wait(wait: CheckedChannelWait | undefined, register: () => () => void): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#withdraw = register();
      if (!wait) return;
      if (wait.timeoutMs !== undefined) {
        this.#timer = setTimeout(() => this.#cancel(waitTimedOut('recv', 'receiveEach()', wait.timeoutMs)), wait.timeoutMs);
      }
      if (wait.signal) {
        this.#signal = wait.signal;
        wait.signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    });
  }

  readonly #onAbort = (): void => this.#cancel(abortError(this.#signal!));

  /** A timeout or abort: only while nothing was handed out (one from inside the handler ends the call after the run). */
  #cancel(error: Error): void {
    if (this.#settled || this.count > 0) return;
    this.#finish();
    this.#reject!(error);
  }

  /** The run is over (InPlaceSink.end): resolves with the count, or rejects with what the handler threw. */
  end(): void {
    if (this.#settled) return;
    this.#finish();
    if (this.#thrown) this.#reject!(this.#thrown.error);
    else this.#resolve!(this.count);
  }

  /**
   * The channel failed with `error` while this waited: rejects with it, or,
   * when messages were handed out already, resolves with their count and
   * leaves the error for the next read (false).
   */
  fail(error: Error): boolean {
    if (this.#settled) return false;
    if (this.count > 0) {
      this.end();
      return false;
    }
    this.#finish();
    this.#reject!(error);
    return true;
  }

  #finish(): void {
    this.#settled = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#withdraw();
  }
}
