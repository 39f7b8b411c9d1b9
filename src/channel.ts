// channel: one typed message API over every transport. The transport is the
// URL's scheme; see docs/channels.md. Who may be at the other end is decided
// by allowUids/allowGids on both sides (this process's own user and root
// always); see docs/security.md.
//
//   const server = await channel.listen('shm:jobs');
//   for await (const ch of server) for await (const msg of ch) ...
//   const ch = await channel.connect('shm:jobs', { codec: 'v8' });
//   await ch.send({ hello: new Map() });
import { fork as forkProcess, type ChildProcess, type ForkOptions as NodeForkOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as netConnect, createServer, Socket, type Server } from 'node:net';
import { IpcError, fromHere, rangeError, stateError, timeoutError, typeError } from './errors.js';
import { Channel } from './channel/channel.js';
import { resolveCodec, type Codec, type CodecName } from './channel/codec.js';
import { Access, type AccessOptions, type PeerCredentials } from './channel/access.js';
import { HANDSHAKE_MS } from './channel/control.js';
import { Refusal, checkHello, checkReply, makeHello, type Hello } from './channel/hello.js';
import type { Link } from './channel/link.js';
import type { LocalListenerEvents } from './channel/rendezvous.js';
import { connectShm, listenShm, type ShmLinkOptions, type ShmSettings } from './channel/shm.js';
import { connectMq, listenMq, type QueueSettings } from './channel/mq.js';
import { connectSysvMq, listenSysvMq } from './channel/sysvmq.js';
import { StreamLink, helloFrame, readHello } from './channel/stream.js';
import { SeqpacketLink, readMessageHello, seqpacketMaxFrame } from './channel/seqpacket.js';
import { connectFifo, listenFifo } from './channel/fifo.js';
import { MAX_RING, maxFrameFor } from './channel/ring.js';
import { connect as unixConnect, listen as unixListen, peerCredentials, type UnixConnection } from './unix.js';
import type { MessageSocket } from './message-socket.js';
import { parseUrl, type Endpoint } from './channel/url.js';
import { checkBoolean, checkInteger, checkOptions } from './validate.js';
import { connectWithPolicy, type RetryOptions } from './channel/connect-policy.js';

export { Channel };
export type { Codec, CodecName };
export type { CloseInfo, CloseReason } from './channel/link.js';
export type { RequestOptions, RequestHandler } from './channel/channel.js';
export type { PeerCredentials, AccessOptions } from './channel/access.js';

export interface ChannelOptions<T = unknown> extends ShmLinkOptions {
  /** 'raw' | 'json' | 'v8' | 'msgpack' or your own { name, encode, decode }. Default 'json'. Both ends must agree (checked by the hello). */
  codec?: CodecName | Codec<T>;
  /** Largest message payload in bytes this side accepts; bigger incoming frames are an error on the channel. Each side sends at most the smaller of the two ends' limits. Default 16 MiB (shm: 1 MiB). */
  maxMessageSize?: number;
  /** Received messages buffered before the transport is paused (the sender then waits). Default 1024. */
  highWaterMark?: number;
  /** Default timeout of request() in ms. Default none. */
  requestTimeout?: number;
}

export interface ConnectOptions<T = unknown> extends ChannelOptions<T>, AccessOptions {
  /** ms for the whole connect: every attempt, the handshake, the pauses between retries (fifo: also the wait for a reader). Default: 10000 (fifo: no limit). */
  timeout?: number;
  /** Cancels the connect at any point: it rejects with an AbortError, and nothing is left open. */
  signal?: AbortSignal;
  /**
   * Connect again while nobody listens yet (ECONNREFUSED, ENOENT), with
   * exponential back-off, until it works, `timeout` passes, `attempts` run
   * out or `signal` aborts: a client may start before its server. true: the
   * defaults. Default false.
   */
  retry?: boolean | RetryOptions;
}

export interface ListenOptions<T = unknown> extends ChannelOptions<T>, AccessOptions {
  /**
   * unix: replace a stale socket file left by a server that died (nobody
   * accepts on it; never another kind of file) instead of failing with
   * EADDRINUSE. Default true. (The file is always removed by close().)
   * unix-seqpacket: and fifo: remove their socket file / FIFO on close
   * unless unlink is false.
   */
  unlink?: boolean;
  /**
   * shm: every connector writes into one ring that this listener reads (MPSC):
   * one place to look however many peers. Default false (a ring pair per
   * connection). Connectors of one shared ring must trust each other; see
   * docs/channels.md for the trade-offs.
   */
  sharedRing?: boolean;
}

