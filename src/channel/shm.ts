// shm: transport. Data goes through two SPSC rings in a sealed memfd
// (ring.ts); the kernel is only involved to wake a sleeping peer and to tell
// us when the peer is gone, both through the connection's control socket.
//
// Rendezvous (rendezvous.ts): the listener owns the abstract Unix socket
// "\0ipckit-shm/NAME". A connector creates the memfd (sealed: its size can
// never change, so no peer can kill us with SIGBUS by truncating it) and
// sends it with its hello by SCM_RIGHTS: { ring: R, shared: true }. The
// listener checks what it got before mapping it: a memfd on tmpfs, sealed,
// read-write, exactly 4096 + 2R bytes with R a power of two. Nothing is ever
// created in /dev/shm and no path is ever opened on a peer's say-so, so a
// kill -9 at any moment leaks nothing and a listener running as root maps
// only memory the peer itself could map.
// A listener with a shared ring (sharedRing) answers with its own sealed
// memfd and { shared: { ring, slot } }: the connector then writes into that
// ring (shm-shared.ts) instead of its own ring 0, and the listener's hub
// feeds this connection's frames to it.
//
// Everything read from the shared memory is checked before use: positions,
// lengths, wrap markers. A ring that does not make sense fails its channel
// with ERR_IPCKIT_BAD_FRAME after bounded work; other channels are untouched.
//
// Waiting (shm-spin.ts): after any activity a side keeps looking at its
// input ring for `spin` microseconds, one look per microtask hop so its own
// code keeps running in between; then it raises its "sleeping" flag,
// re-checks, and sleeps on its control socket. A producer rings (one byte on
// the control socket) only when the flag is up (compare-exchange, so once).
// nextSync() waits the same way, blocking.
import { Buffer } from 'node:buffer';
import { constants as fsc } from 'node:fs';
import { stateError, sys, timeoutError } from '../errors.js';
import { native } from '../native.js';
import type { SharedRegion } from '../region.js';
import { anonymous, fromFd, type FdRegion } from '../shm.js';
import type { Access, PeerCredentials } from './access.js';
import { closeAll, type ControlSocket } from './control.js';
import { KIND_MESSAGE, badFrame } from './frame.js';
import { Refusal, makeHello, type Hello } from './hello.js';
import type { CloseInfo, Link, LinkEvents, LoanedView } from './link.js';
import { LocalListener, connectLocal, type LocalListenerEvents } from './rendezvous.js';
import {
  CONTROL_BYTES,
  MAGIC,
  NATIVE_COPY_MIN,
  RunCopier,
  SHARED_HEADER,
  VERSION,
  W_MAGIC,
  W_MAX_FRAME,
  W_RING_SIZE,
  W_VERSION,
  WRAP,
  fits,
  maxFrameFor,
  putRecord,
  recordBytes,
  ringSizeFor,
  ringWords,
  sharedTotalBytes,
  totalBytes,
  validRingSize,
  type RingWords,
} from './ring.js';
import { SharedRingHub, SharedRingWriter, WRITTEN, type HubFed } from './shm-shared.js';
import { Spinner } from './shm-spin.js';
import { CLOSE_GRACE_MS } from './stream.js';

export interface ShmListenOptions extends ShmLinkOptions {
  /** One ring all connectors write into, read by one hub (MPSC). Default false: a ring pair per connection. */
  sharedRing?: boolean;
}

export interface ShmLinkOptions {
  /** Microseconds to spin after activity before sleeping; 'auto' = 50; false = never spin. */
  spin?: 'auto' | number | false;
  /** Bytes per direction (rounded up to a power of two). Default 4 MiB, or enough for maxMessageSize. */
  ringSize?: number;
  /** Receive messages as views into the ring that you release() (raw codec only). Default false. */
  zeroCopy?: boolean;
}

/** What connectShm/listenShm need besides the name. */
export interface ShmSettings extends ShmListenOptions {
  codec: string;
  maxMessageSize: number;
  access: Access;
  /** Connector: ms for the whole connect and handshake. */
  timeout?: number;
}

const AUTO_SPIN_US = 50;
const DEFAULT_RING = 4 * 1024 * 1024;

export function socketName(name: string): string {
  return `ipckit-shm/${name}`;
}

