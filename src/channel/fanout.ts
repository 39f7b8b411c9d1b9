// Publish/subscribe: one way, from any number of publishers to every
// subscriber of a topic, over NATS subjects (the wire: fanout-nats.ts).
//
//   const sub = await channel.subscribe('nats://host:4222/prices');
//   for await (const msg of sub) ...
//   const pub = await channel.publish('nats://host:4222/prices');
//   await pub.send({ eur: 1.08 });
//
// Core NATS delivers at most once: a message can be lost (a slow consumer
// cut off by the server, a server restart) and NATS does not say so. A
// subscriber sees it by the publisher's sequence numbers (and the count a
// publisher sends when it goes quiet or closes) and reports it: a 'lost'
// event where one is listened for, otherwise the iterator throws
// ERR_IPCKIT_MESSAGES_LOST at the place of the gap (and goes on after it).
import { fromHere, typeError } from '../core/errors.js';
import { checkInteger, checkOptions } from '../core/validate.js';
import { resolveCodec, type Codec, type CodecName } from './codec.js';
import { closedError, withoutPassword } from './fanout-connection.js';
import { FANOUT_HEADER } from './fanout-nats.js';
import { Publisher } from './fanout-publisher.js';
import { Subscriber } from './fanout-subscriber.js';
import { NatsSession } from './nats-client.js';
import { checkNatsOptions, type NatsOptions, type NatsSettings } from './nats-options.js';
import { MAX_LIMIT, urlError } from './transport.js';
import { nats, type NatsEndpoint } from './transports/nats.js';
import { SCHEMES } from './transports/index.js';

export { Publisher, Subscriber };
export type { MessagesLostError, SubscriberEvents } from './fanout-subscriber.js';

/** The schemes publish() and subscribe() take. */
const FANOUT_SCHEMES = ['nats'] as const;

// Exported with the public PublishOptions and SubscribeOptions, which are built on it
// (@public tells knip, which sees no import of it).
/** @public */
export interface FanoutOptions<T = unknown> {
  /** 'raw' | 'json' | 'v8' | 'msgpack' or your own { name, encode, decode }. Default 'json'. Publishers and subscribers of a topic must agree (nothing checks it: a message a subscriber cannot decode is dropped and counted as invalid). */
  codec?: CodecName | Codec<T, any>;
  /** Largest message payload in bytes: a publisher refuses to send more, a subscriber drops more (counted as invalid). Default and cap: the server's max_payload − 13 (1048563 with nats-server's default). */
  maxMessageSize?: number;
  /** ms to reach the NATS server. Default 10000. */
  timeout?: number;
  /** More servers, TLS, credentials, the client's name (as for nats:// channels; probeInterval/probeTimeout are for channels only). */
  nats?: Omit<NatsOptions, 'probeInterval' | 'probeTimeout'>;
}

export type PublishOptions<T = unknown> = FanoutOptions<T>;

export interface SubscribeOptions<T = unknown> extends FanoutOptions<T> {
  /** Received messages held for the reader; further ones are dropped and reported as lost, as a loss in the network would be. Default 65536. */
  highWaterMark?: number;
}

const COMMON = ['codec', 'maxMessageSize', 'timeout', 'nats'] as const;
const PUBLISH_OPTIONS = [...COMMON];
const SUBSCRIBE_OPTIONS = [...COMMON, 'highWaterMark'];
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_HIGH_WATER_MARK = 65_536;

interface Checked<T> {
  ep: NatsEndpoint;
  codec: Codec<T, any>;
  maxMessageSize?: number;
  timeout: number;
  nats: NatsSettings;
}

/** The topic `url` names: nats:// only; another channel scheme, or an unknown one, is ERR_IPCKIT_INVALID_URL saying what is supported. */
function topicOf(url: string, what: string): NatsEndpoint {
  if (typeof url !== 'string') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what}(): url must be a string such as nats://127.0.0.1:4222/TOPIC`);
  const colon = url.indexOf(':');
  const scheme = colon < 0 ? '' : url.slice(0, colon);
  if (scheme === 'nats') return nats.parse('nats', url.slice(colon + 1), url);
  const supported = FANOUT_SCHEMES.map((s) => `${s}://`).join(', ');
  if (SCHEMES.includes(scheme)) {
    throw urlError(url, `${what}() supports ${supported}; ${scheme}: is a channel transport (one sender, one receiver). For fan-out between processes of one host, run a nats-server there (nats://127.0.0.1:4222/TOPIC)`);
  }
  throw urlError(url, `${scheme ? `unknown scheme '${scheme}'` : 'no scheme'}: ${what}() supports ${supported}`);
}

