// Argument checks shared by every mechanism. They throw before any system call,
// with stable ERR_IPCKIT_* codes, so misuse never reaches the kernel.
import { rangeError, typeError } from './errors.js';

export function checkObject<T extends object>(value: T | undefined, what: string): T | Record<string, never> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be an object`);
  }
  return value;
}

/**
 * An options object whose every key is one of `known`: a misspelt option
 * (`allowUid` for `allowUids`) is a TypeError, never silently ignored.
 * Keys whose value is undefined count as absent.
 */
export function checkOptions<T extends object>(value: T | undefined, what: string, known: readonly string[]): T | Record<string, never> {
  const o = checkObject(value, what);
  for (const key of Object.keys(o)) {
    if (known.includes(key) || (o as Record<string, unknown>)[key] === undefined) continue;
    const near = closest(key, known);
    throw typeError(
      'ERR_IPCKIT_UNKNOWN_OPTION',
      `${what}.${key} is not an option here${near ? ` (did you mean ${near}?)` : ''}; the options are: ${known.join(', ')}`,
    );
  }
  return o;
}

/** The known name nearest to a misspelt one (edit distance at most 2), if any. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * `options.owned`: remove the object when this process exits. Only an object
 * the call itself creates can be owned, so it needs the option that creates
 * one (`create`; `bind` for a socket file).
 */
export function checkOwned(value: unknown, create: boolean, creator = 'options.create'): boolean {
  const owned = checkBoolean(value, 'options.owned', false);
  if (owned && !create) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.owned needs ${creator} (only an object this call creates can be owned)`);
  }
  return owned;
}

export function checkBoolean(value: unknown, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a boolean, got ${show(value)}`);
  }
  return value;
}

/** An integer in [min, max]; `undefined` gives the fallback. */
export function checkInteger(value: unknown, what: string, min: number, max: number): number;
export function checkInteger<F>(value: unknown, what: string, min: number, max: number, fallback: F): number | F;
export function checkInteger(value: unknown, what: string, min: number, max: number, ...fallback: unknown[]): unknown {
  if (value === undefined && fallback.length > 0) return fallback[0];
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be an integer, got ${show(value)}`);
  }
  if (value < min || value > max) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `${what} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** Largest size a SharedArrayBuffer can describe exactly. */
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

export function checkSize(value: unknown, what: string, min?: number): number;
export function checkSize<F>(value: unknown, what: string, min: number, fallback: F): number | F;
export function checkSize(value: unknown, what: string, min = 0, ...fallback: unknown[]): unknown {
  if (value === undefined && fallback.length > 0) return fallback[0];
  return checkInteger(value, what, min, MAX_SIZE);
}

/** Permission bits; 0o600 unless given. Accepts a number or an octal string. */
export function checkMode(value: unknown, fallback = 0o600): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^[0-7]{1,4}$/.test(value) ? parseInt(value, 8) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0o777) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `mode must be permission bits between 0 and 0o777, got ${show(value)}`);
  }
  return n;
}

export function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a string, got ${show(value)}`);
  }
  return value;
}

export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Object.prototype.toString.call(value);
}

const NAME_MAX = 255;

/**
 * POSIX IPC names (shm_open, sem_open, mq_open): one leading '/', then 1 to
 * 255 bytes with no other '/' and no NUL, and not '.' or '..'.
 */
export function checkPosixName(value: unknown, what = 'name', maxBytes = NAME_MAX): string {
  const name = checkString(value, what);
  const rest = name.slice(1);
  const problem = !name.startsWith('/')
    ? "must start with '/'"
    : rest.length === 0
      ? "needs at least one character after '/'"
      : rest.includes('/')
        ? "may contain only the leading '/'"
        : rest.includes('\0')
          ? 'may not contain NUL'
          : rest === '.' || rest === '..'
            ? "may not be '.' or '..'"
            : Buffer.byteLength(rest) > maxBytes
              ? `is ${Buffer.byteLength(rest)} bytes after the '/', more than the limit of ${maxBytes}`
              : null;
  if (problem) {
    throw typeError('ERR_IPCKIT_INVALID_NAME', `${what} ${show(name)} ${problem} (POSIX IPC names look like '/my-name')`);
  }
  return name;
}
