// Zero-copy sends, loan() then publish(): on shm: the loaned view is inside
// the ring, so publishing it copies nothing; elsewhere it is a plain Buffer
// that publish() sends as one message. One loan at a time; other sends wait
// behind it.
import { Buffer } from 'node:buffer';
import { rangeError, stateError } from '../core/errors.js';
import { closedError, notRawError, type ChannelState } from './channel-errors.js';
import { MESSAGE_HEADER } from './frame.js';
import type { Link } from './link.js';
import type { Outbox } from './outbox.js';

const RESOLVED = Promise.resolve();

/** What Lender needs of its Channel's settings. */
export interface LoanSettings {
  /** The codec is raw: loaned bytes are sent as they are, which only a raw codec at both ends reads. */
  raw: boolean;
  codecName: string;
  maxMessageSize: number;
}

export class Lender {
  readonly #link: Link;
  readonly #out: Outbox;
  readonly #channel: ChannelState;
  readonly #settings: LoanSettings;
  /** The link lends its own memory for loan() (shm:); otherwise loan() hands out a Buffer that publish() sends. */
  readonly #lends: boolean;
  #loaned: Uint8Array | null = null;
  /** A loan() waiting for the send queue to empty and the ring to have room. */
  #waiter: { size: number; resolve: (v: Uint8Array) => void; reject: (e: Error) => void } | null = null;

  constructor(link: Link, out: Outbox, channel: ChannelState, settings: LoanSettings) {
    this.#link = link;
    this.#out = out;
    this.#channel = channel;
    this.#settings = settings;
    this.#lends = typeof link.loan === 'function';
  }

  /** loan(size) once the Channel checked the direction. */
  loan(size: number): Promise<Uint8Array> {
    const { raw, codecName, maxMessageSize } = this.#settings;
    if (!raw) return Promise.reject(notRawError('loan', codecName));
    if (!Number.isSafeInteger(size) || size < 0 || size > maxMessageSize) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `size must be an integer 0..${maxMessageSize} (maxMessageSize)`);
    }
    if (this.#loaned || this.#waiter) return Promise.reject(stateError('ERR_IPCKIT_LOAN', 'publish() the current loan before taking another'));
    if (this.#channel.closed) return Promise.reject(closedError(this.#channel.closeInfo));
    if (!this.#lends) {
      const view = Buffer.allocUnsafe(size);
      this.#loaned = view;
      return Promise.resolve(view);
    }
    const view = this.#out.isEmpty() ? this.#link.loan!(size) : null;
    if (view) {
      this.#loaned = view;
      return Promise.resolve(view);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = {
        size,
        resolve: (v) => {
          this.#loaned = v;
          resolve(v);
        },
        reject,
      };
    });
  }

  publish(view: Uint8Array, length: number): Promise<void> {
    if (!this.#settings.raw) throw notRawError('publish', this.#settings.codecName);
    if (view !== this.#loaned) throw stateError('ERR_IPCKIT_LOAN', 'publish() takes the view returned by the last loan()');
    if (!Number.isSafeInteger(length) || length < 0 || length > view.byteLength) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `length must be an integer 0..${view.byteLength}`);
    }
    this.#loaned = null;
    if (this.#channel.closed) return Promise.reject(closedError(this.#channel.closeInfo));
    if (!this.#lends) {
      const body = view.subarray(0, length);
      if (this.#out.tryWrite(MESSAGE_HEADER, body)) return this.#out.whenWritten();
      return this.#out.queue(MESSAGE_HEADER, body);
    }
    this.#link.publish!(view, length);
    return RESOLVED;
  }

  /** The send queue emptied: a waiting loan takes its view if the ring has room. */
  emptied(): void {
    const w = this.#waiter;
    if (!w) return;
    const view = this.#link.loan!(w.size);
    if (view) {
      this.#waiter = null;
      w.resolve(view);
    }
  }

  /** The channel closed: a waiting loan rejects with `err`. */
  failed(err: Error): void {
    this.#waiter?.reject(err);
    this.#waiter = null;
  }
}
