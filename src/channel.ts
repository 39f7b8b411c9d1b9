// channel: one typed message API over every transport. The transport is the
// URL's scheme; see docs/channels.md.
//
//   const server = await channel.listen('shm:jobs');
//   for await (const ch of server) for await (const msg of ch) ...
//   const ch = await channel.connect('shm:jobs', { codec: 'v8' });
//   await ch.send({ hello: new Map() });
import { fork as forkProcess, type ChildProcess, type ForkOptions as NodeForkOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { unlinkSync } from 'node:fs';
import { connect as netConnect, createServer, Socket, type Server } from 'node:net';
import { IpcError, rangeError, stateError, typeError } from './errors.js';
import { Channel } from './channel/channel.js';
import { resolveCodec, type Codec, type CodecName } from './channel/codec.js';
import type { Link } from './channel/link.js';
import { connectShm, listenShm, type ShmLinkOptions } from './channel/shm.js';
import { connectMq, listenMq } from './channel/mq.js';
import { connectSysvMq, listenSysvMq } from './channel/sysvmq.js';
import { StreamLink } from './channel/stream.js';
import { SeqpacketLink, seqpacketMaxFrame } from './channel/seqpacket.js';
import { connectFifo, listenFifo } from './channel/fifo.js';
import { connect as unixConnect, listen as unixListen } from './unix.js';
import { parseUrl, type Endpoint } from './channel/url.js';
import { checkBoolean, checkInteger, checkObject } from './validate.js';

export { Channel };
export type { Codec, CodecName };
export type { CloseInfo, CloseReason } from './channel/link.js';
export type { RequestOptions, RequestHandler } from './channel/channel.js';

export interface ChannelOptions<T = unknown> extends ShmLinkOptions {
  /** 'raw' | 'json' | 'v8' | 'msgpack' or your own { name, encode, decode }. Default 'json'. Both ends must agree. */
  codec?: CodecName | Codec<T>;
  /** Largest message payload in bytes; bigger incoming frames are an error on the channel. Default 16 MiB (shm: 1 MiB). */
  maxMessageSize?: number;
  /** Received messages buffered before the transport is paused (the sender then waits). Default 1024. */
  highWaterMark?: number;
  /** Default timeout of request() in ms. Default none. */
  requestTimeout?: number;
}

export interface ConnectOptions<T = unknown> extends ChannelOptions<T> {
  /** fifo: ms to wait for a reader to open the FIFO. Default: no limit. */
  timeout?: number;
  /** fifo: cancels the wait for a reader. */
  signal?: AbortSignal;
}

export interface ListenOptions<T = unknown> extends ChannelOptions<T> {
  /**
   * unix: replace a stale socket file left by a server that died (nobody
   * accepts on it) instead of failing with EADDRINUSE. Default true. (The
   * file is always removed by close(): libuv unlinks it.)
   */
  unlink?: boolean;
  /**
   * shm: every connector writes into one ring that this listener reads (MPSC):
   * one place to look and one doorbell however many peers. Default false (a
   * ring pair per connection). See docs/channels.md for the trade-offs.
   */
  sharedRing?: boolean;
  // unix-seqpacket: and fifo: too remove their socket file / FIFO on close unless unlink is false.
}

const STREAM_MAX = 16 * 1024 * 1024;
const SHM_MAX = 1024 * 1024;
/** One frame per queue message: the default msgsize_max (8192) minus the frame header. */
const MQ_MAX = 8192 - 5;
const MAX_LIMIT = 1024 * 1024 * 1024;

interface Settings<T> {
  codec: Codec<T>;
  maxMessageSize: number;
  highWaterMark: number;
  requestTimeout?: number;
  shm: ShmLinkOptions;
}

function settings<T>(options: ChannelOptions<T> | undefined, ep: Endpoint): Settings<T> {
  const o = checkObject(options, 'options') as ChannelOptions<T>;
  const codec = resolveCodec<T>(o.codec);
  const maxMessageSize = checkInteger(o.maxMessageSize, 'options.maxMessageSize', 1, MAX_LIMIT, ep.scheme === 'shm' ? SHM_MAX : ep.scheme === 'mq' || ep.scheme === 'sysvmq' ? MQ_MAX : isSeqpacket(ep) ? seqpacketMaxFrame() - 5 : STREAM_MAX);
  const highWaterMark = checkInteger(o.highWaterMark, 'options.highWaterMark', 1, 1 << 24, 1024);
  const requestTimeout = o.requestTimeout === undefined ? undefined : checkInteger(o.requestTimeout, 'options.requestTimeout', 0, 2 ** 31 - 1);
  if (o.spin !== undefined && o.spin !== 'auto' && o.spin !== false && !(typeof o.spin === 'number' && o.spin >= 0 && o.spin <= 1e6)) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', "options.spin must be 'auto', false, or microseconds 0..1000000");
  }
  const ringSize = o.ringSize === undefined ? undefined : checkInteger(o.ringSize, 'options.ringSize', 4096, 1 << 30);
  const zeroCopy = checkBoolean(o.zeroCopy, 'options.zeroCopy', false);
  if (zeroCopy && codec.name !== 'raw') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.zeroCopy needs codec: 'raw'");
  const shm: ShmLinkOptions = { spin: o.spin ?? 'auto', zeroCopy, ...(ringSize !== undefined ? { ringSize } : {}) };
  return { codec, maxMessageSize, highWaterMark, ...(requestTimeout !== undefined ? { requestTimeout } : {}), shm };
}

