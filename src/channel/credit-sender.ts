// The sending side of the credit-based flow control of the links over NATS
// (nats-link.ts, jetstream-link.ts; the receiving side is credit-receiver.ts):
// the peer announced in its hello a window of bytes and one of data messages,
// and sends back the running totals it consumed; a data message goes out only
// while both windows have room, and a writer that found none is told when a
// credit makes some.
import type { LinkEvents } from './link.js';

export class CreditSender {
  /** Bytes (on the wire) and data messages sent so far. */
  sent = 0;
  sentFrames = 0;
  /** The peer's totals of those it consumed, from its last credit. */
  peerConsumed = 0;
  peerConsumedFrames = 0;
  #window = 0;
  #frameWindow = 0;
  /** A write found no room: onWritable() is owed. */
  wantWritable = false;

  /** The handshake is done: the peer's windows (bytes, data messages). */
  attach(window: number, frameWindow: number): void {
    this.#window = window;
    this.#frameWindow = frameWindow;
  }

  /** Whether a data message of `bytes` fits both windows now. */
  fits(bytes: number): boolean {
    return this.sent + bytes <= this.peerConsumed + this.#window && this.sentFrames < this.peerConsumedFrames + this.#frameWindow;
  }

  /** A data message of `bytes` went out. */
  counted(bytes: number): void {
    this.sent += bytes;
    this.sentFrames++;
  }

  /**
   * Problems with a credit's totals: not whole numbers, behind the last ones,
   * or beyond what was sent (a peer that breaks the rules); null when they
   * may be taken.
   */
  check(consumed: number, frames: number): string | null {
    if (!Number.isInteger(consumed) || consumed < this.peerConsumed || consumed > this.sent || !Number.isInteger(frames) || frames < this.peerConsumedFrames || frames > this.sentFrames) {
      return `${consumed} bytes, ${frames} messages consumed, not between the last credit (${this.peerConsumed}, ${this.peerConsumedFrames}) and what was sent (${this.sent}, ${this.sentFrames})`;
    }
    return null;
  }

  /** Takes a credit check() accepted. */
  take(consumed: number, frames: number): void {
    this.peerConsumed = consumed;
    this.peerConsumedFrames = frames;
  }

  /** There may be room again: a writer that found none is told. */
  writable(events: LinkEvents | null): void {
    if (!this.wantWritable) return;
    this.wantWritable = false;
    events?.onWritable();
  }
}

/** The float64 LE totals of a credit message of `count` fields after a header of `at` bytes; NaNs when its length is not that. */
export function readCredit(d: Uint8Array, at: number, count: number): number[] {
  if (d.length !== at + 8 * count) return new Array<number>(count).fill(NaN);
  const view = new DataView(d.buffer, d.byteOffset, d.length);
  return Array.from({ length: count }, (_, k) => view.getFloat64(at + 8 * k, true));
}
