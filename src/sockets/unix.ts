// Unix domain sockets, the socket → bind → listen → accept / connect
// flow, for all three types:
// - 'stream': net-compatible (UnixServer is a net.Server, connections are
//   net.Socket), driven by libuv.
// - 'seqpacket' and 'dgram': message sockets (src/sockets/message-socket.ts) driven by
//   the uv_poll watcher with sendmsg/recvmsg, which net refuses to handle.
// Filesystem paths and the abstract namespace; a listener's socket file is
// created with mode 0o600, reclaimed when a dead server left it behind, and
// unlinked by close() (unless unlinkOnClose: false).
import net from 'node:net';
import { chmodSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { IpcError, rangeError, stateError, sys, timeoutError, typeError, errno, type IpcLimit } from '../core/errors.js';
import { fileLimit, readLimit } from '../core/limits.js';
import { FdStream, checkFd } from '../core/fd-stream.js';
import { MESSAGE_SOCKET_OPTIONS, MessageServer, MessageSocket, type MessageSocketOptions, type PeerFilter } from './message-socket.js';
import { native } from '../core/native.js';
import { socketTypeNumber, type SocketPairType } from '../pipes/pipe.js';
import { SocketFile } from './socket-file.js';
import { decodeAddress, encodeAddress, type EncodedAddress, type UnixAddress } from './unix-address.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned, show } from '../core/validate.js';

export type { UnixAddress } from './unix-address.js';
// Exported with the public listen and connect options that name it (@public tells
// knip, which sees no import of it).
/** @public */
export type UnixSocketType = SocketPairType;

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** fileLimit, and the listen backlog behind a refused connect. */
export function socketLimit(code: string): IpcLimit | undefined {
  if (code === 'EAGAIN' || code === 'ECONNREFUSED') return readLimit('/proc/sys/net/core/somaxconn');
  return fileLimit(code);
}

/** The descriptor behind an ipckit stream/message socket, a net.Socket/Server, or a number. */
function fdOf(target: unknown, what = 'socket'): number {
  if (typeof target === 'number') return checkFd(target, what);
  if (typeof target === 'object' && target !== null) {
    const direct = (target as { fd?: unknown }).fd;
    if (typeof direct === 'number' && direct >= 0) return direct;
    const handle = (target as { _handle?: { fd?: unknown } | null })._handle;
    if (handle && typeof handle.fd === 'number' && handle.fd >= 0) return handle.fd;
    throw stateError('ERR_IPCKIT_CLOSED', `${what} is closed or has no descriptor`);
  }
  throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a socket or a descriptor number, got ${show(target)}`);
}

/**
 * Who is at the other end (SO_PEERCRED): the pid, uid and gid the peer had
 * when it connected (or called socketpair). Works on any connected Unix socket.
 */
export function peerCredentials(socket: net.Socket | FdStream | MessageSocket | number): PeerCredentials {
  const fd = fdOf(socket);
  return sys(() => native.unixPeerCred(fd), { path: `fd ${fd}` });
}

/** A connected Unix stream socket: a net.Socket with the descriptor and the peer's credentials. */
export class UnixStream extends FdStream {
  /** SO_PEERCRED: the peer's pid/uid/gid at connect time. */
  peerCredentials(): PeerCredentials {
    return peerCredentials(this);
  }

  /** Our address (a path, '\0name' for abstract, or undefined when unnamed). */
  get localPath(): string | undefined {
    return this.fd < 0 ? undefined : decodeAddress(native.unixName(this.fd, false));
  }

  /** The peer's address. */
  get remotePath(): string | undefined {
    return this.fd < 0 ? undefined : decodeAddress(native.unixName(this.fd, true));
  }
}

/** What accepted connections of a UnixServer carry besides the net.Socket API. */
export interface UnixConnection extends net.Socket {
  peerCredentials(): PeerCredentials;
}

function checkFilter(o: { allowUids?: unknown; allowPeer?: unknown }): PeerFilter | undefined {
  const { allowUids, allowPeer } = o;
  if (allowUids !== undefined && (!Array.isArray(allowUids) || allowUids.some((u) => !Number.isInteger(u) || u < 0))) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.allowUids must be an array of uids');
  }
  if (allowPeer !== undefined && typeof allowPeer !== 'function') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.allowPeer must be a function (credentials) => boolean');
  }
  if (allowUids === undefined && allowPeer === undefined) return undefined;
  const uids = allowUids as number[] | undefined;
  const fn = allowPeer as ((c: PeerCredentials) => boolean) | undefined;
  return (cred) => (uids === undefined || uids.includes(cred.uid)) && (fn === undefined || fn(cred) === true);
}

/** A listening Unix stream socket: a net.Server whose close() also removes its socket file. */
export class UnixServer extends net.Server {
  readonly #display: string;
  readonly #file: SocketFile | null;
  readonly #filter: PeerFilter | undefined;

  /** @internal Made by unix.listen(). */
  constructor(fd: number, address: EncodedAddress, file: SocketFile | null, filter: PeerFilter | undefined) {
    super();
    this.#display = address.display;
    this.#file = file;
    this.#filter = filter;
    this.listen({ fd });
  }

  /** The path, or '@name' for an abstract socket. */
  override address(): string {
    return this.#display;
  }

  /** Stops accepting, removes the socket file (if still ours, and unless unlinkOnClose was false). */
  override close(callback?: (err?: Error) => void): this {
    this.#file?.remove();
    return super.close(callback);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'connection') {
      const socket = args[0] as net.Socket & { peerCredentials?: () => PeerCredentials };
      Object.defineProperty(socket, 'peerCredentials', { value: () => peerCredentials(socket), configurable: true });
      if (this.#filter) {
        let cred: PeerCredentials | undefined;
        let ok = false;
        try {
          cred = peerCredentials(socket);
          ok = this.#filter(cred);
        } catch {
          ok = false;
        }
        if (!ok) {
          socket.destroy();
          return super.emit('peerRejected', cred);
        }
      }
    }
    return super.emit(event, ...args);
  }

  override async [Symbol.asyncDispose](): Promise<void> {
    if (!this.listening) return;
    await new Promise<void>((resolve) => this.close(() => resolve()));
  }
}

export interface ListenOptions extends MessageSocketOptions {
  type?: UnixSocketType;
  /** Pending-connection queue length (stream, seqpacket). Default 511, capped by /proc/sys/net/core/somaxconn. */
  backlog?: number;
  /** Permission bits of the socket file (connecting needs write permission). Default 0o600. */
  mode?: number | string;
  /** Replace a socket file left by a dead server (never a live server's, never a non-socket). Default true. */
  reclaim?: boolean;
  /** close() removes the socket file. Default true. */
  unlinkOnClose?: boolean;
  /**
   * Also remove the socket file when the process ends by SIGINT, SIGTERM or
   * SIGHUP, or from a worker thread that is terminated (it is always removed
   * by close() and at a normal exit; kill -9 leaves it, and the next listen()
   * reclaims it). Default false.
   */
  owned?: boolean;
  /** Only accept peers whose uid is listed (SO_PEERCRED); others are closed and 'peerRejected' is emitted. */
  allowUids?: number[];
  /** Accept a peer only if this returns true. */
  allowPeer?: (credentials: PeerCredentials) => boolean;
  /** stream: connections are MessageSockets driven by recvmsg/sendmsg, so they can pass descriptors (no net.Socket API). Default false. */
  fds?: boolean;
}

const LISTEN_OPTIONS = ['type', 'backlog', 'mode', 'reclaim', 'unlinkOnClose', 'owned', 'allowUids', 'allowPeer', 'fds', ...MESSAGE_SOCKET_OPTIONS];

interface BindPlan {
  type: number;
  address: EncodedAddress;
  reclaim: boolean;
  unlinkOnClose: boolean;
  owned: boolean;
  mode: number;
  /** listen() with this backlog after binding; null for datagram sockets. */
  backlog: number | null;
}

function bindPlan(type: number, address: EncodedAddress, o: ListenOptions, listen: boolean): BindPlan {
  return {
    type,
    address,
    reclaim: checkBoolean(o.reclaim, 'options.reclaim', true),
    unlinkOnClose: checkBoolean(o.unlinkOnClose, 'options.unlinkOnClose', true),
    owned: checkBoolean(o.owned, 'options.owned', false),
    mode: checkMode(o.mode),
    backlog: listen ? checkInteger(o.backlog, 'options.backlog', 0, 0x7fffffff, 511) : null,
  };
}

const { EADDRINUSE, EWOULDBLOCK } = errno;
/** Pauses between attempts to take the directory lock held by another process. */
const RECLAIM_RETRY_MS = [1, 2, 5, 10, 20, 50];
/** How long an async listen() keeps trying before it gives up on a stale socket file. */
const RECLAIM_WAIT_MS = 2000;

/**
 * One attempt to bind fd (and listen, set the mode): the socket file, or
 * 'busy' when the path holds a stale socket file whose directory another
 * process has locked. Throws when the path is taken for good. Never waits.
 */
function bindOnce(fd: number, plan: BindPlan): { file: SocketFile | null } | 'busy' {
  const { address } = plan;
  const ctx = { path: address.display };
  let lockFd = -1;
  let file: SocketFile | null = null;
  try {
    if (sys(() => native.unixBind(fd, address.raw), ctx) !== 0) {
      if (!plan.reclaim || address.path === undefined) throw new IpcError(EADDRINUSE, 'bind', ctx);
      const r = sys(() => native.unixReclaim(fd, address.raw), ctx);
      if (r.status === EWOULDBLOCK) return 'busy';
      if (r.status !== 0) throw new IpcError(r.status, 'bind', ctx);
      // Held until after listen(): a bound stream/seqpacket socket refuses connections
      // until then, as a stale file does, so another reclaimer would unlink it.
      lockFd = r.lockFd;
    }
    if (address.path !== undefined) {
      const st = sys(() => lstatSync(address.path!), ctx);
      file = new SocketFile(address.path, st.dev, st.ino, plan.owned);
      if (!plan.unlinkOnClose) file.keep();
      // Before listen(): nobody can connect yet, so nobody slips in under the umask's mode.
      sys(() => chmodSync(address.path!, plan.mode), ctx);
    }
    if (plan.backlog !== null) sys(() => native.unixListen(fd, plan.backlog!), ctx);
    return { file };
  } catch (e) {
    file?.remove();
    throw e;
  } finally {
    if (lockFd >= 0) native.fdClose(lockFd);
  }
}

function reclaimBlocked(plan: BindPlan, waitedMs?: number): IpcError {
  const dir = dirname(plan.address.path!);
  const waited = waitedMs === undefined ? '' : ` (tried for ${waitedMs} ms)`;
  return new IpcError(
    EADDRINUSE,
    'bind',
    { path: plan.address.display },
    `the stale socket file could not be reclaimed because another process holds a lock on the directory '${dir}'${waited}`,
  );
}

/** Creates and binds a socket, trying once: for synchronous callers. */
function bindSocket(type: number, address: EncodedAddress, o: ListenOptions, listen: boolean): { fd: number; file: SocketFile | null } {
  const plan = bindPlan(type, address, o, listen);
  const fd = sys(() => native.unixSocket(type), { path: address.display }, socketLimit);
  try {
    const bound = bindOnce(fd, plan);
    if (bound === 'busy') throw reclaimBlocked(plan);
    return { fd, file: bound.file };
  } catch (e) {
    native.fdClose(fd);
    throw e;
  }
}

/**
 * Creates, binds and (for stream/seqpacket) listens; returns the descriptor
 * and the socket file. While another process holds the lock needed to
 * reclaim a stale socket file, retries on a timer (the event loop never
 * waits for the lock), for up to RECLAIM_WAIT_MS.
 */
async function bindSocketAsync(type: number, address: EncodedAddress, o: ListenOptions, listen: boolean): Promise<{ fd: number; file: SocketFile | null }> {
  const plan = bindPlan(type, address, o, listen);
  const fd = sys(() => native.unixSocket(type), { path: address.display }, socketLimit);
  try {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const bound = bindOnce(fd, plan);
      if (bound !== 'busy') return { fd, file: bound.file };
      if (Date.now() - started >= RECLAIM_WAIT_MS) throw reclaimBlocked(plan, RECLAIM_WAIT_MS);
      await new Promise((resolve) => setTimeout(resolve, RECLAIM_RETRY_MS[Math.min(attempt, RECLAIM_RETRY_MS.length - 1)]));
    }
  } catch (e) {
    native.fdClose(fd);
    throw e;
  }
}

/**
 * Listens on a Unix socket. 'stream' resolves to a net-compatible UnixServer,
 * 'seqpacket' to a MessageServer emitting 'connection' with MessageSockets,
 * 'dgram' to a bound MessageSocket emitting 'message' with the sender's address.
 */
export function listen(address: UnixAddress, options: ListenOptions & { type?: 'stream'; fds: true }): Promise<MessageServer>;
export function listen(address: UnixAddress, options?: ListenOptions & { type?: 'stream' }): Promise<UnixServer>;
export function listen(address: UnixAddress, options: ListenOptions & { type: 'seqpacket' }): Promise<MessageServer>;
export function listen(address: UnixAddress, options: ListenOptions & { type: 'dgram' }): Promise<MessageSocket>;
export function listen(address: UnixAddress, options?: ListenOptions): Promise<UnixServer | MessageServer | MessageSocket>;
export async function listen(address: UnixAddress, options?: ListenOptions): Promise<UnixServer | MessageServer | MessageSocket> {
  const addr = encodeAddress(address);
  const o = checkOptions(options, 'options', LISTEN_OPTIONS) as ListenOptions;
  const type = socketTypeNumber(o.type);
  const filter = checkFilter(o);
  const fdPassing = checkBoolean(o.fds, 'options.fds', false);
  const { SOCK_STREAM, SOCK_SEQPACKET } = native.pipeConstants;
  if (fdPassing && type !== SOCK_STREAM) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.fds is for type 'stream' (seqpacket and dgram sockets always pass descriptors)");
  if (type === SOCK_STREAM && fdPassing) {
    const { fd, file } = await bindSocketAsync(type, addr, o, true);
    return new MessageServer(MessageServer.token, fd, addr.display, file, filter, o, 'stream');
  }
  if (type === SOCK_STREAM) {
    const { fd, file } = await bindSocketAsync(type, addr, o, true);
    const server = new UnixServer(fd, addr, file, filter);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return server;
  }
  if (type === SOCK_SEQPACKET) {
    const { fd, file } = await bindSocketAsync(type, addr, o, true);
    return new MessageServer(MessageServer.token, fd, addr.display, file, filter, o);
  }
  if (filter) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'allowUids/allowPeer apply to connections; datagram sockets have none');
  const { fd, file } = await bindSocketAsync(type, addr, o, false);
  return new MessageSocket(MessageSocket.token, fd, 'dgram', file, o);
}

export interface ConnectOptions extends MessageSocketOptions {
  type?: UnixSocketType;
  /** dgram: bind this local address first, so that the server can reply. */
  bind?: UnixAddress;
  /** With `bind`: also remove its socket file when the process ends by SIGINT, SIGTERM or SIGHUP, as `listen({ owned })`. Default false. */
  owned?: boolean;
  /** Milliseconds to keep retrying while the listener's backlog is full; then IpcError ETIMEDOUT. Default 5000. */
  timeout?: number;
  /** stream: return a MessageSocket driven by recvmsg/sendmsg, which can pass descriptors. Default false. */
  fds?: boolean;
}

const BACKLOG_RETRY_MS = [1, 2, 5, 10, 20, 50];

/**
 * Connects to a Unix socket. 'stream' resolves to a UnixStream (net.Socket),
 * 'seqpacket' and 'dgram' to a MessageSocket. A missing path rejects with
 * ENOENT, a path nobody serves with ECONNREFUSED (IpcError with the path).
 */
export function connect(address: UnixAddress, options: ConnectOptions & { type?: 'stream'; fds: true }): Promise<MessageSocket>;
export function connect(address: UnixAddress, options?: ConnectOptions & { type?: 'stream' }): Promise<UnixStream>;
export function connect(address: UnixAddress, options: ConnectOptions & { type: 'seqpacket' | 'dgram' }): Promise<MessageSocket>;
export function connect(address: UnixAddress, options?: ConnectOptions): Promise<UnixStream | MessageSocket>;
export async function connect(address: UnixAddress, options?: ConnectOptions): Promise<UnixStream | MessageSocket> {
  const addr = encodeAddress(address);
  const o = checkOptions(options, 'options', ['type', 'bind', 'owned', 'timeout', 'fds', ...MESSAGE_SOCKET_OPTIONS]) as ConnectOptions;
  const type = socketTypeNumber(o.type);
  const local = o.bind === undefined ? undefined : encodeAddress(o.bind, 'options.bind');
  const owned = checkOwned(o.owned, o.bind !== undefined, 'options.bind');
  const timeout = o.timeout === undefined ? 5000 : checkInteger(o.timeout, 'options.timeout', 0, 0x7fffffff);
  const fdPassing = checkBoolean(o.fds, 'options.fds', false);
  const { SOCK_STREAM, SOCK_DGRAM } = native.pipeConstants;
  if (fdPassing && type !== SOCK_STREAM) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.fds is for type 'stream'");
  if (local && type !== SOCK_DGRAM) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.bind is for dgram sockets');
  const ctx = { path: addr.display };
  let fd = -1;
  let file: SocketFile | null = null;
  try {
    if (local) {
      const b = await bindSocketAsync(type, local, { unlinkOnClose: true, owned }, false);
      fd = b.fd;
      file = b.file;
    } else {
      fd = sys(() => native.unixSocket(type), ctx, socketLimit);
    }
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const r = sys(() => native.unixConnect(fd, addr.raw), ctx, socketLimit);
      if (r === 0) break;
      // EAGAIN: the listener's backlog is full; a Unix connect does not complete later.
      if (Date.now() - started >= timeout) {
        throw timeoutError('connect', { ...ctx, limit: readLimit('/proc/sys/net/core/somaxconn') }, `the listen backlog stayed full for ${timeout} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, BACKLOG_RETRY_MS[Math.min(attempt, BACKLOG_RETRY_MS.length - 1)]));
    }
  } catch (e) {
    file?.remove();
    if (fd >= 0) native.fdClose(fd);
    throw e;
  }
  if (type === SOCK_STREAM && !fdPassing) return new UnixStream(fd, { readable: true, writable: true });
  return new MessageSocket(MessageSocket.token, fd, type === SOCK_DGRAM ? 'dgram' : type === SOCK_STREAM ? 'stream' : 'seqpacket', file, o);
}

