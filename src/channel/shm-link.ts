// What every shm: connection does whatever its rings are (shm.ts sets them
// up): the control socket (doorbell, and the peer's end of file), the
// adaptive wait (shm-spin.ts), pause and resume, close and teardown.
//
// Where its frames come from is its input: its own ring from the peer
// (RingReceiver, shm-receiver.ts), or, on a listener with a shared ring, the
// hub that reads that ring (HubFedInput, shm-fed.ts). Where they go is its
// subclass: its own ring to the peer (RingSenderLink, shm-sender.ts), or a
// listener's shared ring (SharedWriterLink, shm-shared.ts).
import type { SharedRegion } from '../shm/region.js';
import type { PeerCredentials } from './access.js';
import type { ControlSocket } from './control.js';
import type { CloseInfo, InPlaceSink, Link, LinkEvents } from './link.js';
import { ringWords, type RingWords } from './ring.js';
import { keepApart } from './shm-apart.js';
import { Spinner, type SpinOwner } from './shm-spin.js';
import { CLOSE_GRACE_MS } from './stream.js';

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
}

/** Where a connection's frames come from. */
export interface LinkInput {
  /** Delivers what arrived (the link's look); the number of frames. */
  read(): number;
  /** Whether the link's looks have input to wait for (not paused, and not read by someone else). */
  waiting(): boolean;
  /** Before sleeping: raises the "consumer sleeping" flag if it waits for input; whether it does. */
  sleep(): boolean;
  /** Whether something arrived (looked at after sleep(), so nothing written in between is missed). */
  arrived(): boolean;
  /** Lowers the "consumer sleeping" flag: spinning again. */
  awake(): void;
  /** The peer rang the doorbell (after the link looked). */
  rang(): void;
  /** The link wrote something its peer will answer. */
  sent(): void;
  /** The link started, or resumed after pause(). */
  resumed(): void;
  /** Link.waitSync. */
  waitSync(timeoutNs: number): boolean;
  /** The link is about to close: true, or false to have it wait until `done` is called. */
  settle(done: () => void): boolean;
  /** The link closed (its memory is still mapped). */
  closed(): void;
}

export abstract class ShmLinkBase implements Link, SpinOwner {
  readonly transport = 'shm';
  readonly maxFrame: number;
  readonly peer: PeerCredentials;
  readonly url: string;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  /** Bytes per ring. */
  readonly ringSize: number;
  /** The control words of this side's input ring and output ring. */
  readonly in: RingWords;
  readonly out: RingWords;
  readonly ctrl: ControlSocket;
  readonly spinner: Spinner;
  readonly input: LinkInput;
  readonly #region: SharedRegion;
  // The state below is read by the input; only this class changes it (except peerGone, see RingReceiver.waitSync).
  events: LinkEvents | null = null;
  /** Where message frames go in place while a receiveEach() waits (Link.inPlace), read by the input. */
  sink: InPlaceSink | null = null;
  paused = false;
  /** The control socket ended: the peer is gone (what it wrote is still to be read). */
  peerGone = false;
  finished = false;
  failure: Error | undefined;
  closing: Promise<void> | null = null;
  /** tryWrite() (or loan()) returned false: onWritable() is owed once there is room for wantBytes. */
  protected wantWritable = false;
  protected wantBytes = 0;
  #graceTimer: NodeJS.Timeout | null = null;
  #closeResolve: (() => void) | null = null;

  /** `input` makes this link's input (called once, at the end of construction). */
  constructor(setup: ShmLinkSetup, maxFrame: number, input: (link: ShmLinkBase) => LinkInput) {
    const { region, side } = setup;
    this.#region = region;
    this.url = setup.url;
    this.peer = setup.peer;
    this.maxFrame = maxFrame;
    this.i32 = new Int32Array(region.buffer);
    // Bytes through the plain alias (memcpy-speed copies), control words
    // through the SharedArrayBuffer (Atomics): a seq-cst Atomics.store of
    // the head orders every earlier store before it, whichever buffer it
    // went through, and the reader loads the head before the bytes.
    this.u8 = new Uint8Array(region.plainBuffer);
    this.ringSize = setup.ringSize;
    this.out = ringWords(side === 'connector' ? 0 : 1, this.ringSize);
    this.in = ringWords(side === 'connector' ? 1 : 0, this.ringSize);
    if (side === 'listener') {
      // The peer wrote the control block: take over our own words, so no
      // stale value of it is ever trusted.
      Atomics.store(this.i32, this.out.head, 0);
      Atomics.store(this.i32, this.out.closed, 0);
      Atomics.store(this.i32, this.in.tail, 0);
    }
    this.ctrl = setup.ctrl;
    this.spinner = new Spinner(setup.spinUs, this);
    this.input = input(this);
  }

