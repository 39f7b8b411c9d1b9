// The input of a shm: connection that reads its own ring from the peer (a
// connection with a ring pair, and a connector of a shared-ring listener,
// whose answers still come through its ring 1). The records are read and
// checked by RingReader (ring.ts); a ring that does not make sense fails
// this channel only, with ERR_IPCKIT_BAD_FRAME.
import { Buffer } from 'node:buffer';
import { timeoutError } from '../core/errors.js';
import { KIND_MESSAGE, badFrame } from './frame.js';
import type { LoanedView } from './link.js';
import { CORRUPT, NATIVE_COPY_MIN, RingReader, RunCopier, copyOut } from './ring.js';
import type { LinkInput, ShmLinkBase, ShmLinkSetup } from './shm-link.js';

export class RingReceiver implements LinkInput {
  readonly #link: ShmLinkBase;
  readonly #reader: RingReader;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #R: number;
  readonly #zeroCopy: boolean;
  readonly #runs = new RunCopier();
  /** The whole shared memory as one Buffer: in-place messages are ranges of it (made once, not per message). */
  readonly #bytes: Buffer;
  /** Frames consumed since the tail was last stored. */
  #unreleased = 0;
  /** Zero-copy views not yet released, oldest first (with already-consumed records after them). */
  #held: Array<{ end: number; released: boolean }> = [];

  constructor(link: ShmLinkBase, setup: ShmLinkSetup) {
    this.#link = link;
    this.#i32 = link.i32;
    this.#u8 = link.u8;
    this.#R = link.ringSize;
    this.#zeroCopy = setup.zeroCopy;
    this.#bytes = Buffer.from(link.u8.buffer, link.u8.byteOffset, link.u8.byteLength);
    const words = link.in;
    this.#reader = new RingReader(link.i32, link.ringSize, words.data, 4, setup.maxIn, words.head, words.tail);
  }

