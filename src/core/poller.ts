// Watch a descriptor for readiness on the event loop (uv_poll, native/core_poller.c).
// Internal building block: signals use it for their signalfd; POSIX message
// queue descriptors and datagram/seqpacket sockets are meant to reuse it.
//
//   const w = watchFd(fd, READABLE, (events, error) => { drain fd until EAGAIN }, { ref: false });
//   w.update(READABLE | WRITABLE); w.ref(); w.unref(); w.stop();
//
// Rules for the callback:
// - It runs on this thread's event loop, never on another thread.
// - The watch is level-triggered: read (or write) until EAGAIN, or stop the
//   watch, otherwise the callback runs again on every loop iteration.
// - An exception it throws becomes process 'uncaughtException' (the watch
//   stays active); catch inside if losing the rest of a batch matters.
// - `error` (an IpcError) means libuv gave up on the descriptor; the watch is
//   then already stopped.
// Stop the watch before closing the descriptor. Each worker thread has its own
// watches; a worker's watches are closed when it exits.
import { IpcError, sys } from './errors.js';
import { native } from './native.js';

export const READABLE: number = native.pollerConstants.READABLE;
export const WRITABLE: number = native.pollerConstants.WRITABLE;
/** Peer closed its end (EPOLLRDHUP); only reported if asked for. */
export const DISCONNECT: number = native.pollerConstants.DISCONNECT;
export const PRIORITIZED: number = native.pollerConstants.PRIORITIZED;

export type ReadyCallback = (events: number, error?: IpcError) => void;

export interface WatchOptions {
  /** Whether the watch keeps the process alive (uv_ref). Default true. */
  ref?: boolean;
}

export interface FdWatcher extends Disposable {
  readonly fd: number;
  /** False once stopped (by stop() or by an error). */
  readonly active: boolean;
  /** Changes the events watched; 0 pauses the watch without closing it. */
  update(events: number): void;
  /** Keep the process alive while this watch is active. */
  ref(): this;
  /** Do not keep the process alive for this watch alone. */
  unref(): this;
  /** Stops watching and releases the libuv handle. Idempotent. Does not close fd. */
  stop(): void;
}

class Watcher implements FdWatcher {
  readonly fd: number;
  #handle: object;
  #active = true;

  constructor(fd: number, events: number, onReady: ReadyCallback, ref: boolean) {
    this.fd = fd;
    const onPoll = (errno: number, ready: number) => {
      if (errno !== 0) {
        this.#active = false;
        onReady(0, new IpcError(errno, 'uv_poll', { path: `fd ${fd}` }));
        return;
      }
      onReady(ready);
    };
    this.#handle = sys(() => native.pollerStart(fd, events, onPoll), { path: `fd ${fd}` });
    if (!ref) native.pollerRef(this.#handle, false);
  }

  get active(): boolean {
    return this.#active;
  }

  update(events: number): void {
    if (this.#active) native.pollerUpdate(this.#handle, events);
  }

  ref(): this {
    if (this.#active) native.pollerRef(this.#handle, true);
    return this;
  }

  unref(): this {
    if (this.#active) native.pollerRef(this.#handle, false);
    return this;
  }

  stop(): void {
    if (!this.#active) return;
    this.#active = false;
    native.pollerStop(this.#handle);
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}

/** Calls `onReady(events)` on the event loop whenever `fd` is ready for `events`. */
export function watchFd(fd: number, events: number, onReady: ReadyCallback, options: WatchOptions = {}): FdWatcher {
  return new Watcher(fd, events, onReady, options.ref ?? true);
}
