// Names and keys no other test or run will use. Kept apart from helpers.ts
// (which registers node:test hooks) so that fixtures can use them too.
import { randomBytes } from 'node:crypto';

/** A POSIX IPC name no other test or run will use. */
export function uniqueName(tag: string): string {
  return `/ipckit-test-${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A System V key unlikely to collide (random, never 0). */
export function uniqueKey(): number {
  return (randomBytes(4).readUInt32BE(0) | 0x10000000) >>> 0;
}
