// Layout of the shared memory behind one shm: connection (a memfd created by
// the connecting side, mapped by both):
//
//   bytes 0..4095   control block (Int32 words)
//     [0] magic 'ipkc'  [1] version  [2] ring size R  [3] max frame
//     ring 0 (connector -> listener) words 16..79, ring 1 (listener -> connector) words 80..143;
//     each ring's words, one 64-byte cache line apiece so the two sides never
//     write the same line:
//       +0  head   bytes ever written (mod 2^32), producer-owned; +1 closed flag
//       +16 tail   bytes ever released (mod 2^32), consumer-owned
//       +32 consumer sleeping (1 = ring my doorbell after you write)
//       +48 producer sleeping (1 = ring my doorbell after you free space)
//   4096 + r*R      ring r data: records [u32 length][frame][pad to 8],
//                   length -1 = "wrapped: continue at offset 0".
//
// SPSC per direction: exactly one producer and one consumer per ring, so
// head and tail need only Atomics.load/store (sequentially consistent in JS,
// which also orders the plain byte copies before the head store).
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
    consumerSleeping: base + 32,
    producerSleeping: base + 48,
    data: CONTROL_BYTES + ring * ringSize,
  };
}

export function totalBytes(ringSize: number): number {
  return CONTROL_BYTES + 2 * ringSize;
}

/** Bytes one record of `frameLength` occupies. */
export function recordBytes(frameLength: number): number {
  return (4 + frameLength + 7) & ~7;
}

/** Smallest power-of-two ring holding two records of maxFrame (so wrap-around can never deadlock). */
export function ringSizeFor(maxFrame: number, requested: number): number {
  let size = 4096;
  const need = Math.max(requested, 2 * recordBytes(maxFrame));
  while (size < need) size *= 2;
  return size;
}
