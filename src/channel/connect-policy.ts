// What channel.connect() does around one connection attempt: the whole
// connect (every attempt, its handshake, the pauses between) within
// `timeout`; `signal` stops it at any point; `retry` connects again, with
// exponential back-off and jitter, while nobody listens yet (or, on the
// network transports, while the network is not there yet), so a client may
// start before its server. An attempt that an abort or the deadline overtook is
// not left behind: if it still succeeds, its channel is closed at once.
import { IpcError, abortError, timeoutError, typeError } from '../core/errors.js';
import { checkInteger, checkOptions } from '../core/validate.js';
import { cancellable } from './cancel.js';

export interface RetryOptions {
  /** Connects in all, the first included. Default: no limit (the timeout decides). */
  attempts?: number;
  /** ms before the second attempt; each pause doubles (then a random part of its upper half is taken off). Default 50. */
  delay?: number;
  /** Longest pause between attempts in ms. Default 1000. */
  maxDelay?: number;
}

interface Retry {
  attempts: number;
  delay: number;
  maxDelay: number;
}

const RETRY_OPTIONS = ['attempts', 'delay', 'maxDelay'] as const;
const RETRY_DEFAULTS: Retry = { attempts: Infinity, delay: 50, maxDelay: 1000 };
const MAX_MS = 2 ** 31 - 1;
/** How much later than the time left an attempt is cut, so that its own timeout error (which stage: connect, hello) comes first. */
const DEADLINE_SLACK_MS = 100;

/** options.retry: false/undefined (no retry), true (the defaults) or { attempts?, delay?, maxDelay? }. */
function checkRetry(retry: unknown): Retry | null {
  if (retry === undefined || retry === false) return null;
  if (retry === true) return RETRY_DEFAULTS;
  if (typeof retry !== 'object' || retry === null || Array.isArray(retry)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.retry must be a boolean or { attempts?, delay?, maxDelay? }');
  }
  const o = checkOptions(retry as RetryOptions, 'options.retry', RETRY_OPTIONS) as RetryOptions;
  const delay = checkInteger(o.delay, 'options.retry.delay', 0, MAX_MS, RETRY_DEFAULTS.delay);
  return {
    attempts: o.attempts === undefined ? Infinity : checkInteger(o.attempts, 'options.retry.attempts', 1, MAX_MS),
    delay,
    maxDelay: checkInteger(o.maxDelay, 'options.retry.maxDelay', delay, MAX_MS, Math.max(delay, RETRY_DEFAULTS.maxDelay)),
  };
}

/**
 * The errors that mean nobody listens at the address yet: ECONNREFUSED (no
 * socket bound to the name, or a stale socket file), ENOENT (no socket file
 * or FIFO yet). Refusals by a listener (EACCES, a handshake) are final.
 */
function nobodyListens(e: unknown): boolean {
  return e instanceof IpcError && (e.code === 'ECONNREFUSED' || e.code === 'ENOENT');
}

export interface ConnectPolicy {
  /** ms for the whole connect; undefined: the attempt's own default. */
  timeout?: number;
  signal?: AbortSignal;
  retry?: unknown;
}

/** What one attempt is given: what is left of the timeout (undefined: no limit given), and the signal. */
export interface AttemptOptions {
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * The pause before attempt n + 1: `delay` doubled n - 1 times, at most
 * `maxDelay`, less a random part of up to half of it, so that many clients
 * cut off together do not come back in step.
 */
export function retryPause(retry: Retry, n: number, random = Math.random): number {
  const full = Math.min(retry.maxDelay, retry.delay * 2 ** Math.min(n - 1, 30));
  return Math.round(full / 2 + (full / 2) * random());
}

/**
 * Runs `attempt` under the policy. `defaultTimeout` bounds a retrying
 * connect that was given no timeout (undefined: no bound, as fifo: waits for
 * its reader as long as it takes). `retryable`: the transport's own
 * retryable errors besides nobodyListens().
 */
export async function connectWithPolicy<C extends { close(): Promise<void> }>(
  url: string,
  policy: ConnectPolicy,
  defaultTimeout: number | undefined,
  attempt: (options: AttemptOptions) => Promise<C>,
  retryable: (e: unknown) => boolean = () => false,
): Promise<C> {
  const given = policy.timeout === undefined ? undefined : checkInteger(policy.timeout, 'options.timeout', 0, MAX_MS);
  const signal = policy.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.signal must be an AbortSignal');
  const retry = checkRetry(policy.retry);
  if (signal?.aborted) throw abortError(signal);
  // Without a retry or a timeout the attempt keeps its own limits (the hello's, a full backlog's).
  const limit = given ?? (retry ? defaultTimeout : undefined);
  const deadline = limit === undefined ? undefined : Date.now() + limit;
  const timedOut = (cause?: unknown) => {
    const err = timeoutError('connect', { path: url }, `${url}: no connection within ${limit} ms`);
    if (cause !== undefined) (err as Error).cause = cause;
    return err;
  };
  // The error of the last attempt that failed: the cause of a timeout that ends a later one.
  let lastError: unknown;
  for (let n = 1; ; n++) {
    const left = deadline === undefined ? undefined : deadline - Date.now();
    if (left !== undefined && left <= 0) throw timedOut(lastError);
    try {
      // The attempt bounds each of its stages by the time left and names the one that ran out; the
      // deadline here, a little later, bounds them together.
      const bound = left === undefined ? undefined : left + DEADLINE_SLACK_MS;
      return await bounded(attempt({ ...(left !== undefined ? { timeout: left } : {}), ...(signal ? { signal } : {}) }), bound, signal, () => timedOut(lastError));
    } catch (e) {
      lastError = e;
      if (!retry || !(nobodyListens(e) || retryable(e)) || n >= retry.attempts) throw e;
      const pause = retryPause(retry, n);
      const room = deadline === undefined ? Infinity : deadline - Date.now();
      if (pause >= room) {
        await sleep(room, signal);
        throw timedOut(e);
      }
      await sleep(pause, signal);
    }
  }
}

/**
 * The attempt, or an AbortError / the timeout's error if those come first.
 * The attempt overtaken goes on by itself (within the same time left); if it
 * still makes a channel, that channel is closed.
 */
function bounded<C extends { close(): Promise<void> }>(p: Promise<C>, ms: number | undefined, signal: AbortSignal | undefined, timedOut: () => Error): Promise<C> {
  if (ms === undefined && !signal) return p;
  return cancellable<C>({ ...(signal ? { signal } : {}), ...(ms !== undefined ? { timeoutMs: ms } : {}) }, timedOut, (resolve, reject) => {
    p.then(resolve, reject);
    return () => void p.then((c) => c.close(), () => {}).catch(() => {});
  });
}

/** Waits `ms`, or rejects with an AbortError as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return cancellable<void>(signal ? { signal } : {}, () => new Error('unreachable: no timeout'), (resolve) => {
    const timer = setTimeout(resolve, ms);
    return () => clearTimeout(timer);
  });
}