function spinMicros(spin: ShmLinkOptions['spin']): number {
  if (spin === undefined || spin === 'auto') return AUTO_SPIN_US;
  if (spin === false) return 0;
  return spin;
}

/** How a connection's input and output run when the listener has a shared ring (listen option sharedRing). */
export type SharedMode =
  /** Connector: frames go into the shared ring instead of this connection's ring 0. */
  | { role: 'writer'; writer: SharedRingWriter; slot: number }
  /** Listener: frames come from the hub reading the shared ring, not from ring 0. */
  | { role: 'fed'; hub: SharedRingHub; slot: number }
  | null;

/** The fixed facts of one connection, settled by the handshake (never re-read from shared memory). */
export interface ShmLinkSetup {
  region: SharedRegion;
  side: 'listener' | 'connector';
  /** Bytes per ring (a power of two, checked). */
  ringSize: number;
  /** Largest frame accepted from the peer: this side's own limit. */
  maxIn: number;
  /** Largest frame sent: the smaller of the peer's limit and what the ring holds. */
  maxOut: number;
  ctrl: ControlSocket;
  peer: PeerCredentials;
  spinUs: number;
  zeroCopy: boolean;
  url: string;
  shared: SharedMode;
}

export class ShmLink implements Link, HubFed {
  readonly transport = 'shm';
  readonly maxFrame: number;
  readonly peer: PeerCredentials;
  readonly #maxIn: number;
  readonly #region: SharedRegion;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #R: number;
  readonly #mask: number;
  readonly #out: RingWords;
  readonly #in: RingWords;
  #outHead: number;
  #inRead: number;
  readonly #ctrl: ControlSocket;
  readonly #spinner: Spinner;
  readonly #writer: SharedRingWriter | null;
  readonly #hub: SharedRingHub | null;
  readonly slot: number;
  #events: LinkEvents | null = null;
  #paused = false;
  #wantWritable = false;
  /** Producer's last view of the consumer's tail (only ever behind the real one: safe). */
  #tailSeen = 0;
  readonly #runs = new RunCopier();
  /** Frames consumed since the tail was last stored. */
  #unreleased = 0;
  /** Frame length the blocked tryWrite() needs room for. */
  #wantBytes = 0;
  /** tryWrite() places records without publishing them (see Link.cork). */
  #corked = false;
  /** Connector with a shared ring: the timer that looks at its lock again (see #pollLock). */
  #lockPoll: NodeJS.Timeout | null = null;
  /** Listener with a shared ring: the hub has delivered everything this peer wrote before it went away. */
  #drained = false;
  #finished = false;
  #closing: Promise<void> | null = null;
  #failure: Error | undefined;
  #peerGone = false;
  #graceTimer: NodeJS.Timeout | null = null;
  readonly #zeroCopy: boolean;
  readonly #url: string;
  /** Zero-copy views not yet released, oldest first (with already-consumed records after them). */
  #held: Array<{ end: number; released: boolean }> = [];
  /** The outstanding loan(): where its record starts and the head after it. */
  #loan: { view: Uint8Array; at: number; len: number; headAfter: number } | null = null;

