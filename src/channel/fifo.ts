// fifo: transport, one way: the listener creates a named pipe (mkfifo, mode
// 0600) and reads; a connector opens it for writing (src/pipes/fifo.ts: a waiter
// thread does the blocking open, with timeout and AbortSignal). Frames are
// length-prefixed as on stream transports (frame.ts), and a clean close
// writes the one-byte "bye" frame before EOF, so EOF without it is a killed
// writer ('peer-lost'). A writer learns that the reader is gone at its next
// write (EPIPE → 'peer-lost'): a write-only pipe end has nothing to poll.
//
// One writer at a time: the listener yields one channel per writer session
// (open .. EOF), then reopens the FIFO for the next. Two writers at once
// would interleave their bytes in the one pipe, which no framing survives.
import { unlinkSync } from 'node:fs';
import { create as fifoCreate, isFifo, open as fifoOpen } from '../pipes/fifo.js';
import type { FdStream } from '../core/fd-stream.js';
import { fstatSync } from 'node:fs';
import type { Access } from './access.js';
import { Access as AccessPolicy } from './access.js';
import { StreamFramer } from './frame.js';
import { Refusal, checkHello, makeHello } from './hello.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';
import { HANDSHAKE_MS } from './control.js';
import { BYE, CLOSE_GRACE_MS, helloFrame, pushFrames, readHello } from './stream.js';

const WRITE_HIGH_WATER = 256 * 1024;

