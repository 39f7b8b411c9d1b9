// Objects made with `owned: true`: removed when this process exits — it ends
// normally, calls process.exit(), dies of an uncaught exception, or gets
// SIGINT, SIGTERM or SIGHUP. kill -9 (and abort()) leave them behind: that is
// what `ipckit rm --stale` is for.
//
// The list itself is native (native/core_owned.c): one list for the whole process,
// workers included, acted on by an atexit handler once the last JavaScript
// has run (normal end, process.exit(), and the uncaught-exception exit all go
// through exit(3)). Fatal signals never reach exit(3), so this module catches
// them on the main thread — only while nobody else does: with no other
// listener it removes the objects, restores the default action and raises
// the signal again, so the process still dies of it (same exit status, same
// for the parent). If the program listens for that signal itself, it decides
// whether the process ends, and the objects go at exit(3) if it does.
import { lstatSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { native } from './native.js';
import { isTaken } from '../signals/signals.js';

/** What an owned object is, and how it is removed. */
export type OwnedKind = 'posix-shm' | 'posix-sem' | 'posix-mq' | 'file' | 'sysv-shm' | 'sysv-sem' | 'sysv-mq';

const KIND_NUMBER: Record<OwnedKind, number> = {
  'posix-shm': 1,
  'posix-sem': 2,
  'posix-mq': 3,
  file: 4,
  'sysv-shm': 5,
  'sysv-sem': 6,
  'sysv-mq': 7,
};

/** The file a name lives in, as it was when we created it: removal by name happens only while it is still that file. */
export interface Identity {
  path: string;
  dev: number;
  ino: number;
  /** S_IFMT bits it must still have; 0 for any. */
  type: number;
}

/** The identity of `path` now, or null if it cannot be seen (then removal goes by name alone). */
export function identityOf(path: string, st?: Stats): Identity | null {
  try {
    const s = st ?? lstatSync(path);
    return { path, dev: s.dev, ino: s.ino, type: s.mode & 0o170000 };
  } catch {
    return null;
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let hooked = false;

function onSignal(signal: NodeJS.Signals): void {
  // Another listener (ours is one of them), or ipckit's signals.on(): the
  // program handles this signal and decides whether the process ends.
  if (process.listenerCount(signal) > 1 || isTaken(signal)) return;
  native.ownedRemoveAll();
  // Without a listener Node restores the default action, so raising it again
  // ends the process exactly as the signal would have.
  process.removeListener(signal, onSignal);
  process.kill(process.pid, signal);
}

/** Installs the signal hooks once, on the main thread (Node delivers signals there only). */
function hook(): void {
  if (hooked || !isMainThread) return;
  hooked = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Removes this POSIX object (by name) or file (by path) at exit, while `identity` still holds. */
export function ownByName(kind: Exclude<OwnedKind, 'sysv-shm' | 'sysv-sem' | 'sysv-mq'>, name: string, identity: Identity | null): void {
  // A file path is never removed without knowing it is still our file.
  if (kind === 'file' && identity === null) return;
  const target = kind === 'file' ? resolve(name) : name;
  const id = identity ?? { path: null, dev: 0, ino: 0, type: 0 };
  native.ownedAdd(KIND_NUMBER[kind], target, id.path === null ? null : resolve(id.path), id.dev, id.ino, id.type, -1);
  hook();
}

/** Removes this System V object (IPC_RMID by id) at exit. */
export function ownById(kind: 'sysv-shm' | 'sysv-sem' | 'sysv-mq', id: number): void {
  native.ownedAdd(KIND_NUMBER[kind], null, null, 0, 0, 0, id);
  hook();
}

/** The object was removed early (unlink(), remove()): nothing to do for it at exit. */
export function forget(kind: OwnedKind, nameOrId: string | number): void {
  if (typeof nameOrId === 'number') native.ownedForget(KIND_NUMBER[kind], null, nameOrId);
  else native.ownedForget(KIND_NUMBER[kind], kind === 'file' ? resolve(nameOrId) : nameOrId, -1);
}
