// The shared ring of a shm: listener (listen option sharedRing): every
// connector writes its frames into one ring (MPSC) that the listener's hub
// alone reads (shm-hub.ts) and hands to the right connection, so the
// listener has one place to look and one doorbell however many peers it
// serves. The layout is in ring.ts. This file is the connectors' side: the
// writer, and the connection that sends through it (its answers still come
// through its own ring 1).
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
import type { FdRegion } from '../shm/shm.js';
import { CONTROL_BYTES, SHARED_HEADER, S_CONSUMER_SLEEPING, S_HEAD, S_LAST_WRITER, S_LOCK, S_TAIL, S_WAITING, fits, putRecord, recordBytes } from './ring.js';
import { ShmLinkBase, type ShmLinkSetup } from './shm-link.js';
import { RingReceiver } from './shm-receiver.js';

/** SharedRingWriter.write(): the frame is in the ring. */
const WRITTEN = 0;
/** Another producer holds the ring's lock. */
const BUSY = 1;
/** No room for the frame until the listener reads. */
const FULL = 2;

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
  /** The head after this writer's last record, and the tail it read then (see write()). */
  #headAfterMine = -1;
  #tailSeen = 0;

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
    // Bytes through the plain alias (memcpy-speed copies), control words through the SharedArrayBuffer (Atomics).
    this.#u8 = new Uint8Array(region.plainBuffer);
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
    const head = Atomics.load(i32, S_HEAD);
    const total = recordBytes(header.length + body.length, SHARED_HEADER);
    // The tail as this writer last read it serves only while nobody else
    // wrote since (we were the last writer, and the head is where our last
    // record ended): it is then behind the real one by what the hub
    // released since, which only makes the ring look fuller. Once others
    // wrote it could be 2^32 bytes behind and make a full ring look empty,
    // so it is read again (a cache line the hub writes: the costly part).
    const mine = head === this.#headAfterMine && Atomics.load(i32, S_LAST_WRITER) === this.#slot;
    if (!mine || !fits(this.#R, head, this.#tailSeen, total)) this.#tailSeen = Atomics.load(i32, S_TAIL);
    // Other writers share this memory: a head that is not a record boundary
    // would make us write at an odd offset; leave such a ring to the hub,
    // which fails it.
    if ((head & 7) === 0 && fits(this.#R, head, this.#tailSeen, total)) {
      // The head store orders the byte copies before it; then the lock goes.
      this.#headAfterMine = putRecord(i32, this.#u8, CONTROL_BYTES, this.#R, head, header, body, this.#slot);
      if (!mine) Atomics.store(i32, S_LAST_WRITER, this.#slot);
      Atomics.store(i32, S_HEAD, this.#headAfterMine);
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

/**
 * A connector of a shared-ring listener: its frames go into the shared ring
 * (each record published under the ring's lock, so there is no cork() and
 * no loan() of ring memory: the Channel lends a Buffer instead); the
 * listener's frames come through its own ring 1.
 */
export class SharedWriterLink extends ShmLinkBase {
  readonly #writer: SharedRingWriter;
  /** The timer that looks at the ring's lock again (see #pollLock). */
  #lockPoll: NodeJS.Timeout | null = null;

  constructor(setup: ShmLinkSetup, writer: SharedRingWriter) {
    super(setup, Math.min(setup.maxOut, writer.maxFrame), (link) => new RingReceiver(link, setup));
    this.#writer = writer;
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    if (this.closing || this.finished) return false;
    if (this.#writer.write(header, body) !== WRITTEN) {
      this.blocked(header.length + body.length);
      return false;
    }
    this.wokeSelf();
    return true;
  }

  protected roomFor(frameLength: number): boolean {
    return this.#writer.canWrite(frameLength);
  }

  protected raiseOutputFlag(): void {
    // Counted as waiting either way (the hub rings us when it frees room).
    this.#writer.raiseWaiting();
    if (this.#writer.lockBusy()) this.#pollLock();
  }

  protected lowerOutputFlag(): void {
    this.#writer.lowerWaiting();
  }

  /**
   * Another producer held the shared ring's lock for our whole spin budget:
   * it was descheduled inside write() (or died there, and the listener is
   * about to free it). Nobody rings for an unlock; look again in a millisecond.
   */
  #pollLock(): void {
    if (this.#lockPoll) return;
    this.#lockPoll = setTimeout(() => {
      this.#lockPoll = null;
      if (this.finished || !this.spinner.sleeping) return;
      this.#writer.lowerWaiting();
      this.spinner.woken();
    }, 1);
  }

  protected override outputClosed(): void {
    if (this.#lockPoll) clearTimeout(this.#lockPoll);
    this.#writer.close();
  }
}