export class FifoLink implements Link {
  readonly transport = 'fifo';
  readonly maxFrame: number;
  readonly direction: 'send' | 'receive';
  readonly #stream: FdStream;
  readonly #framer: StreamFramer;
  readonly #onDown: (() => void) | undefined;
  #events: LinkEvents | null = null;
  #wantWritable = false;
  #closing: Promise<void> | null = null;
  #failure: Error | undefined;
  #peerGone = false;
  #peerSaidBye = false;
  readonly #saidBye = (): void => {
    this.#peerSaidBye = true;
  };
  #finished = false;
  /** Frames in Node's write buffer until the kernel took them (the write callback says so). */
  readonly #tickets = new WriteTickets();
  readonly #wrote = (error?: Error | null): void => {
    if (!error) this.#tickets.written(this.#events, 1);
  };

  /** `maxFrame`: the writer's largest frame sent, the reader's largest accepted; `rest`: bytes that came after the hello. */
  constructor(direction: 'send' | 'receive', stream: FdStream, maxFrame: number, onDown?: () => void, rest?: Buffer) {
    this.direction = direction;
    this.#stream = stream;
    this.maxFrame = maxFrame;
    this.#framer = new StreamFramer(maxFrame);
    this.#onDown = onDown;
    this.#rest = rest && rest.length > 0 ? rest : null;
  }

  #rest: Buffer | null;
  /** A FIFO cannot tell who writes into it (its file mode decides who may). */
  readonly peer = null;

  start(events: LinkEvents): void {
    this.#events = events;
    const s = this.#stream;
    if (this.direction === 'receive') {
      const onData = (chunk: Buffer) => {
        try {
          pushFrames(this.#framer, chunk, events, this.#saidBye);
        } catch (e) {
          this.destroy(e as Error);
        }
      };
      const rest = this.#rest;
      this.#rest = null;
      if (rest) process.nextTick(() => this.#finished || onData(rest));
      s.on('data', onData);
      s.resume();
      s.on('end', () => {
        this.#peerGone = true;
        s.destroy();
      });
    } else {
      s.on('drain', () => {
        if (this.#wantWritable) {
          this.#wantWritable = false;
          events.onWritable();
        }
      });
    }
    s.on('error', (e: NodeJS.ErrnoException) => {
      // EPIPE: every reader has gone. That is the peer leaving, not a failure of ours.
      if (e.code === 'EPIPE') this.#peerGone = true;
      else if (!this.#failure) this.#failure = e;
    });
    s.on('close', () => {
      if (this.#failure) return this.#finish({ reason: 'error', error: this.#failure });
      if (this.#closing && !this.#peerGone) return this.#finish({ reason: 'closed' });
      if (this.#peerGone && this.#peerSaidBye && this.#framer.pending === 0) return this.#finish({ reason: 'peer-closed' });
      if (this.#closing) return this.#finish({ reason: 'closed' });
      this.#finish({ reason: 'peer-lost' });
    });
  }

  #finish(info: CloseInfo): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#events?.onClose(info);
    this.#onDown?.();
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    const s = this.#stream;
    if (this.#closing || s.destroyed || s.writableLength >= WRITE_HIGH_WATER) {
      this.#wantWritable = true;
      return false;
    }
    const len = header.byteLength + body.byteLength;
    const buf = Buffer.allocUnsafe(4 + len);
    buf.writeUInt32LE(len, 0);
    buf.set(header, 4);
    buf.set(body, 4 + header.byteLength);
    this.#tickets.accepted();
    s.write(buf, this.#wrote);
    return true;
  }

  unwritten(): number {
    return this.#tickets.unwritten(this.#stream.writableLength > 0);
  }

  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    if (this.direction === 'receive') this.#stream.resume();
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      const s = this.#stream;
      if (s.destroyed) return resolve();
      s.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // A reader that stopped reading would hold our last bytes forever: cut after a grace period.
      const timer = setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
      if (this.direction === 'send') s.end(BYE);
      else s.destroy();
    });
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (error && !this.#failure) this.#failure = error;
    this.#stream.destroy();
  }

  ref(): void {
    this.#stream.ref();
  }

  unref(): void {
    this.#stream.unref();
  }
}

export interface FifoServerHandle {
  close(): void;
  ref(): void;
  unref(): void;
}

/** What the fifo: ends need besides the path. */
export interface FifoSettings {
  codec: string;
  maxMessageSize: number;
  /** Reader: anyone may write (FIFO mode 0o622) instead of this user and root (0o600). */
  anyWriter?: boolean;
  /** Writer: which owners of the FIFO (the reader's user) to trust. */
  access?: Access;
}

/**
 * Creates the FIFO (a stale one left by a killed listener is reused) and
 * serves writers one after another until close(), which removes the FIFO
 * unless `unlinkOnClose` is false. Each writer opens with its hello frame;
 * one that does not (or names another codec) is cut and the next is served.
 */
export function listenFifo(path: string, s: FifoSettings, unlinkOnClose: boolean, onLink: (link: FifoLink) => void, onError: (e: Error) => void): FifoServerHandle {
  fifoCreate(path, { mode: s.anyWriter ? 0o622 : 0o600, existOk: true });
  const url = `fifo:${path}`;
  const maxFrame = s.maxMessageSize + 5;
  const abort = new AbortController();
  let closed = false;
  void (async () => {
    while (!closed) {
      let stream: FdStream;
      try {
        stream = await fifoOpen(path, 'r', { signal: abort.signal });
      } catch (e) {
        if (!closed) onError(e as Error);
        return;
      }
      if (closed) {
        stream.destroy();
        return;
      }
      let rest: Buffer;
      try {
        const hello = await readHello(stream, url, HANDSHAKE_MS);
        checkHello(hello.value, 'fifo', s.codec);
        rest = hello.rest;
      } catch (e) {
        stream.destroy();
        if (!closed) onError(e instanceof Refusal ? Object.assign(new Error(`${url}: cut a writer: ${e.message}`), { code: 'ERR_IPCKIT_HANDSHAKE' }) : (e as Error));
        continue;
      }
      await new Promise<void>((down) => onLink(new FifoLink('receive', stream, maxFrame, down, rest)));
    }
  })();
  return {
    close() {
      if (closed) return;
      closed = true;
      abort.abort();
      if (unlinkOnClose && isFifo(path)) {
        try {
          unlinkSync(path);
        } catch {}
      }
    },
    ref() {},
    unref() {},
  };
}

/**
 * Opens the FIFO for writing (waiting for a reader), checks who owns it (the
 * reader's user: this one, root, or one `access` allows), and sends the hello.
 * The reader's limits cannot be learnt (a FIFO is one-way): the writer's own
 * maxMessageSize is what it sends at most.
 */
export async function connectFifo(path: string, s: FifoSettings, options: { timeout?: number; signal?: AbortSignal }): Promise<FifoLink> {
  const stream = await fifoOpen(path, 'w', options);
  try {
    const owner = fstatSync(stream.fd);
    if (!(s.access ?? AccessPolicy.from({})).allows({ pid: 0, uid: owner.uid, gid: owner.gid })) {
      throw AccessPolicy.refused(`fifo:${path}`, 'open', `the FIFO belongs to uid ${owner.uid}, which this side's allowUids/allowGids do not allow`);
    }
    stream.write(helloFrame(makeHello('fifo', s.codec, s.maxMessageSize)));
  } catch (e) {
    stream.destroy();
    throw e;
  }
  return new FifoLink('send', stream, s.maxMessageSize + 5);
}