const CHANNEL_OPTIONS = ['codec', 'maxMessageSize', 'highWaterMark', 'requestTimeout', 'spin', 'ringSize', 'zeroCopy'] as const;
const CONNECT_OPTIONS = [...CHANNEL_OPTIONS, 'timeout', 'signal', 'retry', 'allowUids', 'allowGids'];
const LISTEN_OPTIONS = [...CHANNEL_OPTIONS, 'unlink', 'sharedRing', 'allowUids', 'allowGids'];
const FORK_OPTIONS = [...CHANNEL_OPTIONS, 'transport', 'fork', 'timeout'];

const STREAM_MAX = 16 * 1024 * 1024;
const SHM_MAX = 1024 * 1024;
/** The largest message a shm: ring can carry (two records must fit the largest ring). */
const SHM_LIMIT = maxFrameFor(MAX_RING) - 5;
/** One frame per queue message: the default msgsize_max (8192) minus the frame header. */
const MQ_MAX = 8192 - 5;
const MAX_LIMIT = 1024 * 1024 * 1024;

interface Settings<T> {
  codec: Codec<T>;
  maxMessageSize: number;
  highWaterMark: number;
  requestTimeout?: number;
  shm: ShmLinkOptions;
  access: Access;
}

function settings<T>(o: ChannelOptions<T> & AccessOptions, ep: Endpoint): Settings<T> {
  const codec = resolveCodec<T>(o.codec);
  const isShm = ep.scheme === 'shm';
  const maxMessageSize = checkInteger(
    o.maxMessageSize,
    'options.maxMessageSize',
    1,
    isShm ? SHM_LIMIT : MAX_LIMIT,
    isShm ? SHM_MAX : ep.scheme === 'mq' || ep.scheme === 'sysvmq' ? MQ_MAX : isSeqpacket(ep) ? seqpacketMaxFrame() - 5 : STREAM_MAX,
  );
  const highWaterMark = checkInteger(o.highWaterMark, 'options.highWaterMark', 1, 1 << 24, 1024);
  const requestTimeout = o.requestTimeout === undefined ? undefined : checkInteger(o.requestTimeout, 'options.requestTimeout', 0, 2 ** 31 - 1);
  if (o.spin !== undefined && o.spin !== 'auto' && o.spin !== false && !(typeof o.spin === 'number' && o.spin >= 0 && o.spin <= 1e6)) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', "options.spin must be 'auto', false, or microseconds 0..1000000");
  }
  const ringSize = o.ringSize === undefined ? undefined : checkInteger(o.ringSize, 'options.ringSize', 4096, MAX_RING);
  const zeroCopy = checkBoolean(o.zeroCopy, 'options.zeroCopy', false);
  if (zeroCopy && codec.name !== 'raw') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.zeroCopy needs codec: 'raw'");
  const shm: ShmLinkOptions = { spin: o.spin ?? 'auto', zeroCopy, ...(ringSize !== undefined ? { ringSize } : {}) };
  if (Access.given(o) && (ep.scheme === 'tcp' || ep.scheme === 'pipe')) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.allowUids/allowGids: the kernel cannot tell who is at the other end of a ${ep.scheme}: channel`);
  }
  const access = Access.from(o);
  return { codec, maxMessageSize, highWaterMark, ...(requestTimeout !== undefined ? { requestTimeout } : {}), shm, access };
}

function makeChannel<T>(link: Link, s: Settings<T>): Channel<T> {
  return new Channel<T>(link, s);
}

function isSeqpacket(ep: Endpoint): boolean {
  return ep.scheme === 'unix-seqpacket' || ep.scheme === 'unix-seqpacket-abstract';
}

/** Seqpacket frames are whole messages: the kernel's message limit caps the frame. */
function seqpacketFrame(s: Settings<unknown>): number {
  return Math.min(s.maxMessageSize + 5, seqpacketMaxFrame());
}

function seqpacketAddress(ep: Endpoint): string {
  if (ep.scheme === 'unix-seqpacket') return ep.path;
  if (ep.scheme === 'unix-seqpacket-abstract') return `\0${ep.name}`;
  throw new Error('unreachable');
}

function unixAddress(ep: Endpoint): string {
  if (ep.scheme === 'unix') return ep.path;
  if (ep.scheme === 'unix-abstract') return `\0${ep.name}`;
  throw new Error('unreachable');
}

function wrapNetError(e: NodeJS.ErrnoException, syscall: string, url: string): Error {
  return typeof e.errno === 'number' ? new IpcError(Math.abs(e.errno), e.syscall ?? syscall, { path: url }) : e;
}

function localSettings(s: Settings<unknown>, timeout?: number): ShmSettings & QueueSettings {
  return { ...s.shm, codec: s.codec.name, maxMessageSize: s.maxMessageSize, access: s.access, ...(timeout !== undefined ? { timeout } : {}) };
}

/** Refuses a listener whose user this side does not trust (local transports: the kernel says who listens). */
function checkListener(s: Settings<unknown>, url: string, peer: PeerCredentials | null): void {
  if (peer && !s.access.allows(peer)) {
    throw Access.refused(url, 'connect', `the listener runs as uid ${peer.uid} (pid ${peer.pid}), which this side's allowUids/allowGids do not allow`);
  }
}

