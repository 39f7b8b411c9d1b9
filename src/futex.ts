// futex(2) between processes: Atomics.wait/notify semantics on an Int32Array
// over any ipckit SharedArrayBuffer (POSIX, System V, memfd, mmap). V8's own
// Atomics.wait/notify only reach threads of this process; these reach every
// process that maps the same memory.
import { rangeError, typeError } from './errors.js';
import { native } from './native.js';
import { awaitNative, checkWaitOptions, type WaitOptions } from './waiter.js';
import { checkInteger, show } from './validate.js';

export type FutexResult = 'ok' | 'not-equal' | 'timed-out';
export interface FutexWaitOptions extends WaitOptions {}

const RESULTS: readonly FutexResult[] = ['ok', 'not-equal', 'timed-out'];

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
 * 'not-equal' if the word did not hold `expected`, 'timed-out'.
 */
export function wait(array: Int32Array, index: number, expected: number, options?: { timeout?: number }): FutexResult {
  checkWord(array, index);
  const value = checkValue(expected, 'expected');
  const { timeoutNs } = checkWaitOptions(options, false);
  return RESULTS[native.futexWait(array, index, value, timeoutNs)]!;
}

/** Like wait(), without blocking: the sleep happens on a native waiter thread. */
export async function waitAsync(array: Int32Array, index: number, expected: number, options?: FutexWaitOptions): Promise<FutexResult> {
  checkWord(array, index);
  const value = checkValue(expected, 'expected');
  const w = checkWaitOptions(options);
  const r = await awaitNative((ns) => native.futexWaitAsync(array, index, value, ns), w);
  return RESULTS[r]!;
}

/** Wakes up to `count` sleepers on `array[index]` in any process (FUTEX_WAKE); returns how many woke. */
export function notify(array: Int32Array, index: number, count = Infinity): number {
  checkWord(array, index);
  const n = count === Infinity ? 0x7fffffff : checkInteger(count, 'count', 0, 0x7fffffff);
  return native.futexNotify(array, index, n);
}
