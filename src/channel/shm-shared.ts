// The shared ring of a shm: listener (listen option sharedRing): every
// connector writes its frames into one ring (MPSC) that the listener's hub
// alone reads and hands to the right connection, so the listener has one
// place to look and one doorbell however many peers it serves. The layout
// is in ring.ts; the connections themselves are in shm.ts.
//
// Producers take a spin lock (one word, set to their slot) around placing
// and publishing a record: it is held only within one synchronous write()
// of a few hundred nanoseconds, so a contender spins, and after its spin
// budget looks again every millisecond (the holder was descheduled, or
// died). A producer killed holding it never stored the head; the listener
// learns of the death from that connection's control socket and frees the
// lock (its slot names the holder), and the next producer writes over the
// half-written record. A holder that keeps the lock past LOCK_STALL_MS
// (stopped, or hostile) loses its channel and the lock is freed. The
// consumer never takes the lock.
//
// Every connector can write anywhere in the shared ring: connectors of one
// shared ring must trust each other. What the hub reads is still checked
// before use (lengths, positions, wrap markers), so a corrupt ring fails the
// channels through it with ERR_IPCKIT_BAD_FRAME after bounded work; the
// listener then gives newcomers a fresh ring.
import { Buffer } from 'node:buffer';
import { stateError } from '../errors.js';
import { native } from '../native.js';
import type { FdRegion } from '../shm.js';
import { badFrame } from './frame.js';
import {
  CONTROL_BYTES,
  NATIVE_COPY_MIN,
  RunCopier,
  SHARED_HEADER,
  SHARED_MAGIC,
  S_CONSUMER_SLEEPING,
  S_HEAD,
  S_LOCK,
  S_TAIL,
  S_WAITING,
  VERSION,
  WRAP,
  W_MAGIC,
  W_MAX_FRAME,
  W_RING_SIZE,
  W_VERSION,
  fits,
  putRecord,
  recordBytes,
  sharedTotalBytes,
} from './ring.js';
import { Spinner, type SpinOwner } from './shm-spin.js';

/** How long the hub waits at a paused connection's frame before passing over its frames to serve the others. */
const SKIP_AFTER_MS = 1;
/** How long a producer may hold the ring's lock (normally well under a microsecond) before it loses its channel. */
export const LOCK_STALL_MS = 1000;
const LOCK_CHECK_MS = 100;
/** SharedRingWriter.write(): the frame is in the ring. */
export const WRITTEN = 0;
/** Another producer holds the ring's lock. */
export const BUSY = 1;
/** No room for the frame until the listener reads. */
export const FULL = 2;

/** A listener-side connection the hub feeds (ShmLink). */
export interface HubFed {
  /** The connection's id in the ring's records. */
  readonly slot: number;
  /** The connection is paused: the hub stops at its next frame (head-of-line) until resume(). */
  readonly blocksHub: boolean;
  deliverAt(buffer: Buffer, start: number, end: number): void;
  deliver(frame: Uint8Array): void;
  /** Lowers the connector's "waiting for room" flag and rings it; false if it was not waiting. */
  wakeSharedProducer(): boolean;
  destroy(error?: Error): void;
}

/** A connector's end of a shared ring: writes its frames, tagged with its slot. */
export class SharedRingWriter {
  readonly maxFrame: number;
  readonly #region: FdRegion;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #R: number;
  readonly #slot: number;
  readonly #ring: () => boolean;
  readonly #flag: Int32Array;
  readonly #flagWord: number;

  /**
   * `ringSize` and `maxFrame` as the handshake settled them (checked, never
   * re-read from the shared memory); `ring`: wakes the listener (a doorbell
   * byte on our control socket); `flag`/`flagWord`: this connection's
   * "producer sleeping" word, which the hub lowers (and rings our doorbell)
   * when the ring has room again.
   */
  constructor(region: FdRegion, ringSize: number, maxFrame: number, slot: number, ring: () => boolean, flag: Int32Array, flagWord: number) {
    this.#region = region;
    this.#i32 = new Int32Array(region.buffer);
    this.#u8 = new Uint8Array(region.buffer);
    this.#R = ringSize;
    this.maxFrame = maxFrame;
    this.#slot = slot;
    this.#ring = ring;
    this.#flag = flag;
    this.#flagWord = flagWord;
  }

