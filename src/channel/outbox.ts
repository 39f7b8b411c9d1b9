// The send side of a Channel: frames waiting for room in the link (the send
// queue, in order), and the sends whose frames the link took into a
// userspace buffer, which settle once the kernel has them (write tickets,
// see Link.unwritten). flush() and close() wait on it too.
import { cancellable, waitTimedOut, type CheckedChannelWait } from './cancel.js';
import type { Link } from './link.js';
import { copyForQueue, releaseQueued } from './send-copies.js';

interface PendingSend {
  header: Uint8Array;
  body: Uint8Array;
  /** body is a copy from copyForQueue(), to give back once the link copied it. */
  copied: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A send (or flush) whose frames the link accepted into a userspace buffer: it settles when the kernel has them (ticket: Link.unwritten). */
interface WriteWaiter {
  ticket: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

const RESOLVED = Promise.resolve();

const noop = (): void => {};

/** Who else waits on the send queue (a loan): told when it empties, and when the channel closes. */
export interface QueueWatcher {
  emptied(): void;
  failed(err: Error): void;
}

export class Outbox {
  readonly #link: Link;
  readonly #watcher: QueueWatcher;
  #queue: PendingSend[] = [];
  /** Sends handed to the link that wait for it to write them into the kernel, in ticket order. */
  #writeWaiters: WriteWaiter[] = [];
  /** flush() calls waiting for the send queue to empty. */
  #flushWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** The last waiter whenWritten() made without a signal, and its promise. */
  #shared: { waiter: WriteWaiter; promise: Promise<void> } | null = null;
  /** close() waiting for the send queue to empty. */
  #closeWait: (() => void) | null = null;
  #lostAtClose = false;

  constructor(link: Link, watcher: QueueWatcher) {
    this.#link = link;
    this.#watcher = watcher;
  }

  /** Nothing waits in the send queue. */
  isEmpty(): boolean {
    return this.#queue.length === 0;
  }

  /** The channel closed with sends not yet written (they rejected): a later flush() rejects too. */
  get lostAtClose(): boolean {
    return this.#lostAtClose;
  }

  /** Hands one frame to the link if nothing waits ahead of it and there is room; false: nothing written. */
  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    return this.#queue.length === 0 && this.#link.tryWrite(header, body);
  }

  /**
   * send(): hands the link one frame now if nothing waits ahead of it and
   * there is room, else queues it behind the others. Resolves once written
   * (see whenWritten).
   */
  send(header: Uint8Array, body: Uint8Array, wait: CheckedChannelWait | undefined): Promise<void> {
    if (this.#queue.length === 0 && this.#link.tryWrite(header, body)) return this.whenWritten(wait);
    // The codec may hand back a view it reuses (raw: the caller's buffer): keep a copy while queued.
    const copy = copyForQueue(body);
    if (wait) return this.enqueue([copy], header, wait, 'send()', true);
    return new Promise<void>((resolve, reject) => this.#queue.push({ header, body: copy, copied: true, resolve, reject }));
  }

  /**
   * sendBatch(): hands the link as many frames as fit now, as one corked run
   * (none while frames wait already), and queues the rest in order.
   * Resolves once the last is written.
   */
  sendRun(header: Uint8Array, bodies: Uint8Array[], wait: CheckedChannelWait | undefined): Promise<void> {
    const link = this.#link;
    const n = bodies.length;
    let sent = 0;
    if (this.#queue.length === 0) {
      link.cork?.();
      while (sent < n && link.tryWrite(header, bodies[sent]!)) sent++;
      link.uncork?.();
    }
    if (sent === n) return this.whenWritten(wait, 'sendBatch()');
    // Copies, as in send(): the codec may hand back the caller's buffers.
    for (let i = sent; i < n; i++) bodies[i] = copyForQueue(bodies[i]!);
    return this.enqueue(bodies.slice(sent), header, wait, 'sendBatch()', true);
  }

  /** Queues one frame (bytes of its own: they are kept as they are) behind those waiting; resolves once written. */
  queue(header: Uint8Array, body: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => this.push(header, body, resolve, reject));
  }

  /** Queues one frame whose writing (or failure) `resolve` (or `reject`) is told of. */
  push(header: Uint8Array, body: Uint8Array, resolve: () => void, reject: (e: Error) => void): void {
    this.#queue.push({ header, body, copied: false, resolve, reject });
  }

  /**
   * Queues frames behind those already waiting; resolves once the last is
   * written (see whenWritten). Under `wait`, an abort or timeout takes out
   * the ones still queued: they are never sent.
   */
  enqueue(bodies: Uint8Array[], header: Uint8Array, wait: CheckedChannelWait | undefined, what: string, copied = false): Promise<void> {
    const start = (resolve: () => void, reject: (e: Error) => void) => {
      const last = bodies.length - 1;
      const entries = bodies.map((body, i): PendingSend => ({ header, body, copied, resolve: i === last ? resolve : noop, reject }));
      for (const e of entries) this.#queue.push(e);
      return () => this.#withdraw(entries);
    };
    if (!wait) return new Promise<void>((resolve, reject) => void start(resolve, reject));
    return cancellable(wait, () => waitTimedOut('send', what, wait.timeoutMs), start);
  }

  /** Takes cancelled sends out of the send queue (those still in it). */
  #withdraw(entries: PendingSend[]): void {
    const gone = new Set(entries);
    const q = this.#queue;
    const kept = q.filter((p) => !gone.has(p));
    if (kept.length === q.length) return;
    this.#queue = kept;
    if (kept.length === 0) this.#emptied();
  }

