// shm: transport. Data goes through two SPSC rings in a memfd (ring.ts); the
// kernel is only involved to wake a sleeping peer (a doorbell pipe watched by
// uv_poll) and to tell us when the peer is gone (the control socket).
//
// Rendezvous: the listener owns the abstract Unix socket "\0ipckit-shm/NAME"
// (no file, gone with the process, so a restarted peer can listen again at
// once). A connector creates the memfd and its doorbell pipe and sends
// { pid, memfd, bell } over the socket; the listener opens
// /proc/PID/fd/{memfd,bell} (same user, no names anywhere), answers with its
// own { pid, bell }, and both close the memfd descriptor once mapped. Nothing
// is ever created in /dev/shm, so a kill -9 at any moment leaks nothing.
// A listener with a shared ring (sharedRing) adds { ring: { memfd, bell,
// slot } } to its answer: the connector then writes into that ring
// (shm-shared.ts) instead of its own ring 0, and the listener's hub feeds
// this connection's frames to it.
//
// Waiting (shm-spin.ts): after any activity a side keeps looking at its
// input ring for `spin` microseconds, one look per microtask hop so its own
// code keeps running in between; then it raises its "sleeping" flag,
// re-checks, and sleeps on its doorbell. A producer rings only when the flag
// is up (compare-exchange, so once). nextSync() waits the same way, blocking.
import { Buffer } from 'node:buffer';
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { IpcError, stateError, sys } from '../errors.js';
import { native } from '../native.js';
import { READABLE, watchFd, type FdWatcher } from '../poller.js';
import { timedOut } from '../waiter.js';
import type { SharedRegion } from '../region.js';
import { anonymous, fromFd } from '../shm.js';
import { KIND_MESSAGE, badFrame } from './frame.js';
import { CLOSE_GRACE_MS } from './stream.js';
import type { LoanedView } from './link.js';
import type { CloseInfo, Link, LinkEvents } from './link.js';
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
  putRecord,
  recordBytes,
  ringSizeFor,
  ringWords,
  totalBytes,
  type RingWords,
} from './ring.js';
import { SharedRingHub, SharedRingWriter, WRITTEN, validSharedRing, type HubFed } from './shm-shared.js';
import { Spinner } from './shm-spin.js';

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

const AUTO_SPIN_US = 50;
const DEFAULT_RING = 4 * 1024 * 1024;

/**
 * Closes descriptors the addon made (the doorbell pipe) with close(2) and
 * those fs.openSync() made with fs.closeSync(): in a worker, Node tracks the
 * latter and warns about closing any fd it did not open.
 */
function closeFds(made: readonly number[], opened: readonly number[]): void {
  for (const fd of [...made, ...opened]) {
    if (fd < 0) continue;
    try {
      if (made.includes(fd)) native.fdClose(fd);
      else closeSync(fd);
    } catch {}
  }
}

