// Frames copied out of a shm: ring into blocks that native/channel_ring.c keeps for
// reuse (ringTake): each such frame carries its block's ArrayBuffer, so the
// block can go back the moment nothing needs it any more, instead of when
// the garbage collector frees the ArrayBuffer. The collector is paced by
// how much such memory there is (64 MiB), so without this the next frames
// land in blocks the caches no longer hold.
import { Buffer } from 'node:buffer';
import { native } from '../core/native.js';

/**
 * Frames at least this long are copied out of a ring into kept blocks: a
 * fresh malloc'd Buffer that large faults its pages in again for each
 * message (measured round trips: 64 KiB 222 -> 28 us, and 8 KiB ones that
 * were 29 us in some process pairs and 7 in others). Below it a plain
 * Buffer is faster: one-way 4 KiB messages ran 20-40% faster without it.
 */
export const TAKE_MIN = 8 * 1024;

/** On a frame in a kept block: that block's ArrayBuffer. */
const BLOCK = Symbol('ipckit.block');

type KeptFrame = Uint8Array & { [BLOCK]?: ArrayBuffer };

/** The frame held by `block` (an ArrayBuffer of native ringTake()). */
export function keptFrame(block: ArrayBuffer): Buffer {
  const frame = Buffer.from(block);
  (frame as KeptFrame)[BLOCK] = block;
  return frame;
}

/** Detaches `block` (once: a detached one has no bytes left), so native/channel_ring.c reuses its memory now. */
function give(block: ArrayBuffer): void {
  if (block.byteLength > 0) native.ringGive(block);
}

/** A frame that nothing refers to any more (it was decoded into other memory): a kept block goes back now. */
export function giveBack(frame: Uint8Array): void {
  const block = (frame as KeptFrame)[BLOCK];
  if (block !== undefined) give(block);
}

/**
 * Gives `message`, a view of `frame`, a release() that hands a kept block
 * back at once (the message is empty after it), as zero-copy views have.
 * Other frames: the message as it is.
 */
export function releasable(frame: Uint8Array, message: Buffer): Buffer {
  const block = (frame as KeptFrame)[BLOCK];
  if (block !== undefined) {
    (message as Buffer & { release(): void }).release = () => give(block);
  }
  return message;
}