  constructor(setup: ShmLinkSetup) {
    const { region, side, shared } = setup;
    this.#url = setup.url;
    this.#zeroCopy = setup.zeroCopy;
    this.#region = region;
    this.peer = setup.peer;
    const buf = region.buffer;
    this.#i32 = new Int32Array(buf);
    this.#u8 = new Uint8Array(buf);
    this.#R = setup.ringSize;
    this.#mask = this.#R - 1;
    this.#writer = shared?.role === 'writer' ? shared.writer : null;
    this.#hub = shared?.role === 'fed' ? shared.hub : null;
    this.slot = shared ? shared.slot : -1;
    this.maxFrame = Math.min(setup.maxOut, this.#writer?.maxFrame ?? Infinity);
    this.#maxIn = setup.maxIn;
    this.#out = ringWords(side === 'connector' ? 0 : 1, this.#R);
    this.#in = ringWords(side === 'connector' ? 1 : 0, this.#R);
    // Our own positions start from what the memory says only on the side
    // that made it (the connector, before anyone else could write there).
    this.#outHead = side === 'connector' ? Atomics.load(this.#i32, this.#out.head) : 0;
    this.#tailSeen = this.#outHead;
    this.#inRead = 0;
    if (side === 'listener') {
      // The peer wrote the control block: take over our own words, so no
      // stale value of it is ever trusted.
      Atomics.store(this.#i32, this.#out.head, 0);
      Atomics.store(this.#i32, this.#out.closed, 0);
      Atomics.store(this.#i32, this.#in.tail, 0);
    }
    this.#ctrl = setup.ctrl;
    this.#spinner = new Spinner(setup.spinUs, this);
    // Attached before the connector hears its slot, so no frame of it is
    // dropped as "nobody's"; the hub waits at them until start().
    this.#hub?.attach(this);
  }

  /** Frames go through a shared ring, so loan() cannot hand out ring memory (it would hold the ring's lock across user code). */
  get canLoan(): boolean {
    return this.#writer === null;
  }

  start(events: LinkEvents): void {
    this.#events = events;
    // After the handshake the control socket carries only doorbell rings; its end of file is the peer leaving.
    this.#ctrl.watch(() => this.#onControl());
    this.#spinner.start();
    this.#hub?.resumed(this.slot);
  }

  #onControl(): void {
    if (this.#ctrl.drain() < 0) {
      this.#peerGone = true;
      this.#ctrl.close();
      this.#finish();
      return;
    }
    this.#onBell();
  }

  #onBell(): void {
    Atomics.store(this.#i32, this.#in.consumerSleeping, 0);
    if (this.#writer) this.#writer.lowerWaiting();
    else Atomics.store(this.#i32, this.#out.producerSleeping, 0);
    this.#spinner.woken();
    // On a listener with a shared ring the connector rings us for the hub too.
    this.#hub?.bell();
  }

  /** One look (SpinOwner): read what arrived, report room to a blocked writer. */
  look(): number {
    // After a failure the link is being torn down: do not touch the ring again
    // (a corrupt record stays unread and would be "available" forever).
    if (this.#finished || this.#failure) return -1;
    let progress = this.#readBatch() > 0;
    if (this.#wantWritable && !this.#loan && this.#hasSpaceFor(this.#wantBytes)) {
      this.#wantWritable = false;
      progress = true;
      this.#events!.onWritable();
    }
    if (this.#finished) return -1;
    const waitingForInput = !this.#hub && !this.#paused && !this.#closing;
    if (!waitingForInput && !this.#wantWritable) return -1; // idle: resume()/tryWrite() restart us
    return progress ? 1 : 0;
  }

  /** Raises the sleeping flags and looks once more (SpinOwner). */
  trySleep(): boolean {
    const i32 = this.#i32;
    const waitInput = !this.#paused && !this.#hub;
    if (waitInput) Atomics.store(i32, this.#in.consumerSleeping, 1);
    const writer = this.#writer;
    if (this.#wantWritable) {
      if (!writer) Atomics.store(i32, this.#out.producerSleeping, 1);
      else {
        // Counted as waiting either way (the hub rings us when it frees room).
        writer.raiseWaiting();
        if (writer.lockBusy()) this.#pollLock();
      }
    }
    // Re-check after raising the flags: the peer may have written just before.
    if ((waitInput && Atomics.load(i32, this.#in.head) !== this.#inRead) || (this.#wantWritable && !this.#loan && this.#hasSpaceFor(this.#wantBytes))) {
      this.awake();
      if (writer) writer.lowerWaiting();
      else Atomics.store(i32, this.#out.producerSleeping, 0);
      return false;
    }
    return true;
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
      if (this.#finished || !this.#spinner.sleeping) return;
      this.#writer!.lowerWaiting();
      this.#spinner.woken();
    }, 1);
  }

  /** Spinning again without a doorbell (SpinOwner). */
  awake(): void {
    Atomics.store(this.#i32, this.#in.consumerSleeping, 0);
  }

  #readBatch(): number {
    if ((this.#paused && !this.#peerGone) || this.#hub) return 0;
    const i32 = this.#i32;
    const u8 = this.#u8;
    const R = this.#R;
    const base = this.#in.data;
    let read = this.#inRead;
    let head = Atomics.load(i32, this.#in.head);
    // Bytes the peer says it published: never more than the ring, always whole 8-byte units.
    let avail = (head - read) >>> 0;
    if (avail > R || (avail & 7) !== 0) return this.#corrupt(`head ${head >>> 0} is ${avail} bytes ahead of the reader`);
    let n = 0;
    while (avail > 0) {
      const off = read & this.#mask;
      const at = base + off;
      const len = i32[at >> 2]!;
      if (len === WRAP) {
        // A wrap marker only ever ends the ring's last stretch, once per pass.
        const skip = R - off;
        if (off === 0 || skip > avail) return this.#corrupt(`wrap marker at offset ${off}`);
        read = (read + skip) | 0;
        avail -= skip;
        continue;
      }
      if (len <= 0 || len > this.#maxIn || 4 + len > R - off || recordBytes(len) > avail) {
        return this.#corrupt(`record length ${len} at offset ${off}`);
      }
      const recordStart = read;
      const recordEnd = (read + recordBytes(len)) | 0;
      read = recordEnd;
      avail -= recordBytes(len);
      this.#inRead = read;
      if (this.#zeroCopy && len > 1 && u8[at + 4] === KIND_MESSAGE) {
        // Zero-copy: hand out a view into the ring; its space is returned by release().
        const entry = { end: recordEnd, released: false };
        this.#held.push(entry);
        const view = new Uint8Array(u8.buffer, at + 5, len - 1) as LoanedView;
        view.release = () => {
          if (entry.released) return;
          entry.released = true;
          this.#releaseHeld();
        };
        this.#events!.onFrame(u8.subarray(at + 4, at + 4 + len), false, view);
      } else {
        if (len >= NATIVE_COPY_MIN) {
          // Out of shared memory with memcpy (native/ring.c): much faster than V8's SAB copy.
          const frame = Buffer.allocUnsafeSlow(len);
          native.ringCopy(frame, 0, u8, at + 4, len);
          this.#events!.onFrame(frame, true);
        } else {
          const start = this.#runs.frameAt(u8, R, recordStart, at, len, (read + avail) | 0, 4);
          this.#events!.onFrameAt(this.#runs.chunk!, start, start + len);
        }
        // onFrame decoded (copied) the frame: its space can go back (the tail
        // is stored every 64 frames and at the end of the batch: fewer writes
        // to a line the producer reads), unless zero-copy views handed out
        // before it are still held.
        if (this.#held.length === 0) {
          if ((++this.#unreleased & 63) === 0) Atomics.store(i32, this.#in.tail, read);
        } else this.#held.push({ end: recordEnd, released: true });
      }
      n++;
      if (this.#finished || (this.#paused && !this.#peerGone)) break;
      if (avail === 0) {
        head = Atomics.load(i32, this.#in.head);
        avail = (head - read) >>> 0;
        if (avail > R || (avail & 7) !== 0) return this.#corrupt(`head ${head >>> 0} is ${avail} bytes ahead of the reader`);
      }
    }
    if (this.#unreleased > 0 && this.#held.length === 0) Atomics.store(i32, this.#in.tail, this.#inRead);
    this.#unreleased = 0;
    if (n > 0) this.#wakeProducer();
    return n;
  }

  /** The peer's ring holds something no honest peer writes: this channel fails (only this one). */
  #corrupt(what: string): number {
    this.destroy(badFrame(`corrupt shm: ring from the peer (${what})`));
    return 0;
  }

  /** Listener with a shared ring (HubFed): the hub stops at this peer's next frame while this is true. */
  get blocksHub(): boolean {
    return (this.#paused || this.#events === null) && !this.#peerGone && !this.#finished;
  }

  /** A frame the hub read for this peer (HubFed): owned bytes at buffer[start..end). */
  deliverAt(buffer: Buffer, start: number, end: number): void {
    if (!this.#finished) this.#events?.onFrameAt(buffer, start, end);
  }

  /** A large frame the hub copied out for this peer (HubFed). */
  deliver(frame: Uint8Array): void {
    if (!this.#finished) this.#events?.onFrame(frame, true);
  }

  /** The hub freed room in the shared ring (HubFed): wake this peer if it sleeps waiting for it. */
  wakeSharedProducer(): boolean {
    if (Atomics.compareExchange(this.#i32, this.#in.producerSleeping, 1, 0) !== 1) return false;
    this.#ring();
    return true;
  }

  /** Advances the tail over released zero-copy views (they may be released in any order). */
  #releaseHeld(): void {
    const held = this.#held;
    let i = 0;
    while (i < held.length && held[i]!.released) i++;
    if (i === 0 || this.#finished) return;
    Atomics.store(this.#i32, this.#in.tail, held[i - 1]!.end);
    held.splice(0, i);
    this.#wakeProducer();
  }

  /**
   * Wakes a producer waiting for room only once half the ring is free (or
   * all of it): one wake-up per many frames instead of one per frame.
   */
  #wakeProducer(): void {
    const i32 = this.#i32;
    if (
      Atomics.load(i32, this.#in.producerSleeping) === 1 &&
      ((Atomics.load(i32, this.#in.head) - Atomics.load(i32, this.#in.tail)) >>> 0) * 2 <= this.#R &&
      Atomics.compareExchange(i32, this.#in.producerSleeping, 1, 0) === 1
    ) {
      this.#ring();
    }
  }

  #ring(): void {
    this.#ctrl.ring();
  }

  #hasSpaceFor(frameLength: number): boolean {
    if (this.#writer) return this.#writer.canWrite(frameLength);
    return fits(this.#R, this.#outHead, Atomics.load(this.#i32, this.#out.tail), recordBytes(frameLength));
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    if (this.#writer) return this.#writeShared(header, body);
    if (!this.#place(header, body)) return false;
    if (!this.#corked) this.#publishHead();
    return true;
  }

  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
    if (this.#outHead !== Atomics.load(this.#i32, this.#out.head) && !this.#loan) this.#publishHead();
  }

  /** Copies one record in at #outHead without publishing it; false (and the wait for room armed) when it does not fit. */
  #place(header: Uint8Array, body: Uint8Array): boolean {
    if (this.#closing || this.#finished) return false;
    const len = header.byteLength + body.byteLength;
    if (this.#loan) {
      // A loaned record sits at the head: later frames queue behind it, and
      // the pump does not report room until publish() (it would loop).
      this.#wantWritable = true;
      this.#wantBytes = len;
      return false;
    }
    const total = recordBytes(len);
    const head = this.#outHead;
    // The tail as last seen: re-read (a cache line the consumer writes) only when it looks full.
    if (!fits(this.#R, head, this.#tailSeen, total)) {
      this.#tailSeen = Atomics.load(this.#i32, this.#out.tail);
      if (!fits(this.#R, head, this.#tailSeen, total)) {
        // Records placed before this one in a batch must not wait for the room this one needs.
        if (head !== Atomics.load(this.#i32, this.#out.head)) this.#publishHead();
        this.#blocked(len);
        return false;
      }
    }
    this.#outHead = putRecord(this.#i32, this.#u8, this.#out.data, this.#R, head, header, body, -1);
    return true;
  }

  /** A write did not fit (or the shared ring's lock was busy): wait for room, spinning first. */
  #blocked(len: number): void {
    this.#wantWritable = true;
    this.#wantBytes = len;
    const spinner = this.#spinner;
    if (!spinner.sleeping) {
      // Spinning, or idle (paused, or a listener fed by its hub, looks at nothing): look for room.
      spinner.restart();
    } else if (spinner.spinUs > 0) spinner.wake();
    // Asleep with spin: false: raise the producer flag (and re-check) as trySleep() does.
    else if (!this.trySleep()) spinner.restart();
  }

  /** Connector with a shared ring: the frame goes into it at once (each record is published under the ring's lock). */
  #writeShared(header: Uint8Array, body: Uint8Array): boolean {
    if (this.#closing || this.#finished) return false;
    if (this.#writer!.write(header, body) !== WRITTEN) {
      this.#blocked(header.byteLength + body.byteLength);
      return false;
    }
    this.#wokeSelf();
    return true;
  }

  /** Makes the placed records visible (the head store orders the byte copies before it) and rings a sleeping consumer. */
  #publishHead(): void {
    const i32 = this.#i32;
    Atomics.store(i32, this.#out.head, this.#outHead);
    if (Atomics.load(i32, this.#out.consumerSleeping) === 1 && Atomics.compareExchange(i32, this.#out.consumerSleeping, 1, 0) === 1) {
      this.#ring();
    }
    this.#wokeSelf();
  }

  /** We wrote something the peer will answer: spin (and the hub, on a listener with a shared ring) to see it at once. */
  #wokeSelf(): void {
    if (this.#spinner.sleeping) this.#spinner.wake();
    this.#hub?.wake();
  }

  loan(size: number): Uint8Array | null {
    if (this.#writer) throw stateError('ERR_IPCKIT_UNSUPPORTED', 'loan() is not available to a connector of a shared-ring listener');
    if (this.#loan) throw stateError('ERR_IPCKIT_LOAN', 'publish() the current loan before taking another');
    if (this.#closing || this.#finished) return null;
    const len = 1 + size;
    if (!this.#hasSpaceFor(len)) {
      this.#blocked(len);
      if (!this.#hasSpaceFor(len)) return null;
    }
    const i32 = this.#i32;
    let head = this.#outHead;
    let off = head & this.#mask;
    const total = recordBytes(len);
    if (total > this.#R - off) {
      i32[(this.#out.data + off) >> 2] = WRAP;
      head = (head + (this.#R - off)) | 0;
      off = 0;
    }
    const at = this.#out.data + off;
    i32[at >> 2] = len;
    this.#u8[at + 4] = KIND_MESSAGE;
    // The wrap marker is private until publish() moves the head past it.
    this.#outHead = head;
    const view = new Uint8Array(this.#u8.buffer, at + 5, size);
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
      this.#i32[loan.at >> 2] = 1 + length;
      loan.headAfter = (this.#outHead + recordBytes(1 + length)) | 0;
    }
    this.#loan = null;
    this.#outHead = loan.headAfter;
    this.#publishHead();
    if (this.#wantWritable) this.#spinner.schedule();
  }

  waitSync(timeoutNs: number): boolean {
    if (this.#hub) throw stateError('ERR_IPCKIT_UNSUPPORTED', 'nextSync() is not available on a listener with a shared ring (its hub reads on the event loop)');
    if (this.#finished) return false;
    const i32 = this.#i32;
    const start = process.hrtime.bigint();
    const elapsedNs = () => Number(process.hrtime.bigint() - start);
    try {
      for (;;) {
        if (this.#readBatch() > 0) return true;
        if (this.#finished || this.#failure || this.#peerGone) return false;
        // Spin first, as the event-loop side does: a busy peer answers within the budget.
        const spinNs = this.#spinner.spinUs * 1000;
        let k = 0;
        while (Atomics.load(i32, this.#in.head) === this.#inRead && ((++k & 255) !== 0 || elapsedNs() < spinNs));
        if (Atomics.load(i32, this.#in.head) !== this.#inRead) continue;
        // Then sleep on the control socket (a ring, or the peer's end of file).
        Atomics.store(i32, this.#in.consumerSleeping, 1);
        if (Atomics.load(i32, this.#in.head) !== this.#inRead) {
          Atomics.store(i32, this.#in.consumerSleeping, 0);
          continue;
        }
        const left = timeoutNs < 0 ? -1 : Math.max(0, timeoutNs - elapsedNs());
        const woke = this.#ctrl.waitSync(left, this.#url);
        Atomics.store(i32, this.#in.consumerSleeping, 0);
        if (woke && this.#ctrl.drain() < 0) {
          // The peer is gone: what it wrote before is still in the ring.
          this.#peerGone = true;
          return this.#readBatch() > 0;
        }
        if (!woke && Atomics.load(i32, this.#in.head) === this.#inRead) throw timeoutError('ppoll', { path: this.#url });
      }
    } finally {
      // The event-loop side may have been asleep with its flag up, which we
      // just cleared: let it spin and go back to sleep the usual way.
      if (this.#spinner.sleeping && !this.#finished) this.#spinner.restart();
      // A hang-up seen here is reported by the event loop's watch (it sees the same end of file).
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#spinner.restart();
    this.#hub?.resumed(this.slot);
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      if (this.#finished) return resolve();
      this.#closeResolve = resolve;
      Atomics.store(this.#i32, this.#out.closed, 1);
      this.#ring();
      // The peer answers our end of file from its event loop by closing its
      // end; if that loop is stuck, cut after a grace period.
      this.#graceTimer = setTimeout(() => {
        this.#ctrl.close();
        this.#finish();
      }, CLOSE_GRACE_MS).unref();
      this.#ctrl.shutdown();
    });
    return this.#closing;
  }

  #closeResolve: (() => void) | null = null;

  destroy(error?: Error): void {
    if (error) this.#failure ??= error;
    this.#ctrl.close();
    // As a socket's 'close' event would: after the code that called us returns.
    process.nextTick(() => this.#finish());
  }

  #finish(): void {
    if (this.#finished) return;
    if (this.#hub && !this.#failure && !this.#drained) {
      // What the peer wrote before it went away may still be in the shared
      // ring: close once the hub has read past it.
      this.#hub.drainFor(this.slot, () => {
        this.#drained = true;
        this.#finish();
      });
      return;
    }
    // Whatever the peer wrote before it went away is still in the ring.
    if (!this.#failure) this.#readBatch();
    this.#finished = true;
    this.#spinner.stop();
    if (this.#lockPoll) clearTimeout(this.#lockPoll);
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#ctrl.close();
    const peerClosed = Atomics.load(this.#i32, this.#in.closed) === 1;
    const info: CloseInfo = this.#failure
      ? { reason: 'error', error: this.#failure }
      : this.#closing
        ? { reason: 'closed' }
        : peerClosed
          ? { reason: 'peer-closed' }
          : { reason: 'peer-lost' };
    this.#hub?.detach(this);
    this.#writer?.close();
    this.#region.close();
    this.#closeResolve?.();
    this.#events?.onClose(info);
  }

  ref(): void {
    this.#ctrl.ref();
  }

  unref(): void {
    this.#ctrl.unref();
  }
}

/**
 * Checks a memfd a peer sent before it is mapped: a tmpfs file (not hugetlbfs,
 * whose faults can raise SIGBUS), sealed against shrinking and growing for
 * good, open read-write, and exactly `size` bytes. Throws a Refusal.
 */
export function checkRingMemory(fd: number, size: number, what: string): void {
  const c = native.shmConstants;
  const info = sys(() => native.fdInspect(fd), { path: what });
  const sealsNeeded = c.F_SEAL_SHRINK | c.F_SEAL_GROW | c.F_SEAL_SEAL;
  const problem =
    (info.mode & 0o170000) !== 0o100000 || info.fsType !== c.TMPFS_MAGIC
      ? 'is not a memfd'
      : info.seals < 0 || (info.seals & sealsNeeded) !== sealsNeeded
        ? 'is not sealed against shrinking and growing (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)'
        : (info.seals & (c.F_SEAL_WRITE | c.F_SEAL_FUTURE_WRITE)) !== 0
          ? 'is sealed against writing'
          : info.access !== fsc.O_RDWR
            ? 'is not open read-write'
            : info.size !== size
              ? `is ${info.size} bytes, not ${size}`
              : null;
  if (problem) throw new Refusal('EPROTO', `the ${what} memory sent ${problem}`);
}

/** A ring size announced by a peer: a power of two in [4096, MAX_RING]. */
function announcedRing(value: unknown, what: string): number {
  if (!validRingSize(value)) throw new Refusal('EPROTO', `the peer announced an impossible ${what} size (${JSON.stringify(value)})`);
  return value as number;
}

/** A sealed memfd for ring memory, with the control block written. */
function ringMemory(bytes: number, label: string): FdRegion {
  return anonymous(bytes, { name: label, sealed: true });
}

export async function connectShm(name: string, s: ShmSettings): Promise<Link> {
  const maxIn = s.maxMessageSize + 5;
  const R = ringSizeFor(maxIn, s.ringSize ?? DEFAULT_RING);
  const url = `shm:${name}`;
  const mem = ringMemory(totalBytes(R), `ipckit-shm:${name}`);
  let writer: SharedRingWriter | null = null;
  let fds: number[] = [];
  let ctrl: ControlSocket | null = null;
  try {
    const i32 = new Int32Array(mem.buffer, 0, CONTROL_BYTES / 4);
    i32[W_VERSION] = VERSION;
    i32[W_RING_SIZE] = R;
    i32[W_MAX_FRAME] = maxIn;
    Atomics.store(i32, W_MAGIC, MAGIC);
    // shared: this end can write into a listener's shared ring.
    const hello = makeHello('shm', s.codec, s.maxMessageSize, { ring: R, shared: true });
    const conn = await connectLocal(socketName(name), url, () => ({ hello, fds: [mem.fd] }), s.access, 1, s.timeout);
    ctrl = conn.ctrl;
    fds = conn.fds;
    const reply = conn.reply;
    let shared: SharedMode = null;
    if (reply.shared !== undefined) {
      const offer = reply.shared as Record<string, unknown>;
      const RS = announcedRing(offer?.ring, 'shared ring');
      const slot = offer.slot;
      if (!Number.isSafeInteger(slot) || (slot as number) <= 0 || (slot as number) > 0x7fffffff) throw new Refusal('EPROTO', 'the listener announced an impossible slot');
      if (fds.length !== 1) throw new Refusal('EPROTO', 'the listener offered a shared ring without its memory');
      checkRingMemory(fds[0]!, sharedTotalBytes(RS), 'shared ring');
      const region = fromFd(fds[0]!, { closeFd: true });
      fds = [];
      const flagWord = ringWords(0, R).producerSleeping;
      writer = new SharedRingWriter(region, RS, Math.min(reply.max + 5, maxFrameFor(RS, SHARED_HEADER)), slot as number, () => conn.ctrl.ring(), i32, flagWord);
      shared = { role: 'writer', writer, slot: slot as number };
    } else if (fds.length > 0) throw new Refusal('EPROTO', 'the listener sent descriptors it had no use for');
    return new ShmLink({
      region: mem,
      side: 'connector',
      ringSize: R,
      maxIn,
      maxOut: Math.min(reply.max + 5, maxFrameFor(R)),
      ctrl: conn.ctrl,
      peer: conn.peer,
      spinUs: spinMicros(s.spin),
      zeroCopy: s.zeroCopy === true,
      url,
      shared,
    });
  } catch (e) {
    ctrl?.close();
    closeAll(fds);
    writer?.close();
    mem.close();
    throw e instanceof Refusal ? stateError('ERR_IPCKIT_HANDSHAKE', `${url}: ${e.message}`) : e;
  }
}

export interface ShmListener {
  close(): void;
  ref(): void;
  unref(): void;
}

/** Listens on shm:NAME; `onLink` gets one Link per connecting peer. */
export function listenShm(name: string, s: ShmSettings, onLink: (link: Link) => void, events: LocalListenerEvents): ShmListener {
  const url = `shm:${name}`;
  const maxIn = s.maxMessageSize + 5;
  const newHub = () => new SharedRingHub(url, maxIn, ringSizeFor(maxIn, s.ringSize ?? DEFAULT_RING, SHARED_HEADER), spinMicros(s.spin), ringMemory);
  let hub = s.sharedRing === true ? newHub() : null;
  const handshake = (ctrl: ControlSocket, hello: Hello, fds: number[], peer: PeerCredentials) => {
    let region: FdRegion | null = null;
    try {
      if (fds.length !== 1) throw new Refusal('EPROTO', `expected one descriptor (the connection's memory), got ${fds.length}`);
      const R = announcedRing(hello.ring, 'ring');
      checkRingMemory(fds[0]!, totalBytes(R), 'connection');
      region = fromFd(fds[0]!, { closeFd: true });
      fds.length = 0;
      if (hub && hello.shared !== true) throw new Refusal('EPROTO', 'this listener has a shared ring, which the connecting side cannot write');
      // A shared ring that went corrupt failed every channel through it; newcomers get a fresh one.
      if (hub?.failed) {
        hub.stopListening();
        hub = newHub();
      }
      const slot = hub ? hub.newSlot() : -1;
      const link = new ShmLink({
        region,
        side: 'listener',
        ringSize: R,
        maxIn,
        maxOut: Math.min(hello.max + 5, maxFrameFor(R)),
        ctrl,
        peer,
        spinUs: spinMicros(s.spin),
        zeroCopy: s.zeroCopy === true,
        url,
        shared: hub ? { role: 'fed', hub, slot } : null,
      });
      const extra = hub ? { shared: { ring: hub.ringSize, slot } } : {};
      return {
        reply: makeHello('shm', s.codec, s.maxMessageSize, extra),
        fds: hub ? [hub.region.fd] : [],
        done: () => onLink(link),
        failed: () => link.destroy(),
      };
    } catch (e) {
      closeAll(fds);
      region?.close();
      throw e;
    }
  };
  const listener = new LocalListener(socketName(name), url, 'shm', s.codec, s.access, 1, handshake, events);
  return {
    close() {
      listener.close();
      // The hub lasts until the frames of its last connection are read.
      hub?.stopListening();
    },
    ref: () => listener.ref(),
    unref: () => listener.unref(),
  };
}
