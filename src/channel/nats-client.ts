// The NATS client behind nats:// channels: @nats-io/transport-node, an
// optional peer dependency loaded with import() the first time a nats: URL is
// used, so ipckit runs without it. A NatsSession is one client connection to
// the server, shared by what holds it (a listener and the channels it
// accepted; a connector's channel alone) and closed when the last lets go.
// Only the few client calls ipckit uses are typed here, structurally, so that
// ipckit's own types never need the package.
import { IpcError, stateError, timeoutError } from '../core/errors.js';
import type { NatsSettings } from './nats-options.js';

const NATS_PACKAGE = '@nats-io/transport-node';

export interface NatsMsg {
  readonly subject: string;
  readonly reply?: string;
  readonly data: Uint8Array;
  respond(payload?: Uint8Array): boolean;
}

export interface NatsSubscription {
  unsubscribe(): void;
}

export interface NatsConnection {
  readonly info?: { max_payload: number };
  publish(subject: string, payload?: Uint8Array, options?: { reply?: string; headers?: unknown }): void;
  subscribe(subject: string, options: { queue?: string; callback(error: Error | null, msg: NatsMsg): void }): NatsSubscription;
  request(subject: string, payload: Uint8Array, options: { timeout: number }): Promise<NatsMsg>;
  flush(): Promise<void>;
  close(): Promise<void>;
  closed(): Promise<void | Error>;
  status(): AsyncIterable<{ type: string }>;
  isClosed(): boolean;
}

interface NatsModule {
  connect(options: Record<string, unknown>): Promise<NatsConnection>;
  /** Message headers (jetstream: sets Nats-Msg-Id with them). */
  headers(): { set(key: string, value: string): void };
}

const loading = new Map<string, Promise<unknown>>();

/**
 * An optional package, loaded once with import(); a clear error naming the
 * package when it is not installed (`what`: the channels that need it).
 */
export function loadOptional<M>(pkg: string, what: string): Promise<M> {
  let p = loading.get(pkg);
  if (!p) {
    p = import(pkg).catch((e: NodeJS.ErrnoException) => {
      loading.delete(pkg);
      if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(pkg)) {
        throw stateError('ERR_IPCKIT_MISSING_PACKAGE', `${what}, which is not installed: npm install ${pkg}`);
      }
      throw e;
    });
    loading.set(pkg, p);
  }
  return p as Promise<M>;
}

/** The client package, loaded once; a clear error naming the package when it is not installed. */
export function loadNatsClient(): Promise<NatsModule> {
  return loadOptional<NatsModule>(NATS_PACKAGE, 'nats:// and jetstream:// channels need the NATS client');
}

/** Whether a client error says that nobody subscribes to the subject (the server's "no responders" status). */
export function isNoResponders(e: unknown): boolean {
  return hasName(e, ['NoResponders', 'NoRespondersError']);
}

/** Whether a client error is the server refusing this user a subject. */
export function isPermissionViolation(e: unknown): boolean {
  return hasName(e, ['PermissionViolationError']);
}

function hasName(e: unknown, names: string[]): boolean {
  for (let c = e as { name?: string; cause?: unknown } | undefined, depth = 0; c && depth < 4; c = c.cause as typeof c, depth++) {
    if (c.name !== undefined && names.includes(c.name)) return true;
  }
  return false;
}

/** Whether a client error is its request timeout. */
export function isTimeout(e: unknown): boolean {
  return hasName(e, ['TimeoutError']);
}

/** What the server URL and options.nats say, as the client's connect options. */
export interface NatsServer {
  host: string;
  port: number;
  user?: string;
  pass?: string;
}

type Handle = { ref?(): void; unref?(): void } | undefined;
interface ClientInternals {
  outbound?: { size?(): number };
  transport?: { socket?: Handle & { destroyed?: boolean; writableLength?: number; write?(data: Uint8Array, cb: (e?: Error | null) => void): boolean } };
  heartbeats?: { timer?: Handle };
}
const EMPTY = new Uint8Array(0);

/** Something that keeps a session open: a listener or a link. */
type Holder = object;

/** A link on the session: told when the connection to the server is lost (messages may have been lost with it). */
export interface SessionMember {
  lost(error: Error): void;
  /**
   * Optional (jetstream: links, whose messages wait in the server's store):
   * the client lost its connection and is reconnecting; lost() is then
   * called only when the connection is closed for good.
   */
  disconnected?(): void;
  /** Optional: the client is connected again, subscriptions restored. */
  reconnected?(): void;
}

/** How long a listener's client waits between attempts to reach a server that went away. */
const RECONNECT_WAIT_MS = 250;

export class NatsSession {
  readonly nc: NatsConnection;
  readonly #holders = new Set<Holder>();
  readonly #unrefd = new Set<Holder>();
  readonly #members = new Set<SessionMember>();
  #closing: Promise<void> | null = null;

