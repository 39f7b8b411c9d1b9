// Frames longer than one queue message (mq: queues carry small messages, see
// mq.ts) travel in parts: a first message [KIND_LONG, total length u32 LE,
// first bytes], then the rest of the frame in full messages, in order (one
// writer per queue). KIND_LONG never reaches the Channel.
import { Buffer } from 'node:buffer';
import { badFrame } from './frame.js';

/** The first part of a frame longer than one queue message. */
export const KIND_LONG = 6;
const LONG_HEADER = 5;

/** `frame` as the queue messages of at most `part` bytes that carry it (frame.length > part). */
export function splitLong(frame: Buffer, part: number): Buffer[] {
  const parts: Buffer[] = [];
  const first = Buffer.allocUnsafe(part);
  first[0] = KIND_LONG;
  first.writeUInt32LE(frame.length, 1);
  let at = frame.copy(first, LONG_HEADER, 0, part - LONG_HEADER);
  parts.push(first);
  for (; at < frame.length; at += part) parts.push(frame.subarray(at, at + part));
  return parts;
}

/** Puts long frames back together from their parts, checking each against the receiver's limit. */
export class LongFrameReader {
  /** Largest frame this side accepts (header + payload). */
  readonly #maxIn: number;
  /** The long frame being put together, and how much of it has arrived. */
  #long: Buffer | null = null;
  #at = 0;

  constructor(maxIn: number) {
    this.#maxIn = maxIn;
  }

  /** A long frame is being put together: every queue message is its next part. */
  get busy(): boolean {
    return this.#long !== null;
  }

  /**
   * One part: the first allocates the frame (after checking its length), the
   * last returns it; null while parts are due. Throws a corrupt-frame error
   * for parts that do not add up.
   */
  take(part: Buffer): Buffer | null {
    const long = this.#long;
    if (long === null) {
      const total = part.length > LONG_HEADER ? part.readUInt32LE(1) : -1;
      if (total < 0) throw badFrame(`a long frame's first part of ${part.length} bytes is no longer than its header`);
      if (total > this.#maxIn) throw badFrame(`incoming frame of ${total} bytes exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload)`);
      if (total <= part.length - LONG_HEADER) throw badFrame(`a long frame's first part of ${part.length} bytes announces ${total} bytes`);
      this.#long = Buffer.allocUnsafe(total);
      this.#at = part.copy(this.#long, 0, LONG_HEADER);
      return null;
    }
    if (part.length > long.length - this.#at) throw badFrame(`a long frame's parts exceed its announced ${long.length} bytes`);
    this.#at += part.copy(long, this.#at);
    if (this.#at < long.length) return null;
    this.#long = null;
    return long;
  }
}
