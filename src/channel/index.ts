// channel: one typed message API over every transport. The transport is the
// URL's scheme; see docs/channels.md. Who may be at the other end is decided
// by allowUids/allowGids on both sides (this process's own user and root
// always); see docs/security.md.
//
//   const server = await channel.listen('shm:jobs');
//   for await (const ch of server) for await (const msg of ch) ...
//   const ch = await channel.connect('shm:jobs', { codec: 'v8' });
//   await ch.send({ hello: new Map() });
import type { ChildProcess, ForkOptions as NodeForkOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fromHere, rangeError, stateError, typeError } from '../core/errors.js';
import { Channel } from './channel.js';
import { resolveCodec, type Codec, type CodecName } from './codec.js';
import { Access, type AccessOptions, type PeerCredentials } from './access.js';
import type { ChannelServerEvents, EventMethod } from './events.js';
import type { Link, LoanedView } from './link.js';
import type { ShmLinkOptions } from './shm.js';
import { MAX_RING } from './ring.js';
import { forkChannel } from './fork.js';
import { PIPE_SCHEME, connectPipe, pipe } from './transports/pipe.js';
import { resolve, type Resolved } from './transports/index.js';
import { defaultMaxMessageSize, type Listener, type Settings } from './transport.js';
import { checkBoolean, checkInteger, checkOptions } from '../core/validate.js';
import { checkNatsOptions, type NatsOptions } from './nats-options.js';
import { HANDSHAKE_MS } from './control.js';
import { connectWithPolicy, type RetryOptions } from './connect-policy.js';
import { netSettings, type HeartbeatOptions, type TlsOptions } from './net-options.js';

export { Channel };
export type { Codec, CodecName };
export type { CloseInfo, CloseReason, LoanedView } from './link.js';
export type { ChannelEvents, ChannelServerEvents } from './events.js';
export type { RequestOptions, RequestHandler } from './channel.js';
export type { HeartbeatOptions, TlsOptions } from './net-options.js';

// Exported with the public ConnectOptions and ListenOptions, which extend it (@public
// tells knip, which sees no import of it).
/**
 * The options of the network transports (tcp://, tls://); the other transports ignore `heartbeat`.
 * @public
 */
export interface NetOptions {
  /**
   * tcp://, tls://: a ping frame after `interval` ms without sending, and
   * peer-lost after `timeout` ms without receiving (a dead host or a cut
   * network). true/undefined: { interval: 5000, timeout: 15000 }; false: none.
   */
  heartbeat?: boolean | HeartbeatOptions;
  /** tls:// only: passed to Node's tls (listener: key and cert required; connector: verifies by default). */
  tls?: TlsOptions;
}

export interface ChannelOptions<Send = unknown, Receive = Send> extends ShmLinkOptions {
  /** 'raw' | 'json' | 'v8' | 'msgpack' or your own { name, encode, decode }. Default 'json'. Both ends must agree (checked by the hello). */
  codec?: CodecName | Codec<Send, Receive>;
  /** Largest message payload in bytes this side accepts; bigger incoming frames are an error on the channel. Each side sends at most the smaller of the two ends' limits. Default 16 MiB (shm: 1 MiB). */
  maxMessageSize?: number;
  /** Received messages buffered before the transport is paused (the sender then waits). Default 1024. */
  highWaterMark?: number;
  /** Default timeout of request() in ms. Default none. */
  requestTimeout?: number;
  /** nats: only: more servers, TLS, credentials, the probe timings (see docs/distributed.md). */
  nats?: NatsOptions;
}

