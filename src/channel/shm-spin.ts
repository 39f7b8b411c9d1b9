// The adaptive wait of the shm: transport, shared by a connection (shm-link.ts)
// and by the reader of a shared ring (shm-hub.ts): after any activity keep
// looking at the ring(s) for `spinUs` microseconds, one look per microtask
// hop so the process's own code keeps running in between; then raise the
// "sleeping" flags, look once more, and sleep until a doorbell (watched by
// uv_poll) wakes us.
import { performance } from 'node:perf_hooks';
import { native } from '../core/native.js';

const SETTLED = Promise.resolve();
/** Longest run of microtask-driven pumping before yielding to the event loop once. */
const MAX_SLICE_US = 2000;
/** Microtask hops between clock readings while spinning (a hop costs ~0.15 µs, performance.now() ~0.06 µs). */
const HOPS_PER_CLOCK = 32;

export interface SpinOwner {
  /**
   * One look: delivers what arrived. 1 = something happened, 0 = nothing,
   * -1 = nothing to wait for (finished, or idle until resume()/a write restarts us).
   */
  look(): number;
  /** Raises the sleeping flag(s) and looks once more: true = asleep, false = something arrived (flags lowered again). */
  trySleep(): boolean;
  /** Lowers the consumer's sleeping flag: we are spinning again without a doorbell. */
  awake(): void;
  /** Nothing arrived for a while: tells the peer our CPU and moves off the peer's if we share it (shm-apart.ts). True if we moved. */
  apart?(): boolean;
}

export class Spinner {
  readonly spinUs: number;
  readonly #owner: SpinOwner;
  /** Asleep: only a doorbell (or wake()) runs the owner's look() again. */
  sleeping = false;
  #scheduled = false;
  #stopped = false;
  #lastActivity = 0;
  /** Progress since the clock was last read (lastActivity is stamped at the next reading). */
  #fresh = false;
  #hops = 0;
  #sliceStart = 0;

  constructor(spinUs: number, owner: SpinOwner) {
    this.spinUs = spinUs;
    this.#owner = owner;
  }

  start(): void {
    this.#lastActivity = performance.now();
    this.schedule();
  }

  stop(): void {
    this.#stopped = true;
  }

  /** Looks again soon (idempotent). */
  schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    // A reaction on a settled promise: a quarter of queueMicrotask()'s cost
    // (Node wraps each of those in an AsyncResource), and the spin is one hop per look.
    SETTLED.then(this.#task);
  }

  readonly #task = (): void => {
    this.#scheduled = false;
    try {
      this.run();
    } catch (e) {
      // Thrown by code we delivered to: an uncaught exception, as from queueMicrotask.
      queueMicrotask(() => {
        throw e;
      });
    }
  };

  readonly #immediateTask = (): void => {
    this.#scheduled = false;
    this.#sliceStart = performance.now();
    this.run();
  };

  /** A doorbell rang (its flags are already lowered by the owner): look now, and spin again. */
  woken(): void {
    this.sleeping = false;
    this.#lastActivity = performance.now();
    this.#sliceStart = this.#lastActivity;
    this.run();
  }

  /** Restarts after idling (resume()) or a blocking wait: spin again from now. */
  restart(): void {
    this.#lastActivity = performance.now();
    this.#sliceStart = this.#lastActivity;
    this.sleeping = false;
    this.schedule();
  }

  /** We just did something the peer will answer: spin again if asleep, so the answer is seen at once. */
  wake(): void {
    this.#lastActivity = performance.now();
    if (this.sleeping && this.spinUs > 0) {
      this.sleeping = false;
      this.#owner.awake();
      this.#sliceStart = this.#lastActivity;
      this.schedule();
    }
  }

  run(): void {
    if (this.#stopped) return;
    const r = this.#owner.look();
    if (r < 0 || this.#stopped) return;
    if (r > 0) this.#fresh = true;
    if (this.spinUs === 0) return this.#sleep();
    // Spinning: one look per microtask hop, queued behind the code we just
    // delivered to (and its awaits), so a reply written by that code goes
    // out before we look again. The clock is read every few hops only
    // (performance.now() costs about half a hop).
    if (++this.#hops < HOPS_PER_CLOCK) return this.schedule();
    this.#hops = 0;
    const now = performance.now();
    const hadProgress = this.#fresh;
    if (hadProgress) {
      this.#lastActivity = now;
      this.#fresh = false;
    } else if ((now - this.#lastActivity) * 1000 >= this.spinUs) return this.#sleep();
    // Nothing for a while: let a peer that shares our core run. A doorbell
    // wake-up tends to put the woken peer on the waker's core; spinning
    // without yielding then starves the very process we wait for (measured:
    // round trip = 2 x the spin budget). With a free core it returns at once.
    // Two spinning peers on one CPU would hand it to each other like that
    // for good: the owner moves us off the peer's CPU (then we run alone).
    if (!hadProgress && !this.#owner.apart?.()) native.ringYield();
    if ((now - this.#sliceStart) * 1000 > MAX_SLICE_US) {
      this.#scheduled = true;
      setImmediate(this.#immediateTask);
    } else this.schedule();
  }

  #sleep(): void {
    this.#hops = 0;
    if (this.#owner.trySleep()) {
      this.sleeping = true;
      this.#sliceStart = 0;
    } else {
      this.#lastActivity = performance.now();
      this.schedule();
    }
  }
}