/**
 * Connector side of a byte stream (unix:, unix-abstract:, tcp://, pipe:):
 * our hello, then the listener's (or its refusal) within `timeout`.
 */
async function connectStream(ep: Endpoint, url: string, socket: Socket, s: Settings<unknown>, peer: PeerCredentials | null, timeout: number): Promise<Link> {
  try {
    checkListener(s, url, peer);
    socket.write(helloFrame(makeHello(ep.scheme, s.codec.name, s.maxMessageSize)));
    const { value, rest } = await readHello(socket, url, timeout);
    const reply = checkReply(url, value, ep.scheme, s.codec.name);
    return new StreamLink(ep.scheme, socket, s.maxMessageSize + 5, reply.max + 5, rest, peer);
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

/**
 * Connects to a listening channel (or, for pipe:, wraps an inherited
 * descriptor). Its handshake errors come from socket callbacks: fromHere()
 * gives them the caller's stack.
 */
export function connect<T = unknown>(url: string, options?: ConnectOptions<T>): Promise<Channel<T>> {
  const connecting = (async () => {
    const { retry, ...o } = checkOptions(options, 'options', CONNECT_OPTIONS) as ConnectOptions<T>;
    const policy = { timeout: o.timeout, signal: o.signal, retry };
    return await connectWithPolicy(url, policy, parseUrl(url).scheme === 'fifo' ? undefined : HANDSHAKE_MS, (attempt) => connectChannel<T>(url, { ...o, ...attempt }));
  })();
  return fromHere(connecting);
}

async function connectChannel<T>(url: string, options?: ConnectOptions<T>): Promise<Channel<T>> {
  const ep = parseUrl(url);
  const o = checkOptions(options, 'options', CONNECT_OPTIONS) as ConnectOptions<T>;
  const s = settings(o, ep);
  const timeout = o.timeout === undefined ? undefined : checkInteger(o.timeout, 'options.timeout', 0, 2 ** 31 - 1);
  const handshakeMs = timeout ?? HANDSHAKE_MS;
  if (ep.scheme === 'fifo') {
    const wait = { ...(timeout !== undefined ? { timeout } : {}), ...(o.signal ? { signal: o.signal } : {}) };
    return makeChannel(await connectFifo(ep.path, { codec: s.codec.name, maxMessageSize: s.maxMessageSize, access: s.access }, wait), s);
  }
  if (isSeqpacket(ep)) {
    const frame = seqpacketFrame(s as Settings<unknown>);
    const sock = await unixConnect(seqpacketAddress(ep), { type: 'seqpacket', maxMessageSize: frame, ...(timeout !== undefined ? { timeout } : {}) });
    try {
      const peer = sock.peerCredentials();
      checkListener(s as Settings<unknown>, url, peer);
      await sock.send(helloFrame(makeHello(ep.scheme, s.codec.name, s.maxMessageSize), false));
      const reply = checkReply(url, await readMessageHello(sock, url, handshakeMs), ep.scheme, s.codec.name);
      return makeChannel(new SeqpacketLink(ep.scheme, sock, frame, Math.min(reply.max + 5, seqpacketMaxFrame()), peer), s);
    } catch (e) {
      sock.close();
      throw e;
    }
  }
  const local = localSettings(s as Settings<unknown>, timeout);
  if (ep.scheme === 'shm') return makeChannel(await connectShm(ep.name, local), s);
  if (ep.scheme === 'mq') return makeChannel(await connectMq(ep.name, local), s);
  if (ep.scheme === 'sysvmq') return makeChannel(await connectSysvMq(ep.name, local), s);
  if (ep.scheme === 'pipe') {
    const socket = new Socket({ fd: ep.fd, readable: true, writable: true });
    return makeChannel(await connectStream(ep, url, socket, s as Settings<unknown>, null, handshakeMs), s);
  }
  if (ep.scheme === 'tcp' || ep.scheme === 'unix-abstract') {
    const socket = await netConnectRetry(ep, url, timeout ?? UNIX_BACKLOG_MS);
    const peer = ep.scheme === 'unix-abstract' ? peerCredentials(socket) : null;
    return makeChannel(await connectStream(ep, url, socket, s as Settings<unknown>, peer, handshakeMs), s);
  }
  // unix: through unix.connect (retries while the backlog is full).
  let socket: Awaited<ReturnType<typeof unixConnect>>;
  try {
    socket = await unixConnect(unixAddress(ep), timeout !== undefined ? { timeout } : {});
  } catch (e) {
    const err = e as IpcError;
    throw err instanceof IpcError ? new IpcError(err.errno, err.syscall, { path: url, ...(err.limit ? { limit: err.limit } : {}) }) : e;
  }
  return makeChannel(await connectStream(ep, url, socket, s as Settings<unknown>, socket.peerCredentials(), handshakeMs), s);
}

/** How long a connect keeps retrying while a Unix listener's backlog is full (as unix.connect). */
const UNIX_BACKLOG_MS = 5000;
const BACKLOG_RETRY_MS = [1, 2, 5, 10, 20, 50];

/**
 * net.connect for tcp:// and unix-abstract: (Node's own addressing of
 * abstract names, which ipckit's unix-abstract: listeners have always used).
 * A Unix connect to a listener whose backlog is full fails with EAGAIN and
 * never completes by itself: retry with back-off for up to `timeoutMs`.
 */
async function netConnectRetry(ep: Endpoint, url: string, timeoutMs: number): Promise<Socket> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const sock = ep.scheme === 'tcp' ? netConnect(ep.port, ep.host) : netConnect(unixAddress(ep));
        sock.once('connect', () => {
          sock.removeAllListeners('error');
          resolve(sock);
        });
        sock.once('error', reject);
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'EAGAIN') throw wrapNetError(err, 'connect', url);
      if (Date.now() - started >= timeoutMs) throw timeoutError('connect', { path: url }, `the listener's backlog stayed full for ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, BACKLOG_RETRY_MS[Math.min(attempt, BACKLOG_RETRY_MS.length - 1)]));
    }
  }
}

/** What a ChannelServer stops and refs: a net.Server, or a transport's own listener. */
interface ListenerHandle {
  close(): void;
  ref(): void;
  unref(): void;
  readonly maxConnections?: number;
}

/**
 * A listening endpoint. Each peer that connects becomes a Channel: take them
 * with `for await (const ch of server)` or the 'connection' event. Events:
 * 'connection' (channel), 'refused' ({ pid, uid, gid } of a peer that
 * allowUids/allowGids turned away; it got EACCES), 'error' (a failed
 * handshake; the server keeps going).
 */
export class ChannelServer<T = unknown> extends EventEmitter implements AsyncIterable<Channel<T>>, AsyncDisposable {
  readonly url: string;
  readonly #handle: ListenerHandle;
  #queue: Channel<T>[] = [];
  #waiting: Array<(r: IteratorResult<Channel<T>>) => void> = [];
  #closing: Promise<void> | null = null;

  /** @internal */
  constructor(url: string, handle: ListenerHandle) {
    super();
    this.url = url;
    this.#handle = handle;
  }

  /** @internal */
  accept(ch: Channel<T>): void {
    if (this.#closing) {
      void ch.close();
      return;
    }
    if (this.listenerCount('connection') > 0) {
      this.emit('connection', ch);
      return;
    }
    const w = this.#waiting.shift();
    if (w) w({ value: ch, done: false });
    else this.#queue.push(ch);
  }

  /** @internal */
  failed(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  /** @internal */
  refused(peer: PeerCredentials): void {
    this.emit('refused', peer);
  }

  [Symbol.asyncIterator](): AsyncIterator<Channel<T>> {
    return {
      next: () => {
        const ch = this.#queue.shift();
        if (ch) return Promise.resolve({ value: ch, done: false });
        if (this.#closing) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.#waiting.push(resolve));
      },
      return: async () => ({ value: undefined, done: true }),
    };
  }

  /**
   * mq: only: how many connections the connecting user's RLIMIT_MSGQUEUE
   * (this process's value) holds when that user has no other queues. Each
   * connection's two queues are charged to the user who connects; past it,
   * connect() fails with EMFILE and `limit` RLIMIT_MSGQUEUE. Infinity when
   * unlimited; undefined on transports without such a budget.
   */
  get maxConnections(): number | undefined {
    return this.#handle.maxConnections;
  }

  /** Stops accepting (and removes a unix: socket file or fifo: FIFO). Channels already accepted stay open. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      this.#handle.close();
      setImmediate(resolve);
      for (const w of this.#waiting.splice(0)) w({ value: undefined, done: true });
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Whether the listener keeps the process alive (default true). */
  ref(): this {
    this.#handle.ref();
    return this;
  }

  unref(): this {
    this.#handle.unref();
    return this;
  }
}

function netHandle(server: Server): ListenerHandle {
  // net's close callback waits for every accepted connection to end; the
  // listening socket itself is closed at once, which is all we promise.
  return { close: () => server.close(), ref: () => server.ref(), unref: () => server.unref() };
}

function serverEvents(cs: () => ChannelServer<unknown>): LocalListenerEvents {
  return { refused: (peer) => cs().refused(peer), error: (e) => cs().failed(e) };
}

/** One accepted connection of a stream-like listener, as the hello exchange needs it. */
interface AcceptedEnd {
  /** The peer's hello, and what came right after it (byte streams). */
  read(): Promise<{ value: Record<string, unknown>; rest?: Buffer }>;
  /** Answers with a refusal and lets the peer read it before hanging up. */
  refuse(refusal: Refusal): void;
  drop(): void;
  /** Sends our hello and makes the link (the peer's checked hello says its limit). */
  open(peerHello: Hello, rest: Buffer | undefined): Link;
}

/**
 * Listener side of stream-like transports: refuse a peer the access rules
 * do not admit (answer EACCES, read nothing), else read its hello, check it,
 * answer with ours, and hand over the channel.
 */
function acceptWithHello<T>(ep: Endpoint, url: string, end: AcceptedEnd, peer: PeerCredentials | null, s: Settings<T>, cs: ChannelServer<T>): void {
  if (peer && !s.access.allows(peer)) {
    end.refuse(new Refusal('EACCES', `uid ${peer.uid} (pid ${peer.pid}) is not allowed by this listener's allowUids/allowGids`));
    cs.refused(peer);
    return;
  }
  end.read().then(
    ({ value, rest }) => {
      let hello: Hello;
      try {
        hello = checkHello(value, ep.scheme, s.codec.name);
      } catch (e) {
        if (e instanceof Refusal) end.refuse(e);
        else end.drop();
        return cs.failed(handshakeFailure(url, peer, e as Error));
      }
      cs.accept(makeChannel(end.open(hello, rest), s));
    },
    (e: Error) => {
      end.drop();
      cs.failed(handshakeFailure(url, peer, e));
    },
  );
}

