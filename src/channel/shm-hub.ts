// The listener's side of a shared ring (listen option sharedRing; the
// ring and its writers are in shm-shared.ts): one hub reads every
// connector's frames from it and hands each to its connection (HubFedInput,
// shm-fed.ts), so the listener has one place to look and one doorbell
// however many peers it serves. The hub is the ring's only consumer and
// never takes its lock; it frees the lock of a producer that died holding it
// (its connection closed) or that holds it past LOCK_STALL_MS.
//
// The records are read and checked by RingReader (ring.ts): a corrupt ring
// fails every channel through it with ERR_IPCKIT_BAD_FRAME after bounded
// work, and the listener gives newcomers a fresh ring.
import { Buffer } from 'node:buffer';
import { stateError } from '../core/errors.js';
import type { FdRegion } from '../shm/shm.js';
import { KIND_MESSAGE, badFrame } from './frame.js';
import type { InPlaceSink } from './link.js';
import {
  CONTROL_BYTES,
  CORRUPT,
  NATIVE_COPY_MIN,
  copyOut,
  RingReader,
  RunCopier,
  SHARED_HEADER,
  SHARED_MAGIC,
  S_CONSUMER_SLEEPING,
  S_HEAD,
  S_LOCK,
  S_TAIL,
  S_WAITING,
  VERSION,
  W_MAGIC,
  W_MAX_FRAME,
  W_RING_SIZE,
  W_VERSION,
  sharedTotalBytes,
} from './ring.js';
import { Spinner, type SpinOwner } from './shm-spin.js';

/** How long the hub waits at a paused connection's frame before passing over its frames to serve the others. */
const SKIP_AFTER_MS = 1;
/** How long a producer may hold the ring's lock (normally well under a microsecond) before it loses its channel. */
const LOCK_STALL_MS = 1000;
const LOCK_CHECK_MS = 100;

/** A listener-side connection the hub feeds (HubFedInput). */
export interface HubFed {
  /** The connection's id in the ring's records. */
  readonly slot: number;
  /** The connection is paused: the hub stops at its next frame (head-of-line) until resume(). */
  readonly blocksHub: boolean;
  deliverAt(buffer: Buffer, start: number, end: number): void;
  deliver(frame: Uint8Array): void;
  /** A receiveEach() takes its messages in place, in the ring (Link.inPlace); sinkFull() once it said it takes no more. */
  readonly sink: InPlaceSink | null;
  sinkFull(): void;
  /** Lowers the connector's "waiting for room" flag and rings it; false if it was not waiting. */
  wakeSharedProducer(): boolean;
  destroy(error?: Error): void;
}

/** The listener's reader of its shared ring. */
export class SharedRingHub implements SpinOwner {
  /** The ring's sealed memfd, sent to every connector. */
  readonly region: FdRegion;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #R: number;
  readonly #url: string;
  /**
   * Reads the records: its pos runs ahead of #scan within a look, its tail
   * is the hub's (everything before it delivered; stored every 64 frames
   * and at the end of a look).
   */
  readonly #reader: RingReader;
  /** Checks records again between the tail and #scan (they are in memory any writer can change). */
  readonly #walker: RingReader;
  readonly #links = new Map<number, HubFed>();
  readonly #runs = new RunCopier();
  /** The ring's memory as one Buffer: in-place messages are ranges of it. */
  readonly #bytes: Buffer;
  /** The sinks given messages in this look: their receiveEach() settles at its end, before the next look. */
  readonly #sunk: InPlaceSink[] = [];
  readonly #spinner: Spinner;
  /** Looks at the lock every LOCK_CHECK_MS while anyone is attached: [holder, head, since]. */
  #lockCheck: NodeJS.Timeout | null = null;
  #lockSeen = { holder: 0, head: 0, since: 0 };
  /**
   * How far the hub has looked (position and running total). Frames of a
   * paused connection are passed over: they stay in the ring, their
   * positions queue up in #waiting, and the tail stops at the first of them;
   * frames after them are delivered and marked done (slot 0).
   */
  #scan = 0;
  #scanned = 0;
  /** Some frame between the tail and #scan was passed over. */
  #skipping = false;
  /** Per slot, the ring positions of its frames passed over, oldest first. */
  readonly #waiting = new Map<number, number[]>();
  /** Slots whose waiting frames should be delivered at the next look (resumed, or gone). */
  readonly #due = new Set<number>();
  /**
   * The slot of a paused connection the hub stopped at (0: none). A pause
   * usually ends within microseconds (the channel's reader catches up), so
   * the hub first just waits at its frame, as a private ring would; only
   * after SKIP_AFTER_MS (or when a gone peer's frames must be delivered) does
   * it pass over that connection's frames to serve the others.
   */
  #stoppedAt = 0;
  #skipTimer: NodeJS.Timeout | null = null;
  #passOver = false;
  /** Connections that went away, closed once the hub has delivered everything they wrote. */
  #drains: Array<{ slot: number; target: number; done: () => void }> = [];
  #nextSlot = 1;
  #failed = false;
  #listening = true;
  #closed = false;

