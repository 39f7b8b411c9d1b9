// System V keys, shared by shared memory, semaphore sets and message queues,
// and the kernel's tables of all three (/proc/sysvipc).
import { readFileSync } from 'node:fs';
import { sys, typeError } from './errors.js';
import { native, type IpcPermDs } from './native.js';
import { checkInteger, checkMode, checkString, show } from './validate.js';

/** A System V key: a 32-bit number, or 'private' for IPC_PRIVATE (always a new object). */
export type SysvKey = number | 'private';

/** Key and ownership of a System V object (its ipc_perm), common to every stat() result. */
export interface SysvOwnership {
  key: number;
  /** Permission bits, e.g. 0o600. */
  mode: number;
  uid: number;
  gid: number;
  /** Creator's uid/gid. */
  cuid: number;
  cgid: number;
}

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
  return sys(() => native.sysvFtok(path, projId), { path });
}

/** A System V object's ipc_perm as ipckit shows it: the permission bits of `mode` (without the kernel's flag bits). */
export function ownershipOf(perm: Omit<IpcPermDs, 'seq'>): SysvOwnership {
  return { key: perm.key, mode: perm.mode & 0o777, uid: perm.uid, gid: perm.gid, cuid: perm.cuid, cgid: perm.cgid };
}

/** IPC_SET's owner and permission changes, checked; what is not changed stays as `current` has it. */
export function ownerChanges(changes: { mode?: number | string; uid?: number; gid?: number }, current: IpcPermDs): { mode: number; uid: number; gid: number } {
  return {
    mode: checkMode(changes.mode, current.mode & 0o777),
    uid: checkInteger(changes.uid, 'changes.uid', 0, 0xfffffffe, current.uid),
    gid: checkInteger(changes.gid, 'changes.gid', 0, 0xfffffffe, current.gid),
  };
}

/** A System V time (seconds since the epoch, 0 when it never happened) as a Date, or null. */
export function sysvTime(seconds: number): Date | null {
  return seconds === 0 ? null : new Date(seconds * 1000);
}

/** One row of a /proc/sysvipc table. */
export interface SysvTableRow {
  /** A numeric column (times are seconds, 0 meaning never). */
  num(column: string): number;
  /** A time column as a Date, null for never. */
  time(column: string): Date | null;
  /** A column that older kernels lack (e.g. rss, swap): null when absent. */
  optional(column: string): number | null;
  /** The `perms` column, which the kernel prints in octal and which carries flag bits above 0o777. */
  perms(): number;
  /** Key (as key_t, signed), permission bits and owner and creator ids: the ipc_perm every kind shares. */
  ownership(): SysvOwnership;
}

/**
 * Reads /proc/sysvipc/{shm,sem,msg}: every object of that kind on the machine
 * (the ones this process may not open included). [] where System V IPC is
 * absent; an error if a `required` column is missing, rather than wrong figures.
 */
export function readSysvTable(kind: 'shm' | 'sem' | 'msg', required: readonly string[]): SysvTableRow[] {
  const path = `/proc/sysvipc/${kind}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const [header = '', ...lines] = text.split('\n').filter((l) => l.trim() !== '');
  const columns = header.trim().split(/\s+/);
  for (const name of [...required, 'perms', 'key', 'uid', 'gid', 'cuid', 'cgid']) {
    if (!columns.includes(name)) throw new Error(`${path} has no ${name} column`);
  }
  return lines.map((line) => {
    const f = line.trim().split(/\s+/);
    const field = (name: string) => f[columns.indexOf(name)];
    const num = (name: string) => Number(field(name));
    const perms = () => parseInt(field('perms')!, 8);
    return {
      num,
      optional: (name) => {
        const v = columns.includes(name) ? field(name) : undefined;
        return v === undefined ? null : Number(v);
      },
      time: (name) => sysvTime(num(name)),
      perms,
      ownership: () => ownershipOf({ key: num('key') | 0, mode: perms(), uid: num('uid'), gid: num('gid'), cuid: num('cuid'), cgid: num('cgid') }),
    };
  });
}