function makeChannel<T>(link: Link, s: Settings<T>): Channel<T> {
  return new Channel<T>(link, s);
}

function streamLink(ep: Endpoint, socket: Socket, s: Settings<unknown>): Link {
  return new StreamLink(ep.scheme, socket, s.maxMessageSize + 5);
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

function netPath(ep: Endpoint): string {
  if (ep.scheme === 'unix') return ep.path;
  if (ep.scheme === 'unix-abstract') return `\0${ep.name}`;
  throw new Error('unreachable');
}

function wrapNetError(e: NodeJS.ErrnoException, syscall: string, url: string): Error {
  return typeof e.errno === 'number' ? new IpcError(Math.abs(e.errno), e.syscall ?? syscall, { path: url }) : e;
}

/** Connects to a listening channel (or, for pipe:, wraps an inherited descriptor). */
export async function connect<T = unknown>(url: string, options?: ConnectOptions<T>): Promise<Channel<T>> {
  const ep = parseUrl(url);
  const s = settings(options, ep);
  if (ep.scheme === 'fifo') {
    const o = options ?? {};
    const wait = { ...(o.timeout !== undefined ? { timeout: o.timeout } : {}), ...(o.signal ? { signal: o.signal } : {}) };
    return makeChannel(await connectFifo(ep.path, s.maxMessageSize + 5, wait), s);
  }
  if (isSeqpacket(ep)) {
    const frame = seqpacketFrame(s as Settings<unknown>);
    const sock = await unixConnect(seqpacketAddress(ep), { type: 'seqpacket', maxMessageSize: frame });
    return makeChannel(new SeqpacketLink(ep.scheme, sock, frame), s);
  }
  if (ep.scheme === 'shm') return makeChannel(await connectShm(ep.name, s.maxMessageSize, s.shm), s);
  if (ep.scheme === 'mq') return makeChannel(await connectMq(ep.name, s.maxMessageSize), s);
  if (ep.scheme === 'sysvmq') return makeChannel(await connectSysvMq(ep.name, s.maxMessageSize), s);
  if (ep.scheme === 'pipe') {
    const socket = new Socket({ fd: ep.fd, readable: true, writable: true });
    return makeChannel(streamLink(ep, socket, s as Settings<unknown>), s);
  }
  const socket = await new Promise<Socket>((resolve, reject) => {
    const sock = ep.scheme === 'tcp' ? netConnect(ep.port, ep.host) : netConnect(netPath(ep));
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (e) => reject(wrapNetError(e, 'connect', url)));
  });
  return makeChannel(streamLink(ep, socket, s as Settings<unknown>), s);
}

/**
 * A listening endpoint. Each peer that connects becomes a Channel: take them
 * with `for await (const ch of server)` or the 'connection' event. Events:
 * 'connection' (channel), 'error' (a failed handshake; the server keeps going).
 */
export class ChannelServer<T = unknown> extends EventEmitter implements AsyncIterable<Channel<T>>, AsyncDisposable {
  readonly url: string;
  readonly #server: Server;
  readonly #cleanup: () => void;
  #queue: Channel<T>[] = [];
  #waiting: Array<(r: IteratorResult<Channel<T>>) => void> = [];
  #closing: Promise<void> | null = null;

