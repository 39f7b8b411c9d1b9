// The registry: every channel transport, one line each. A URL's scheme picks
// the one that lists it; docs/channels.md's transport table and the channel
// suite's transport list are checked against this list by the tests.
import { typeError } from '../../core/errors.js';
import type { Link } from '../link.js';
import { urlError, type ConnectSettings, type Listener, type ListenerEvents, type ListenSettings, type Settings, type Transport, type TransportInfo } from '../transport.js';
import { fifo } from './fifo.js';
import { jetstream } from './jetstream.js';
import { mq } from './mq.js';
import { nats } from './nats.js';
import { pipe } from './pipe.js';
import { seqpacket } from './seqpacket.js';
import { shm } from './shm.js';
import { sysvmq } from './sysvmq.js';
import { tcp } from './tcp.js';
import { tls } from './tls.js';
import { unix } from './unix.js';

export const TRANSPORTS = [
  shm,
  unix,
  tcp,
  pipe,
  mq,
  sysvmq,
  seqpacket,
  fifo,
  tls,
  nats,
  jetstream,
] as const;

type EndpointOf<T> = T extends Transport<infer E> ? E : never;
/** What a channel URL names: the scheme and that transport's address. */
export type Endpoint = EndpointOf<(typeof TRANSPORTS)[number]>;

export const SCHEMES: readonly string[] = TRANSPORTS.flatMap((t) => t.schemes);

/** A parsed URL and its transport, ready to connect or listen. */
export interface Resolved {
  readonly scheme: string;
  readonly transport: TransportInfo;
  connect(s: Settings, c: ConnectSettings): Promise<Link>;
  listen(s: Settings, l: ListenSettings, events: ListenerEvents): Promise<Listener>;
}

function split(url: string): { scheme: string; rest: string } {
  if (typeof url !== 'string') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'url must be a string such as shm:NAME or unix:/path');
  const colon = url.indexOf(':');
  if (colon < 0) throw urlError(url, `no scheme (one of ${SCHEMES.join(', ')})`);
  return { scheme: url.slice(0, colon), rest: url.slice(colon + 1) };
}

function transportOf(url: string, scheme: string): (typeof TRANSPORTS)[number] {
  const t = TRANSPORTS.find((t) => t.schemes.includes(scheme));
  if (!t) throw urlError(url, `unknown scheme '${scheme}' (one of ${SCHEMES.join(', ')})`);
  return t;
}

/** The endpoint `url` names; TypeError ERR_IPCKIT_INVALID_URL when it names none. */
export function parseUrl(url: string): Endpoint {
  const { scheme, rest } = split(url);
  return transportOf(url, scheme).parse(scheme, rest, url);
}

/** Binds the endpoint to the transport that parsed it, so connect/listen always get their own kind. */
function bind<E extends { scheme: string }>(t: Transport<E>, scheme: string, rest: string, url: string): Resolved {
  const ep = t.parse(scheme, rest, url);
  return {
    scheme: ep.scheme,
    transport: t,
    connect: (s, c) => t.connect(ep, url, s, c),
    listen: (s, l, events) => t.listen(ep, url, s, l, events),
  };
}

/** The transport `url` names, bound to its endpoint. */
export function resolve(url: string): Resolved {
  const { scheme, rest } = split(url);
  // Each transport is a Transport<Endpoint> too (its methods take its own endpoints, which bind() guarantees).
  return bind<Endpoint>(transportOf(url, scheme), scheme, rest, url);
}
