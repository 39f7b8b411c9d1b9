// Layout of the shared memory behind one shm: connection (a memfd created by
// the connecting side, mapped by both):
//
//   bytes 0..4095   control block (Int32 words)
//     [0] magic 'ipkc'  [1] version  [2] ring size R  [3] max frame
//     ring 0 (connector -> listener) words 16..79, ring 1 (listener -> connector) words 80..143;
//     each ring's words, one 64-byte cache line apiece so the two sides never
//     write the same line:
//       +0  head   bytes ever written (mod 2^32), producer-owned; +1 closed flag
//       +16 tail   bytes ever released (mod 2^32), consumer-owned; +17 the
//                  consumer's CPU + 1 while it spins (0: not told; shm-apart.ts)
//       +32 consumer sleeping (1 = ring my doorbell after you write)
//       +48 producer sleeping (1 = ring my doorbell after you free space)
//   4096 + r*R      ring r data: records [u32 length][frame][pad to 8],
//                   length -1 = "wrapped: continue at offset 0".
//
// SPSC per direction: exactly one producer and one consumer per ring, so
// head and tail need only Atomics.load/store (sequentially consistent in JS,
// which also orders the plain byte copies before the head store).
import { Buffer } from 'node:buffer';
import { native } from '../core/native.js';
import { copyFrom } from './codec.js';
import { TAKE_MIN, keptFrame } from './kept.js';

export const MAGIC = 0x69706b63;
export const VERSION = 1;
export const CONTROL_BYTES = 4096;
export const WRAP = -1;

export const W_MAGIC = 0;
export const W_VERSION = 1;
export const W_RING_SIZE = 2;
export const W_MAX_FRAME = 3;

export interface RingWords {
  head: number;
  closed: number;
  tail: number;
  /** The consumer's CPU + 1, written while it spins (0: not told). */
  consumerCpu: number;
  consumerSleeping: number;
  producerSleeping: number;
  /** Byte offset of the data area. */
  data: number;
}

export function ringWords(ring: 0 | 1, ringSize: number): RingWords {
  const base = 16 + ring * 64;
  return {
    head: base,
    closed: base + 1,
    tail: base + 16,
    consumerCpu: base + 17,
    consumerSleeping: base + 32,
    producerSleeping: base + 48,
    data: CONTROL_BYTES + ring * ringSize,
  };
}

export function totalBytes(ringSize: number): number {
  return CONTROL_BYTES + 2 * ringSize;
}

/** Bytes one record of `frameLength` occupies (`header`: 4, or 8 in a shared ring). */
export function recordBytes(frameLength: number, header = 4): number {
  return (header + frameLength + 7) & ~7;
}

/** Largest ring either side may announce (1 GiB per direction). */
export const MAX_RING = 1 << 30;

/** Whether a ring size received from a peer is one this side could have made: a power of two in [4096, MAX_RING]. */
export function validRingSize(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 4096 && value <= MAX_RING && (value & (value - 1)) === 0;
}

/** Largest frame a ring of `ringSize` carries (two records of it must fit, so wrap-around can never deadlock). */
export function maxFrameFor(ringSize: number, header = 4): number {
  return ringSize / 2 - header;
}

/** Smallest power-of-two ring holding two records of maxFrame (so wrap-around can never deadlock). */
export function ringSizeFor(maxFrame: number, requested: number, header = 4): number {
  let size = 4096;
  const need = Math.max(requested, 2 * recordBytes(maxFrame, header));
  while (size < need) size *= 2;
  return size;
}

/**
 * Whether a record of `total` bytes fits at `head` with the consumer at
 * `tail` (if it does not fit before the end of the ring, the rest of the
 * ring is skipped by a wrap marker and it goes at offset 0).
 */
export function fits(R: number, head: number, tail: number, total: number): boolean {
  const contiguous = R - (head & (R - 1));
  const need = total <= contiguous ? total : contiguous + total;
  return R - ((head - tail) >>> 0) >= need;
}

/** Frames at least this long are copied by memcpy (native/channel_ring.c) rather than TypedArray.set. */
export const NATIVE_COPY_MIN = 2048;

/** A Buffer of its own holding one frame, u8[at, at + length). */
export function copyOut(u8: Uint8Array, at: number, length: number): Buffer {
  if (length < TAKE_MIN) return plainCopy(u8, at, length);
  return keptFrame(native.ringTake(u8, at, length));
}

function plainCopy(u8: Uint8Array, at: number, length: number): Buffer {
  const copy = Buffer.allocUnsafe(length);
  if (length >= NATIVE_COPY_MIN) native.ringCopy(copy, 0, u8, at, length);
  else copyFrom(copy, u8, at, length);
  return copy;
}
/**
 * Most bytes of consecutive small records copied out at once. Every message
 * received in that run is a view of the copy and keeps all of it alive, so
 * it stays small (Node's own Buffer pool slab is 8 KiB).
 */
