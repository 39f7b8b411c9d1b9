// A robust mutex and a condition variable living in shared memory, usable
// from any process (and any worker thread) that maps the region. The lock
// word and the kernel robust-futex list are explained in native/sync_mutex.c.
import { rangeError, stateError, sys, throwIfAborted, timeoutError, toIpcError, typeError, errno, type IpcErrorContext } from '../core/errors.js';
import { native } from '../core/native.js';
import { checkBoolean, checkInteger, checkOptions, show } from '../core/validate.js';
import { futexWaitNative } from './futex.js';
import { checkWaitOptions, type WaitOptions } from '../core/waiter.js';

export interface LockResult {
  /**
   * The previous owner died holding the lock (process killed, thread exited).
   * You hold it now; repair whatever it protected before unlocking.
   */
  ownerDied: boolean;
}

export interface MutexState {
  locked: boolean;
  /** Kernel thread id of the owner (the process id for a main thread), 0 when free. */
  owner: number;
  /** The last owner died holding it, and nobody has taken it since. */
  ownerDied: boolean;
  /** Someone is (or may be) sleeping on it. */
  waiters: boolean;
}

export interface PlaceOptions {
  /** Reset the memory to the initial (unlocked) state. Do it in one process, before others use it. Zeroed memory (a new region) is already valid. */
  init?: boolean;
}

const { SIZE: MUTEX_SIZE, ALIGN, robustOffset } = native.mutexConstants;
const { EDEADLK } = errno;
const BUSY = 2;
/** What a native futex wait answers when its timeout passed. */
const TIMED_OUT = 2;
/** Lock-word bits (futex(2) robust-futex format, see native/sync_mutex.c). */
const TID_MASK = 0x3fffffff;
const WAITERS = 0x80000000 | 0;

/**
 * An unlock wakes exactly one sleeper; one that gives up (timeout, abort)
 * may have been that one, and must not leave the others asleep.
 */
function passOnWake(words: Int32Array): void {
  native.futexNotify(words, 0, 1);
}

/**
 * Mutexes this thread holds, by buffer and offset (any Mutex object for the
 * same memory may unlock it). A held mutex is linked into the thread's robust
 * list, which the kernel reads when the thread dies; if its memory were
 * unmapped (the SharedArrayBuffer garbage-collected), the kernel could not
 * mark it owner-died. Holding the buffer here keeps it mapped.
 */
const held = new Map<SharedArrayBuffer, Set<number>>();

function remember(words: Int32Array): void {
  const buffer = words.buffer as SharedArrayBuffer;
  let offsets = held.get(buffer);
  if (!offsets) held.set(buffer, (offsets = new Set()));
  offsets.add(words.byteOffset);
}

function forget(words: Int32Array): void {
  const buffer = words.buffer as SharedArrayBuffer;
  const offsets = held.get(buffer);
  offsets?.delete(words.byteOffset);
  if (offsets?.size === 0) held.delete(buffer);
}

function place(buffer: unknown, byteOffset: unknown, size: number, what: string): number {
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `buffer must be a SharedArrayBuffer (an ipckit region's .buffer), got ${show(buffer)}`);
  }
  if (buffer.byteLength < size) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `buffer of ${buffer.byteLength} bytes cannot hold a ${what} (${size} bytes)`);
  }
  const offset = checkInteger(byteOffset, 'byteOffset', 0, buffer.byteLength - size);
  if (offset % ALIGN !== 0) throw rangeError('ERR_IPCKIT_UNALIGNED_OFFSET', `byteOffset ${offset} must be a multiple of ${ALIGN}`);
  return offset;
}

function initOption(options: PlaceOptions | undefined): boolean {
  const o = checkOptions(options, 'options', ['init']) as PlaceOptions;
  return checkBoolean(o.init, 'options.init', false);
}

/**
 * A robust, non-recursive mutex in shared memory (`Mutex.SIZE` bytes at an
 * 8-aligned offset). The owner is a thread: the main thread of a process or
 * a worker. If the owner dies holding it, the next locker gets
 * `{ ownerDied: true }`.
 */
export class Mutex {
  /** Bytes a Mutex occupies. */
  static readonly SIZE = MUTEX_SIZE;
  /** Required alignment of its offset. */
  static readonly ALIGN = ALIGN;

  readonly #words: Int32Array;
  readonly #context: IpcErrorContext = {};

  private constructor(words: Int32Array) {
    this.#words = words;
  }

