// A shm: connection that writes into its own ring to the peer: the usual
// case (a ring pair, read by a RingReceiver), and the listener's side of a
// shared-ring listener (read by its hub, HubFedInput), which answers through
// its ring 1. Records are placed at a private head and published by one head
// store (ring.ts); loan()/publish() lend the ring's memory itself.
import { stateError } from '../core/errors.js';
import { KIND_MESSAGE } from './frame.js';
import { NATIVE_COPY_MIN, WRAP, fits, putRecord, recordBytes } from './ring.js';
import { ShmLinkBase, type LinkInput, type ShmLinkSetup } from './shm-link.js';

/**
 * Most bytes of small records staged while corked: a run of records is made
 * in private memory and copied into the ring at once, so the consumer's core
 * sees whole cache lines appear instead of lines written a record at a time.
 * (It was made for V8's byte-by-byte copy into a SharedArrayBuffer; the
 * ring's bytes now go through a plain alias of the mapping, copied by
 * memcpy, and on one thread staging measured level with writing records
 * straight into the ring, 50 against 47-50 ns a message.)
 */
const STAGE_BYTES = 16 * 1024;
/** Records at least this long go back to offset 0 of an empty ring (see #place); for smaller ones the extra look at the consumer's tail costs more than it saves. */
const REWIND_MIN = 16 * 1024;
/**
 * Large records placed without going back to offset 0 after a rewind made
 * the producer wait: it is streaming, not taking turns with its peer (see #place).
 */
const REWIND_PAUSE = 256;

export class RingSenderLink extends ShmLinkBase {
  #outHead: number;
  /** Producer's last view of the consumer's tail (only ever behind the real one: safe). */
  #tailSeen: number;
  readonly #mask: number;
  /** tryWrite() places records without publishing them (see Link.cork). */
  #corked = false;
  /** Records placed while corked, not yet in the ring: #staged bytes from ring position #stageHead. */
  #stage: Uint8Array | null = null;
  #stage32: Int32Array | null = null;
  #staged = 0;
  #stageHead = 0;
  /** The last record placed went back to offset 0 (see #place). */
  #rewound = false;
  /** Large records still to place without going back to offset 0. */
  #rewindPause = 0;
  /** The outstanding loan(): where its record starts and the head after it. */
  #loan: { view: Uint8Array; at: number; len: number; headAfter: number } | null = null;