  /** @internal */
  constructor(url: string, server: Server, cleanup: () => void) {
    super();
    this.url = url;
    this.#server = server;
    this.#cleanup = cleanup;
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

  /** Stops accepting (and removes a unix: socket file). Channels already accepted stay open. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      // net's close callback waits for every accepted connection to end; the
      // listening socket itself is closed at once, which is all we promise.
      this.#server.close();
      setImmediate(resolve);
      this.#cleanup();
      for (const w of this.#waiting.splice(0)) w({ value: undefined, done: true });
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Whether the listening socket keeps the process alive (default true). */
  ref(): this {
    this.#server.ref();
    return this;
  }

  unref(): this {
    this.#server.unref();
    return this;
  }
}

function listenNet(server: Server, ep: Endpoint, url: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(wrapNetError(e, 'bind', url)));
    const onListening = () => {
      server.removeAllListeners('error');
      resolve();
    };
    if (ep.scheme === 'tcp') server.listen(ep.port, ep.host, onListening);
    else server.listen(netPath(ep), onListening);
  });
}

/** Whether a unix socket file answers (a live server) or is stale (its server died). */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code !== 'ECONNREFUSED'));
  });
}

/** Listens on `url`; resolves once bound. */
export async function listen<T = unknown>(url: string, options?: ListenOptions<T>): Promise<ChannelServer<T>> {
  const ep = parseUrl(url);
  const s = settings(options, ep);
  const unlinkOnClose = checkBoolean((options ?? {}).unlink, 'options.unlink', true);
  const sharedRing = checkBoolean((options ?? {}).sharedRing, 'options.sharedRing', false);
  if (sharedRing && ep.scheme !== 'shm') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.sharedRing is for shm: listeners');
  if (sharedRing && s.shm.zeroCopy) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.sharedRing and options.zeroCopy do not go together (the listener copies frames out of the shared ring)');
  if (ep.scheme === 'pipe') throw typeError('ERR_IPCKIT_INVALID_URL', 'pipe: channels are made by channel.fork(); the child uses channel.parent()');
  let cs: ChannelServer<T>;
  if (ep.scheme === 'shm') {
    const server = await listenShm(
      ep.name,
      s.maxMessageSize,
      { ...s.shm, sharedRing },
      (link) => cs.accept(makeChannel(link, s)),
      (e) => cs.failed(e),
    );
    cs = new ChannelServer<T>(url, server, () => {});
    return cs;
  }
  if (ep.scheme === 'sysvmq') {
    const server = await listenSysvMq(
      ep.name,
      s.maxMessageSize,
      (link) => cs.accept(makeChannel(link, s)),
      (e) => cs.failed(e),
    );
    cs = new ChannelServer<T>(url, server, () => {});
    return cs;
  }
  if (ep.scheme === 'fifo') {
    const server = listenFifo(
      ep.path,
      s.maxMessageSize + 5,
      unlinkOnClose,
      (link) => cs.accept(makeChannel(link, s)),
      (e) => cs.failed(e),
    );
    cs = new ChannelServer<T>(url, server as unknown as Server, () => {});
    return cs;
  }
  if (isSeqpacket(ep)) {
    const frame = seqpacketFrame(s as Settings<unknown>);
    const server = await unixListen(seqpacketAddress(ep), { type: 'seqpacket', maxMessageSize: frame, unlinkOnClose });
    server.on('connection', (sock) => cs.accept(makeChannel(new SeqpacketLink(ep.scheme, sock, frame), s)));
    server.on('error', (e: Error) => cs.failed(e));
    cs = new ChannelServer<T>(url, server as unknown as Server, () => {});
    return cs;
  }
  if (ep.scheme === 'mq') {
    const server = await listenMq(
      ep.name,
      (link) => cs.accept(makeChannel(link, s)),
      (e) => cs.failed(e),
    );
    cs = new ChannelServer<T>(url, server, () => {});
    return cs;
  }
  const server = createServer((socket) => cs.accept(makeChannel(streamLink(ep, socket, s as Settings<unknown>), s)));
  try {
    await listenNet(server, ep, url);
  } catch (e) {
    if (!(ep.scheme === 'unix' && unlinkOnClose && (e as IpcError).code === 'EADDRINUSE' && !(await socketIsLive(ep.path)))) throw e;
    // A server that was killed left its socket file behind: take its place.
    unlinkSync(ep.path);
    await listenNet(server, ep, url);
  }
  let removed = false;
  const cleanup = () => {
    if (ep.scheme !== 'unix' || !unlinkOnClose || removed) return;
    removed = true;
    try {
      unlinkSync(ep.path);
    } catch {}
  };
  const addr = server.address();
  // tcp://host:0 asks for any free port: report the one we got.
  const actualUrl = ep.scheme === 'tcp' && addr && typeof addr === 'object' ? `tcp://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${addr.port}` : url;
  cs = new ChannelServer<T>(actualUrl, server, cleanup);
  return cs;
}