  /** The mutex at `byteOffset` in `buffer`. */
  static at(buffer: SharedArrayBuffer, byteOffset = 0, options?: PlaceOptions): Mutex {
    const offset = place(buffer, byteOffset, MUTEX_SIZE, 'Mutex');
    const init = initOption(options);
    if (robustOffset < 0) {
      throw stateError('ERR_IPCKIT_UNSUPPORTED', 'this C library registers a robust-futex list ipckit cannot share (see docs/sync.md)');
    }
    const words = new Int32Array(buffer, offset, MUTEX_SIZE / 4);
    if (init) for (let i = 0; i < words.length; i++) Atomics.store(words, i, 0);
    return new Mutex(words);
  }

  /** Takes the lock if it is free now; null if someone holds it (this thread included). */
  tryLock(): LockResult | null {
    const r = this.#try(false);
    return r === BUSY || r === -EDEADLK ? null : this.#acquired(r);
  }

  /**
   * Takes the lock, waiting on a native waiter thread while another thread
   * holds it. If this thread already holds it, waits for this thread's
   * unlock() (async code on one thread queues up). Rejects with IpcError
   * ETIMEDOUT after `timeout` ms, or with an AbortError when the signal aborts.
   */
  async lock(options?: WaitOptions): Promise<LockResult> {
    const w = checkWaitOptions(options);
    const deadline = w.timeoutNs < 0 ? -1 : performance.now() + w.timeoutNs / 1e6;
    const words = this.#words;
    let waited = false;
    for (;;) {
      throwIfAborted(w.signal);
      const r = this.#try(waited);
      if (r === 0 || r === 1) return this.#acquired(r);
      const left = deadline < 0 ? -1 : Math.max(0, Math.round((deadline - performance.now()) * 1e6));
      if (left === 0) throw this.#timedOut(w.timeoutNs);
      // Announce a sleeper (FUTEX_WAITERS) so the owner's unlock wakes one,
      // then sleep while the word still reads so (the same futex wait as
      // futex.waitAsync: io_uring or a waiter thread). The calling thread
      // itself retries the lock afterwards, so it is the recorded owner.
      let word = Atomics.load(words, 0);
      if ((word & TID_MASK) === 0) continue;
      if ((word & WAITERS) === 0) {
        if (Atomics.compareExchange(words, 0, word, word | WAITERS) !== word) continue;
        word |= WAITERS;
      }
      let result: number;
      try {
        result = await futexWaitNative(words, 0, word, { ...w, timeoutNs: left });
      } catch (e) {
        passOnWake(words);
        throw toIpcError(e, this.#context);
      }
      if (result === TIMED_OUT) {
        passOnWake(words);
        throw this.#timedOut(w.timeoutNs);
      }
      waited = true;
    }
  }

  /** lock() that blocks this thread: for worker threads. Throws ERR_IPCKIT_DEADLOCK if this thread holds it, IpcError ETIMEDOUT on timeout. */
  lockSync(options?: { timeout?: number }): LockResult {
    const { timeoutNs } = checkWaitOptions(options, false);
    try {
      return this.#acquired(native.mutexLockSync(this.#words, timeoutNs));
    } catch (e) {
      if (Math.abs((e as { errno?: number }).errno ?? 0) === EDEADLK) throw this.#deadlock();
      throw toIpcError(e, this.#context);
    }
  }

  /** Releases the lock, waking one waiter. Only the owning thread may: anyone else gets ERR_IPCKIT_NOT_OWNER. */
  unlock(): void {
    const owner = native.mutexState(this.#words).owner;
    if (owner !== native.mutexThreadId()) {
      throw stateError(
        'ERR_IPCKIT_NOT_OWNER',
        owner === 0 ? 'unlock() of a mutex that is not locked' : `unlock() by thread ${native.mutexThreadId()}, but thread ${owner} holds the mutex`,
      );
    }
    sys(() => native.mutexUnlock(this.#words), this.#context);
    forget(this.#words);
  }

  /** Whether the calling thread holds the lock. */
  get isOwnedByMe(): boolean {
    return native.mutexState(this.#words).owner === native.mutexThreadId();
  }

  /** A snapshot of the lock word. */
  get state(): MutexState {
    const s = native.mutexState(this.#words);
    return { locked: s.owner !== 0, owner: s.owner, ownerDied: s.ownerDied, waiters: s.waiters };
  }

  #acquired(r: number): LockResult {
    remember(this.#words);
    return { ownerDied: r === 1 };
  }

  #try(waited: boolean): number {
    try {
      return native.mutexTryLock(this.#words, waited);
    } catch (e) {
      if (Math.abs((e as { errno?: number }).errno ?? 0) === EDEADLK) return -EDEADLK;
      throw toIpcError(e, this.#context);
    }
  }

  #timedOut(timeoutNs: number): Error {
    return timeoutError('futex', this.#context, `the mutex stayed locked for the timeout of ${timeoutNs / 1e6} ms`);
  }

  #deadlock(): Error {
    return stateError('ERR_IPCKIT_DEADLOCK', `thread ${native.mutexThreadId()} already holds this mutex (it is not recursive)`);
  }
}

/** What Condition.wait() resolves with (a timeout rejects, as every wait in ipckit does). */
export type ConditionWaitResult = LockResult;

/**
 * A condition variable in shared memory (`Condition.SIZE` bytes at an
 * 8-aligned offset), used with a Mutex. Words: [0] sequence, bumped by every
 * signal/broadcast and slept on with FUTEX_WAIT; [1] sleepers, so signal()
 * skips the system call when nobody waits. As with pthread conditions,
 * wake-ups may be spurious: wait in a loop that checks your predicate.
 */
export class Condition {
  static readonly SIZE = 8;
  static readonly ALIGN = ALIGN;

  readonly #words: Int32Array;

  private constructor(words: Int32Array) {
    this.#words = words;
  }

  static at(buffer: SharedArrayBuffer, byteOffset = 0, options?: PlaceOptions): Condition {
    const offset = place(buffer, byteOffset, Condition.SIZE, 'Condition');
    const words = new Int32Array(buffer, offset, 2);
    if (initOption(options)) {
      Atomics.store(words, 0, 0);
      Atomics.store(words, 1, 0);
    }
    return new Condition(words);
  }

  /**
   * Atomically releases `mutex` (which this thread must hold) and sleeps until
   * signalled, then takes `mutex` again before resolving. A timeout (IpcError
   * ETIMEDOUT) or an abort (AbortError) rejects once the mutex is held again,
   * as pthread_cond_timedwait returns ETIMEDOUT holding it — unless taking it
   * again found its owner dead: that resolves `{ ownerDied: true }` (a wake-up
   * the caller's loop re-checks), since the state needs repair either way.
   */
  async wait(mutex: Mutex, options?: WaitOptions): Promise<ConditionWaitResult> {
    const w = checkWaitOptions(options);
    const seq = this.#enter(mutex);
    let failure: unknown;
    try {
      throwIfAborted(w.signal); // still re-takes the mutex before rejecting
      if ((await futexWaitNative(this.#words, 0, seq, w)) === TIMED_OUT) failure = this.#timedOut(w.timeoutNs);
    } catch (e) {
      failure = e;
    } finally {
      Atomics.sub(this.#words, 1, 1);
    }
    const { ownerDied } = await mutex.lock();
    if (failure !== undefined && !ownerDied) throw failure;
    return { ownerDied };
  }

  /** wait() that blocks this thread: for worker threads. Throws IpcError ETIMEDOUT as wait() rejects. */
  waitSync(mutex: Mutex, options?: { timeout?: number }): ConditionWaitResult {
    const { timeoutNs } = checkWaitOptions(options, false);
    const seq = this.#enter(mutex);
    let r: number;
    try {
      r = native.futexWait(this.#words, 0, seq, timeoutNs);
    } finally {
      Atomics.sub(this.#words, 1, 1);
    }
    const { ownerDied } = mutex.lockSync();
    if (r === TIMED_OUT && !ownerDied) throw this.#timedOut(timeoutNs);
    return { ownerDied };
  }

  #timedOut(timeoutNs: number): Error {
    return timeoutError('futex', {}, `no signal() or broadcast() within the timeout of ${timeoutNs / 1e6} ms`);
  }

  /** Wakes one waiter (in any process). */
  signal(): void {
    this.#wake(1);
  }

  /** Wakes every waiter. */
  broadcast(): void {
    this.#wake(0x7fffffff);
  }

  #enter(mutex: Mutex): number {
    if (!(mutex instanceof Mutex)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `mutex must be a Mutex, got ${show(mutex)}`);
    if (!mutex.isOwnedByMe) throw stateError('ERR_IPCKIT_NOT_OWNER', 'Condition.wait() needs the mutex held by this thread');
    const seq = Atomics.load(this.#words, 0);
    Atomics.add(this.#words, 1, 1);
    mutex.unlock();
    return seq;
  }

  #wake(count: number): void {
    Atomics.add(this.#words, 0, 1);
    if (Atomics.load(this.#words, 1) > 0) native.futexNotify(this.#words, 0, count);
  }
}