  read(): number {
    const link = this.#link;
    if (link.paused && !link.peerGone) return 0;
    const reader = this.#reader;
    const events = link.events!;
    const u8 = this.#u8;
    const held = this.#held;
    const sinkAtStart = link.sink;
    let sink = sinkAtStart;
    let sank = false;
    let n = 0;
    let len: number;
    while ((len = reader.next()) > 0) {
      const at = reader.at;
      const end = reader.pos;
      if (sink !== null && len > 1 && u8[at + 4] === KIND_MESSAGE) {
        // receiveEach() in place: the handler reads the ring itself; the
        // space goes back (below) only after it returned.
        sank = true;
        if (!sink.message(this.#bytes, at + 5, at + 4 + len)) sink = link.sink = null;
        this.#consumed(end);
      } else if (this.#zeroCopy && len > 1 && u8[at + 4] === KIND_MESSAGE) {
        // Zero-copy: hand out a view into the ring; its space is returned by release().
        const entry = { end, released: false };
        held.push(entry);
        // On the SharedArrayBuffer, as loan() views: one can be handed to a worker thread without a copy.
        const view = new Uint8Array(this.#i32.buffer, at + 5, len - 1) as LoanedView;
        view.release = () => {
          if (entry.released) return;
          entry.released = true;
          this.#releaseHeld();
        };
        events.onFrame(u8.subarray(at + 4, at + 4 + len), false, view);
      } else {
        if (len >= NATIVE_COPY_MIN) {
          events.onFrame(copyOut(u8, at + 4, len), true);
        } else {
          const start = this.#runs.frameAt(u8, this.#R, reader.start, at, len, (end + reader.avail) | 0, 4);
          events.onFrameAt(this.#runs.chunk!, start, start + len);
        }
        // onFrame decoded (copied) the frame.
        this.#consumed(end);
      }
      n++;
      // A sink that took no more leaves the next messages in the ring for the next read.
      if (sink !== sinkAtStart || link.finished || (link.paused && !link.peerGone)) break;
    }
    if (len === CORRUPT) return this.#corrupt(reader.problem);
    if (this.#unreleased > 0 && held.length === 0) reader.release(reader.pos);
    this.#unreleased = 0;
    if (n > 0) this.#wakeProducer();
    // Settles the receiveEach() before our next look, so its caller's next call comes first.
    if (sank) sinkAtStart!.end();
    return n;
  }

  /**
   * The record ending at ring position `end` is read and done with: its
   * space can go back, unless zero-copy views handed out before it are
   * still held. The tail is stored every 64 records, every eighth of the
   * ring, and at the end of the batch: few writes to a line the producer
   * reads, yet a producer waiting for room can fill the ring again while
   * large records are still being read (storing it only per 64 records,
   * 64 KiB messages alternated: the producer waited out each whole batch).
   */
  #consumed(end: number): void {
    if (this.#held.length === 0) {
      if ((++this.#unreleased & 63) === 0 || ((end - this.#reader.tail) >>> 0) >= this.#R >>> 3) {
        this.#reader.release(end);
        this.#wakeProducer();
      }
    } else this.#held.push({ end, released: true });
  }

  /** The peer's ring holds something no honest peer writes: this channel fails (only this one). */
  #corrupt(what: string): number {
    this.#link.destroy(badFrame(`corrupt shm: ring from the peer (${what})`));
    return 0;
  }

  /** Advances the tail over released zero-copy views (they may be released in any order). */
  #releaseHeld(): void {
    const held = this.#held;
    let i = 0;
    while (i < held.length && held[i]!.released) i++;
    if (i === 0 || this.#link.finished) return;
    this.#reader.release(held[i - 1]!.end);
    held.splice(0, i);
    this.#wakeProducer();
  }

  /**
   * Wakes a producer waiting for room only once half the ring is free (or
   * all of it): one wake-up per many frames instead of one per frame.
   */
  #wakeProducer(): void {
    const i32 = this.#i32;
    const words = this.#link.in;
    if (
      Atomics.load(i32, words.producerSleeping) === 1 &&
      ((Atomics.load(i32, words.head) - this.#reader.tail) >>> 0) * 2 <= this.#R &&
      Atomics.compareExchange(i32, words.producerSleeping, 1, 0) === 1
    ) {
      this.#link.ctrl.ring();
    }
  }

  waiting(): boolean {
    return !this.#link.paused;
  }

  sleep(): boolean {
    if (this.#link.paused) return false;
    Atomics.store(this.#i32, this.#link.in.consumerSleeping, 1);
    return true;
  }

  arrived(): boolean {
    return this.#reader.arrived();
  }

  awake(): void {
    Atomics.store(this.#i32, this.#link.in.consumerSleeping, 0);
  }

  rang(): void {}

  sent(): void {}

  resumed(): void {}

  settle(): boolean {
    return true;
  }

  closed(): void {}

  /** Blocks until a frame was delivered (true) or the peer is gone with nothing left (false). */
  waitSync(timeoutNs: number): boolean {
    const link = this.#link;
    if (link.finished) return false;
    const reader = this.#reader;
    const spinner = link.spinner;
    const start = process.hrtime.bigint();
    const elapsedNs = () => Number(process.hrtime.bigint() - start);
    try {
      for (;;) {
        if (this.read() > 0) return true;
        if (link.finished || link.failure || link.peerGone) return false;
        // Spin first, as the event-loop side does: a busy peer answers within the budget.
        const spinNs = spinner.spinUs * 1000;
        let k = 0;
        while (!reader.arrived() && ((++k & 255) !== 0 || elapsedNs() < spinNs));
        if (reader.arrived()) continue;
        // Then sleep on the control socket (a ring, or the peer's end of file).
        Atomics.store(this.#i32, link.in.consumerSleeping, 1);
        if (reader.arrived()) {
          this.awake();
          continue;
        }
        const left = timeoutNs < 0 ? -1 : Math.max(0, timeoutNs - elapsedNs());
        const woke = link.ctrl.waitSync(left, link.url);
        this.awake();
        if (woke && link.ctrl.drain() < 0) {
          // The peer is gone: what it wrote before is still in the ring.
          link.peerGone = true;
          return this.read() > 0;
        }
        if (!woke && !reader.arrived()) throw timeoutError('ppoll', { path: link.url });
      }
    } finally {
      // The event-loop side may have been asleep with its flag up, which we
      // just cleared: let it spin and go back to sleep the usual way.
      if (spinner.sleeping && !link.finished) spinner.restart();
      // A hang-up seen here is reported by the event loop's watch (it sees the same end of file).
    }
  }
}