  abstract tryWrite(header: Uint8Array, body: Uint8Array): boolean;
  /** The frame is copied into the ring by tryWrite(). */
  readonly copiesOnWrite = true;
  /** Whether a frame of `frameLength` bytes could be written now. */
  protected abstract roomFor(frameLength: number): boolean;
  /** Before sleeping with a write blocked: asks to be rung when there is room. */
  protected abstract raiseOutputFlag(): void;
  protected abstract lowerOutputFlag(): void;
  /** The link closed: let go of what the output holds (the memory is still mapped). */
  protected outputClosed(): void {}

  start(events: LinkEvents): void {
    this.events = events;
    // After the handshake the control socket carries only doorbell rings; its end of file is the peer leaving.
    this.ctrl.watch(() => this.#onControl());
    this.spinner.start();
    this.input.resumed();
  }

  #onControl(): void {
    if (this.ctrl.drain() < 0) {
      this.peerGone = true;
      this.ctrl.close();
      this.#finish();
      return;
    }
    this.input.awake();
    this.lowerOutputFlag();
    this.spinner.woken();
    this.input.rang();
  }

  /** One look (SpinOwner): read what arrived, report room to a blocked writer. */
  look(): number {
    // After a failure the link is being torn down: do not touch the ring again
    // (a corrupt record stays unread and would be "available" forever).
    if (this.finished || this.failure) return -1;
    let progress = this.input.read() > 0;
    if (this.wantWritable && this.roomFor(this.wantBytes)) {
      this.wantWritable = false;
      progress = true;
      this.events!.onWritable();
    }
    if (this.finished) return -1;
    if (!(this.input.waiting() && !this.closing) && !this.wantWritable) return -1; // idle: resume()/tryWrite() restart us
    return progress ? 1 : 0;
  }

  /** Raises the sleeping flags and looks once more (SpinOwner). */
  trySleep(): boolean {
    const waitInput = this.input.sleep();
    if (this.wantWritable) this.raiseOutputFlag();
    // Re-check after raising the flags: the peer may have written just before.
    if ((waitInput && this.input.arrived()) || (this.wantWritable && this.roomFor(this.wantBytes))) {
      this.input.awake();
      this.lowerOutputFlag();
      return false;
    }
    return true;
  }

  /** Spinning again without a doorbell (SpinOwner). */
  awake(): void {
    this.input.awake();
  }

  /** Spinning with nothing arriving (SpinOwner): not on the same CPU as a peer that spins too. */
  apart(): boolean {
    return keepApart(this.i32, this.in.consumerCpu, this.out.consumerCpu, this.out.consumerSleeping);
  }

  /** A write did not fit (or the shared ring's lock was busy): wait for room, spinning first. */
  protected blocked(frameLength: number): void {
    this.wantWritable = true;
    this.wantBytes = frameLength;
    const spinner = this.spinner;
    if (!spinner.sleeping) {
      // Spinning, or idle (paused, or a listener fed by its hub, looks at nothing): look for room.
      spinner.restart();
    } else if (spinner.spinUs > 0) spinner.wake();
    // Asleep with spin: false: raise the producer flag (and re-check) as trySleep() does.
    else if (!this.trySleep()) spinner.restart();
  }

  /** We wrote something the peer will answer: spin to see it at once. */
  protected wokeSelf(): void {
    if (this.spinner.sleeping) this.spinner.wake();
    this.input.sent();
  }

  waitSync(timeoutNs: number): boolean {
    return this.input.waitSync(timeoutNs);
  }

  inPlace(sink: InPlaceSink | null): void {
    this.sink = sink;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.spinner.restart();
    this.input.resumed();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      if (this.finished) return resolve();
      this.#closeResolve = resolve;
      Atomics.store(this.i32, this.out.closed, 1);
      this.ctrl.ring();
      // The peer answers our end of file from its event loop by closing its
      // end; if that loop is stuck, cut after a grace period.
      this.#graceTimer = setTimeout(() => {
        this.ctrl.close();
        this.#finish();
      }, CLOSE_GRACE_MS).unref();
      this.ctrl.shutdown();
    });
    return this.closing;
  }

  destroy(error?: Error): void {
    if (error) this.failure ??= error;
    this.ctrl.close();
    // As a socket's 'close' event would: after the code that called us returns.
    process.nextTick(() => this.#finish());
  }

  #finish(): void {
    if (this.finished) return;
    if (!this.failure && !this.input.settle(() => this.#finish())) return;
    // Whatever the peer wrote before it went away is still in the ring.
    if (!this.failure) this.input.read();
    this.finished = true;
    this.spinner.stop();
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.ctrl.close();
    const peerClosed = Atomics.load(this.i32, this.in.closed) === 1;
    const info: CloseInfo = this.failure
      ? { reason: 'error', error: this.failure }
      : this.closing
        ? { reason: 'closed' }
        : peerClosed
          ? { reason: 'peer-closed' }
          : { reason: 'peer-lost' };
    this.input.closed();
    this.outputClosed();
    this.#region.close();
    this.#closeResolve?.();
    this.events?.onClose(info);
  }

  ref(): void {
    this.ctrl.ref();
  }

  unref(): void {
    this.ctrl.unref();
  }
}