function acceptStream<T>(ep: Endpoint, url: string, socket: Socket, peer: PeerCredentials | null, s: Settings<T>, cs: ChannelServer<T>): void {
  socket.on('error', () => {});
  acceptWithHello(ep, url, {
    read: () => readHello(socket, url, HANDSHAKE_MS),
    refuse: (refusal) => refuseStream(socket, refusal),
    drop: () => socket.destroy(),
    open: (hello, rest) => {
      socket.removeAllListeners('error');
      socket.write(helloFrame(makeHello(ep.scheme, s.codec.name, s.maxMessageSize)));
      return new StreamLink(ep.scheme, socket, s.maxMessageSize + 5, hello.max + 5, rest ?? null, peer);
    },
  }, peer, s, cs);
}

/** How long a refused peer has to read its answer and hang up before its socket is cut. */
const REFUSAL_LINGER_MS = 2000;

/**
 * Answers with a refusal and closes without losing it: closing with the
 * peer's bytes unread would reset the connection, and the peer could see
 * ECONNRESET before our answer. So: answer, end our side, drop what the peer
 * sends until it hangs up (or the linger time passes).
 */
function refuseStream(socket: Socket, refusal: Refusal): void {
  socket.end(helloFrame(refusal.reply));
  socket.on('data', () => {});
  socket.resume();
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

function refuseMessage(sock: MessageSocket, refusal: Refusal): void {
  sock.on('message', () => {});
  sock.resume();
  sock.send(helloFrame(refusal.reply, false)).then(
    () => {
      try {
        sock.end();
      } catch {
        sock.close();
      }
    },
    () => sock.close(),
  );
  setTimeout(() => sock.close(), REFUSAL_LINGER_MS).unref();
}

function handshakeFailure(url: string, peer: PeerCredentials | null, e: Error): Error {
  if ((e as { code?: string }).code === 'ERR_IPCKIT_HANDSHAKE' && !(e instanceof Refusal)) return e;
  const who = peer ? ` (pid ${peer.pid}, uid ${peer.uid})` : '';
  return stateError('ERR_IPCKIT_HANDSHAKE', `${url}: refused a peer${who}: ${e.message}`);
}

/** The seqpacket version of acceptStream: the hello is the first message. */
function acceptSeqpacket<T>(ep: Endpoint, url: string, sock: MessageSocket, frame: number, s: Settings<T>, cs: ChannelServer<T>): void {
  sock.on('error', () => {});
  let peer: PeerCredentials;
  try {
    peer = sock.peerCredentials();
  } catch (e) {
    sock.close();
    return cs.failed(e as Error);
  }
  acceptWithHello(ep, url, {
    read: async () => ({ value: await readMessageHello(sock, url, HANDSHAKE_MS) }),
    refuse: (refusal) => refuseMessage(sock, refusal),
    drop: () => sock.close(),
    open: (hello) => {
      sock.removeAllListeners('error');
      void sock.send(helloFrame(makeHello(ep.scheme, s.codec.name, s.maxMessageSize), false)).catch(() => {});
      return new SeqpacketLink(ep.scheme, sock, frame, Math.min(hello.max + 5, seqpacketMaxFrame()), peer);
    },
  }, peer, s, cs);
}

/** Listens on `url`; resolves once bound. */
export async function listen<T = unknown>(url: string, options?: ListenOptions<T>): Promise<ChannelServer<T>> {
  const ep = parseUrl(url);
  const o = checkOptions(options, 'options', LISTEN_OPTIONS) as ListenOptions<T>;
  const s = settings(o, ep);
  const unlinkOnClose = checkBoolean(o.unlink, 'options.unlink', true);
  const sharedRing = checkBoolean(o.sharedRing, 'options.sharedRing', false);
  if (sharedRing && ep.scheme !== 'shm') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.sharedRing is for shm: listeners');
  if (sharedRing && s.shm.zeroCopy) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.sharedRing and options.zeroCopy do not go together (the listener copies frames out of the shared ring)');
  if (ep.scheme === 'pipe') throw typeError('ERR_IPCKIT_INVALID_URL', 'pipe: channels are made by channel.fork(); the child uses channel.parent()');
  let cs: ChannelServer<T>;
  const events = serverEvents(() => cs as ChannelServer<unknown>);
  const onLink = (link: Link) => cs.accept(makeChannel(link, s));
  const local = localSettings(s as Settings<unknown>);
  if (ep.scheme === 'shm') return (cs = new ChannelServer<T>(url, listenShm(ep.name, { ...local, sharedRing }, onLink, events)));
  if (ep.scheme === 'mq') return (cs = new ChannelServer<T>(url, listenMq(ep.name, local, onLink, events)));
  if (ep.scheme === 'sysvmq') return (cs = new ChannelServer<T>(url, listenSysvMq(ep.name, local, onLink, events)));
  if (ep.scheme === 'fifo') {
    const any = o.allowUids === 'any';
    if (Access.given(o) && !(any && o.allowGids === undefined)) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "fifo: cannot tell who writes into the FIFO: its file mode decides (0600: this user and root; allowUids: 'any' makes it 0622)");
    }
    const server = listenFifo(ep.path, { codec: s.codec.name, maxMessageSize: s.maxMessageSize, anyWriter: any }, unlinkOnClose, onLink, events.error);
    return (cs = new ChannelServer<T>(url, server));
  }
  if (isSeqpacket(ep)) {
    const frame = seqpacketFrame(s as Settings<unknown>);
    const server = await unixListen(seqpacketAddress(ep), { type: 'seqpacket', maxMessageSize: frame, unlinkOnClose, mode: s.access.widened ? 0o666 : 0o600 });
    server.on('connection', (sock: MessageSocket) => acceptSeqpacket(ep, url, sock, frame, s, cs));
    server.on('error', (e: Error) => cs.failed(e));
    return (cs = new ChannelServer<T>(url, server));
  }
  if (ep.scheme === 'tcp' || ep.scheme === 'unix-abstract') {
    const server = createServer((socket) => {
      let peer: PeerCredentials | null = null;
      if (ep.scheme === 'unix-abstract') {
        try {
          peer = peerCredentials(socket);
        } catch {
          return socket.destroy();
        }
      }
      acceptStream(ep, url, socket, peer, s, cs);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(wrapNetError(e, 'bind', url)));
      const onListening = () => {
        server.removeAllListeners('error');
        resolve();
      };
      if (ep.scheme === 'tcp') server.listen(ep.port, ep.host, onListening);
      else server.listen(unixAddress(ep), onListening);
    });
    server.on('error', (e: Error) => cs.failed(e));
    const addr = server.address();
    // tcp://host:0 asks for any free port: report the one we got.
    const actualUrl = ep.scheme === 'tcp' && addr && typeof addr === 'object' ? `tcp://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${addr.port}` : url;
    return (cs = new ChannelServer<T>(actualUrl, netHandle(server)));
  }
  // unix: through unix.listen: the socket file is mode 0600 whatever the
  // umask, and only a stale socket file is ever replaced.
  let server: Awaited<ReturnType<typeof unixListen>>;
  try {
    // Connecting needs write permission on the file: 0600 admits this user
    // and root; when allowUids/allowGids admit others, the file lets anyone
    // try and SO_PEERCRED decides.
    server = await unixListen(unixAddress(ep), { reclaim: unlinkOnClose, unlinkOnClose: true, mode: s.access.widened ? 0o666 : 0o600 });
  } catch (e) {
    const err = e as IpcError;
    throw err instanceof IpcError ? new IpcError(err.errno, err.syscall, { path: url, ...(err.limit ? { limit: err.limit } : {}) }) : e;
  }
  server.on('connection', (socket: UnixConnection) => {
    let peer: PeerCredentials | null = null;
    try {
      peer = socket.peerCredentials();
    } catch {
      return socket.destroy();
    }
    acceptStream(ep, url, socket, peer, s, cs);
  });
  server.on('error', (e: Error) => cs.failed(e));
  return (cs = new ChannelServer<T>(url, netHandle(server)));
}

