// The create-or-open step shared by every call that may create a named
// object: POSIX IPC names (shm_open, mq_open, sem_open), files (mmap.file),
// and System V keys (shmget, semget, msgget with IPC_CREAT/IPC_EXCL).
import { constants as fsc } from 'node:fs';
import { IpcError } from './errors.js';

/** The flags that mean "create" and "only if new" for one kind of call. */
export interface CreateFlags {
  create: number;
  exclusive: number;
}

const POSIX_FLAGS: CreateFlags = { create: fsc.O_CREAT, exclusive: fsc.O_EXCL };

/**
 * Opens an object through `open(extraFlags)`. With `create`, it tries
 * create|exclusive first so the caller learns whether this call made the
 * object: only then may it set the exact mode, remove the object if a later
 * step fails, or own it. An existing object (unless `exclusive`) is opened
 * without the create flag; one removed between those two calls is created again.
 */
export function openOrCreate<H>(
  open: (extraFlags: number) => H,
  create: boolean,
  exclusive: boolean,
  flags: CreateFlags = POSIX_FLAGS,
): { handle: H; created: boolean } {
  if (!create) return { handle: open(0), created: false };
  for (let attempt = 0; ; attempt++) {
    try {
      return { handle: open(flags.create | flags.exclusive), created: true };
    } catch (e) {
      if (exclusive || !(e instanceof IpcError) || e.code !== 'EEXIST' || attempt > 8) throw e;
    }
    try {
      return { handle: open(0), created: false };
    } catch (e) {
      if (!(e instanceof IpcError) || e.code !== 'ENOENT') throw e;
    }
  }
}