  constructor(setup: ShmLinkSetup, input: (link: ShmLinkBase) => LinkInput) {
    super(setup, setup.maxOut, input);
    this.#mask = this.ringSize - 1;
    // Our own position starts from what the memory says only on the side
    // that made it (the connector, before anyone else could write there).
    this.#outHead = setup.side === 'connector' ? Atomics.load(this.i32, this.out.head) : 0;
    this.#tailSeen = this.#outHead;
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    if (!this.#place(header, body)) return false;
    if (!this.#corked) this.#publishHead();
    return true;
  }

  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
    if (this.#outHead !== Atomics.load(this.i32, this.out.head) && !this.#loan) this.#publishHead();
  }

  protected roomFor(frameLength: number): boolean {
    return !this.#loan && fits(this.ringSize, this.#outHead, Atomics.load(this.i32, this.out.tail), recordBytes(frameLength));
  }

  protected raiseOutputFlag(): void {
    Atomics.store(this.i32, this.out.producerSleeping, 1);
  }

  protected lowerOutputFlag(): void {
    Atomics.store(this.i32, this.out.producerSleeping, 0);
  }

  /** Copies one record in at #outHead without publishing it; false (and the wait for room armed) when it does not fit. */
  #place(header: Uint8Array, body: Uint8Array): boolean {
    if (this.closing || this.finished) return false;
    // length, not byteLength: see putRecord.
    const len = header.length + body.length;
    if (this.#loan) {
      // A loaned record sits at the head: later frames queue behind it, and
      // the pump does not report room until publish() (it would loop).
      this.wantWritable = true;
      this.wantBytes = len;
      return false;
    }
    const total = recordBytes(len);
    let head = this.#outHead;
    // A large record into an empty ring starts again at offset 0 (behind a
    // wrap marker) when it fits there: a round trip of large messages then
    // reuses the same memory, which both caches still hold, instead of
    // walking through the whole ring (a cold cache line per 64 bytes). The
    // bytes skipped count as used until the consumer passes the marker, so
    // a producer that writes again before that finds the ring full: a run
    // of records (corked) never rewinds, and a producer that had to wait
    // behind its own rewind streams without rewinding for a while. (One-way
    // 64 KiB messages moved one at a time, each waiting for the consumer:
    // 8 µs a message against 3.8 µs without rewinding.)
    const off = head & this.#mask;
    const large = total >= REWIND_MIN;
    if (large && this.#rewindPause > 0) this.#rewindPause--;
    else if (large && !this.#corked && off >= total && Atomics.load(this.i32, this.out.tail) === head) {
      this.i32[(this.out.data + off) >> 2] = WRAP;
      head = (head + (this.ringSize - off)) | 0;
      this.#outHead = head;
      this.#tailSeen = (head - this.ringSize + off) | 0;
      this.#rewound = true;
      this.#put(head, total, header, body);
      return true;
    }
    // The tail as last seen: re-read (a cache line the consumer writes) only when it looks full.
    if (!fits(this.ringSize, head, this.#tailSeen, total)) {
      this.#tailSeen = Atomics.load(this.i32, this.out.tail);
      if (!fits(this.ringSize, head, this.#tailSeen, total)) {
        if (this.#rewound) this.#rewindPause = REWIND_PAUSE;
        this.#rewound = false;
        // Records placed before this one in a batch must not wait for the room this one needs.
        if (head !== Atomics.load(this.i32, this.out.head)) this.#publishHead();
        this.blocked(len);
        return false;
      }
    }
    this.#rewound = false;
    this.#put(head, total, header, body);
    return true;
  }

  /** Copies a record that fits in at `head` (staged when small and corked). */
  #put(head: number, total: number, header: Uint8Array, body: Uint8Array): void {
    if (this.#corked && body.length < NATIVE_COPY_MIN && this.#stageRecord(head, total, header, body)) return;
    this.#flushStage();
    this.#outHead = putRecord(this.i32, this.u8, this.out.data, this.ringSize, head, header, body, -1);
  }

  /**
   * Places a small record in the stage (see STAGE_BYTES) instead of the
   * ring; false when it must go straight in (it wraps around the ring's end).
   */
  #stageRecord(head: number, total: number, header: Uint8Array, body: Uint8Array): boolean {
    const off = head & this.#mask;
    if (total > this.ringSize - off) return false;
    // The stage holds one contiguous stretch of the ring: one that ended at the ring's end goes in first.
    if (this.#staged + total > STAGE_BYTES || off === 0) this.#flushStage();
    let stage = this.#stage;
    if (stage === null) {
      stage = this.#stage = new Uint8Array(STAGE_BYTES);
      this.#stage32 = new Int32Array(stage.buffer);
    }
    if (this.#staged === 0) this.#stageHead = head;
    const at = this.#staged;
    const hl = header.length;
    this.#stage32![at >> 2] = hl + body.length;
    if (hl === 1) stage[at + 4] = header[0]!;
    else stage.set(header, at + 4);
    stage.set(body, at + 4 + hl);
    this.#staged = at + total;
    this.#outHead = (head + total) | 0;
    return true;
  }

  /** Copies the staged records into the ring (where they belong: record boundaries stay 8-byte aligned). */
  #flushStage(): void {
    if (this.#staged === 0) return;
    this.u8.set(this.#stage!.subarray(0, this.#staged), this.out.data + (this.#stageHead & this.#mask));
    this.#staged = 0;
  }

  /** Makes the placed records visible (the head store orders the byte copies before it) and rings a sleeping consumer. */
  #publishHead(): void {
    this.#flushStage();
    const i32 = this.i32;
    const out = this.out;
    Atomics.store(i32, out.head, this.#outHead);
    if (Atomics.load(i32, out.consumerSleeping) === 1 && Atomics.compareExchange(i32, out.consumerSleeping, 1, 0) === 1) {
      this.ctrl.ring();
    }
    this.wokeSelf();
  }

  loan(size: number): Uint8Array | null {
    if (this.#loan) throw stateError('ERR_IPCKIT_LOAN', 'publish() the current loan before taking another');
    if (this.closing || this.finished) return null;
    this.#flushStage();
    const len = 1 + size;
    if (!this.roomFor(len)) {
      this.blocked(len);
      if (!this.roomFor(len)) return null;
    }
    const R = this.ringSize;
    let head = this.#outHead;
    let off = head & this.#mask;
    const total = recordBytes(len);
    if (total > R - off) {
      this.i32[(this.out.data + off) >> 2] = WRAP;
      head = (head + (R - off)) | 0;
      off = 0;
    }
    const at = this.out.data + off;
    this.i32[at >> 2] = len;
    this.u8[at + 4] = KIND_MESSAGE;
    // The wrap marker is private until publish() moves the head past it.
    this.#outHead = head;
    // On the SharedArrayBuffer, not the plain alias: the view can go to a worker thread to be filled there.
    const view = new Uint8Array(this.i32.buffer, at + 5, size);
    this.#loan = { view, at, len, headAfter: (head + total) | 0 };
    return view;
  }

  publish(view: Uint8Array, length: number): void {
    const loan = this.#loan;
    if (!loan || view.buffer !== loan.view.buffer || view.byteOffset !== loan.view.byteOffset) {
      throw stateError('ERR_IPCKIT_LOAN', 'publish() takes the view returned by the last loan()');
    }
    if (length !== loan.len - 1) {
      // Shrink the record: fewer bytes used than loaned.
      this.i32[loan.at >> 2] = 1 + length;
      loan.headAfter = (this.#outHead + recordBytes(1 + length)) | 0;
    }
    this.#loan = null;
    this.#outHead = loan.headAfter;
    this.#publishHead();
    if (this.wantWritable) this.spinner.schedule();
  }
}
