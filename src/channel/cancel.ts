// Timeouts and AbortSignals on a Channel's waits (send, sendBatch, flush,
// next, receiveBatch): the same shape as request()'s. An abort rejects with
// an AbortError (code ABORT_ERR, cause: the signal's reason), a timeout with
// IpcError ETIMEDOUT; either first withdraws the wait, and the timer and the
// abort listener go as soon as the wait settles, so a finished wait never
// keeps the process alive.
import { abortError, timeoutError } from '../core/errors.js';
import { checkWaitOptions } from '../core/waiter.js';

export interface ChannelWaitOptions {
  /** Milliseconds before the wait rejects with IpcError ETIMEDOUT. Default: none. */
  timeout?: number;
  /** Cancels the wait: it rejects with an AbortError (`cause`: `signal.reason`). */
  signal?: AbortSignal;
}

export interface CheckedChannelWait {
  signal?: AbortSignal;
  /** ms; undefined: no limit. */
  timeoutMs?: number;
}

/** The largest delay setTimeout keeps (a longer one would fire at once): beyond it there is no limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Validates { timeout, signal } as every ipckit wait does. */
export function checkChannelWait(options: ChannelWaitOptions | undefined): CheckedChannelWait {
  const { timeoutNs, signal } = checkWaitOptions(options);
  const timeoutMs = timeoutNs < 0 ? undefined : timeoutNs / 1e6;
  return {
    ...(signal ? { signal } : {}),
    ...(timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS ? { timeoutMs } : {}),
  };
}

/** The IpcError ETIMEDOUT of a channel wait (`what`: its name in the message). */
export function waitTimedOut(syscall: string, what: string, ms: number | undefined): Error {
  return timeoutError(syscall, {}, `${what} did not complete within ${ms} ms`);
}

/**
 * Runs the wait `start` registers (it returns how to withdraw it) under
 * `wait`'s signal and timeout (`timedOut` makes the timeout's error).
 */
export function cancellable<R>(
  wait: CheckedChannelWait,
  timedOut: () => Error,
  start: (resolve: (value: R) => void, reject: (error: Error) => void) => () => void,
): Promise<R> {
  const { signal, timeoutMs } = wait;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const end = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = () => {
      if (!end()) return;
      withdraw();
      reject(abortError(signal!));
    };
    const withdraw = start(
      (value) => end() && resolve(value),
      (error) => end() && reject(error),
    );
    if (settled) return;
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        if (!end()) return;
        withdraw();
        reject(timedOut());
      }, timeoutMs);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
