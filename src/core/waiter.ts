// Promise side of native/core_waiter.c: every asynchronous blocking wait in ipckit
// (futex, semaphores, System V semop, mutex, condition; later msgrcv and FIFO
// opens) runs on a dedicated native waiter thread, never on the libuv
// threadpool, and comes back here. This module owns what is common to all of
// them: the `timeout`/`signal` options, cancellation, and turning the native
// rejection into an IpcError, or an AbortError when the caller's signal
// cancelled the wait.
import { IpcError, abortError, sys, timeoutError, toIpcError, typeError, errno, type IpcErrorContext } from './errors.js';
import { native } from './native.js';
import { checkOptions, show } from './validate.js';

/** What native wait starters return: the Promise of the blocking call and its id for cancelling. */
export interface NativeWait {
  promise: Promise<number>;
  id: number;
}

export interface WaitOptions {
  /** Milliseconds to wait at most (fractions allowed). Default: no limit. */
  timeout?: number;
  /** Cancels the wait; the Promise rejects with an AbortError (`code` 'ABORT_ERR') whose `cause` is `signal.reason`. */
  signal?: AbortSignal;
}

export interface CheckedWait {
  /** Nanoseconds for the native layer; -1 means no deadline. */
  timeoutNs: number;
  signal?: AbortSignal;
}

const { ECANCELED } = errno;
/** How often an abort is re-signalled until the native wait has returned (see core_waiter.h). */
const RESIGNAL_MS = 5;

/** The names WaitOptions has. */
const WAIT_OPTIONS = ['timeout', 'signal'] as const;

/** Validates `{ timeout, signal }`; `allowSignal` is false for synchronous waits. */
export function checkWaitOptions(options: unknown, allowSignal = true): CheckedWait {
  const o = checkOptions(options as object | undefined, 'options', WAIT_OPTIONS) as WaitOptions;
  let timeoutNs = -1;
  if (o.timeout !== undefined) {
    if (typeof o.timeout !== 'number' || Number.isNaN(o.timeout) || o.timeout < 0) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.timeout must be a number of milliseconds >= 0 (or Infinity), got ${show(o.timeout)}`);
    }
    // Beyond ~292 years the nanosecond count would not fit in int64: treat as no limit.
    timeoutNs = o.timeout === Infinity || o.timeout > 9e12 ? -1 : Math.round(o.timeout * 1e6);
  }
  if (o.signal !== undefined) {
    if (!allowSignal) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.signal is for asynchronous waits only');
    if (!(o.signal instanceof AbortSignal)) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `options.signal must be an AbortSignal, got ${show(o.signal)}`);
    }
  }
  return o.signal ? { timeoutNs, signal: o.signal } : { timeoutNs };
}

/**
 * Starts a native wait and settles with its number result. The caller's
 * signal (`wait.signal`) and the handle's own `closing` signal both cancel
 * the native wait (`cancel`: by default a waiter thread is woken with a
 * signal); the first rejects with an AbortError, the second with its own
 * reason (ERR_IPCKIT_CLOSED). Other failures become IpcError naming `context`.
 */
export async function awaitNative(
  start: (timeoutNs: number) => NativeWait,
  wait: CheckedWait,
  context: IpcErrorContext = {},
  cancel: (id: number) => unknown = native.waiterCancel,
  closing?: AbortSignal,
): Promise<number> {
  const { signal } = wait;
  if (signal?.aborted) throw abortError(signal);
  if (closing?.aborted) throw closing.reason;
  const { promise, id } = sys(() => start(wait.timeoutNs), context);
  if (!signal && !closing) return promise.catch((e) => Promise.reject(settleError(e, wait, context)));
  let timer: NodeJS.Timeout | undefined;
  let cancelledBy: AbortSignal | undefined;
  const onAbort = (event: Event) => {
    if (cancelledBy) return;
    cancelledBy = event.target as AbortSignal;
    cancel(id);
    timer = setInterval(() => cancel(id), RESIGNAL_MS);
    timer.unref();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  closing?.addEventListener('abort', onAbort, { once: true });
  try {
    return await promise;
  } catch (e) {
    if (Math.abs((e as { errno?: number }).errno ?? 0) === ECANCELED && cancelledBy) {
      throw cancelledBy === signal ? abortError(signal) : cancelledBy.reason;
    }
    throw settleError(e, wait, context);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    closing?.removeEventListener('abort', onAbort);
    if (timer) clearInterval(timer);
  }
}

function settleError(e: unknown, wait: CheckedWait, context: IpcErrorContext): unknown {
  const err = toIpcError(e, context);
  if (err instanceof IpcError && err.code === 'ETIMEDOUT' && wait.timeoutNs >= 0) {
    return timeoutError(err.syscall, context, `the timeout of ${wait.timeoutNs / 1e6} ms passed`);
  }
  return err;
}

/** Pool state, for tests and diagnostics. */
export function waiterStats(): { threads: number; idle: number; pending: number } {
  return native.waiterStats();
}

// process.exit() must not wait for pending waits (with a wait parked on a
// libuv thread it would hang forever: libuv joins its threads at exit): wake
// them all as early as possible. Their threads are not libuv threads, so
// nothing joins them at exit, but a worker's teardown does join them.
process.on('exit', () => {
  native.waiterCancelAll();
});