  /** Places and publishes one record under the lock: WRITTEN, BUSY (another producer holds the lock) or FULL. */
  write(header: Uint8Array, body: Uint8Array): number {
    const i32 = this.#i32;
    if (Atomics.compareExchange(i32, S_LOCK, 0, this.#slot) !== 0) return BUSY;
    let result = FULL;
    // The tail is read every time, not cached as the private ring's producer
    // does: other writers move the head, so a cached tail could fall 2^32
    // bytes behind and make a full ring look empty.
    const head = Atomics.load(i32, S_HEAD);
    // Other writers share this memory: a head that is not a record boundary
    // would make us write at an odd offset; leave such a ring to the hub,
    // which fails it.
    if ((head & 7) === 0 && fits(this.#R, head, Atomics.load(i32, S_TAIL), recordBytes(header.byteLength + body.byteLength, SHARED_HEADER))) {
      // The head store orders the byte copies before it; then the lock goes.
      Atomics.store(i32, S_HEAD, putRecord(i32, this.#u8, CONTROL_BYTES, this.#R, head, header, body, this.#slot));
      result = WRITTEN;
    }
    Atomics.store(i32, S_LOCK, 0);
    if (result === WRITTEN && Atomics.load(i32, S_CONSUMER_SLEEPING) === 1 && Atomics.compareExchange(i32, S_CONSUMER_SLEEPING, 1, 0) === 1) this.#ring();
    return result;
  }

  /** Another producer is inside write() (or died there, until the listener notices). */
  lockBusy(): boolean {
    return Atomics.load(this.#i32, S_LOCK) !== 0;
  }

  /** Whether write() would succeed now. */
  canWrite(frameLength: number): boolean {
    const i32 = this.#i32;
    return Atomics.load(i32, S_LOCK) === 0 && fits(this.#R, Atomics.load(i32, S_HEAD), Atomics.load(i32, S_TAIL), recordBytes(frameLength, SHARED_HEADER));
  }

  /** Asks the hub to ring us when the ring has room again (the count lets it skip every connection's flag otherwise). */
  raiseWaiting(): void {
    if (Atomics.load(this.#flag, this.#flagWord) === 1) return;
    Atomics.add(this.#i32, S_WAITING, 1);
    Atomics.store(this.#flag, this.#flagWord, 1);
  }

  lowerWaiting(): void {
    if (Atomics.compareExchange(this.#flag, this.#flagWord, 1, 0) === 1) Atomics.sub(this.#i32, S_WAITING, 1);
  }

  close(): void {
    this.#region.close();
  }
}

/** The listener's reader of its shared ring. */
export class SharedRingHub implements SpinOwner {
  /** The ring's sealed memfd, sent to every connector. */
  readonly region: FdRegion;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #R: number;
  readonly #maxFrame: number;
  readonly #url: string;
  readonly #links = new Map<number, HubFed>();
  readonly #runs = new RunCopier();
  readonly #spinner: Spinner;
  /** Looks at the lock every LOCK_CHECK_MS while anyone is attached: [holder, head, since]. */
  #lockCheck: NodeJS.Timeout | null = null;
  #lockSeen = { holder: 0, head: 0, since: 0 };
  /** Where the tail is (everything before it delivered), as a ring position and as a running total. */
  #read = 0;
  #consumed = 0;
  /**
   * How far the hub has looked (position and running total). Frames of a
   * paused connection are passed over: they stay in the ring, their
   * positions queue up in #waiting, and the tail stops at the first of them;
   * frames after them are delivered and marked done (slot 0).
   */
  #scan = 0;
  #scanned = 0;
  /** Some frame between #read and #scan was passed over. */
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
    this.#u8 = new Uint8Array(this.region.buffer);
    this.#R = ringSize;
    this.#maxFrame = maxFrame;
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
    const published = this.#published(Atomics.load(this.#i32, S_HEAD));
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
    if (!this.#skipping) {
      this.#read = to;
      this.#consumed = this.#scanned;
    }
  }

  #readBatch(): number {
    const i32 = this.#i32;
    const u8 = this.#u8;
    const R = this.#R;
    let head = Atomics.load(i32, S_HEAD);
    const tailWas = this.#read;
    let n = 0;
    // What the writers published: within the ring, past everything scanned, whole 8-byte units.
    let avail = this.#published(head);
    if (avail < 0) return this.#corrupt(`head ${head >>> 0} is not a record boundary within a ring of ${R} bytes`);
    while (avail > 0) {
      const pos = this.#scan;
      const off = pos & (R - 1);
      const at = CONTROL_BYTES + off;
      const len = i32[at >> 2]!;
      if (len === WRAP) {
        const skip = R - off;
        if (off === 0 || skip > avail) return this.#corrupt(`wrap marker at offset ${off}`);
        this.#step((pos + skip) | 0);
        avail -= skip;
        continue;
      }
      if (!this.#validLength(len, off) || recordBytes(len, SHARED_HEADER) > avail) return this.#corrupt(`record length ${len} at offset ${off}`);
      const end = (pos + recordBytes(len, SHARED_HEADER)) | 0;
      avail -= recordBytes(len, SHARED_HEADER);
      const slot = i32[(at >> 2) + 1]!;
      // Slot 0: delivered already, out of ring order.
      if (slot !== 0) {
        const link = this.#links.get(slot);
        if (link !== undefined && link.blocksHub && !this.#passOver && this.#drains.length === 0) {
          this.#stopAt(slot);
          break;
        }
        if (link !== undefined && (link.blocksHub || this.#waiting.has(slot))) {
          // Paused (or frames of it wait already): this one waits in the ring too, and holds the tail.
          const queue = this.#waiting.get(slot);
          if (queue) queue.push(pos);
          else this.#waiting.set(slot, [pos]);
          this.#skipping = true;
          this.#step(end);
          continue;
        }
        if (this.#skipping) i32[(at >> 2) + 1] = 0;
        this.#step(end);
        // A frame of a connection already gone (it wrote after its close), or of no connection, is dropped.
        if (link !== undefined) {
          if (len >= NATIVE_COPY_MIN) {
            const frame = Buffer.allocUnsafeSlow(len);
            native.ringCopy(frame, 0, u8, at + SHARED_HEADER, len);
            link.deliver(frame);
          } else {
            const start = this.#runs.frameAt(u8, R, pos, at, len, (end + avail) | 0, SHARED_HEADER);
            link.deliverAt(this.#runs.chunk!, start, start + len);
          }
        }
        // The tail every 64 frames and at the end: fewer writes to a line producers read.
        if ((++n & 63) === 0) Atomics.store(i32, S_TAIL, this.#read);
        if (this.#closed || this.#failed) return n;
      } else this.#step(end);
      if (avail === 0) {
        head = Atomics.load(i32, S_HEAD);
        avail = this.#published(head);
        if (avail < 0) return this.#corrupt(`head ${head >>> 0} is not a record boundary within a ring of ${R} bytes`);
      }
    }
    if (this.#read !== tailWas) Atomics.store(i32, S_TAIL, this.#read);
    return n;
  }

  /** Bytes published past the scan, or -1 when `head` cannot be (beyond the ring from the tail, behind the scan, or not 8-aligned). */
  #published(head: number): number {
    const fromTail = (head - this.#read) >>> 0;
    const scanned = (this.#scan - this.#read) >>> 0;
    if (fromTail > this.#R || fromTail < scanned || (head & 7) !== 0) return -1;
    return fromTail - scanned;
  }

  /** A record length that fits the ring at `off` and this listener's limit. */
  #validLength(len: number, off: number): boolean {
    return len > 0 && len <= this.#maxFrame && SHARED_HEADER + len <= this.#R - off;
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
        const off = queue[i]! & (this.#R - 1);
        const at = CONTROL_BYTES + off;
        // Read again from shared memory: check again (a writer may have changed it since the scan).
        const len = i32[at >> 2]!;
        if (!this.#validLength(len, off)) return n + this.#corrupt(`record length ${len} at offset ${off} changed after it was read`);
        i32[(at >> 2) + 1] = 0;
        i++;
        if (link === undefined) continue;
        if (len >= NATIVE_COPY_MIN) {
          const frame = Buffer.allocUnsafeSlow(len);
          native.ringCopy(frame, 0, this.#u8, at + SHARED_HEADER, len);
          link.deliver(frame);
        } else {
          // A run copy still serves frames that lie one after another.
          const start = this.#runs.frameAt(this.#u8, this.#R, queue[i - 1]!, at, len, this.#scan, SHARED_HEADER);
          link.deliverAt(this.#runs.chunk!, start, start + len);
        }
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
    const i32 = this.#i32;
    const R = this.#R;
    let read = this.#read;
    // Never past the scan: every step is checked against what is left (the memory may have changed since).
    let left = (this.#scan - read) >>> 0;
    while (left > 0) {
      const off = read & (R - 1);
      const at = CONTROL_BYTES + off;
      const len = i32[at >> 2]!;
      let step: number;
      if (len === WRAP && off !== 0) step = R - off;
      else if (this.#validLength(len, off) && i32[(at >> 2) + 1] === 0) step = recordBytes(len, SHARED_HEADER);
      else if (this.#validLength(len, off)) break;
      else return void this.#corrupt(`record length ${len} at offset ${off} changed after it was read`);
      if (step > left) return void this.#corrupt(`record at offset ${off} runs past what was read`);
      read = (read + step) | 0;
      left -= step;
    }
    if (read === this.#read) return;
    this.#consumed += (read - this.#read) >>> 0;
    this.#read = read;
    if (read === this.#scan) {
      // Nothing waits any more: back to waiting at a paused connection's frame first.
      this.#skipping = false;
      this.#passOver = false;
    }
    Atomics.store(i32, S_TAIL, read);
  }

  /**
   * Rings the producers waiting, once half the ring is free (one wake-up
   * per many frames rather than one per frame), or at once when `now`.
   */
  #wakeProducers(now = false): void {
    const i32 = this.#i32;
    if (Atomics.load(i32, S_WAITING) <= 0 || (!now && ((Atomics.load(i32, S_HEAD) - this.#read) >>> 0) * 2 > this.#R)) return;
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
