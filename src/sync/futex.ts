// futex(2) between processes: Atomics.wait/notify semantics on an Int32Array
// over any ipckit SharedArrayBuffer (POSIX, System V, memfd, mmap). V8's own
// Atomics.wait/notify only reach threads of this process; these reach every
// process that maps the same memory.
import { rangeError, timeoutError, typeError } from '../core/errors.js';
import { native } from '../core/native.js';
import { READABLE, watchFd, type FdWatcher } from '../core/poller.js';
import { awaitNative, checkWaitOptions, type CheckedWait, type WaitOptions } from '../core/waiter.js';
import { checkInteger, show } from '../core/validate.js';

export type FutexResult = 'ok' | 'not-equal';
export interface FutexWaitOptions extends WaitOptions {}

const RESULTS: readonly FutexResult[] = ['ok', 'not-equal'];
/** What the native futex wait answers when the timeout passed. */
const TIMED_OUT = 2;

/** The answer of a futex wait; a timeout is an error, as for every wait in ipckit. */
function result(r: number, timeoutNs: number): FutexResult {
  if (r === TIMED_OUT) throw timeoutError('futex', {}, `the timeout of ${timeoutNs / 1e6} ms passed`);
  return RESULTS[r]!;
}

function checkWord(array: unknown, index: unknown): void {
  if (!(array instanceof Int32Array) || !(array.buffer instanceof SharedArrayBuffer)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `array must be an Int32Array over a SharedArrayBuffer, got ${show(array)}`);
  }
  if (array.length === 0) throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', 'array is empty');
  checkInteger(index, 'index', 0, array.length - 1);
}

function checkValue(value: unknown, what: string): number {
  return checkInteger(value, what, -0x80000000, 0x7fffffff);
}

/**
 * Sleeps while `array[index] === expected` (FUTEX_WAIT), blocking this thread:
 * for worker threads. Returns 'ok' when woken by notify() (or spuriously),
 * 'not-equal' if the word did not hold `expected`; throws IpcError ETIMEDOUT
 * when the timeout passes first.
 */
export function wait(array: Int32Array, index: number, expected: number, options?: { timeout?: number }): FutexResult {
  checkWord(array, index);
  const value = checkValue(expected, 'expected');
  const { timeoutNs } = checkWaitOptions(options, false);
  return result(native.futexWait(array, index, value, timeoutNs), timeoutNs);
}

/**
 * Like wait(), without blocking the thread: through io_uring (FUTEX_WAIT
 * completed into a ring whose eventfd the event loop watches) where the
 * kernel supports it (Linux 6.7+), else on a native waiter thread. Rejects
 * with IpcError ETIMEDOUT when the timeout passes, with an AbortError when
 * the signal aborts.
 */
export async function waitAsync(array: Int32Array, index: number, expected: number, options?: FutexWaitOptions): Promise<FutexResult> {
  checkWord(array, index);
  const value = checkValue(expected, 'expected');
  const wait = checkWaitOptions(options);
  return result(await futexWaitNative(array, index, value, wait), wait.timeoutNs);
}

/** The io_uring completion watch of this thread; null when io_uring cannot serve futex waits. */
let uring: FdWatcher | null | undefined;

function uringWatch(): FdWatcher | null {
  if (uring !== undefined) return uring;
  // IPCKIT_FUTEX_THREADS=1 forces the waiter-thread path (tests cover both).
  const fd = process.env.IPCKIT_FUTEX_THREADS === '1' ? -1 : native.futexUringOpen();
  uring = fd < 0 ? null : watchFd(fd, READABLE, () => settleUring(), { ref: false });
  return uring;
}

function settleUring(): void {
  // Pending waits keep the process alive, as with waiter threads.
  if (native.futexUringReap() === 0) uring?.unref();
}

/** @internal Validated futex wait: 0 ok, 1 not-equal, 2 timed-out. Condition.wait uses it too. */
export function futexWaitNative(array: Int32Array, index: number, value: number, wait: CheckedWait): Promise<number> {
  const watch = uringWatch();
  if (watch === null) return awaitNative((ns) => native.futexWaitAsync(array, index, value, ns), wait);
  return awaitNative(
    (ns) => {
      const started = native.futexUringWait(array, index, value, ns);
      if (started.id !== 0) watch.ref();
      return started;
    },
    wait,
    {},
    native.futexUringCancel,
  );
}

/** Which mechanism futex.waitAsync uses in this thread: 'io_uring' or 'waiter-thread'. */
export function asyncMechanism(): 'io_uring' | 'waiter-thread' {
  return uringWatch() ? 'io_uring' : 'waiter-thread';
}

/** Wakes up to `count` sleepers on `array[index]` in any process (FUTEX_WAKE); returns how many woke. */
export function notify(array: Int32Array, index: number, count = Infinity): number {
  checkWord(array, index);
  const n = count === Infinity ? 0x7fffffff : checkInteger(count, 'count', 0, 0x7fffffff);
  return native.futexNotify(array, index, n);
}
