// The create-or-open step shared by every POSIX IPC name (shm_open, mq_open,
// sem_open).
import { constants as fsc } from 'node:fs';
import { IpcError } from './errors.js';

/**
 * Opens a POSIX IPC object through `open(extraFlags)`. With `create`, it tries
 * O_CREAT|O_EXCL first so the caller learns whether this call made the object:
 * only then may it set the exact mode, and only then remove the object if a
 * later step fails. An existing object (unless `exclusive`) is opened without
 * O_CREAT; one removed between those two calls is created again.
 */
export function openOrCreate<H>(open: (extraFlags: number) => H, create: boolean, exclusive: boolean): { handle: H; created: boolean } {
  if (!create) return { handle: open(0), created: false };
  for (let attempt = 0; ; attempt++) {
    try {
      return { handle: open(fsc.O_CREAT | fsc.O_EXCL), created: true };
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