function checkCommon<T>(url: string, options: FanoutOptions<T> | undefined, what: string, known: readonly string[]): Checked<T> & { o: SubscribeOptions<T> } {
  const o = checkOptions(options, 'options', known) as SubscribeOptions<T>;
  const ep = topicOf(url, what);
  const codec = resolveCodec<T>(o.codec as CodecName | Codec<T> | undefined);
  const maxMessageSize = o.maxMessageSize === undefined ? undefined : checkInteger(o.maxMessageSize, 'options.maxMessageSize', 1, MAX_LIMIT);
  const timeout = checkInteger(o.timeout, 'options.timeout', 1, 2 ** 31 - 1, DEFAULT_TIMEOUT_MS);
  const given = o.nats as NatsOptions | undefined;
  if (given?.probeInterval !== undefined || given?.probeTimeout !== undefined) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.nats.probeInterval/probeTimeout are for nats:// channels: ${what}() has no peer to probe`);
  }
  return { o, ep, codec, ...(maxMessageSize !== undefined ? { maxMessageSize } : {}), timeout, nats: checkNatsOptions(given) };
}

/** The largest message body: options.maxMessageSize within what the server carries. */
function bodyLimit(given: number | undefined, session: NatsSession): number {
  const server = session.maxPayload - FANOUT_HEADER;
  return given === undefined ? server : Math.min(given, server);
}

/** A publisher's or subscriber's own connection, which reconnects (and subscribes again) by itself after the server comes back. */
function openSession(c: Checked<unknown>, url: string): Promise<NatsSession> {
  // The URL is only named in its errors.
  return NatsSession.open(c.ep, c.nats, withoutPassword(url), true, c.timeout);
}

/** Connects to the server of `url` (nats://host[:port]/TOPIC) and resolves with a publisher to TOPIC. */
export function publish(url: string, options: PublishOptions<ArrayBufferView> & { codec: 'raw' }): Promise<Publisher<ArrayBufferView>>;
export function publish<T = unknown>(url: string, options?: PublishOptions<T>): Promise<Publisher<T>>;
export function publish<T = unknown>(url: string, options?: PublishOptions<T>): Promise<Publisher<T>> {
  return fromHere(
    (async () => {
      const c = checkCommon<T>(url, options, 'publish', PUBLISH_OPTIONS);
      const session = await openSession(c, url);
      return new Publisher<T>(url, session, c.ep.name, c.codec, bodyLimit(c.maxMessageSize, session));
    })(),
  );
}

/** Connects to the server of `url` and subscribes to TOPIC; resolves once the server has the subscription (every message published after that arrives). */
export function subscribe(url: string, options: SubscribeOptions<Buffer> & { codec: 'raw' }): Promise<Subscriber<Buffer>>;
export function subscribe<T = unknown>(url: string, options?: SubscribeOptions<T>): Promise<Subscriber<T>>;
export function subscribe<T = unknown>(url: string, options?: SubscribeOptions<T>): Promise<Subscriber<T>> {
  return fromHere(
    (async () => {
      const c = checkCommon<T>(url, options, 'subscribe', SUBSCRIBE_OPTIONS);
      const highWaterMark = checkInteger(c.o.highWaterMark, 'options.highWaterMark', 1, 1 << 24, DEFAULT_HIGH_WATER_MARK);
      const session = await openSession(c, url);
      let sub: Subscriber<T>;
      try {
        sub = new Subscriber<T>(url, session, c.ep.name, c.codec as Codec<unknown, T>, bodyLimit(c.maxMessageSize, session), highWaterMark);
      } catch (e) {
        // Nothing of it can be used: the connection goes too.
        void session.nc.close().catch(() => {});
        throw e;
      }
      try {
        await session.nc.flush();
      } catch (e) {
        await sub.close();
        throw closedError(sub.url, e);
      }
      // The server refuses this user the subject: it says so before the PONG.
      const failure = sub.failure;
      if (failure) {
        await sub.close();
        throw failure;
      }
      return sub;
    })(),
  );
}
