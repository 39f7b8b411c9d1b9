// Stream transports on Node's own `net` (epoll, no threadpool): unix:/path,
// unix-abstract:NAME, tcp://host:port, and pipe:FD (an inherited socketpair
// or pipe descriptor). Each frame goes out as u32-LE length + frame; the
// first frame each way is the hello (hello.ts).
import type { Socket } from 'node:net';
import { stateError, timeoutError } from '../core/errors.js';
import type { PeerCredentials } from './access.js';
import { HELLO_MAX, KIND_BYE, KIND_HELLO, KIND_PING, StreamFramer } from './frame.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';

/** Bytes queued in the socket before tryWrite() says "not now". */
const WRITE_HIGH_WATER = 256 * 1024;
/** Below this, length prefix and frame go out as one buffer (one copy beats two writes). */
const COALESCE_LIMIT = 64 * 1024;
/** Frames at least this long are handed to the Channel without a copy (see pushFrames()). */
const OWN_LIMIT = 16 * 1024;
/** How long close() waits for the peer to finish its side before destroying the socket. */
export const CLOSE_GRACE_MS = 2000;

/** The length-prefixed bye frame a stream's clean close ends with (EOF without it: the peer died). */
export const BYE = Buffer.from([1, 0, 0, 0, KIND_BYE]);
/** The length-prefixed heartbeat (tcp://, tls://). */
const PING = Buffer.from([1, 0, 0, 0, KIND_PING]);

/**
 * Heartbeats of a network link, as both hellos agreed: a ping after
 * `interval` ms without sending, peer-lost after `lostAfter` ms without
 * receiving.
 */
export interface Liveness {
  interval: number;
  lostAfter: number;
  /** Names the channel in the peer-lost error's cause. */
  url: string;
}

/**
 * Cuts a chunk read from a byte stream (unix:, tcp:, pipe:, fifo:) into
 * frames for `events`; the bye frame calls `bye()` instead. Throws on a bad
 * frame. A large frame may be kept as it is (no second copy by the raw
 * codec): it is most of the chunk it lives in, so holding it costs little
 * extra memory. Small frames are copied so that they do not pin a whole
 * 64 KiB read buffer each.
 */
/** A hello as a frame: length-prefixed for byte streams, bare for seqpacket: (one message per frame). */
export function helloFrame(value: object, prefixed = true): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const frame = Buffer.allocUnsafe((prefixed ? 4 : 0) + 1 + json.length);
  let at = 0;
  if (prefixed) at = frame.writeUInt32LE(1 + json.length, 0);
  frame[at] = KIND_HELLO;
  json.copy(frame, at + 1);
  return frame;
}

/** The JSON object of a hello frame (kind byte + JSON); throws ERR_IPCKIT_HANDSHAKE if it is none. */
export function parseHello(frame: Uint8Array, what: string): Record<string, unknown> {
  if (frame.length < 2 || frame[0] !== KIND_HELLO || frame.length > HELLO_MAX) {
    throw stateError('ERR_IPCKIT_HANDSHAKE', `${what}: the peer did not open with an ipckit channel hello (protocol 2); is it an ipckit channel of the same version?`);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(frame.buffer, frame.byteOffset + 1, frame.length - 1).toString('utf8'));
  } catch {
    value = null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw stateError('ERR_IPCKIT_HANDSHAKE', `${what}: malformed hello`);
  return value as Record<string, unknown>;
}

/** What a hello is read from: a net.Socket ('data') or a MessageSocket ('message'). */
interface HelloSource {
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/**
 * Feeds what arrives on `source` as `event` to `take` until it returns a
 * result (or throws), within `timeoutMs`; the peer hanging up first is
 * ERR_IPCKIT_HANDSHAKE, the time running out IpcError ETIMEDOUT. Leaves the
 * source paused, so nothing after the hello is read before the link starts.
 */
export function readFirst<R>(source: HelloSource, event: string, take: (chunk: Buffer) => R | undefined, what: string, timeoutMs: number): Promise<R> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, value?: R) => {
      clearTimeout(timer);
      source.pause();
      source.off(event, onChunk);
      source.off('end', onEnd);
      source.off('close', onEnd);
      source.off('error', onError);
      if (error) reject(error);
      else resolve(value!);
    };
    const onChunk = (chunk: Buffer) => {
      try {
        const r = take(chunk);
        if (r !== undefined) done(null, r);
      } catch (e) {
        done(e as Error);
      }
    };
    const onEnd = () => done(stateError('ERR_IPCKIT_HANDSHAKE', `${what}: the peer hung up during the handshake`));
    const onError = (e: Error) => done(e);
    const syscall = event === 'message' ? 'recvmsg' : 'read';
    const timer = setTimeout(() => done(timeoutError(syscall, { path: what }, `no hello within ${timeoutMs} ms`)), timeoutMs);
    source.on(event, onChunk);
    source.on('end', onEnd);
    source.on('close', onEnd);
    source.on('error', onError);
    source.resume();
  });
}