export interface ChannelForkOptions<T = unknown> extends ChannelOptions<T> {
  /** 'shm' (default) or 'pipe' (a socketpair on fd 3), or 'unix-abstract'. */
  transport?: 'shm' | 'pipe' | 'unix-abstract';
  /** Passed to child_process.fork (env, execArgv, cwd, stdio for 0-2...). */
  fork?: NodeForkOptions;
  /** ms to wait for the child to connect. Default 30000. */
  timeout?: number;
}

export interface ForkedChannel<T> {
  child: ChildProcess;
  channel: Channel<T>;
}

/**
 * Starts `modulePath` as a child Node process and resolves once it called
 * `channel.parent()`: the ipckit answer to child_process.fork's JSON IPC.
 */
export async function fork<T = unknown>(modulePath: string, args: string[] = [], options: ChannelForkOptions<T> = {}): Promise<ForkedChannel<T>> {
  const transport = options.transport ?? 'shm';
  if (!['shm', 'pipe', 'unix-abstract'].includes(transport)) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.transport must be 'shm', 'pipe' or 'unix-abstract'");
  const timeout = checkInteger(options.timeout, 'options.timeout', 1, 2 ** 31 - 1, 30_000);
  const codecName = typeof options.codec === 'string' ? options.codec : options.codec === undefined ? 'json' : null;
  const base = options.fork ?? {};
  const env: NodeJS.ProcessEnv = { ...(base.env ?? process.env) };
  if (codecName) env.IPCKIT_CHANNEL_CODEC = codecName;
  if (options.maxMessageSize !== undefined) env.IPCKIT_CHANNEL_MAX = String(options.maxMessageSize);

  if (transport === 'pipe') {
    env.IPCKIT_CHANNEL = 'pipe:3';
    const child = forkProcess(modulePath, args, { ...base, env, stdio: [...std3(base), 'pipe', 'ipc'] as NodeForkOptions['stdio'] });
    // The 'ipc' slot is required by fork(); we never use it. Keep it from holding the loop.
    child.channel?.unref();
    const socket = child.stdio[3] as Socket;
    const ep: Endpoint = { scheme: 'pipe', fd: 3 };
    const s = settings(options, ep);
    return { child, channel: makeChannel(streamLink(ep, socket, s as Settings<unknown>), s) };
  }

  const name = `fork-${process.pid}-${randomBytes(6).toString('hex')}`;
  const url = `${transport}:${name}`;
  const server = await listen<T>(url, options);
  env.IPCKIT_CHANNEL = url;
  const child = forkProcess(modulePath, args, { ...base, env, stdio: [...std3(base), 'ipc'] as NodeForkOptions['stdio'] });
  child.channel?.unref();
  try {
    const channel = await new Promise<Channel<T>>((resolve, reject) => {
      const timer = setTimeout(() => reject(stateError('ERR_IPCKIT_TIMEOUT', `child ${modulePath} did not call channel.parent() within ${timeout} ms`)), timeout);
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
    return { child, channel };
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
export function parent<T = unknown>(options: ChannelOptions<T> = {}): Promise<Channel<T>> {
  const url = process.env.IPCKIT_CHANNEL;
  if (!url) return Promise.reject(stateError('ERR_IPCKIT_HANDSHAKE', 'channel.parent(): this process was not started by channel.fork() (no IPCKIT_CHANNEL)'));
  // fork() always opens Node's own IPC channel; it must not keep this process alive.
  process.channel?.unref();
  const codec = options.codec ?? (process.env.IPCKIT_CHANNEL_CODEC as CodecName | undefined);
  const max = options.maxMessageSize ?? (process.env.IPCKIT_CHANNEL_MAX ? Number(process.env.IPCKIT_CHANNEL_MAX) : undefined);
  return connect<T>(url, { ...options, ...(codec ? { codec } : {}), ...(max ? { maxMessageSize: max } : {}) });
}
