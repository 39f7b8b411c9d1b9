// The receive side of a Channel: messages received and not yet read (in
// order, behind a moving head), the next() / receiveBatch() calls waiting
// for one, and the hold on the link that stops reading the peer while the
// inbox is full (the sender then waits: receiver backpressure).
import { stateError } from '../core/errors.js';
import { cancellable, waitTimedOut, type CheckedChannelWait } from './cancel.js';
import type { ChannelState } from './channel-errors.js';
import type { EachReader } from './each.js';
import type { CloseInfo, Link } from './link.js';

/**
 * Why reading from the peer is paused: our inbox is full (the user is not
 * reading), or answers to the peer's requests pile up (the peer is not
 * reading them). Reading resumes when neither holds.
 */
const HELD_BY_INBOX = 1;
export const HELD_BY_REPLIES = 2;

/** Pauses the link while any reason holds it; resumes it once none does (a closed channel's link is left alone). */
export class ReadHold {
  readonly #link: Link;
  readonly #channel: ChannelState;
  #held = 0;

  constructor(link: Link, channel: ChannelState) {
    this.#link = link;
    this.#channel = channel;
  }

  hold(reason: number): void {
    const was = this.#held;
    this.#held |= reason;
    if (was === 0 && !this.#channel.closeInfo) this.#link.pause();
  }

  release(reason: number): void {
    if ((this.#held & reason) === 0) return;
    this.#held &= ~reason;
    if (this.#held === 0 && !this.#channel.closeInfo) this.#link.resume();
  }
}

/**
 * A pending next() (max 0), receiveBatch(max) or receiveEach() (`each`).
 * (resolve is a method so that Channel stays covariant in Receive.)
 */
interface Reader<T> {
  max: number;
  each?: EachReader;
  resolve(r: IteratorResult<T> | T[]): void;
  reject: (e: Error) => void;
}

/** The Channel, to which the inbox hands messages while 'message' listeners take them. */
export interface InboxOwner extends ChannelState {
  listenerCount(event: 'message'): number;
  emit(event: 'message', value: unknown): boolean;
}

/** take() when the inbox is empty. */
export const EMPTY: unique symbol = Symbol('empty inbox');

const RESOLVED = Promise.resolve();

export class Inbox<T> {
  readonly #owner: InboxOwner;
  readonly #hold: ReadHold;
  readonly #hwm: number;
  #items: T[] = [];
  #head = 0;
  #readers: Array<Reader<T>> = [];
  /** The array a receiveBatch() was just resolved with: messages delivered in the same run join it (see put()). */
  #openBatch: T[] | null = null;
  #openBatchMax = 0;
  /** The error the channel closed with, kept for the next read when no read was waiting. */
  #error: Error | null = null;
  /** A drain to the 'message' listeners is queued (queueDrain()). */
  #drainQueued = false;

  /** `hwm`: messages held before the link is paused. */
  constructor(owner: InboxOwner, hold: ReadHold, hwm: number) {
    this.#owner = owner;
    this.#hold = hold;
    this.#hwm = hwm;
  }

  isEmpty(): boolean {
    return this.#head === this.#items.length;
  }

  /** Queues `value` behind the messages waiting; at the high-water mark the link is held. */
  push(value: T): void {
    this.#items.push(value);
    if (this.#items.length - this.#head >= this.#hwm) this.#hold.hold(HELD_BY_INBOX);
  }

  /** A message with no 'message' listener: to the batch still open, else the oldest waiting reader, else the inbox. */
  put(value: T): void {
    const open = this.#openBatch;
    if (open !== null && open.length < this.#openBatchMax) {
      open.push(value);
      return;
    }
    const first = this.#readers[0];
    if (first !== undefined && first.each !== undefined) {
      // A receiveEach() takes every message of this run (up to its max), then settles.
      const each = first.each;
      return each.taken(each.take(value));
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
    this.push(value);
  }

  readonly #endBatch = (): void => {
    this.#openBatch = null;
  };

  /** The oldest message (EMPTY if none), taken out. */
  take(): T | typeof EMPTY {
    if (this.#head === this.#items.length) return EMPTY;
    const value = this.shift();
    this.compact();
    return value;
  }

  /** The oldest message, taken out without compacting (the inbox is not empty; compact() after a run of them). */
  shift(): T {
    const value = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as T;
    return value;
  }

  /** Every message waiting, in order, at most `max`; null if none. */
  takeBatch(max: number): T[] | null {
    const head = this.#head;
    const available = this.#items.length - head;
    if (available === 0) return null;
    let batch: T[];
    if (head === 0 && available <= max) {
      batch = this.#items;
      this.#items = [];
    } else {
      const end = head + Math.min(available, max);
      batch = this.#items.slice(head, end);
      this.#items.fill(undefined as T, head, end);
      this.#head = end;
    }
    this.compact();
    return batch;
  }

  /** receiveEach(): hands the waiting messages to `each`, in order, while it takes more. */
  takeEach(each: EachReader): void {
    if (this.#head === this.#items.length) return;
    while (this.#head < this.#items.length && each.take(this.shift()));
    this.compact();
  }

  /** After messages left the inbox: compacts it and lets the link go below half the high-water mark. */
  compact(): void {
    const left = this.#items.length - this.#head;
    if (left === 0) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (left <= this.#hwm >> 1) this.#hold.release(HELD_BY_INBOX);
  }

  /** The error the channel closed with, once. */
  takeError(): Error | null {
    const e = this.#error;
    this.#error = null;
    return e;
  }

  /**
   * nextSync(): the oldest message, blocking this thread in the link's
   * waitSync() while there is none (for at most `timeoutNs`, < 0: no limit);
   * EMPTY once the channel closed or the peer hung up with nothing left.
   * Throws the error the channel closed with, or ETIMEDOUT.
   */
  takeSync(link: Link, timeoutNs: number): T | typeof EMPTY {
    if (!link.waitSync) throw stateError('ERR_IPCKIT_UNSUPPORTED', `nextSync() needs the shm: transport (this is ${link.transport}:)`);
    if (this.#readers.length > 0) throw stateError('ERR_IPCKIT_UNSUPPORTED', 'nextSync() while a next(), receiveBatch() or receiveEach() is pending on this channel');
    if (this.#owner.listenerCount('message') > 0) throw stateError('ERR_IPCKIT_UNSUPPORTED', "nextSync() on a channel with 'message' listeners (they take every message)");
    const start = process.hrtime.bigint();
    let value = this.take();
    while (value === EMPTY) {
      const e = this.takeError();
      if (e) throw e;
      // A wait can end with only replies or requests delivered: wait again for what is left of the timeout.
      const left = timeoutNs < 0 ? -1 : Math.max(0, timeoutNs - Number(process.hrtime.bigint() - start));
      if (this.#owner.closeInfo || !link.waitSync!(left)) return EMPTY;
      value = this.take();
    }
    return value;
  }

  /** Hands the waiting messages to the 'message' listeners a microtask from now (once, however often asked). */
  queueDrain(): void {
    if (this.#drainQueued) return;
    this.#drainQueued = true;
    RESOLVED.then(this.#drainLater);
  }

  readonly #drainLater = (): void => this.drain();

  /** Hands the waiting messages to the 'message' listeners while there are any (a once() listener takes one). */
  drain(): void {
    this.#drainQueued = false;
    const owner = this.#owner;
    try {
      while (this.#head < this.#items.length && owner.listenerCount('message') > 0) owner.emit('message', this.shift());
    } finally {
      this.compact();
    }
  }

  /**
   * A next() (max 0) or receiveBatch(max) with the inbox empty: the error
   * the channel closed with, or the end of input once it is closed
   * (`closeInfo`, passed in: this runs once per read), else a wait for the
   * next message. Under `wait`, it is withdrawn from the readers when the
   * signal or the timeout ends it first.
   */
  read<R>(max: number, wait: CheckedChannelWait | undefined, what: string, closeInfo: CloseInfo | null): Promise<R> {
    const ended = this.#error ? Promise.reject(this.takeError()) : closeInfo ? Promise.resolve({ value: undefined, done: true }) : null;
    if (ended) return (max === 0 ? ended : ended.then(() => [])) as Promise<R>;
    if (!wait) return new Promise<R>((resolve, reject) => this.#readers.push({ max, resolve: resolve as Reader<T>['resolve'], reject }));
    return cancellable<R>(wait, () => waitTimedOut('recv', what, wait.timeoutMs), (resolve, reject) => {
      const reader: Reader<T> = { max, resolve: resolve as Reader<T>['resolve'], reject };
      this.#readers.push(reader);
      return () => {
        const at = this.#readers.indexOf(reader);
        if (at >= 0) this.#readers.splice(at, 1);
      };
    });
  }

  /**
   * receiveEach() with the inbox empty: as read(), with `each` as the
   * reader; `attach` (called when it starts waiting, first in line or not)
   * may hand it to the link too, and returns how to take it back.
   */
  readEach(each: EachReader, wait: CheckedChannelWait | undefined, closeInfo: CloseInfo | null, attach: (first: boolean) => () => void): Promise<number> {
    if (this.#error) return Promise.reject(this.takeError());
    if (closeInfo) return each.result();
    return each.wait(wait, () => {
      const reader: Reader<T> = { max: -1, each, resolve: () => each.end(), reject: (e) => void each.fail(e) };
      this.#readers.push(reader);
      const detach = attach(this.#readers.length === 1);
      return () => {
        const at = this.#readers.indexOf(reader);
        if (at >= 0) this.#readers.splice(at, 1);
        detach();
      };
    });
  }

  /** The channel closed with `error`: the oldest waiting read rejects with it, or the next read will. */
  fail(error: Error): void {
    const reader = this.#readers.shift();
    if (reader === undefined) this.#error = error;
    else if (reader.each === undefined) reader.reject(error);
    // A receiveEach() that handed out messages already resolves with them: the error is for the next read.
    else if (!reader.each.fail(error)) this.#error = error;
  }

  /** The channel closed: the waiting reads end (done, or []). */
  end(): void {
    for (const r of this.#readers.splice(0)) r.resolve(r.max === 0 ? { value: undefined, done: true } : []);
  }
}