export interface ConnectOptions<Send = unknown, Receive = Send> extends ChannelOptions<Send, Receive>, AccessOptions, NetOptions {
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

export interface ListenOptions<Send = unknown, Receive = Send> extends ChannelOptions<Send, Receive>, AccessOptions, NetOptions {
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

/**
 * `codec: 'raw'`: any bytes in (Buffer, TypedArray, DataView), a Buffer out
 * (the channel's own copy). connect/listen/fork/parent type their channel so.
 */
export type RawChannel = Channel<ArrayBufferView, Buffer>;
/**
 * `codec: 'raw'` with `zeroCopy`: on shm: a message arrives as a view into
 * the ring to release(); an empty message, requests, replies and every
 * message on other transports arrive as Buffers (`'release' in m` tells).
 */
export type ZeroCopyChannel = Channel<ArrayBufferView, Buffer | LoanedView>;
/** Options with `codec: 'raw'` and no zeroCopy. */
export type RawOptions<O> = O & { codec: 'raw'; zeroCopy?: false };
/** Options with `codec: 'raw'` and zeroCopy true (or a boolean only known at run time). */
export type ZeroCopyOptions<O> = O & { codec: 'raw'; zeroCopy: boolean };

const CHANNEL_OPTIONS = ['codec', 'maxMessageSize', 'highWaterMark', 'requestTimeout', 'spin', 'ringSize', 'zeroCopy', 'nats'] as const;
const CONNECT_OPTIONS = [...CHANNEL_OPTIONS, 'timeout', 'signal', 'retry', 'allowUids', 'allowGids', 'heartbeat', 'tls'];
const LISTEN_OPTIONS = [...CHANNEL_OPTIONS, 'unlink', 'sharedRing', 'allowUids', 'allowGids', 'heartbeat', 'tls'];
const FORK_OPTIONS = [...CHANNEL_OPTIONS, 'transport', 'fork', 'timeout'];

/** Which transport a URL names, as settings() needs it. */
type Where = Pick<Resolved, 'scheme' | 'transport'>;

function settings<T>(o: ChannelOptions<T> & AccessOptions & NetOptions, where: Where, side: 'connect' | 'listen' = 'connect'): Settings<T> {
  const codec = resolveCodec<T>(o.codec);
  const { max } = where.transport.maxMessageSize;
  const maxMessageSize = checkInteger(o.maxMessageSize, 'options.maxMessageSize', 1, max, defaultMaxMessageSize(where.transport));
  const highWaterMark = checkInteger(o.highWaterMark, 'options.highWaterMark', 1, 1 << 24, 1024);
  const requestTimeout = o.requestTimeout === undefined ? undefined : checkInteger(o.requestTimeout, 'options.requestTimeout', 0, 2 ** 31 - 1);
  if (o.spin !== undefined && o.spin !== 'auto' && o.spin !== false && !(typeof o.spin === 'number' && o.spin >= 0 && o.spin <= 1e6)) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', "options.spin must be 'auto', false, or microseconds 0..1000000");
  }
  const ringSize = o.ringSize === undefined ? undefined : checkInteger(o.ringSize, 'options.ringSize', 4096, MAX_RING);
  const zeroCopy = checkBoolean(o.zeroCopy, 'options.zeroCopy', false);
  if (zeroCopy && codec.name !== 'raw') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.zeroCopy needs codec: 'raw'");
  const shm: ShmLinkOptions = { spin: o.spin ?? 'auto', zeroCopy, ...(ringSize !== undefined ? { ringSize } : {}) };
  if (Access.given(o) && !where.transport.peerCredentials) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.allowUids/allowGids: the kernel cannot tell who is at the other end of a ${where.scheme}: channel`);
  }
  const access = Access.from(o);
  const net = netSettings(o, where.scheme, side);
  const nats = checkNatsOptions(o.nats);
  return { codec, maxMessageSize, maxMessageSizeGiven: o.maxMessageSize !== undefined, highWaterMark, ...(requestTimeout !== undefined ? { requestTimeout } : {}), shm, nats, access, net };
}

function makeChannel<T>(link: Link, s: Settings<T>): Channel<T> {
  return new Channel<T>(link, s);
}

/**
 * Connects to a listening channel (or, for pipe:, wraps an inherited
 * descriptor). Its handshake errors come from socket callbacks: fromHere()
 * gives them the caller's stack.
 */
export function connect(url: string, options: RawOptions<ConnectOptions>): Promise<RawChannel>;
export function connect(url: string, options: ZeroCopyOptions<ConnectOptions>): Promise<ZeroCopyChannel>;
export function connect<Send = unknown, Receive = Send>(url: string, options?: ConnectOptions<Send, Receive>): Promise<Channel<Send, Receive>>;
export function connect<T = unknown>(url: string, options?: ConnectOptions<T>): Promise<Channel<T>> {
  const connecting = (async () => {
    const { retry, ...o } = checkOptions(options, 'options', CONNECT_OPTIONS) as ConnectOptions<T>;
    // The URL and the options are checked once; each attempt only gets what is left of the time.
    const where = resolve(url);
    const s = settings(o, where);
    where.transport.check?.(o, 'connect', s);
    const bound = where.transport.connectTimeout;
    const policy = { timeout: o.timeout, signal: o.signal, retry };
    return await connectWithPolicy(url, policy, bound === null ? undefined : (bound ?? HANDSHAKE_MS), async (attempt) => makeChannel(await where.connect(s, attempt), s), where.transport.retryable?.bind(where.transport));
  })();
  return fromHere(connecting);
}

/** Typed on()/once()/off()... (ChannelServerEvents). */
export interface ChannelServer<Send = unknown, Receive = Send> {
  on: EventMethod<ChannelServerEvents<Send, Receive>, this>;
  once: EventMethod<ChannelServerEvents<Send, Receive>, this>;
  off: EventMethod<ChannelServerEvents<Send, Receive>, this>;
  addListener: EventMethod<ChannelServerEvents<Send, Receive>, this>;
  removeListener: EventMethod<ChannelServerEvents<Send, Receive>, this>;
  prependListener: EventMethod<ChannelServerEvents<Send, Receive>, this>;
  prependOnceListener: EventMethod<ChannelServerEvents<Send, Receive>, this>;
}

/**
 * A listening endpoint. Each peer that connects becomes a Channel: take them
 * with `for await (const ch of server)` or the 'connection' event. Events:
 * 'connection' (channel), 'refused' ({ pid, uid, gid } of a peer that
 * allowUids/allowGids turned away; it got EACCES), 'error' (a failed
 * handshake; the server keeps going).
 */
export class ChannelServer<Send = unknown, Receive = Send> extends EventEmitter implements AsyncIterable<Channel<Send, Receive>>, AsyncDisposable {
  readonly url: string;
  readonly #handle: Listener;
  #queue: Channel<Send, Receive>[] = [];
  #waiting: Array<(r: IteratorResult<Channel<Send, Receive>>) => void> = [];
  #closing: Promise<void> | null = null;

  /** @internal */
  constructor(url: string, handle: Listener) {
    super();
    this.url = url;
    this.#handle = handle;
  }

  /** @internal */
  accept(ch: Channel<Send, Receive>): void {
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

  [Symbol.asyncIterator](): AsyncIterator<Channel<Send, Receive>> {
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
      void (this.#handle.closed?.() ?? Promise.resolve()).then(() => setImmediate(resolve));
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

/** Listens on `url`; resolves once bound. */
export function listen(url: string, options: RawOptions<ListenOptions>): Promise<ChannelServer<ArrayBufferView, Buffer>>;
export function listen(url: string, options: ZeroCopyOptions<ListenOptions>): Promise<ChannelServer<ArrayBufferView, Buffer | LoanedView>>;
export function listen<Send = unknown, Receive = Send>(url: string, options?: ListenOptions<Send, Receive>): Promise<ChannelServer<Send, Receive>>;
export async function listen<T = unknown>(url: string, options?: ListenOptions<T>): Promise<ChannelServer<T>> {
  const where = resolve(url);
  const o = checkOptions(options, 'options', LISTEN_OPTIONS) as ListenOptions<T>;
  const s = settings(o, where, 'listen');
  const unlink = checkBoolean(o.unlink, 'options.unlink', true);
  const sharedRing = checkBoolean(o.sharedRing, 'options.sharedRing', false);
  if (sharedRing && !where.transport.sharedRing) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.sharedRing is for shm: listeners');
  const l = { unlink, sharedRing };
  where.transport.check?.(o, 'listen', s, l);
  let cs: ChannelServer<T>;
  // A transport reports nothing before listen() resolves: peers come later, on the event loop.
  const listener = await where.listen(s, l, {
    link: (link) => cs.accept(makeChannel(link, s)),
    refused: (peer) => cs.refused(peer),
    error: (e) => cs.failed(e),
  });
  return (cs = new ChannelServer<T>(listener.url ?? url, listener));
}

export interface ChannelForkOptions<Send = unknown, Receive = Send> extends ChannelOptions<Send, Receive> {
  /** 'shm' (default) or 'pipe' (a socketpair on fd 3), or 'unix-abstract'. */
  transport?: 'shm' | 'pipe' | 'unix-abstract';
  /** Passed to child_process.fork (env, execArgv, cwd, stdio for 0-2, uid, gid...). */
  fork?: NodeForkOptions;
  /** ms to wait for the child to connect. Default 30000. */
  timeout?: number;
}

export interface ForkedChannel<Send = unknown, Receive = Send> extends AsyncDisposable {
  child: ChildProcess;
  channel: Channel<Send, Receive>;
}

/**
 * Starts `modulePath` as a child Node process and resolves once it called
 * `channel.parent()`: the ipckit answer to child_process.fork's JSON IPC.
 * Rejects with IpcError ETIMEDOUT when the child does not connect within
 * `timeout`.
 */
export function fork(modulePath: string, args: string[] | undefined, options: RawOptions<ChannelForkOptions>): Promise<ForkedChannel<ArrayBufferView, Buffer>>;
export function fork(modulePath: string, args: string[] | undefined, options: ZeroCopyOptions<ChannelForkOptions>): Promise<ForkedChannel<ArrayBufferView, Buffer | LoanedView>>;
export function fork<Send = unknown, Receive = Send>(modulePath: string, args?: string[], options?: ChannelForkOptions<Send, Receive>): Promise<ForkedChannel<Send, Receive>>;
export function fork<T = unknown>(modulePath: string, args: string[] = [], options?: ChannelForkOptions<T>): Promise<ForkedChannel<T>> {
  return fromHere(forkChild<T>(modulePath, args, options));
}

async function forkChild<T>(modulePath: string, args: string[], options?: ChannelForkOptions<T>): Promise<ForkedChannel<T>> {
  const o = checkOptions(options, 'options', FORK_OPTIONS) as ChannelForkOptions<T>;
  const { transport: _t, fork: _f, timeout: _timeout, ...channelOptions } = o;
  return forkChannel<T>(modulePath, args, o, {
    overSocket: async (socket, timeoutMs) => {
      const s = settings(channelOptions, { scheme: PIPE_SCHEME, transport: pipe });
      return makeChannel(await connectPipe(socket, s, timeoutMs), s);
    },
    listen: (url, access) => listen<T>(url, { ...channelOptions, ...access }),
  });
}

/** In a process started by channel.fork(): the channel to the parent (the codec, unless given, is the parent's: type it as the parent's channel, Send and Receive swapped). */
export function parent(options: RawOptions<ChannelOptions>): Promise<RawChannel>;
export function parent(options: ZeroCopyOptions<ChannelOptions>): Promise<ZeroCopyChannel>;
export function parent<Send = unknown, Receive = Send>(options?: ChannelOptions<Send, Receive>): Promise<Channel<Send, Receive>>;
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
