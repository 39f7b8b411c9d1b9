// The receiving half of the credit flow control of the nats: and jetstream:
// links (nats-link.ts, jetstream-link.ts): data messages taken in order are
// handed to the Channel, or held while it is paused or not started yet;
// the peer may have a window of bytes and one of messages unconsumed, and
// each time a quarter of either was consumed the link sends a credit with
// the totals (consumed, consumedFrames).
import type { LinkEvents } from './link.js';

/** Frames at least this long are handed to the Channel without a copy (the client's read buffers are not reused). */
const OWN_LIMIT = 16 * 1024;

interface Held {
  data: Uint8Array;
  start: number;
  bytes: number;
}

export class CreditReceiver {
  /** Bytes and data messages the peer may have unconsumed (announced in the hello). */
  readonly window: number;
  readonly frameWindow: number;
  events: LinkEvents | null = null;
  /** Bytes (on the wire) and data messages handed to the Channel; the totals last sent back as credit. */
  consumed = 0;
  consumedFrames = 0;
  #granted = 0;
  #grantedFrames = 0;
  #received = 0;
  #receivedFrames = 0;
  #held: Held[] = [];
  #paused = false;
  readonly #grant: () => void;

  /** `grant`: sends a credit with the totals now (then calls granted()). */
  constructor(window: number, frameWindow: number, grant: () => void) {
    this.window = window;
    this.frameWindow = frameWindow;
    this.#grant = grant;
  }

  /**
   * The next data message in order: its frame, data[start..], and its size
   * on the wire. An error message when the peer broke the rules.
   */
  take(data: Uint8Array, start: number, bytes: number): string | null {
    if (data.length - start < 1) return 'empty frame';
    this.#received += bytes;
    this.#receivedFrames++;
    if (this.#received > this.#granted + this.window || this.#receivedFrames > this.#grantedFrames + this.frameWindow) {
      return `the peer sent beyond the credit this side gave (windows: ${this.window} bytes, ${this.frameWindow} messages)`;
    }
    if (this.events && !this.#paused && this.#held.length === 0) this.#deliver(data, start, bytes);
    else this.#held.push({ data, start, bytes });
    return null;
  }

  /** The credit with the current totals went out. */
  granted(): void {
    this.#granted = this.consumed;
    this.#grantedFrames = this.consumedFrames;
  }

  #deliver(data: Uint8Array, start: number, bytes: number): void {
    this.consumed += bytes;
    this.consumedFrames++;
    this.events!.onFrameAt(data, start, data.length, data.length - start >= OWN_LIMIT);
    if (this.consumed - this.#granted >= this.window / 4 || this.consumedFrames - this.#grantedFrames >= this.frameWindow / 4) this.#grant();
  }

  /** Hands held frames to the Channel while it takes them (`all`: the link is down, so all of them: they arrived intact). */
  drain(all = false): void {
    while (this.#held.length > 0 && this.events && (!this.#paused || all)) {
      const { data, start, bytes } = this.#held.shift()!;
      this.#deliver(data, start, bytes);
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.drain();
  }

  /** Drops what is held (an error stops delivery at the frame that made no sense). */
  clear(): void {
    this.#held = [];
  }
}