/**
 * Reads the first frame of a byte stream, which must be a hello, within
 * `timeoutMs` and at most HELLO_MAX bytes, and returns it with the bytes
 * that came after it (for the link to read first).
 */
export function readHello(socket: Socket, what: string, timeoutMs: number): Promise<{ value: Record<string, unknown>; rest: Buffer }> {
  let buffered: Buffer = Buffer.alloc(0);
  return readFirst(
    socket,
    'data',
    (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (buffered.length < 4) return undefined;
      const len = buffered.readUInt32LE(0);
      if (len < 2 || len > HELLO_MAX) throw stateError('ERR_IPCKIT_HANDSHAKE', `${what}: the peer did not open with an ipckit channel hello (protocol 2)`);
      if (buffered.length < 4 + len) return undefined;
      return { value: parseHello(buffered.subarray(4, 4 + len), what), rest: buffered.subarray(4 + len) };
    },
    what,
    timeoutMs,
  );
}

export function pushFrames(framer: StreamFramer, chunk: Buffer | null, events: LinkEvents, bye: () => void, held?: () => boolean): void {
  const onFrame = (frame: Buffer) => {
    if (frame.length === 1 && frame[0] === KIND_BYE) bye();
    else if (frame.length === 1 && frame[0] === KIND_PING) return;
    else events.onFrame(frame, frame.length >= OWN_LIMIT);
  };
  if (chunk) framer.push(chunk, onFrame, held);
  else framer.cut(onFrame, held);
}

