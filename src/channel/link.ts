import type { PeerCredentials } from './access.js';

// The contract between a Channel and a transport. A link moves opaque frames
// (see frame.ts) in order, reliably, with flow control in both directions;
// the Channel adds codecs, request-reply and the async-iterator API on top.

export type CloseReason =
  /** close() on this side. */
  | 'closed'
  /** The peer closed its side cleanly. */
  | 'peer-closed'
  /**
   * The peer went away without closing: killed, crashed, or the connection
   * broke. A link may give what it saw as `error`; the Channel reports an
   * ERR_IPCKIT_PEER_LOST error with it as the cause, on every transport.
   */
  | 'peer-lost'
  /** A protocol or system error on this channel (see `error`). */
  | 'error';

export interface CloseInfo {
  reason: CloseReason;
  error?: Error;
}

/** A received message left in shared memory: read it, then release() it to give the space back. */
export type LoanedView = Uint8Array & { release(): void };

/**
 * Takes message frames in place for Channel.receiveEach() with `inPlace`
 * (Link.inPlace): no Buffer is made per message.
 */
export interface InPlaceSink {
  /**
   * One message (kind 0) at bytes[start..end), valid only during the call:
   * the link gives the space back once it returns. false: the sink takes no
   * more (the link stops handing it messages; the next stay where they are).
   */
  message(bytes: Buffer, start: number, end: number): boolean;
  /** The read that handed it messages is over (a link that does not call it: a microtask later). */
  end(): void;
}

export interface LinkEvents {
  /**
   * One frame. Unless `owned`, it may be a view into memory that is reused
   * after the call returns; `owned` frames are fresh and may be kept as they are.
   */
  onFrame(frame: Uint8Array, owned?: boolean, loaned?: LoanedView): void;
  /**
   * A frame at buffer[start..end): owned (the default: the shm: link copies
   * runs of small frames out at once), or, with `owned` false, in memory
   * that may be reused after the call (a NATS message past its link header).
   * A view per frame would add to the per-message cost.
   */
  onFrameAt(buffer: Uint8Array, start: number, end: number, owned?: boolean): void;
  /** tryWrite() returned false earlier and there is room again. */
  onWritable(): void;
  /**
   * Every frame up to ticket `upTo` (see Link.unwritten) is in the kernel
   * now. Called in order, while a ticket the link handed out is outstanding.
   */
  onWritten(upTo: number): void;
  /** The link is down; called once. No onFrame after it. */
  onClose(info: CloseInfo): void;
}

export interface Link {
  /** The transport scheme, e.g. 'unix', 'shm'. */
  readonly transport: string;
  /** One-way transports (fifo:): the only direction this end has. Absent: both. */
  readonly direction?: 'send' | 'receive';
  /** Largest frame (header + payload) this link sends: the peer's limit, and what the transport carries. */
  readonly maxFrame: number;
  /** Who is at the other end (SO_PEERCRED), where the kernel can tell. */
  readonly peer?: PeerCredentials | null;
  /** Installs the receiver; frames start flowing after this call. */
  start(events: LinkEvents): void;
  /** Writes header+body as one frame if there is room now; false (nothing written) otherwise. */
  tryWrite(header: Uint8Array, body: Uint8Array): boolean;
  /** tryWrite() has copied the body when it returns true (into a ring, the kernel, a frame of its own): the caller may reuse it at once. */
  readonly copiesOnWrite?: boolean;
  /**
   * Optional, for links whose tryWrite() may accept a frame into a userspace
   * buffer (Node's socket write buffer, a queue message waiting for room):
   * 0 when every frame accepted so far is in the kernel, else a ticket that
   * LinkEvents.onWritten() reaches once they all are. A frame only in this
   * process's memory dies with it; one in the kernel (or the shm: ring, which
   * has no such method) reaches the peer. A link that goes down before its
   * frames are written closes instead.
   */
  unwritten?(): number;
  /**
   * Optional (shm:): until uncork(), frames written by tryWrite() are placed
   * but not yet made visible to the peer, so a run of them costs one publish
   * and at most one wake-up. A frame that does not fit publishes the ones
   * before it, so cork() never holds back data the peer could be reading.
   */
  cork?(): void;
  uncork?(): void;
  /**
   * Zero-copy send (shm: only): a writable view of `size` bytes inside the
   * ring, or null when there is no room yet (onWritable follows). A link
   * without it (a shm: connector of a shared ring too) gets a Buffer from
   * the Channel, sent by publish().
   */
  loan?(size: number): Uint8Array | null;
  /** Makes the loaned view (its first `length` bytes) visible to the peer. */
  publish?(view: Uint8Array, length: number): void;
  /**
   * Optional (shm:): blocks the calling thread until at least one frame was
   * delivered (true) or the peer hung up with nothing left to read (false);
   * throws IpcError ETIMEDOUT after timeoutNs (< 0: no limit).
   */
  waitSync?(timeoutNs: number): boolean;
  /**
   * Optional (shm:): while `sink` is set, message frames go to it in place
   * (a view of the ring or of the run already copied out) instead of to
   * onFrame/onFrameAt, until it returns false; null takes it away. Other
   * frames (requests, replies) go to the events as usual, in order.
   */
  inPlace?(sink: InPlaceSink | null): void;
  /** Stop / restart delivering frames (receiver backpressure). */
  pause(): void;
  resume(): void;
  /** Graceful close: frames already written still reach the peer. Resolves when done. */
  close(): Promise<void>;
  /** Immediate teardown after an error. */
  destroy(error?: Error): void;
  /** Keep the process alive for this link (default) or not. */
  ref(): void;
  unref(): void;
}

/**
 * The bookkeeping behind Link.unwritten() / LinkEvents.onWritten(): frames
 * accepted (a ticket is that count) and frames the kernel took, in order.
 */
export class WriteTickets {
  #accepted = 0;
  #written = 0;
  /** A ticket is outstanding: report progress until the kernel has caught up. */
  #watched = false;

  /** tryWrite() accepted a frame. */
  accepted(): void {
    this.#accepted++;
  }

  /** 0 when nothing accepted is still in userspace (`pending` false), else the ticket of the last frame. */
  unwritten(pending: boolean): number {
    if (!pending || this.#written >= this.#accepted) return 0;
    this.#watched = true;
    return this.#accepted;
  }

  /** The kernel took the next `n` frames (all of them: `n` omitted). */
  written(events: LinkEvents | null, n = this.#accepted - this.#written): void {
    this.#written += n;
    if (!this.#watched) return;
    if (this.#written >= this.#accepted) this.#watched = false;
    events?.onWritten(this.#written);
  }
}
