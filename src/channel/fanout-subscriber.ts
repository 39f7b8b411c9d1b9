// A subscriber of a topic (fanout.ts): every message checked (fanout-nats.ts),
// decoded and queued for the reader, with the losses in their place.
import { IpcError, errno, stateError } from '../core/errors.js';
import type { Codec } from './codec.js';
import type { EventMethod } from './events.js';
import { closedError, releaseWithin, TopicConnection } from './fanout-connection.js';
import { KIND_MESSAGE, SequenceCheck, topicSubject, type Parsed } from './fanout-nats.js';
import { isPermissionViolation, type NatsMsg, type NatsSession, type NatsSubscription, type SessionMember } from './nats-client.js';

/** A loss a subscriber saw: `lost` messages of one publisher never arrived. */
export type MessagesLostError = Error & { code: 'ERR_IPCKIT_MESSAGES_LOST'; lost: number; publisher: string };

export interface SubscriberEvents {
  /** Messages of a publisher went missing (with a listener, losses come here instead of the iterator). */
  lost: (error: MessagesLostError) => void;
  /** A message that was dropped because it made no sense (ERR_IPCKIT_BAD_FRAME) or could not be decoded (ERR_IPCKIT_CODEC). */
  invalid: (error: Error) => void;
}

/** The server refused the subscription (its permissions: IpcError EACCES), or it ended otherwise. */
function subscribeError(url: string, error: Error): Error {
  if (!isPermissionViolation(error)) return closedError(url, error);
  const err = new IpcError(errno.EACCES, 'subscribe', { path: url }, error.message);
  err.cause = error;
  return err;
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
    if (p.kind !== KIND_MESSAGE) return;
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
