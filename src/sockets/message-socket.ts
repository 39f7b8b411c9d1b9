// Message-oriented Unix sockets (SOCK_SEQPACKET, SOCK_DGRAM): every send is
// one message, boundaries preserved, optionally carrying descriptors
// (SCM_RIGHTS). net.Socket refuses SOCK_SEQPACKET and SOCK_DGRAM descriptors
// (ERR_INVALID_FD_TYPE), so readiness comes from the uv_poll watcher (src/core/poller.ts) and data moves
// with non-blocking sendmsg/recvmsg (native/sockets_unix.c, MSG_NOSIGNAL: a vanished
// peer is an EPIPE error, never a SIGPIPE).
//
// Received descriptors belong to the 'message' listener only if it calls
// info.takeFds(); all others are closed right after the listeners return, so
// ignoring them never leaks.
import { EventEmitter } from 'node:events';
import { IpcError, rangeError, stateError, sys, typeError, errno } from '../core/errors.js';
import { native } from '../core/native.js';
import { READABLE, WRITABLE, watchFd, type FdWatcher } from '../core/poller.js';
import type { SocketFile } from './socket-file.js';
import { decodeAddress, encodeAddress, type UnixAddress } from './unix-address.js';
import { checkInteger, checkOptions, show } from '../core/validate.js';

/**
 * 'stream' here is a SOCK_STREAM socket driven by recvmsg/sendmsg so that it
 * can carry descriptors: each 'message' is a chunk of the byte stream as one
 * recvmsg returned it (no boundaries), and descriptors arrive with the chunk
 * that carried them. Use it only when passing fds over a stream socket.
 */
export type MessageSocketType = 'seqpacket' | 'dgram' | 'stream';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export type PeerFilter = (credentials: PeerCredentials) => boolean;

export interface MessageSocketOptions {
  /** Largest message this socket receives whole, in bytes. Default 262144 (above Linux's default socket buffer, 212992). */
  maxMessageSize?: number;
  /**
   * seqpacket: after the peer's end ('end' event), stay open for sending
   * until close() (a peer may shutdown(SHUT_WR) and still read our replies,
   * as socat does). Default false: close once pending sends are flushed, as
   * net.Socket does.
   */
  allowHalfOpen?: boolean;
}

export interface MessageInfo {
  /** Descriptors that came with the message (SCM_RIGHTS), close-on-exec. Closed after the listeners return unless taken. */
  readonly fds: readonly number[];
  /** Sender's address for datagrams: a path, '\0name' (abstract), or undefined if it is unbound. */
  readonly from?: string;
  /** Takes ownership of the descriptors: they are no longer closed for you. */
  takeFds(): number[];
}

/** The names MessageSocketOptions has, for the functions whose options extend it. */
export const MESSAGE_SOCKET_OPTIONS = ['maxMessageSize', 'allowHalfOpen'] as const;

export interface SendOptions {
  /** Descriptors to pass (numbers, or objects with an `fd` such as shm regions, streams, sockets). At most 253. */
  fds?: Array<number | { fd: number }>;
  /** dgram: the destination, when the socket is not connected. */
  to?: UnixAddress;
}

interface Pending {
  data: Uint8Array;
  fds: number[] | null;
  to: Buffer | null;
  display: string | undefined;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const DEFAULT_MAX = 256 * 1024;
// Messages are copied out of this buffer at once, so one per thread serves
// every socket with the default size.
let sharedScratch: Buffer | null = null;
const BATCH = 64; // messages per wake-up before letting the loop breathe
const RETRY_MS = [1, 2, 5, 10, 20, 50];
const kConstruct = Symbol('ipckit.message-socket');

function scratchFor(size: number): Buffer {
  if (size !== DEFAULT_MAX) return Buffer.allocUnsafeSlow(size);
  sharedScratch ??= Buffer.allocUnsafeSlow(DEFAULT_MAX);
  return sharedScratch;
}

function checkSendFds(fds: unknown): number[] | null {
  if (fds === undefined) return null;
  if (!Array.isArray(fds)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.fds must be an array');
  if (fds.length > native.unixConstants.MAX_FDS) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `options.fds holds ${fds.length} descriptors; at most ${native.unixConstants.MAX_FDS} (SCM_MAX_FD) fit in one message`);
  }
  return fds.map((f, i) => {
    const fd = typeof f === 'number' ? f : typeof f === 'object' && f !== null ? (f as { fd: unknown }).fd : undefined;
    if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `options.fds[${i}] must be a descriptor or an object with an open fd, got ${show(f)}`);
    }
    return fd;
  });
}