export interface ChannelForkOptions<T = unknown> extends ChannelOptions<T> {
  /** 'shm' (default) or 'pipe' (a socketpair on fd 3), or 'unix-abstract'. */
  transport?: 'shm' | 'pipe' | 'unix-abstract';
  /** Passed to child_process.fork (env, execArgv, cwd, stdio for 0-2, uid, gid...). */
  fork?: NodeForkOptions;
  /** ms to wait for the child to connect. Default 30000. */
  timeout?: number;
}

export interface ForkedChannel<T> extends AsyncDisposable {
  child: ChildProcess;
  channel: Channel<T>;
}

/** What fork() resolves with; disposing it closes the channel (the child is left to exit by itself). */
function forked<T>(child: ChildProcess, channel: Channel<T>): ForkedChannel<T> {
  return { child, channel, [Symbol.asyncDispose]: () => channel.close() };
}

/**
 * Starts `modulePath` as a child Node process and resolves once it called
 * `channel.parent()`: the ipckit answer to child_process.fork's JSON IPC.
 * Rejects with IpcError ETIMEDOUT when the child does not connect within
 * `timeout`.
 */
export function fork<T = unknown>(modulePath: string, args: string[] = [], options?: ChannelForkOptions<T>): Promise<ForkedChannel<T>> {
  return fromHere(forkChannel<T>(modulePath, args, options));
}

