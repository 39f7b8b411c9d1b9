// The kernel's limits, read where an error names the one a call ran into and
// where `ipckit limits` prints them: /proc/sys files (the system-wide ones)
// and /proc/self/limits (this process's RLIMITs, soft and hard).
import { readFileSync } from 'node:fs';
import type { IpcLimit } from './errors.js';

/** Reads a numeric limit such as `/proc/sys/kernel/shmmax`, for error messages. */
export function readLimit(path: string): IpcLimit {
  try {
    const raw = readFileSync(path, 'utf8').trim();
    const n = Number(raw);
    return { name: path, value: Number.isSafeInteger(n) ? n : raw };
  } catch {
    return { name: path };
  }
}

/** The limit behind a failure to make a descriptor: EMFILE (per process) or ENFILE (system-wide). */
export function fileLimit(code: string): IpcLimit | undefined {
  if (code === 'EMFILE') return { name: 'RLIMIT_NOFILE (ulimit -n)' };
  if (code === 'ENFILE') return readLimit('/proc/sys/fs/file-max');
  return undefined;
}

/** A resource limit, soft and hard: a number, 'unlimited', or null when it could not be read. */
export interface Rlimit {
  soft: number | 'unlimited' | null;
  hard: number | 'unlimited' | null;
}

/** A resource limit of this process, by its label in /proc/self/limits ("Max open files  1024  4096  files"). */
export function rlimit(label: string): Rlimit {
  let text = '';
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return { soft: null, hard: null };
  }
  const m = new RegExp(`^${label}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
  const value = (v: string | undefined) => (v === undefined ? null : v === 'unlimited' ? 'unlimited' : Number(v));
  return { soft: value(m?.[1]), hard: value(m?.[2]) };
}

/** RLIMIT_MSGQUEUE (bytes), the per-user budget for POSIX queue memory. */
export function rlimitMsgqueue(): IpcLimit {
  const { soft } = rlimit('Max msgqueue size');
  return soft === null ? { name: 'RLIMIT_MSGQUEUE (ulimit -q)' } : { name: 'RLIMIT_MSGQUEUE (ulimit -q)', value: soft };
}

/** RLIMIT_NOFILE, the descriptors this process may have open; Infinity when unlimited or unreadable. */
export function nofileLimit(): number {
  const { soft } = rlimit('Max open files');
  return typeof soft === 'number' ? soft : Infinity;
}