/** A connected seqpacket socket, or a datagram socket (bound, connected, or neither). */
export class MessageSocket extends EventEmitter implements Disposable {
  readonly type: MessageSocketType;
  #fd: number;
  #watch: FdWatcher | null;
  #file: SocketFile | null;
  #scratch: Buffer;
  #queue: Pending[] = [];
  #retry: NodeJS.Timeout | null = null;
  #retries = 0;
  #refed = true;
  #closed = false;
  #readEnded = false;
  #paused = false;
  #closeWhenFlushed = false;
  readonly #allowHalfOpen: boolean;

  /** @internal */
  static readonly token = kConstruct;

  /** @internal Made by unix.connect/listen/socketpair/fromFd and MessageServer. */
  constructor(token: symbol, fd: number, type: MessageSocketType, file: SocketFile | null, options: MessageSocketOptions) {
    super();
    if (token !== kConstruct) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'use unix.connect(), unix.listen() or unix.socketpair()');
    const max = checkInteger(options.maxMessageSize, 'options.maxMessageSize', 1, 0x7fffffff, DEFAULT_MAX);
    this.type = type;
    this.#allowHalfOpen = options.allowHalfOpen === true;
    this.#fd = fd;
    this.#file = file;
    this.#scratch = scratchFor(max);
    this.#watch = watchFd(fd, READABLE, (events, error) => this.#onReady(events, error));
  }

  /** The descriptor; -1 once closed. Pass it to a child, or send it over another socket. */
  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Messages send() accepted that wait for room (not in the kernel yet). */
  get queuedSends(): number {
    return this.#queue.length;
  }

  /** Our address: a path, '\0name' for abstract, or undefined when unbound. */
  get localAddress(): string | undefined {
    return this.#closed ? undefined : decodeAddress(native.unixName(this.#fd, false));
  }

  /** The connected peer's address, if any. */
  get remoteAddress(): string | undefined {
    if (this.#closed) return undefined;
    try {
      return decodeAddress(native.unixName(this.#fd, true));
    } catch {
      return undefined; // ENOTCONN: not connected
    }
  }

  /** SO_PEERCRED: the peer's pid/uid/gid at connect time (connected sockets and socketpairs). */
  peerCredentials(): PeerCredentials {
    this.#assertOpen();
    return sys(() => native.unixPeerCred(this.#fd), { path: `fd ${this.#fd}` });
  }

  /**
   * Sends one message (with descriptors, and for unconnected datagram
   * sockets a destination). Resolves once the kernel has it; waits without
   * blocking while the peer's queue is full.
   */
  send(data: string | Uint8Array, options?: SendOptions): Promise<void> {
    this.#assertOpen();
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!(bytes instanceof Uint8Array)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `data must be a string or Uint8Array, got ${show(data)}`);
    if (bytes.length === 0 && this.type !== 'dgram') {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `an empty ${this.type} message cannot be told apart from the peer closing (and carries no descriptors); send at least one byte`);
    }
    const o = checkOptions(options, 'options', ['fds', 'to']) as SendOptions;
    const fds = checkSendFds(o.fds);
    const to = o.to === undefined ? undefined : encodeAddress(o.to, 'options.to');
    if (to && this.type !== 'dgram') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.to is for dgram sockets');
    return new Promise<void>((resolve, reject) => {
      const item: Pending = { data: bytes, fds, to: to?.raw ?? null, display: to?.display, resolve, reject };
      if (this.#queue.length === 0 && this.#trySend(item)) return;
      this.#queue.push(item);
      this.#waitWritable();
    });
  }

  /** Returns true when the item left (sent or failed), false when it would block. */
  #trySend(item: Pending): boolean {
    let n: number;
    try {
      n = native.unixSend(this.#fd, item.data, item.fds, item.to);
    } catch (e) {
      const path = item.display ?? this.remoteAddress ?? `fd ${this.#fd}`;
      const err = e as { errno: number; syscall: string };
      const limit =
        Math.abs(err.errno) === errno.EMSGSIZE ? { name: '/proc/sys/net/core/wmem_default (socket send buffer, SO_SNDBUF)' } : undefined;
      item.reject(typeof err.errno === 'number' ? new IpcError(err.errno, err.syscall, limit ? { path, limit } : { path }) : e);
      return true;
    }
    if (n < 0) return false;
    if (n < item.data.length) {
      // A stream socket took part of it: the rest follows, without the descriptors (they went with the first byte).
      item.data = item.data.subarray(n);
      item.fds = null;
      return false;
    }
    item.resolve();
    return true;
  }

  #waitWritable(): void {
    // A connected socket polls writable when the peer's queue has room. An
    // unconnected datagram socket polls writable on its own buffer only, so
    // a full receiver would make that spin: retry on a short timer instead.
    if (this.#queue[0]?.to) {
      if (this.#retry) return;
      const delay = RETRY_MS[Math.min(this.#retries++, RETRY_MS.length - 1)];
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.#flush();
      }, delay);
      if (!this.#refed) this.#retry.unref();
      return;
    }
    this.#watch?.update(this.#readEvents() | WRITABLE);
  }

  #readEvents(): number {
    return this.#readEnded || this.#paused ? 0 : READABLE;
  }

  /** Stops reading (receiver backpressure: the peer's sends then wait for room). */
  pause(): this {
    if (!this.#paused && !this.#closed) {
      this.#paused = true;
      this.#watch?.update(this.#queue.length > 0 ? WRITABLE : 0);
    }
    return this;
  }

  /** Reads again after pause(). */
  resume(): this {
    if (this.#paused) {
      this.#paused = false;
      if (!this.#closed) this.#watch?.update(this.#readEvents() | (this.#queue.length > 0 ? WRITABLE : 0));
    }
    return this;
  }

  #flush(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      if (!this.#trySend(this.#queue[0])) {
        this.#waitWritable();
        return;
      }
      this.#queue.shift();
      this.#retries = 0;
    }
    if (this.#closeWhenFlushed) this.close();
    else if (!this.#closed) this.#watch?.update(this.#readEvents());
  }

  #onReady(events: number, error?: IpcError): void {
    if (error) {
      this.#fail(error);
      return;
    }
    if (events & WRITABLE) this.#flush();
    if (events & READABLE) this.#drain();
  }

  #drain(): void {
    for (let i = 0; i < BATCH && !this.#closed && !this.#readEnded && !this.#paused; i++) {
      let got: ReturnType<typeof native.unixRecv>;
      try {
        got = native.unixRecv(this.#fd, this.#scratch);
      } catch (e) {
        this.#fail(new IpcError((e as { errno: number }).errno, 'recvmsg', { path: this.remoteAddress ?? `fd ${this.#fd}` }));
        return;
      }
      if (got === null) return;
      if (got.length === 0 && this.type !== 'dgram' && got.fds.length === 0) {
        // recvmsg returns 0 on a seqpacket or stream socket only at the peer's end
        // (close or shutdown). Stop reading: a level-triggered watch would
        // report that end-of-file forever.
        this.#readEnded = true;
        this.#watch?.update(this.#queue.length > 0 ? WRITABLE : 0);
        this.emit('end');
        if (!this.#allowHalfOpen && !this.#closed) {
          if (this.#queue.length === 0) this.close();
          else this.#closeWhenFlushed = true;
        }
        return;
      }
      this.#deliver(got);
    }
  }

  #deliver(got: NonNullable<ReturnType<typeof native.unixRecv>>): void {
    const fds = got.fds;
    let taken = false;
    try {
      if (got.truncated) {
        this.emit(
          'error',
          new IpcError(errno.EMSGSIZE, 'recvmsg', { path: this.localAddress ?? `fd ${this.#fd}`, limit: { name: 'options.maxMessageSize', value: this.#scratch.length } }, `a ${got.length}-byte message did not fit and was cut`),
        );
        return;
      }
      if (got.fdsTruncated) {
        this.emit('error', new IpcError(errno.EMFILE, 'recvmsg', { path: `fd ${this.#fd}`, limit: { name: 'RLIMIT_NOFILE (ulimit -n)' } }, 'some passed descriptors were dropped by the kernel (MSG_CTRUNC)'));
      }
      const data = Buffer.from(this.#scratch.subarray(0, got.length));
      const from = decodeAddress(got.from);
      const info: MessageInfo = {
        fds,
        ...(from !== undefined ? { from } : {}),
        takeFds: () => {
          taken = true;
          return [...fds];
        },
      };
      this.emit('message', data, info);
    } finally {
      if (!taken) for (const fd of fds) closeQuietly(fd);
    }
  }

  #fail(error: IpcError): void {
    if (this.#closed) return;
    this.emit('error', error);
    this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw stateError('ERR_IPCKIT_CLOSED', `this ${this.type} socket is closed`);
  }

  /**
   * dgram: sets the default destination (connect(2)) and receives only from
   * it. Sends without `to` then wait for room in the peer's queue through
   * writable readiness, the fast path for a steady stream of datagrams.
   */
  connect(address: UnixAddress): void {
    this.#assertOpen();
    if (this.type !== 'dgram') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'connect() is for dgram sockets; use unix.connect() for the others');
    const addr = encodeAddress(address);
    const r = sys(() => native.unixConnect(this.#fd, addr.raw), { path: addr.display });
    if (r !== 0) throw new IpcError(r, 'connect', { path: addr.display });
  }

  /** seqpacket: no more sends from here (shutdown SHUT_WR); the peer sees the end. */
  end(): void {
    if (this.#closed) return;
    sys(() => native.unixShutdown(this.#fd, native.unixConstants.SHUT_WR));
  }

  /** Keep the process alive while this socket is open (default). */
  ref(): this {
    this.#refed = true;
    this.#watch?.ref();
    this.#retry?.ref();
    return this;
  }

  /** Do not keep the process alive for this socket alone. */
  unref(): this {
    this.#refed = false;
    this.#watch?.unref();
    this.#retry?.unref();
    return this;
  }

  /** Closes the descriptor (and removes a bound socket file that is still ours). Pending sends reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.stop();
    this.#watch = null;
    if (this.#retry) clearTimeout(this.#retry);
    this.#file?.remove();
    const fd = this.#fd;
    this.#fd = -1;
    closeQuietly(fd);
    const pending = this.#queue.splice(0);
    for (const p of pending) p.reject(stateError('ERR_IPCKIT_CLOSED', 'the socket was closed before the message was sent'));
    queueMicrotask(() => this.emit('close'));
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function closeQuietly(fd: number): void {
  try {
    native.fdClose(fd);
  } catch {
    /* already closed */
  }
}

/** A listening seqpacket socket (or stream socket with fd passing): emits 'connection' with a MessageSocket per accepted peer. */
export class MessageServer extends EventEmitter implements Disposable {
  readonly #display: string;
  #fd: number;
  #watch: FdWatcher | null;
  #file: SocketFile | null;
  readonly #filter: PeerFilter | undefined;
  readonly #options: MessageSocketOptions;
  readonly #kind: 'seqpacket' | 'stream';
  #closed = false;

  /** @internal */
  static readonly token = kConstruct;

  /** @internal Made by unix.listen(address, { type: 'seqpacket' }) (or 'stream' with fds: true). */
  constructor(token: symbol, fd: number, display: string, file: SocketFile | null, filter: PeerFilter | undefined, options: MessageSocketOptions, kind: 'seqpacket' | 'stream' = 'seqpacket') {
    super();
    this.#kind = kind;
    if (token !== kConstruct) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'use unix.listen()');
    this.#display = display;
    this.#fd = fd;
    this.#file = file;
    this.#filter = filter;
    this.#options = { maxMessageSize: options.maxMessageSize, allowHalfOpen: options.allowHalfOpen };
    this.#watch = watchFd(fd, READABLE, (_events, error) => (error ? this.#fail(error) : this.#accept()));
  }

  get fd(): number {
    return this.#fd;
  }

  get listening(): boolean {
    return !this.#closed;
  }

  /** The path, or '@name' for an abstract socket. */
  address(): string {
    return this.#display;
  }

  #accept(): void {
    for (let i = 0; i < BATCH && !this.#closed; i++) {
      let fd: number;
      try {
        fd = native.unixAccept(this.#fd);
      } catch (e) {
        // EMFILE and friends: report, keep listening.
        this.emit('error', new IpcError((e as { errno: number }).errno, 'accept4', { path: this.#display }));
        return;
      }
      if (fd < 0) return;
      if (this.#filter) {
        let cred: PeerCredentials | undefined;
        let ok = false;
        try {
          cred = native.unixPeerCred(fd);
          ok = this.#filter(cred);
        } catch {
          ok = false;
        }
        if (!ok) {
          closeQuietly(fd);
          this.emit('peerRejected', cred);
          continue;
        }
      }
      this.emit('connection', new MessageSocket(kConstruct, fd, this.#kind, null, this.#options));
    }
  }

  #fail(error: IpcError): void {
    this.emit('error', error);
    this.close();
  }

  ref(): this {
    this.#watch?.ref();
    return this;
  }

  unref(): this {
    this.#watch?.unref();
    return this;
  }

  /** Stops listening and removes the socket file (if still ours, unless unlinkOnClose was false). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.stop();
    this.#watch = null;
    this.#file?.remove();
    closeQuietly(this.#fd);
    this.#fd = -1;
    queueMicrotask(() => this.emit('close'));
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