  constructor(url: string, maxFrame: number, ringSize: number, spinUs: number, makeMemory: (bytes: number, label: string) => FdRegion) {
    this.#url = url;
    this.region = makeMemory(sharedTotalBytes(ringSize), `ipckit-shm-shared:${url.slice(4)}`);
    const i32 = new Int32Array(this.region.buffer);
    this.#i32 = i32;
    // Bytes through the plain alias (memcpy-speed copies), control words through the SharedArrayBuffer (Atomics).
    this.#u8 = new Uint8Array(this.region.plainBuffer);
    this.#bytes = Buffer.from(this.region.plainBuffer);
    this.#R = ringSize;
    this.#reader = new RingReader(i32, ringSize, CONTROL_BYTES, SHARED_HEADER, maxFrame, S_HEAD, S_TAIL);
    this.#walker = new RingReader(i32, ringSize, CONTROL_BYTES, SHARED_HEADER, maxFrame, -1, -1);
    i32[W_VERSION] = VERSION;
    i32[W_RING_SIZE] = ringSize;
    i32[W_MAX_FRAME] = maxFrame;
    Atomics.store(i32, W_MAGIC, SHARED_MAGIC);
    this.#spinner = new Spinner(spinUs, this);
    this.#spinner.start();
  }

  get ringSize(): number {
    return this.#R;
  }

  /** A corrupt record stopped the ring: new connections are refused (close the listener and listen again). */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * A slot for a new connection. Never reused: frames a gone peer wrote
   * after its connection closed are dropped, never handed to a newcomer.
   */
  newSlot(): number {
    return this.#nextSlot++;
  }