const SPAN_MAX = 16 * 1024;

/**
 * Copies small frames out of a ring together with the records after them
 * that are already there: one copy of up to SPAN_MAX bytes serves a whole
 * run of messages (each then only a view of that copy), which is what makes
 * many small messages cheap.
 */
export class RunCopier {
  /** The last run copied out. */
  chunk: Buffer | null = null;
  #chunkStart = 0;

  /**
   * Where the frame of the record at ring position `start` begins in
   * `chunk` (copying the run from `start` up to `head` first when that
   * record is not in the last copy). `at` is the record's byte offset in `u8`.
   */
  frameAt(u8: Uint8Array, R: number, start: number, at: number, frameLength: number, head: number, header: number): number {
    let pos = (start - this.#chunkStart) >>> 0;
    if (this.chunk === null || pos + header + frameLength > this.chunk.length) {
      const avail = (head - start) >>> 0;
      const span = Math.max(header + frameLength, Math.min(avail, R - (start & (R - 1)), SPAN_MAX));
      // A run of small frames (at most SPAN_MAX bytes): a plain Buffer, as for frames below TAKE_MIN.
      this.chunk = plainCopy(u8, at, span);
      this.#chunkStart = start;
      pos = 0;
    }
    return pos + header;
  }
}

/**
 * Writes one record at `head` (the caller checked it fits): a wrap marker
 * first when it does not fit before the end of the ring, then [length]
 * ([slot] in a shared ring, `slot` >= 0) and the frame. Returns the head
 * after it; nothing is visible to the consumer until the head is stored.
 */
export function putRecord(i32: Int32Array, u8: Uint8Array, base: number, R: number, head: number, header: Uint8Array, body: Uint8Array, slot: number): number {
  const hdr = slot < 0 ? 4 : 8;
  // length, not byteLength (the same for a Uint8Array): V8 inlines the first and calls a builtin for the second (~8 ns).
  const hl = header.length;
  const bl = body.length;
  const len = hl + bl;
  const total = recordBytes(len, hdr);
  let off = head & (R - 1);
  if (total > R - off) {
    i32[(base + off) >> 2] = WRAP;
    head = (head + (R - off)) | 0;
    off = 0;
  }
  const at = base + off;
  i32[at >> 2] = len;
  if (slot >= 0) i32[(at >> 2) + 1] = slot;
  const frameAt = at + hdr;
  if (hl === 1) u8[frameAt] = header[0]!;
  else u8.set(header, frameAt);
  if (bl >= NATIVE_COPY_MIN) native.ringCopy(u8, frameAt + hl, body, 0, bl);
  else u8.set(body, frameAt + hl);
  return (head + total) | 0;
}

// A shared ring (listen option sharedRing): one more memfd, created by the
// listener and mapped by every connector, that all connectors write into
// and the listener alone reads (MPSC). Its frames replace the connector ->
// listener ring of each connection; the other direction stays per peer.
//
//   bytes 0..4095   control block (Int32 words), one cache line per writer:
//     [0] magic 'ipkm'  [1] version  [2] ring size R  [3] max frame
//     [16] head   bytes ever written, stored by producers holding the lock
//     [32] tail   bytes ever released, consumer-owned
//     [48] consumer sleeping (1 = ring the listener's doorbell after you write)
//     [64] producers waiting (for room, or for the lock): each also raised
//          the producer-sleeping flag of its own connection's ring 0 and
//          sleeps on its doorbell until the hub rings it
//     [80] lock: 0, or the slot of the producer placing and publishing a
//          record. Only ever held within one synchronous write, so a holder
//          whose connection closed died holding it: the listener, which
//          learns of every death from the control socket, frees it. The
//          dead producer never stored the head, so nothing needs repair.
//     [81] last writer: the slot of the producer that placed the last
//          record (stored under the lock): a producer that is still the
//          last writer may trust the tail it read before (nobody else
//          moved the head since) instead of reading the hub's cache line
//   4096            data: records [u32 length][u32 slot][frame][pad to 8];
//                   slot = the connection the frame belongs to.
export const SHARED_MAGIC = 0x69706b6d;
export const SHARED_HEADER = 8;
export const S_HEAD = 16;
export const S_TAIL = 32;
export const S_CONSUMER_SLEEPING = 48;
export const S_WAITING = 64;
export const S_LOCK = 80;
export const S_LAST_WRITER = 81;

export function sharedTotalBytes(ringSize: number): number {
  return CONTROL_BYTES + ringSize;
}

/** RingReader.next(): the ring holds something no honest producer writes (see `problem`). */
export const CORRUPT = -1;

/**
 * The consumer's view of one ring: walks its records, checking everything
 * it reads from the shared memory before use, since a peer can write there
 * at any moment. The head must lie within R bytes past the tail and not
 * behind the reader, on an 8-byte boundary; a wrap marker may only end the
 * ring's last stretch, within what was published; a record's length must be
 * positive, within the frame limit, fit before the end of the ring and
 * within what was published. So every step consumes at least 8 published
 * bytes, and a corrupt ring is found after bounded work. No allocation:
 * the record next() found is described by fields (start, at).
 */
export class RingReader {
  /** Ring position of the next record (bytes ever read, mod 2^32). */
  pos = 0;
  /** Published bytes past `pos` not read yet (as of the head last loaded). */
  avail = 0;
  /**
   * Where the consumer's tail is: nothing before it is still needed, and
   * an honest producer never gets more than R bytes past it. The owner
   * keeps it (release(), or the shared ring's hub directly).
   */
  tail = 0;
  /** The record next() returned: its ring position (after any wrap marker) and its byte offset in the memory. */
  start = 0;
  at = 0;
  /** What was wrong, after next() returned CORRUPT. */
  problem = '';
  readonly #i32: Int32Array;
  readonly #R: number;
  readonly #data: number;
  readonly #header: number;
  readonly #maxFrame: number;
  readonly #headWord: number;
  readonly #tailWord: number;

