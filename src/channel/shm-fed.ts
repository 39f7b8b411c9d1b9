// The input of a listener-side shm: connection when the listener has a
// shared ring: the connector writes into that ring, not into this
// connection's ring 0, and the listener's hub (shm-hub.ts) reads it and
// hands this connection its frames. The connection itself only looks at
// whether it can write (its answers go through its ring 1, RingSenderLink).
import { Buffer } from 'node:buffer';
import { stateError } from '../core/errors.js';
import type { InPlaceSink } from './link.js';
import type { HubFed, SharedRingHub } from './shm-hub.js';
import type { LinkInput, ShmLinkBase } from './shm-link.js';

export class HubFedInput implements LinkInput, HubFed {
  readonly slot: number;
  readonly #link: ShmLinkBase;
  readonly #hub: SharedRingHub;
  /** The hub has delivered everything this peer wrote before it went away. */
  #drained = false;

  constructor(link: ShmLinkBase, hub: SharedRingHub, slot: number) {
    this.#link = link;
    this.#hub = hub;
    this.slot = slot;
    // Attached before the connector hears its slot, so no frame of it is
    // dropped as "nobody's"; the hub waits at them until start().
    hub.attach(this);
  }

  /** The hub stops at this peer's next frame while this is true (HubFed). */
  get blocksHub(): boolean {
    const link = this.#link;
    return (link.paused || link.events === null) && !link.peerGone && !link.finished;
  }

  /** A frame the hub read for this peer (HubFed): owned bytes at buffer[start..end). */
  deliverAt(buffer: Buffer, start: number, end: number): void {
    if (!this.#link.finished) this.#link.events?.onFrameAt(buffer, start, end);
  }

  /** Where this peer's messages go in place while a receiveEach() waits (HubFed). */
  get sink(): InPlaceSink | null {
    return this.#link.finished ? null : this.#link.sink;
  }

  /** The sink took its last message (HubFed): the next go the usual way. */
  sinkFull(): void {
    this.#link.sink = null;
  }

  /** A large frame the hub copied out for this peer (HubFed). */
  deliver(frame: Uint8Array): void {
    if (!this.#link.finished) this.#link.events?.onFrame(frame, true);
  }

  /** The hub freed room in the shared ring (HubFed): wake this peer if it sleeps waiting for it. */
  wakeSharedProducer(): boolean {
    const link = this.#link;
    if (Atomics.compareExchange(link.i32, link.in.producerSleeping, 1, 0) !== 1) return false;
    link.ctrl.ring();
    return true;
  }

  /** The hub failed (HubFed): so does this connection. */
  destroy(error?: Error): void {
    this.#link.destroy(error);
  }

  /** The hub reads, not the link's looks. */
  read(): number {
    return 0;
  }

  waiting(): boolean {
    return false;
  }

  sleep(): boolean {
    return false;
  }

  arrived(): boolean {
    return false;
  }

  awake(): void {}

  /** The connector rings this connection's control socket for the hub too. */
  rang(): void {
    this.#hub.bell();
  }

  /** We wrote something the peer will answer: the hub spins to see it at once. */
  sent(): void {
    this.#hub.wake();
  }

  resumed(): void {
    this.#hub.resumed(this.slot);
  }

  waitSync(): boolean {
    throw stateError('ERR_IPCKIT_UNSUPPORTED', 'nextSync() is not available on a listener with a shared ring (its hub reads on the event loop)');
  }

  /** What the peer wrote before it went away may still be in the shared ring: close once the hub has read past it. */
  settle(done: () => void): boolean {
    if (this.#drained) return true;
    this.#hub.drainFor(this.slot, () => {
      this.#drained = true;
      done();
    });
    return false;
  }

  closed(): void {
    this.#hub.detach(this);
  }
}