async function forkChannel<T>(modulePath: string, args: string[], options?: ChannelForkOptions<T>): Promise<ForkedChannel<T>> {
  const o = checkOptions(options, 'options', FORK_OPTIONS) as ChannelForkOptions<T>;
  const transport = o.transport ?? 'shm';
  if (!['shm', 'pipe', 'unix-abstract'].includes(transport)) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.transport must be 'shm', 'pipe' or 'unix-abstract'");
  const timeout = checkInteger(o.timeout, 'options.timeout', 1, 2 ** 31 - 1, 30_000);
  const codecName = typeof o.codec === 'string' ? o.codec : o.codec === undefined ? 'json' : null;
  const base = o.fork ?? {};
  const env: NodeJS.ProcessEnv = { ...(base.env ?? process.env) };
  if (codecName) env.IPCKIT_CHANNEL_CODEC = codecName;
  if (o.maxMessageSize !== undefined) env.IPCKIT_CHANNEL_MAX = String(o.maxMessageSize);
  const { transport: _t, fork: _f, timeout: _timeout, ...channelOptions } = o;

  if (transport === 'pipe') {
    env.IPCKIT_CHANNEL = 'pipe:3';
    const child = forkProcess(modulePath, args, { ...base, env, stdio: [...std3(base), 'pipe', 'ipc'] as NodeForkOptions['stdio'] });
    // The 'ipc' slot is required by fork(); we never use it. Keep it from holding the loop.
    child.channel?.unref();
    const socket = child.stdio[3] as Socket;
    const ep: Endpoint = { scheme: 'pipe', fd: 3 };
    const s = settings(channelOptions, ep);
    try {
      const link = await Promise.race([
        connectStream(ep, 'pipe:', socket, s as Settings<unknown>, null, timeout),
        new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(stateError('ERR_IPCKIT_HANDSHAKE', `child ${modulePath} exited (${signal ?? code}) before calling channel.parent()`)))),
      ]);
      return forked(child, makeChannel(link, s));
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
  }

  const name = `fork-${process.pid}-${randomBytes(6).toString('hex')}`;
  const url = `${transport}:${name}`;
  // A child started as another user (fork.uid) is the one peer this listener exists for.
  const childUid = typeof base.uid === 'number' ? [base.uid] : [];
  const server = await listen<T>(url, { ...channelOptions, ...(childUid.length ? { allowUids: childUid } : {}) });
  env.IPCKIT_CHANNEL = url;
  const child = forkProcess(modulePath, args, { ...base, env, stdio: [...std3(base), 'ipc'] as NodeForkOptions['stdio'] });
  child.channel?.unref();
  try {
    const channel = await new Promise<Channel<T>>((resolve, reject) => {
      const timer = setTimeout(() => reject(timeoutError('fork', { path: modulePath }, `the child did not call channel.parent() within ${timeout} ms`)), timeout);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(stateError('ERR_IPCKIT_HANDSHAKE', `child ${modulePath} exited (${signal ?? code}) before calling channel.parent()`));
      };
      child.once('exit', onExit);
      server.once('connection', (ch: Channel<T>) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(ch);
      });
    });
    return forked(child, channel);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    await server.close();
  }
}