  /**
   * A ring of `ringSize` bytes whose records start at byte `data` of the
   * memory, each with a `header` of 4 ([length]) or 8 ([length][slot])
   * bytes; `headWord`/`tailWord`: its control words (headWord -1: a fixed
   * stretch, set by the owner in pos and avail, and never the head).
   */
  constructor(i32: Int32Array, ringSize: number, data: number, header: number, maxFrame: number, headWord: number, tailWord: number) {
    this.#i32 = i32;
    this.#R = ringSize;
    this.#data = data;
    this.#header = header;
    this.#maxFrame = maxFrame;
    this.#headWord = headWord;
    this.#tailWord = tailWord;
  }

  /**
   * The frame length of the next record (the frame is at `at + header`),
   * after stepping over a wrap marker; `pos` and `avail` move past it. 0:
   * nothing more is published (the head is loaded again first when what was
   * published is used up); CORRUPT: see `problem`.
   */
  next(): number {
    if (this.avail === 0) {
      if (this.#headWord < 0) return 0;
      const head = Atomics.load(this.#i32, this.#headWord);
      const avail = this.published(head);
      if (avail < 0) return this.#corrupt(`head ${head >>> 0} is not a record boundary within a ring of ${this.#R} bytes past the reader`);
      if (avail === 0) return 0;
      this.avail = avail;
    }
    const R = this.#R;
    let off = this.pos & (R - 1);
    let len = this.#i32[(this.#data + off) >> 2]!;
    if (len === WRAP) {
      // A wrap marker only ever ends the ring's last stretch, once per pass.
      const skip = R - off;
      if (off === 0 || skip > this.avail) return this.#corrupt(`wrap marker at offset ${off}`);
      this.pos = (this.pos + skip) | 0;
      this.avail -= skip;
      if (this.avail === 0) return 0;
      off = 0;
      len = this.#i32[this.#data >> 2]!;
    }
    const bytes = (this.#header + len + 7) & ~7;
    if (len <= 0 || len > this.#maxFrame || this.#header + len > R - off || bytes > this.avail) return this.#corrupt(`record length ${len} at offset ${off}`);
    this.start = this.pos;
    this.at = this.#data + off;
    this.pos = (this.pos + bytes) | 0;
    this.avail -= bytes;
    return len;
  }

  /** Puts back the record next() just returned: it is read again next time. */
  unread(): void {
    this.avail += (this.pos - this.start) >>> 0;
    this.pos = this.start;
  }

  /** Whether the head moved past the reader (something to read, or a corrupt head to find). */
  arrived(): boolean {
    return this.avail > 0 || Atomics.load(this.#i32, this.#headWord) !== this.pos;
  }

  /** Bytes published past `pos` with the head at `head`, or -1 when it cannot be (more than R past the tail, behind the reader, or not 8-aligned). */
  published(head: number): number {
    const fromTail = (head - this.tail) >>> 0;
    const read = (this.pos - this.tail) >>> 0;
    if (fromTail > this.#R || fromTail < read || (head & 7) !== 0) return -1;
    return fromTail - read;
  }

  /** Gives the ring up to `to` back to the producer(s): stores the tail. */
  release(to: number): void {
    this.tail = to;
    Atomics.store(this.#i32, this.#tailWord, to);
  }

  #corrupt(what: string): number {
    this.problem = what;
    return CORRUPT;
  }
}