export function socketPath(name: string): string {
  return `\0ipckit-shm/${name}`;
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

export class ShmLink implements Link, HubFed {
  readonly transport = 'shm';
  readonly maxFrame: number;
  readonly #region: SharedRegion;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #R: number;
  readonly #mask: number;
  readonly #out: RingWords;
  readonly #in: RingWords;
  #outHead: number;
  #inRead: number;
  readonly #bellRead: number;
  readonly #bellWrite: number;
  readonly #peerBell: number;
  readonly #socket: Socket;
  readonly #spinner: Spinner;
  readonly #writer: SharedRingWriter | null;
  readonly #hub: SharedRingHub | null;
  readonly slot: number;
  #watch: FdWatcher | null = null;
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
  #socketClosed = false;
  readonly #zeroCopy: boolean;
  readonly #url: string;
  /** Zero-copy views not yet released, oldest first (with already-consumed records after them). */
  #held: Array<{ end: number; released: boolean }> = [];
  /** The outstanding loan(): where its record starts and the head after it. */
  #loan: { view: Uint8Array; at: number; len: number; headAfter: number } | null = null;

  constructor(
    region: SharedRegion,
    side: 'listener' | 'connector',
    bell: [number, number],
    peerBell: number,
    socket: Socket,
    spinUs: number,
    zeroCopy: boolean,
    url: string,
    shared: SharedMode = null,
  ) {
    this.#url = url;
    this.#zeroCopy = zeroCopy;
    this.#region = region;
    const buf = region.buffer;
    this.#i32 = new Int32Array(buf);
    this.#u8 = new Uint8Array(buf);
    this.#R = this.#i32[W_RING_SIZE]!;
    this.#mask = this.#R - 1;
    this.#writer = shared?.role === 'writer' ? shared.writer : null;
    this.#hub = shared?.role === 'fed' ? shared.hub : null;
    this.slot = shared ? shared.slot : -1;
    this.maxFrame = Math.min(this.#i32[W_MAX_FRAME]!, this.#writer?.maxFrame ?? Infinity);
    this.#out = ringWords(side === 'connector' ? 0 : 1, this.#R);
    this.#in = ringWords(side === 'connector' ? 1 : 0, this.#R);
    this.#outHead = Atomics.load(this.#i32, this.#out.head);
    this.#tailSeen = Atomics.load(this.#i32, this.#out.tail);
    this.#inRead = Atomics.load(this.#i32, this.#in.tail);
    [this.#bellRead, this.#bellWrite] = bell;
    this.#peerBell = peerBell;
    this.#socket = socket;
    this.#spinner = new Spinner(spinUs, this);
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
    // The socket carries no data after the handshake: it is the liveness wire.
    this.#socket.on('data', () => {});
    this.#socket.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ECONNRESET' && code !== 'EPIPE') this.#failure ??= e;
    });
    this.#socket.on('end', () => {
      if (!this.#closing) this.#socket.end();
    });
    this.#socket.on('close', () => {
      this.#socketClosed = true;
      this.#finish();
    });
    // The socket keeps the process alive; the doorbell watch does not need to.
    this.#watch = watchFd(this.#bellRead, READABLE, () => this.#onBell(), { ref: false });
    this.#spinner.start();
    this.#hub?.resumed(this.slot);
  }

  #onBell(): void {
    native.doorbellDrain(this.#bellRead);
    Atomics.store(this.#i32, this.#in.consumerSleeping, 0);
    if (this.#writer) this.#writer.lowerWaiting();
    else Atomics.store(this.#i32, this.#out.producerSleeping, 0);
    this.#spinner.woken();
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
    if ((this.#paused && !this.#socketClosed) || this.#hub) return 0;
    const i32 = this.#i32;
    const u8 = this.#u8;
    const R = this.#R;
    const base = this.#in.data;
    let read = this.#inRead;
    let head = Atomics.load(i32, this.#in.head);
    let n = 0;
    while (read !== head) {
      const off = read & this.#mask;
      const at = base + off;
      const len = i32[at >> 2]!;
      if (len === WRAP) {
        read = (read + (R - off)) | 0;
        continue;
      }
      if (len <= 0 || len > this.maxFrame || 4 + len > R - off) {
        this.destroy(badFrame(`corrupt record in the shm: ring (length ${len} at offset ${off})`));
        return n;
      }
      const recordStart = read;
      const recordEnd = (read + recordBytes(len)) | 0;
      read = recordEnd;
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
          const start = this.#runs.frameAt(u8, R, recordStart, at, len, head, 4);
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
      if (this.#finished || (this.#paused && !this.#socketClosed)) break;
      if (read === head) head = Atomics.load(i32, this.#in.head);
    }
    if (this.#unreleased > 0 && this.#held.length === 0) Atomics.store(i32, this.#in.tail, this.#inRead);
    this.#unreleased = 0;
    if (n > 0) this.#wakeProducer();
    return n;
  }

  /** Listener with a shared ring (HubFed): the hub stops at this peer's next frame while this is true. */
  get blocksHub(): boolean {
    return (this.#paused || this.#events === null) && !this.#socketClosed && !this.#finished;
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
    try {
      native.doorbellRing(this.#peerBell, false);
    } catch {
      // EPIPE: the peer is gone; its socket hang-up reports that.
    }
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
    const fd = (this.#socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    try {
      for (;;) {
        if (this.#readBatch() > 0) return true;
        if (this.#finished || this.#failure) return false;
        // Spin first, as the event-loop side does: a busy peer answers within the budget.
        const spinNs = this.#spinner.spinUs * 1000;
        let k = 0;
        while (Atomics.load(i32, this.#in.head) === this.#inRead && ((++k & 255) !== 0 || elapsedNs() < spinNs));
        if (Atomics.load(i32, this.#in.head) !== this.#inRead) continue;
        // Then sleep on the doorbell (and the control socket, whose only news is a hang-up).
        Atomics.store(i32, this.#in.consumerSleeping, 1);
        if (Atomics.load(i32, this.#in.head) !== this.#inRead) {
          Atomics.store(i32, this.#in.consumerSleeping, 0);
          continue;
        }
        const left = timeoutNs < 0 ? -1 : Math.max(0, timeoutNs - elapsedNs());
        const woke = sys(() => native.doorbellWait(this.#bellRead, fd, left), { path: this.#url });
        native.doorbellDrain(this.#bellRead);
        Atomics.store(i32, this.#in.consumerSleeping, 0);
        if (woke === 1) return this.#readBatch() > 0;
        if (woke === -1 && Atomics.load(i32, this.#in.head) === this.#inRead) throw timedOut('ppoll', { path: this.#url });
      }
    } finally {
      // The event-loop side may have been asleep with its flag up, which we
      // just cleared: let it spin and go back to sleep the usual way.
      if (this.#spinner.sleeping && !this.#finished) this.#spinner.restart();
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
      Atomics.store(this.#i32, this.#out.closed, 1);
      this.#ring();
      // The peer answers our FIN from its event loop; if that loop is stuck, cut after a grace period.
      const timer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#socket.end();
    });
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (error) this.#failure ??= error;
    this.#socket.destroy();
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
    const peerClosed = Atomics.load(this.#i32, this.#in.closed) === 1;
    const info: CloseInfo = this.#failure
      ? { reason: 'error', error: this.#failure }
      : this.#closing
        ? { reason: 'closed' }
        : peerClosed
          ? { reason: 'peer-closed' }
          : { reason: 'peer-lost', error: stateError('ERR_IPCKIT_PEER_LOST', 'the shm: peer went away without closing (killed or crashed)') };
    this.#watch?.stop();
    this.#hub?.detach(this);
    this.#writer?.close();
    closeFds([this.#bellRead, this.#bellWrite], [this.#peerBell]);
    this.#region.close();
    this.#events?.onClose(info);
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }
}

/** Reads one JSON line from a socket (the handshake), leaving the socket paused-free for later use. */
export function readLine(socket: Socket, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err: Error | null, value?: Record<string, unknown>) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.length > 4096) return done(stateError('ERR_IPCKIT_HANDSHAKE', `${what}: handshake line too long`));
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      try {
        done(null, JSON.parse(text.slice(0, nl)));
      } catch {
        done(stateError('ERR_IPCKIT_HANDSHAKE', `${what}: malformed handshake`));
      }
    };
    const onClose = () => done(stateError('ERR_IPCKIT_HANDSHAKE', `${what}: peer hung up during the handshake`));
    const onError = (e: Error) => done(e);
    const timer = setTimeout(() => done(stateError('ERR_IPCKIT_HANDSHAKE', `${what}: no handshake within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}

function openPeerFd(pid: number, fd: number, flags: number, what: string): number {
  if (!Number.isSafeInteger(pid) || pid <= 0 || !Number.isSafeInteger(fd) || fd < 0) {
    throw stateError('ERR_IPCKIT_HANDSHAKE', `${what}: bad handshake values`);
  }
  const path = `/proc/${pid}/fd/${fd}`;
  return sys(() => openSync(path, flags), { path });
}

export const HANDSHAKE_MS = 10_000;

/** Maps the shared ring a listener offered (its memfd and doorbell, opened through /proc like the rest of the handshake). */
function openSharedRing(pid: number, ring: Record<string, unknown>, flag: Int32Array, flagWord: number, url: string): SharedRingWriter {
  const slot = Number(ring.slot);
  if (!Number.isSafeInteger(slot) || slot <= 0 || slot > 0x7fffffff) throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: bad handshake values`);
  const region = fromFd(openPeerFd(pid, Number(ring.memfd), fsc.O_RDWR, url), { closeFd: true });
  try {
    if (!validSharedRing(region)) throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: the listener offered an unsupported shared ring`);
    const bell = openPeerFd(pid, Number(ring.bell), fsc.O_WRONLY | fsc.O_NONBLOCK, url);
    return new SharedRingWriter(region, slot, bell, flag, flagWord);
  } catch (e) {
    region.close();
    throw e;
  }
}

export async function connectShm(name: string, maxMessageSize: number, options: ShmLinkOptions): Promise<Link> {
  const maxFrame = maxMessageSize + 5;
  const R = ringSizeFor(maxFrame, options.ringSize ?? DEFAULT_RING);
  const url = `shm:${name}`;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect(socketPath(name));
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => reject(e.errno ? new IpcError(Math.abs(e.errno), 'connect', { path: url }) : e));
  });
  let region: SharedRegion | null = null;
  let bell: [number, number] | null = null;
  let peerBell = -1;
  let writer: SharedRingWriter | null = null;
  try {
    const mem = anonymous(totalBytes(R), { name: `ipckit-shm:${name}` });
    region = mem;
    const i32 = new Int32Array(mem.buffer, 0, CONTROL_BYTES / 4);
    i32[W_VERSION] = VERSION;
    i32[W_RING_SIZE] = R;
    i32[W_MAX_FRAME] = maxFrame;
    Atomics.store(i32, W_MAGIC, MAGIC);
    bell = sys(() => native.doorbellPipe(), { path: url });
    // shared: this end can write into a listener's shared ring.
    socket.write(`${JSON.stringify({ v: VERSION, pid: process.pid, memfd: mem.fd, bell: bell[1], shared: true })}\n`);
    const reply = await readLine(socket, url, HANDSHAKE_MS);
    if (reply.error) throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: the listener refused: ${String(reply.error)}`);
    peerBell = openPeerFd(Number(reply.pid), Number(reply.bell), fsc.O_WRONLY | fsc.O_NONBLOCK, url);
    let shared: SharedMode = null;
    if (reply.ring !== undefined) {
      const flag = ringWords(0, R).producerSleeping;
      writer = openSharedRing(Number(reply.pid), reply.ring as Record<string, unknown>, new Int32Array(mem.buffer, 0, CONTROL_BYTES / 4), flag, url);
      shared = { role: 'writer', writer, slot: Number((reply.ring as Record<string, unknown>).slot) };
    }
    return new ShmLink(mem, 'connector', bell, peerBell, socket, spinMicros(options.spin), options.zeroCopy === true, url, shared);
  } catch (e) {
    socket.destroy();
    writer?.close();
    region?.close();
    closeFds(bell ?? [], [peerBell]);
    throw e;
  }
}

export interface ShmServer {
  server: Server;
  close(): Promise<void>;
}

/** Listens on shm:NAME; `onLink` gets one Link per connecting peer. */
export async function listenShm(
  name: string,
  maxMessageSize: number,
  options: ShmListenOptions,
  onLink: (link: Link) => void,
  onError: (e: Error) => void,
): Promise<Server> {
  const url = `shm:${name}`;
  const hub = options.sharedRing === true ? new SharedRingHub(url, maxMessageSize + 5, ringSizeFor(maxMessageSize + 5, options.ringSize ?? DEFAULT_RING, SHARED_HEADER), spinMicros(options.spin)) : null;
  const server = createServer((socket) => {
    accept(socket).then(onLink, (e: Error) => {
      socket.destroy();
      onError(e);
    });
  });
  const accept = async (socket: Socket): Promise<Link> => {
    const hello = await readLine(socket, url, HANDSHAKE_MS);
    const pid = Number(hello.pid);
    // Abstract sockets have no permissions: anyone may connect. Believe the
    // claimed pid only if the kernel says it is the connecting process, so a
    // peer cannot make us open another process's descriptors.
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const cred = typeof fd === 'number' && fd >= 0 ? sys(() => native.unixPeerCred(fd), { path: url }) : null;
    if (!cred || cred.pid !== pid) {
      socket.end(`${JSON.stringify({ error: 'pid does not match the socket credentials' })}\n`);
      throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: a peer claimed pid ${pid} but is pid ${cred?.pid ?? 'unknown'}`);
    }
    if (hub?.failed) {
      socket.end(`${JSON.stringify({ error: 'the shared ring is corrupt; the listener must be restarted' })}\n`);
      throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: refused a peer: the shared ring is corrupt`);
    }
    if (hub && hello.shared !== true) {
      socket.end(`${JSON.stringify({ error: 'this listener has a shared ring, which the connecting side cannot write' })}\n`);
      throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: a peer without shared-ring support was refused`);
    }
    let memfd = -1;
    let peerBell = -1;
    let bell: [number, number] | null = null;
    try {
      memfd = openPeerFd(pid, Number(hello.memfd), fsc.O_RDWR, url);
      const region = fromFd(memfd, { closeFd: true });
      memfd = -1;
      const i32 = new Int32Array(region.buffer);
      if (region.size < CONTROL_BYTES || Atomics.load(i32, W_MAGIC) !== MAGIC || i32[W_VERSION] !== VERSION || region.size !== totalBytes(i32[W_RING_SIZE]!)) {
        region.close();
        socket.end(`${JSON.stringify({ error: 'unsupported shm: layout' })}\n`);
        throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: a peer offered an unsupported ring layout`);
      }
      peerBell = openPeerFd(pid, Number(hello.bell), fsc.O_WRONLY | fsc.O_NONBLOCK, url);
      bell = sys(() => native.doorbellPipe(), { path: url });
      const slot = hub ? hub.newSlot() : -1;
      const link = new ShmLink(region, 'listener', bell, peerBell, socket, spinMicros(options.spin), options.zeroCopy === true, url, hub ? { role: 'fed', hub, slot } : null);
      const ring = hub ? { ring: { memfd: hub.region.fd, bell: hub.bell[1], slot } } : {};
      socket.write(`${JSON.stringify({ v: VERSION, pid: process.pid, bell: bell[1], ...ring })}\n`);
      return link;
    } catch (e) {
      closeFds(bell ?? [], [memfd, peerBell]);
      throw e;
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.errno ? new IpcError(Math.abs(e.errno), 'bind', { path: url }) : e));
      server.listen(socketPath(name), () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
  } catch (e) {
    hub?.stopListening();
    throw e;
  }
  // 'close' comes once every connection's socket is gone; the hub lasts until their frames are read.
  if (hub) server.once('close', () => hub.stopListening());
  return server;
}