  private constructor(nc: NatsConnection) {
    this.nc = nc;
    void this.#watch();
    void nc.closed().then((e) => this.#lostAll(e instanceof Error ? e : new Error('the connection to the NATS server was closed')));
  }

  /**
   * Connects to the server within `timeoutMs`. `reconnect`: a listener's
   * client reconnects (and resubscribes) after the server comes back; a
   * connector's channel ends with its connection, so its client does not.
   */
  static async open(server: NatsServer, nats: NatsSettings, url: string, reconnect: boolean, timeoutMs: number): Promise<NatsSession> {
    const client = await loadNatsClient();
    const hostPort = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
    const user = server.user ?? nats.user;
    const pass = server.pass ?? nats.pass;
    const options: Record<string, unknown> = {
      servers: [hostPort, ...(nats.servers ?? [])],
      timeout: Math.max(1, timeoutMs),
      reconnect,
      // No Error (with its stack) made ahead of every request in case it fails: jetstream: makes one per message.
      noAsyncTraces: true,
      ...(reconnect ? { maxReconnectAttempts: -1, reconnectTimeWait: RECONNECT_WAIT_MS } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(pass !== undefined ? { pass } : {}),
      ...(nats.token !== undefined ? { token: nats.token } : {}),
      ...(nats.name !== undefined ? { name: nats.name } : {}),
      ...(nats.tls !== undefined ? { tls: nats.tls } : {}),
    };
    try {
      return new NatsSession(await client.connect(options));
    } catch (e) {
      throw connectError(e, url);
    }
  }

  /** The largest message payload the server takes. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  hold(holder: Holder): void {
    this.#holders.add(holder);
  }

  /**
   * `holder` lets go; the last one closes the connection, after what was
   * published reached the server. Resolves once the connection is closed
   * (at once while others still hold it).
   */
  release(holder: Holder): Promise<void> {
    this.#holders.delete(holder);
    this.#unrefd.delete(holder);
    if (this.#holders.size > 0) return Promise.resolve();
    this.#closing ??= this.nc
      .flush()
      .catch(() => {})
      .then(() => this.nc.close())
      .catch(() => {});
    return this.#closing;
  }

  join(member: SessionMember): void {
    this.#members.add(member);
  }

  leave(member: SessionMember): void {
    this.#members.delete(member);
  }

  /** The connection keeps the process alive while any holder wants it to. */
  ref(holder: Holder, on: boolean): void {
    if (on) this.#unrefd.delete(holder);
    else this.#unrefd.add(holder);
    this.#applyRef();
  }

  /**
   * Resolves once everything published so far is in the kernel: the socket
   * buffer towards the server, what a resolved send() means on every
   * transport. The client writes what was published in a microtask (or at
   * once past 32 KiB); after it, an empty write's callback comes once Node's
   * queue before it reached the kernel. Where the client is not as expected
   * (reconnecting, or other internals), a flush: the server has it.
   */
  whenWritten(): Promise<void> {
    return new Promise((resolve, reject) => {
      queueMicrotask(() => {
        const p = this.#internals();
        const socket = p?.transport?.socket;
        if (p?.outbound?.size?.() === 0 && socket && !socket.destroyed && typeof socket.write === 'function') {
          if (socket.writableLength === 0) return resolve();
          socket.write(EMPTY, (e?: Error | null) => (e ? reject(e) : resolve()));
          return;
        }
        this.nc.flush().then(resolve, reject);
      });
    });
  }

  /** The client's protocol handler (@nats-io/nats-core 3.x): its outbound buffer, socket and ping timer. */
  #internals(): ClientInternals | undefined {
    return (this.nc as unknown as { protocol?: ClientInternals }).protocol;
  }

  #applyRef(): void {
    const unref = this.#holders.size > 0 && [...this.#holders].every((h) => this.#unrefd.has(h));
    // The client offers no ref/unref: reach its socket and its ping timer
    // (set anew at every ping, hence the 'ping' status below).
    const p = this.#internals();
    for (const handle of [p?.transport?.socket, p?.heartbeats?.timer]) {
      if (unref) handle?.unref?.();
      else handle?.ref?.();
    }
  }

  async #watch(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        // Whatever was in flight while the connection was down is gone: every channel on it ends now.
        if (s.type === 'disconnect' || s.type === 'staleConnection') this.#lostAll(new Error(`the connection to the NATS server was lost (${s.type})`), true);
        if (s.type === 'reconnect') for (const m of [...this.#members]) m.reconnected?.();
        // A new socket after a reconnect, a new ping timer after a ping: give them this session's ref state.
        if (s.type === 'reconnect' || s.type === 'ping') this.#applyRef();
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }

  /** `transient`: the client reconnects by itself; members that can wait for it are told so instead. */
  #lostAll(error: Error, transient = false): void {
    for (const m of [...this.#members]) {
      if (transient && m.disconnected) m.disconnected();
      else m.lost(error);
    }
  }
}

/** A failed connect to the server, as an IpcError where the socket said why (ECONNREFUSED lets `retry` work). */
function connectError(e: unknown, url: string): Error {
  const cause = (e as { cause?: NodeJS.ErrnoException })?.cause;
  const errno = typeof cause?.errno === 'number' ? cause.errno : typeof (e as NodeJS.ErrnoException)?.errno === 'number' ? (e as NodeJS.ErrnoException).errno : undefined;
  if (errno !== undefined) return new IpcError(Math.abs(errno), 'connect', { path: url }, 'the NATS server');
  if ((e as { name?: string })?.name === 'TimeoutError') return timeoutError('connect', { path: url }, 'no answer from the NATS server');
  const err = stateError('ERR_IPCKIT_HANDSHAKE', `${url}: could not connect to the NATS server: ${(e as Error)?.message ?? String(e)}`);
  (err as Error).cause = e;
  return err;
}