export interface DatagramOptions extends MessageSocketOptions {
  /** Bind this address (so that others can send to it / reply). Default: unbound. */
  bind?: UnixAddress;
  /** With `bind`: also remove its socket file when the process ends by SIGINT, SIGTERM or SIGHUP, as `listen({ owned })`. Default false. */
  owned?: boolean;
}

/** An unconnected datagram socket: send with `{ to }`; bound with `bind` to receive too. */
export function dgram(options?: DatagramOptions): MessageSocket {
  const o = checkOptions(options, 'options', ['bind', 'owned', ...MESSAGE_SOCKET_OPTIONS]) as DatagramOptions;
  const type = native.pipeConstants.SOCK_DGRAM;
  const owned = checkOwned(o.owned, o.bind !== undefined, 'options.bind');
  if (o.bind !== undefined) {
    const { fd, file } = bindSocket(type, encodeAddress(o.bind, 'options.bind'), { owned }, false);
    return new MessageSocket(MessageSocket.token, fd, 'dgram', file, o);
  }
  const fd = sys(() => native.unixSocket(type), {}, socketLimit);
  return new MessageSocket(MessageSocket.token, fd, 'dgram', null, o);
}

/**
 * Wraps a Unix socket descriptor received from elsewhere (fd passing, a
 * child's inherited fd): a UnixStream for SOCK_STREAM, a MessageSocket for
 * SOCK_SEQPACKET/SOCK_DGRAM. The wrapper owns the descriptor from then on.
 */
export function fromFd(fd: number, options?: MessageSocketOptions & { fds?: boolean }): UnixStream | MessageSocket {
  checkFd(fd);
  const o = checkOptions(options, 'options', ['fds', ...MESSAGE_SOCKET_OPTIONS]) as MessageSocketOptions & { fds?: boolean };
  const fdPassing = checkBoolean(o.fds, 'options.fds', false);
  const type = sys(() => native.unixSocketType(fd), { path: `fd ${fd}` });
  const { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET } = native.pipeConstants;
  if (type === SOCK_STREAM && fdPassing) return new MessageSocket(MessageSocket.token, fd, 'stream', null, o);
  if (type === SOCK_STREAM) return new UnixStream(fd, { readable: true, writable: true });
  if (type === SOCK_DGRAM || type === SOCK_SEQPACKET) {
    return new MessageSocket(MessageSocket.token, fd, type === SOCK_DGRAM ? 'dgram' : 'seqpacket', null, o);
  }
  throw rangeError('ERR_IPCKIT_INVALID_ARG_VALUE', `fd ${fd} is a socket of unsupported type ${type}`);
}

export { MessageServer, MessageSocket };