export class StreamLink implements Link {
  readonly transport: string;
  readonly maxFrame: number;
  readonly peer: PeerCredentials | null;
  readonly #socket: Socket;
  #rest: Buffer | null;
  readonly #framer: StreamFramer;
  #events: LinkEvents | null = null;
  #wantWritable = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #paused = false;
  #peerSaidBye = false;
  readonly #saidBye = (): void => {
    this.#peerSaidBye = true;
  };
  /** Frames in Node's write buffer until the kernel took them (the write callback says so). */
  readonly #tickets = new WriteTickets();
  readonly #wrote = (error?: Error | null): void => {
    if (!error) this.#tickets.written(this.#events, 1);
  };

  /**
   * `maxIn`: largest frame accepted (this side's own limit); `maxOut`: largest
   * frame sent (the peer's); `rest`: bytes that arrived after the hello.
   */
  constructor(transport: string, socket: Socket, maxIn: number, maxOut: number, rest: Buffer | null, peer: PeerCredentials | null, liveness: Liveness | null = null) {
    this.transport = transport;
    this.#socket = socket;
    this.maxFrame = maxOut;
    this.peer = peer;
    this.#rest = rest && rest.length > 0 ? rest : null;
    this.#framer = new StreamFramer(maxIn);
    this.#liveness = liveness;
    socket.setNoDelay?.(true);
  }

  readonly #liveness: Liveness | null;
  #beat: NodeJS.Timeout | null = null;

  /**
   * One timer per link, a quarter of the shorter bound: nothing is done per
   * message. Progress is read from the socket's own byte counters at each
   * tick. A receiver paused by backpressure reads nothing, so it cannot tell
   * a quiet peer from a lost one: the bound restarts when it reads again (the
   * peer, whose sends then wait, still hears this side's pings).
   */
  #startHeartbeat(l: Liveness): void {
    const s = this.#socket;
    let read = s.bytesRead;
    let written = s.bytesWritten;
    let heard = Date.now();
    let said = heard;
    this.#beat = setInterval(() => {
      if (this.#closed) return this.#stopHeartbeat();
      const now = Date.now();
      if (s.bytesRead !== read || this.#paused) {
        read = s.bytesRead;
        heard = now;
      } else if (now - heard >= l.lostAfter) {
        this.#stopHeartbeat();
        return void s.destroy(timeoutError('read', { path: l.url }, `nothing from the peer for ${now - heard} ms (heartbeat timeout ${l.lostAfter} ms)`));
      }
      if (s.bytesWritten !== written) {
        written = s.bytesWritten;
        said = now;
      } else if (now - said >= l.interval && s.writableLength === 0) {
        s.write(PING);
        written = s.bytesWritten;
        said = now;
      }
    }, Math.max(1, Math.floor(Math.min(l.interval, l.lostAfter) / 4)));
    this.#beat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#beat) clearInterval(this.#beat);
    this.#beat = null;
  }

  start(events: LinkEvents): void {
    this.#events = events;
    const s = this.#socket;
    let endedCleanly = false;
    let failure: Error | undefined;
    const onData = (chunk: Buffer | null) => {
      try {
        pushFrames(this.#framer, chunk, events, this.#saidBye, this.#held);
      } catch (e) {
        this.destroy(e as Error);
      }
    };
    this.#cutHeld = () => onData(null);
    // What came right after the hello goes first (queued before the socket's own next read).
    const rest = this.#rest;
    this.#rest = null;
    if (rest) process.nextTick(() => this.#closed || onData(rest));
    s.on('data', onData);
    s.on('drain', () => {
      if (this.#wantWritable) {
        this.#wantWritable = false;
        events.onWritable();
      }
    });
    s.on('end', () => {
      // Nothing more comes: frames held back by a pause are delivered now (they were read already).
      try {
        pushFrames(this.#framer, null, events, this.#saidBye);
      } catch (e) {
        this.destroy(e as Error);
      }
      // EOF is clean only after the peer's bye: a killed process's socket also ends with a FIN.
      endedCleanly = this.#peerSaidBye && this.#framer.pending === 0;
      // Half-close from the peer: finish our side too.
      if (!this.#closed) s.end();
    });
    s.on('error', (e) => {
      failure = e;
    });
    s.on('close', () => {
      this.#stopHeartbeat();
      const wasClosed = this.#closed;
      this.#closed = true;
      if (this.#failure) return this.#finish({ reason: 'error', error: this.#failure });
      if (wasClosed && this.#closing) return this.#finish({ reason: 'closed' });
      if (endedCleanly && !failure) return this.#finish({ reason: 'peer-closed' });
      // EOF without the bye, ECONNRESET, EPIPE, ETIMEDOUT...: what the socket saw becomes the cause.
      this.#finish({ reason: 'peer-lost', ...(failure ? { error: failure } : {}) });
    });
    if (!this.#paused) s.resume();
    if (this.#liveness) this.#startHeartbeat(this.#liveness);
  }

  #failure: Error | undefined;
  #finished = false;
  #finish(info: CloseInfo): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#events?.onClose(info);
  }

  // A run of frames (sendBatch, a flush) goes to the kernel in one writev.
  cork(): void {
    this.#socket.cork();
  }

  uncork(): void {
    this.#socket.uncork();
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    const s = this.#socket;
    if (this.#closed || s.writableLength >= WRITE_HIGH_WATER) {
      this.#wantWritable = true;
      return false;
    }
    const len = header.byteLength + body.byteLength;
    this.#tickets.accepted();
    if (len < COALESCE_LIMIT) {
      const buf = Buffer.allocUnsafe(4 + len);
      buf.writeUInt32LE(len, 0);
      buf.set(header, 4);
      buf.set(body, 4 + header.byteLength);
      s.write(buf, this.#wrote);
    } else {
      const prefix = Buffer.allocUnsafe(4 + header.byteLength);
      prefix.writeUInt32LE(len, 0);
      prefix.set(header, 4);
      s.cork();
      s.write(prefix);
      // A copy: the caller may reuse its buffer once send() resolves.
      s.write(Buffer.from(body), this.#wrote);
      s.uncork();
    }
    return true;
  }

  unwritten(): number {
    return this.#tickets.unwritten(this.#socket.writableLength > 0);
  }

  pause(): void {
    if (!this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  resume(): void {
    if (this.#paused) {
      this.#paused = false;
      // Frames read before the pause come first.
      this.#cutHeld?.();
      if (!this.#paused) this.#socket.resume();
    }
  }

  readonly #held = (): boolean => this.#paused && !this.#closed;
  #cutHeld: (() => void) | null = null;

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      if (this.#socket.destroyed) return resolve();
      // A peer that never reads (paused, or its loop is stuck) never sees our
      // FIN and never ends its side: give it a grace period, then cut.
      const timer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#closed = true;
      this.#stopHeartbeat();
      this.#socket.end(BYE);
      // Keep reading so the peer's FIN (and its last frames) arrive.
      this.resume();
    });
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (error && !this.#failure) this.#failure = error;
    this.#closed = true;
    this.#stopHeartbeat();
    this.#socket.destroy();
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }
}
