// System V keys, shared by shared memory, semaphore sets and message queues.
import { formatKey, sys, typeError } from './errors.js';
import { native } from './native.js';
import { checkInteger, checkString, show } from './validate.js';

/** A System V key: a 32-bit number, or 'private' for IPC_PRIVATE (always a new object). */
export type SysvKey = number | 'private';

/**
 * Validates a key and returns it as the signed 32-bit value key_t holds.
 * Numbers are accepted in either signed or unsigned form (0x80000000 and
 * -2147483648 are the same key); 0 is IPC_PRIVATE and must be spelled 'private'.
 */
export function checkKey(value: unknown, what = 'key'): number {
  if (value === 'private') return native.sysvConstants.IPC_PRIVATE;
  if (typeof value !== 'number') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a number or 'private', got ${show(value)}`);
  }
  const n = checkInteger(value, what, -0x80000000, 0xffffffff);
  if (n === 0) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `${what} 0 is IPC_PRIVATE; write 'private' to ask for a new private object`);
  }
  return n | 0;
}

/** Parses a key typed by a person: '0x1234abcd', '4660', or 'private'. */
export function parseKey(text: string): SysvKey {
  if (text === 'private') return 'private';
  const n = /^0x[0-9a-f]{1,8}$/i.test(text) ? parseInt(text, 16) : /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(n)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `not a System V key: ${show(text)} (use 0x-hex, decimal, or 'private')`);
  }
  return n;
}

/**
 * ftok(3): derives a key from an existing file and a project id (1-255), the
 * same way C programs do, so both sides agree on the key.
 */
export function ftok(path: string, projId: number): number {
  checkString(path, 'path');
  checkInteger(projId, 'projId', 1, 255);
  return sys(() => native.ftok(path, projId), { path });
}

export { formatKey };
