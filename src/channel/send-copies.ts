// Copies of the bytes of sends that wait for room (the caller may change its
// buffer as soon as send() returns). A fresh allocation per waiting send
// costs a zero-fill and, for large messages, page faults each time (glibc
// gives freed memory of that size back to the kernel): a sender streaming
// 64 KiB messages into a full shm: ring spent more time in memset and page
// faults than in copying. So copies come from per-size free lists, and go
// back the moment a link that copies at tryWrite() (Link.copiesOnWrite)
// took the frame. Links that keep the bytes (a socket's write queue) never
// give them back: those copies are left to the garbage collector.
import { Buffer } from 'node:buffer';

/** Smallest copy kept for reuse: below it, allocation is cheap (Node's Buffer pool). */
const MIN_SHIFT = 12;
/** Largest copy kept for reuse (larger ones are plain allocations). */
const MAX_SHIFT = 24;
/** Bytes of free copies kept in all. */
const KEEP_BYTES = 32 * 1024 * 1024;

const free: ArrayBuffer[][] = Array.from({ length: MAX_SHIFT - MIN_SHIFT + 1 }, () => []);
let kept = 0;

function classOf(length: number): number {
  let c = 0;
  while (1 << (MIN_SHIFT + c) < length) c++;
  return c;
}

/**
 * A copy of `bytes` in memory of its own, for a frame that waits in a queue:
 * the codecs may hand back the caller's own buffer (raw does), which the
 * caller may change once send() has returned. (Buffer#slice() is no copy: it
 * shares the memory, unlike Uint8Array#slice().)
 */
export function copyForQueue(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength;
  if (n < 1 << MIN_SHIFT || n > 1 << MAX_SHIFT) {
    const copy = Buffer.allocUnsafe(n);
    copy.set(bytes);
    return copy;
  }
  const c = classOf(n);
  const block = free[c]!.pop();
  if (block) kept -= block.byteLength;
  const copy = new Uint8Array(block ?? Buffer.allocUnsafeSlow(1 << (MIN_SHIFT + c)).buffer, 0, n);
  copy.set(bytes);
  return copy;
}

/**
 * Gives back a copy made by copyForQueue() once nothing reads it any more
 * (a link that copies at tryWrite() took it). Only ever call it with such a
 * copy: its memory is handed out again.
 */
export function releaseQueued(copy: Uint8Array): void {
  const n = copy.byteLength;
  if (n < 1 << MIN_SHIFT || n > 1 << MAX_SHIFT) return;
  const block = copy.buffer as ArrayBuffer;
  if (kept + block.byteLength > KEEP_BYTES) return;
  kept += block.byteLength;
  free[classOf(n)]!.push(block);
}