  /**
   * After the link took frames: resolved at once when they are all in the
   * kernel or ring (the fast path: no allocation), else once the link says
   * it wrote them (a link that goes down first rejects them at close).
   */
  whenWritten(wait?: CheckedChannelWait, what = 'send()'): Promise<void> {
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

  /** The link wrote every frame up to `upTo` into the kernel. */
  onWritten(upTo: number): void {
    const w = this.#writeWaiters;
    let n = 0;
    while (n < w.length && w[n]!.ticket <= upTo) n++;
    if (n === 0) return;
    for (const x of w.splice(0, n)) x.resolve();
  }

  /** The link has room again: hands it what waits, in order, as one corked run. */
  pump(): void {
    const q = this.#queue;
    const link = this.#link;
    let i = 0;
    link.cork?.();
    for (; i < q.length; i++) {
      const p = q[i]!;
      if (!link.tryWrite(p.header, p.body)) break;
      if (p.copied && link.copiesOnWrite) releaseQueued(p.body);
    }
    link.uncork?.();
    // What the link took but holds in userspace settles once written (onWritten).
    const ticket = i > 0 ? (this.#link.unwritten?.() ?? 0) : 0;
    for (let k = 0; k < i; k++) {
      const p = q[k]!;
      if (ticket === 0) p.resolve();
      else this.#writeWaiters.push({ ticket, resolve: p.resolve, reject: p.reject });
    }
    if (i > 0) q.splice(0, i);
    if (q.length === 0) this.#emptied();
  }

  /** flush() on an open channel: resolves once the send queue is empty and the link wrote what it took. */
  flush(wait: CheckedChannelWait | undefined): Promise<void> {
    if (this.#queue.length === 0) return this.whenWritten(wait, 'flush()');
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

  /** The send queue just emptied: a waiting loan, close() and flush() go on. */
  #emptied(): void {
    this.#watcher.emptied();
    this.#endCloseWait();
    if (this.#flushWaiters.length > 0) {
      const ticket = this.#link.unwritten?.() ?? 0;
      for (const w of this.#flushWaiters.splice(0)) {
        if (ticket === 0) w.resolve();
        else this.#writeWaiters.push({ ticket, ...w });
      }
    }
  }

  /** close(): resolves once the send queue is empty, or after `graceMs` (see abandon()). */
  whenEmpty(graceMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.#closeWait = null;
        resolve();
      };
      timer = setTimeout(done, graceMs).unref();
      this.#closeWait = done;
    });
  }

  /** Ends close()'s wait for the send queue (it emptied, or the channel closed). */
  #endCloseWait(): void {
    this.#closeWait?.();
  }

  /** close() stops waiting: what is still queued is never sent, and it and pending flush() calls reject with `err`. */
  abandon(err: Error): void {
    if (this.#queue.length > 0) this.#lostAtClose = true;
    for (const p of this.#queue.splice(0)) p.reject(err);
    for (const w of this.#flushWaiters.splice(0)) w.reject(err);
  }

  /** The link is down: every send not yet written, every flush() and the watcher's wait reject with `err`; close() stops waiting. */
  fail(err: Error): void {
    if (this.#queue.length > 0 || this.#writeWaiters.length > 0) this.#lostAtClose = true;
    for (const p of this.#queue.splice(0)) p.reject(err);
    for (const w of this.#writeWaiters.splice(0)) w.reject(err);
    for (const w of this.#flushWaiters.splice(0)) w.reject(err);
    this.#watcher.failed(err);
    this.#endCloseWait();
  }
}
