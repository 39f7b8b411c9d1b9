// The seam between the channel API and its transports: each URL scheme is
// served by one Transport record (src/channel/transports/), listed once in
// the registry (src/channel/transports/index.ts). The facade (src/channel/index.ts)
// checks what is common to all, then hands the endpoint to the transport.
import { typeError } from '../core/errors.js';
import type { Codec } from './codec.js';
import { MAX_ANNOUNCED } from './hello.js';
import type { Access, AccessOptions } from './access.js';
import type { Link } from './link.js';
import type { LocalListenerEvents } from './rendezvous.js';
import type { NatsSettings } from './nats-options.js';
import type { ShmLinkOptions } from './shm.js';
import type { NetSettings } from './net-options.js';

/** The options every transport gets, checked and with their defaults. */
export interface Settings<T = unknown> {
  codec: Codec<T>;
  maxMessageSize: number;
  highWaterMark: number;
  requestTimeout?: number;
  /** shm: only; the other transports ignore them. */
  shm: ShmLinkOptions;
  /** nats: only (options.nats, checked); the other transports ignore it. */
  nats: NatsSettings;
  /** Whether options.maxMessageSize was given (nats: otherwise takes what its server carries). */
  maxMessageSizeGiven: boolean;
  access: Access;
  /** tcp:, tls: only (heartbeat, TLS); the other transports ignore them. */
  net: NetSettings;
}

/** connect()'s own options, checked. */
export interface ConnectSettings {
  /** ms for the connect and the handshake; absent: the transport's default. */
  timeout?: number;
  signal?: AbortSignal;
}

/** listen()'s own options, checked. */
export interface ListenSettings {
  /** unix: replaces a stale socket file; unix-seqpacket: and fifo: remove their file on close. */
  unlink: boolean;
  sharedRing: boolean;
}

/** What a transport's listener reports: each new link, each refused peer, each failed handshake. */
export interface ListenerEvents extends LocalListenerEvents {
  link(link: Link): void;
}

/** What a ChannelServer stops and refs. */
export interface Listener {
  close(): void;
  /** Optional: settles once what close() let go of is gone (nats: its connection to the server). */
  closed?(): Promise<void>;
  ref(): void;
  unref(): void;
  /** mq: how many connections the connecting user's RLIMIT_MSGQUEUE holds. */
  readonly maxConnections?: number;
  /** The URL peers reach, when it is not the one asked for (tcp://host:0 got a port). */
  readonly url?: string;
}

/** The options as given, for a transport's own refusals (after the common checks). */
interface GivenOptions extends AccessOptions {
  zeroCopy?: boolean;
}

export interface Transport<E extends { scheme: string }> {
  /** The URL schemes this transport serves (the part before the first ':'). */
  readonly schemes: readonly string[];
  /** The endpoint `rest` (the URL after 'scheme:') names; throws urlError() when it names none. */
  parse(scheme: string, rest: string, url: string): E;
  readonly maxMessageSize: {
    /** Default, in bytes; a function when it depends on the system. */
    readonly default: number | (() => number);
    /** Largest value the option accepts. */
    readonly max: number;
    /** docs/channels.md's words for a default that is a function. */
    readonly describe?: string;
  };
  /** Whether the kernel tells who is at the other end; where it cannot, allowUids/allowGids are refused. */
  readonly peerCredentials: boolean;
  /**
   * How long a connect may take when no timeout is given, in ms: absent,
   * the handshake bound (HANDSHAKE_MS); null, no limit (fifo: a writer waits
   * for its reader as long as it takes).
   */
  readonly connectTimeout?: number | null;
  /** Whether listen() honours options.sharedRing. */
  readonly sharedRing?: boolean;
  /**
   * Connect errors besides "nobody listens" (ECONNREFUSED, ENOENT) that
   * `retry` retries on this transport: a network not there yet.
   */
  retryable?(e: unknown): boolean;
  /** Refuses options this transport cannot honour on `side`. */
  check?(o: GivenOptions, side: 'connect' | 'listen', s: Settings, l?: ListenSettings): void;
  connect(ep: E, url: string, s: Settings, c: ConnectSettings): Promise<Link>;
  /** Resolves once peers can connect. */
  listen(ep: E, url: string, s: Settings, l: ListenSettings, events: ListenerEvents): Promise<Listener>;
}

/** Default maxMessageSize of the byte-stream transports. */
export const STREAM_MAX = 16 * 1024 * 1024;
/** The largest maxMessageSize a transport accepts unless its own medium is smaller (what a hello may announce). */
export const MAX_LIMIT = MAX_ANNOUNCED;

/** A transport as the facade sees it once the URL is parsed: its limits and checks. */
export type TransportInfo = Omit<Transport<never>, 'parse' | 'connect' | 'listen'>;

export function urlError(url: string, why: string): TypeError {
  return typeError('ERR_IPCKIT_INVALID_URL', `invalid channel URL '${url}': ${why}`);
}

/** A name in an abstract or shared namespace: 1..90 bytes without NUL; a leading '//' is dropped. */
export function parseName(rest: string, url: string): string {
  const name = rest.replace(/^\/\//, '');
  if (!name || name.includes('\0') || Buffer.byteLength(name) > 90) throw urlError(url, 'the name must be 1..90 bytes without NUL');
  return name;
}

/** A file path ('scheme:///abs' reads as '/abs'); `socket`: limited to what sockaddr_un holds. */
export function parsePath(scheme: string, rest: string, url: string, socket: boolean): string {
  const path = rest.replace(/^\/\/(?=\/)/, '');
  if (!path || path.includes('\0')) throw urlError(url, `needs a path, e.g. ${scheme}:/tmp/app.${socket ? 'sock' : scheme}`);
  if (socket && Buffer.byteLength(path) > 107) throw urlError(url, 'socket paths are limited to 107 bytes (sockaddr_un)');
  return path;
}

/** A transport's default maxMessageSize, now (some depend on the system). */
export function defaultMaxMessageSize(t: Pick<TransportInfo, 'maxMessageSize'>): number {
  const d = t.maxMessageSize.default;
  return typeof d === 'function' ? d() : d;
}