/** stdio 0-2 from the caller's fork options (fork() itself needs an 'ipc' slot, which we add and never use). */
function std3(base: NodeForkOptions): unknown[] {
  const s = base.stdio;
  if (Array.isArray(s)) return s.slice(0, 3).concat(['inherit', 'inherit', 'inherit']).slice(0, 3);
  if (typeof s === 'string') return [s, s, s];
  return ['inherit', 'inherit', 'inherit'];
}

/** In a process started by channel.fork(): the channel to the parent. */
export function parent<T = unknown>(options?: ChannelOptions<T>): Promise<Channel<T>> {
  let o: ChannelOptions<T>;
  try {
    o = checkOptions(options, 'options', CHANNEL_OPTIONS) as ChannelOptions<T>;
  } catch (e) {
    return Promise.reject(e);
  }
  const url = process.env.IPCKIT_CHANNEL;
  if (!url) return Promise.reject(stateError('ERR_IPCKIT_HANDSHAKE', 'channel.parent(): this process was not started by channel.fork() (no IPCKIT_CHANNEL)'));
  // fork() always opens Node's own IPC channel; it must not keep this process alive.
  process.channel?.unref();
  const codec = o.codec ?? (process.env.IPCKIT_CHANNEL_CODEC as CodecName | undefined);
  const max = o.maxMessageSize ?? (process.env.IPCKIT_CHANNEL_MAX ? Number(process.env.IPCKIT_CHANNEL_MAX) : undefined);
  return connect<T>(url, { ...o, ...(codec ? { codec } : {}), ...(max ? { maxMessageSize: max } : {}) });
}