  attach(link: HubFed): void {
    this.#links.set(link.slot, link);
    if (!this.#lockCheck) this.#lockCheck = setInterval(() => this.#checkLock(), LOCK_CHECK_MS).unref();
  }

  /**
   * A producer holding the lock this long (without the head moving) is
   * stopped or hostile: its channel fails and the lock is freed for the
   * others. A slot that names no connection (forged) just loses the lock.
   */
  #checkLock(): void {
    const holder = Atomics.load(this.#i32, S_LOCK);
    const head = Atomics.load(this.#i32, S_HEAD);
    const seen = this.#lockSeen;
    const now = Date.now();
    if (holder === 0 || holder !== seen.holder || head !== seen.head) {
      this.#lockSeen = { holder, head, since: now };
      return;
    }
    if (now - seen.since < LOCK_STALL_MS) return;
    this.#lockSeen = { holder: 0, head, since: now };
    if (Atomics.compareExchange(this.#i32, S_LOCK, holder, 0) !== holder) return;
    this.#links.get(holder)?.destroy(stateError('ERR_IPCKIT_PROTOCOL', `the peer held the shared ring's lock of ${this.#url} for more than ${LOCK_STALL_MS} ms (stopped, or not following the protocol)`));
    this.#wakeProducers(true);
  }

  detach(link: HubFed): void {
    this.#links.delete(link.slot);
    // Frames of it still waiting (it failed) are dropped, so they do not hold the tail.
    if (this.#waiting.has(link.slot)) {
      this.#due.add(link.slot);
      this.#spinner.restart();
    }
    // A peer that died waiting for room left its flag (and the count) up.
    if (link.wakeSharedProducer()) Atomics.sub(this.#i32, S_WAITING, 1);
    if (!this.#listening && this.#links.size === 0) this.#close();
  }

  /** The listener stopped accepting: go away with the last connection. */
  stopListening(): void {
    this.#listening = false;
    if (this.#links.size === 0) this.#close();
  }

  /** A connection wrote something its peer will answer: spin to see the answer at once. */
  wake(): void {
    if (this.#spinner.sleeping) this.#spinner.wake();
  }

  /** A paused (or new) connection can take frames again: deliver those passed over, at the next look. */
  resumed(slot: number): void {
    if (slot === this.#stoppedAt) {
      this.#stoppedAt = 0;
      this.#spinner.restart();
    }
    if (!this.#waiting.has(slot)) return;
    this.#due.add(slot);
    this.#spinner.restart();
  }

  /** Calls `done` once the hub has delivered every frame the connection `slot` (gone now) wrote. */
  drainFor(slot: number, done: () => void): void {
    // Its socket closed, so it is not inside a write(): if the lock still names it, it died there.
    if (Atomics.compareExchange(this.#i32, S_LOCK, slot, 0) === slot) this.#wakeProducers(true);
    // Every frame written so far, as a running total (only grows, from one drain to the next).
    const published = this.#reader.published(Atomics.load(this.#i32, S_HEAD));
    if (published < 0) this.#corrupt('head moved outside the ring');
    const target = this.#scanned + Math.max(0, published);
    if (this.#failed || (this.#scanned >= target && !this.#waiting.has(slot))) return done();
    this.#drains.push({ slot, target, done });
    if (this.#waiting.has(slot)) this.#due.add(slot);
    this.#stoppedAt = 0;
    this.#spinner.restart();
  }

  /** A connector rang (through its control socket, which its listener-side connection drains). */
  bell(): void {
    if (this.#closed) return;
    Atomics.store(this.#i32, S_CONSUMER_SLEEPING, 0);
    if (this.#spinner.sleeping) this.#spinner.woken();
  }

  look(): number {
    if (this.#closed || this.#failed) return -1;
    let n = this.#due.size > 0 ? this.#deliverWaiting() : 0;
    n += this.#readBatch();
    if (Atomics.load(this.#i32, S_WAITING) > 0) this.#wakeProducers();
    if (this.#drains.length > 0) this.#settleDrains();
    if (this.#sunk.length > 0) for (const sink of this.#sunk.splice(0)) sink.end();
    if (this.#stoppedAt !== 0 && n === 0) return -1; // idle until resumed() or the pass-over timer
    return n > 0 ? 1 : 0;
  }

  trySleep(): boolean {
    const i32 = this.#i32;
    Atomics.store(i32, S_CONSUMER_SLEEPING, 1);
    if (Atomics.load(i32, S_HEAD) !== this.#scan) {
      Atomics.store(i32, S_CONSUMER_SLEEPING, 0);
      return false;
    }
    return true;
  }

  awake(): void {
    Atomics.store(this.#i32, S_CONSUMER_SLEEPING, 0);
  }

  /** Moves the scan to `to`; the tail follows unless a frame before it was passed over. */
  #step(to: number): void {
    this.#scanned += (to - this.#scan) >>> 0;
    this.#scan = to;
    if (!this.#skipping) this.#reader.tail = to;
  }

  #readBatch(): number {
    const i32 = this.#i32;
    const reader = this.#reader;
    const tailWas = reader.tail;
    let stored = tailWas;
    let n = 0;
    let len: number;
    while ((len = reader.next()) > 0) {
      const pos = reader.start;
      const at = reader.at;
      // The wrap marker before the record, if any.
      if (pos !== this.#scan) this.#step(pos);
      const slot = i32[(at >> 2) + 1]!;
      // Slot 0: delivered already, out of ring order.
      if (slot !== 0) {
        const link = this.#links.get(slot);
        if (link !== undefined && link.blocksHub && !this.#passOver && this.#drains.length === 0) {
          reader.unread();
          this.#stopAt(slot);
          break;
        }
        if (link !== undefined && (link.blocksHub || this.#waiting.has(slot))) {
          // Paused (or frames of it wait already): this one waits in the ring too, and holds the tail.
          const queue = this.#waiting.get(slot);
          if (queue) queue.push(pos);
          else this.#waiting.set(slot, [pos]);
          this.#skipping = true;
          this.#step(reader.pos);
          continue;
        }
        if (this.#skipping) i32[(at >> 2) + 1] = 0;
        this.#step(reader.pos);
        // A frame of a connection already gone (it wrote after its close), or of no connection, is dropped.
        if (link !== undefined) this.#deliver(link, pos, at, len, (reader.pos + reader.avail) | 0);
        // The tail every 64 frames, every eighth of the ring and at the end:
        // few writes to a line producers read, yet room for a waiting
        // producer while large frames are still being read.
        if ((++n & 63) === 0 || ((reader.tail - stored) >>> 0) >= this.#R >>> 3) {
          reader.release(reader.tail);
          stored = reader.tail;
        }
        if (this.#closed || this.#failed) return n;
      } else this.#step(reader.pos);
    }
    if (len === CORRUPT) return this.#corrupt(reader.problem);
    // A wrap marker that ended what was published.
    if (reader.pos !== this.#scan) this.#step(reader.pos);
    if (reader.tail !== tailWas) reader.release(reader.tail);
    return n;
  }

  /** Hands the frame of the record at ring position `pos` (byte offset `at`) to `link`; `head`: where what was published ends. */
  #deliver(link: HubFed, pos: number, at: number, len: number, head: number): void {
    const sink = link.sink;
    if (sink !== null && len > 1 && this.#u8[at + SHARED_HEADER] === KIND_MESSAGE) {
      // receiveEach() in place: read in the ring, whose space goes back only after the handler returned.
      if (!this.#sunk.includes(sink)) this.#sunk.push(sink);
      if (!sink.message(this.#bytes, at + SHARED_HEADER + 1, at + SHARED_HEADER + len)) link.sinkFull();
    } else if (len >= NATIVE_COPY_MIN) {
      link.deliver(copyOut(this.#u8, at + SHARED_HEADER, len));
    } else {
      // A run copy serves frames that lie one after another.
      const start = this.#runs.frameAt(this.#u8, this.#R, pos, at, len, head, SHARED_HEADER);
      link.deliverAt(this.#runs.chunk!, start, start + len);
    }
  }

  #corrupt(what: string): number {
    this.#fail(badFrame(`corrupt record in the shared ring of ${this.#url} (${what})`));
    return 0;
  }

  /** Waits at the frame of the paused connection `slot`; passes over its frames if that lasts SKIP_AFTER_MS. */
  #stopAt(slot: number): void {
    this.#stoppedAt = slot;
    if (this.#skipTimer) return;
    this.#skipTimer = setTimeout(() => {
      this.#skipTimer = null;
      if (this.#stoppedAt === 0 || this.#closed) return;
      this.#stoppedAt = 0;
      this.#passOver = true;
      this.#spinner.restart();
    }, SKIP_AFTER_MS).unref();
  }

  /** Delivers the frames passed over for the slots now due, oldest first, until a connection pauses again; then moves the tail. */
  #deliverWaiting(): number {
    const i32 = this.#i32;
    let n = 0;
    for (const slot of this.#due) {
      const queue = this.#waiting.get(slot);
      const link = this.#links.get(slot);
      if (!queue) continue;
      let i = 0;
      while (i < queue.length && (link === undefined || !link.blocksHub)) {
        const pos = queue[i]!;
        // Read again from shared memory: check again (a writer may have changed it since the scan).
        const walker = this.#walker;
        walker.pos = pos;
        walker.avail = (this.#scan - pos) >>> 0;
        const len = walker.next();
        if (len <= 0 || walker.start !== pos) return n + this.#corrupt(`the record at offset ${pos & (this.#R - 1)} changed after it was read${len < 0 ? ` (${walker.problem})` : ''}`);
        const at = walker.at;
        i32[(at >> 2) + 1] = 0;
        i++;
        if (link === undefined) continue;
        this.#deliver(link, pos, at, len, this.#scan);
        n++;
        if (this.#closed || this.#failed) return n;
      }
      if (i === queue.length) this.#waiting.delete(slot);
      else queue.splice(0, i);
    }
    this.#due.clear();
    this.#advanceTail();
    return n;
  }

  /** Moves the tail over frames already delivered (slot 0) up to the first one still waiting. */
  #advanceTail(): void {
    const reader = this.#reader;
    const walker = this.#walker;
    // Never past the scan: every step is checked against what is left (the memory may have changed since).
    walker.pos = reader.tail;
    walker.avail = (this.#scan - reader.tail) >>> 0;
    while (walker.avail > 0) {
      const len = walker.next();
      if (len === CORRUPT) return void this.#corrupt(`${walker.problem}, changed after it was read`);
      if (len > 0 && this.#i32[(walker.at >> 2) + 1] !== 0) {
        walker.unread();
        break;
      }
    }
    const read = walker.pos;
    if (read === reader.tail) return;
    if (read === this.#scan) {
      // Nothing waits any more: back to waiting at a paused connection's frame first.
      this.#skipping = false;
      this.#passOver = false;
    }
    reader.release(read);
  }

  /**
   * Rings the producers waiting, once half the ring is free (one wake-up
   * per many frames rather than one per frame), or at once when `now`.
   */
  #wakeProducers(now = false): void {
    const i32 = this.#i32;
    if (Atomics.load(i32, S_WAITING) <= 0 || (!now && ((Atomics.load(i32, S_HEAD) - this.#reader.tail) >>> 0) * 2 > this.#R)) return;
    for (const link of this.#links.values()) if (link.wakeSharedProducer()) Atomics.sub(i32, S_WAITING, 1);
  }

  #settleDrains(): void {
    const drains = this.#drains;
    const settled = drains.filter((d) => d.target <= this.#scanned && !this.#waiting.has(d.slot));
    if (settled.length === 0) return;
    this.#drains = drains.filter((d) => !settled.includes(d));
    for (const d of settled) d.done();
  }

  /** A corrupt record: the ring cannot be read past it, so every connection through it fails. */
  #fail(error: Error): void {
    this.#failed = true;
    for (const link of [...this.#links.values()]) link.destroy(error);
    const drains = this.#drains.splice(0);
    for (const d of drains) d.done();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#skipTimer) clearTimeout(this.#skipTimer);
    if (this.#lockCheck) clearInterval(this.#lockCheck);
    this.#spinner.stop();
    this.region.close();
  }
}
