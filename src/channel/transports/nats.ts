// nats://[user:pass@]host[:port]/NAME: channels through a NATS server (core
// NATS), for processes on many hosts. The listener subscribes to
// ipckit.NAME in the queue group 'ipckit', so several listeners of one name
// share the incoming connections. A connector subscribes to a private
// subject of its own and sends its hello as a request to ipckit.NAME; the
// listener that gets it subscribes to a private subject too and answers with
// its hello. From then on each side publishes to the other's subject
// (nats-link.ts). Nobody subscribed to ipckit.NAME: the server answers "no
// responders" at once, and connect() rejects with ECONNREFUSED (so `retry`
// waits for a listener). NATS cannot say who is at the other end:
// allowUids/allowGids are refused; the server's own authentication (user and
// password in the URL, a token or TLS in options.nats) decides who may talk.
import { randomBytes } from 'node:crypto';
import { IpcError, errno, stateError, timeoutError } from '../../core/errors.js';
import { HANDSHAKE_MS } from '../control.js';
import { HELLO_MAX } from '../frame.js';
import { Refusal, checkHello, checkReply, makeHello, type Hello } from '../hello.js';
import { NatsSession, isNoResponders, isTimeout, type NatsMsg, type NatsServer, type NatsSubscription } from '../nats-client.js';
import { NATS_OVERHEAD, NatsLink, PRIVATE_SUBJECT } from '../nats-link.js';
import { MAX_LIMIT, urlError, type Listener, type Settings, type Transport } from '../transport.js';

export type NatsEndpoint = NatsServer & { scheme: 'nats'; name: string };

/** nats-server's default max_payload. */
const SERVER_DEFAULT_PAYLOAD = 1024 * 1024;
const DEFAULT_PORT = 4222;
/** The queue group every listener joins: one of them takes each connect. */
const QUEUE = 'ipckit';
const NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const subjectOf = (name: string): string => `ipckit.${name}`;
export const privateSubject = (): string => `_IPCKIT.${randomBytes(16).toString('hex')}`;

/** The largest channel frame this side takes: options.maxMessageSize (when given) within what the server carries. */
function maxFrameIn(s: Settings, session: NatsSession): number {
  const server = session.maxPayload - NATS_OVERHEAD;
  return (s.maxMessageSizeGiven ? Math.min(s.maxMessageSize, server) : server) + 5;
}

function helloOf(s: Settings, link: NatsLink, subject: string, maxIn: number): Hello {
  return makeHello('nats', s.codec.name, maxIn - 5, { subject, window: link.window, frames: link.frameWindow });
}

/** The peer's subject and windows from its hello, checked: a hostile peer gets no say in where this side publishes. */
export function peerParts(hello: Hello, maxOut: number): { subject: string; window: number; frames: number } {
  const { subject, window, frames } = hello;
  if (typeof subject !== 'string' || !PRIVATE_SUBJECT.test(subject)) throw new Refusal('EPROTO', 'the hello names no private subject of the expected form');
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 2 * maxOut || window > 4 * MAX_LIMIT) {
    throw new Refusal('EPROTO', `the hello announces an impossible window (${JSON.stringify(window)})`);
  }
  if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 16 || frames > 1 << 24) {
    throw new Refusal('EPROTO', `the hello announces an impossible window of messages (${JSON.stringify(frames)})`);
  }
  return { subject, window, frames };
}

export function readJson(data: Uint8Array): Record<string, unknown> {
  let value: unknown = null;
  if (data.length <= HELLO_MAX) {
    try {
      value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.length).toString('utf8'));
    } catch {
      value = null;
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Refusal('EPROTO', 'malformed hello');
  return value as Record<string, unknown>;
}

export const json = (value: object): Uint8Array => Buffer.from(JSON.stringify(value), 'utf8');

/** The server and NAME of a nats:// or jetstream:// URL, checked. */
export function parseNatsUrl(url: string, scheme: string): NatsServer & { name: string } {
  const shape = `expected ${scheme}://[user:pass@]host[:port]/NAME`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw urlError(url, shape);
  }
  const name = u.pathname.replace(/^\//, '');
  if (!u.hostname || u.search || u.hash) throw urlError(url, shape);
  if (!NAME.test(name) || name.length > 200) throw urlError(url, 'NAME must be 1..200 characters of letters, digits, - and _, in dot-separated parts (a NATS subject without wildcards)');
  const port = u.port === '' ? DEFAULT_PORT : Number(u.port);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    name,
    ...(u.username ? { user: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { pass: decodeURIComponent(u.password) } : {}),
  };
}

export const nats: Transport<NatsEndpoint> = {
  schemes: ['nats'],
  parse: (_scheme, _rest, url) => ({ scheme: 'nats', ...parseNatsUrl(url, 'nats') }),
  maxMessageSize: {
    default: () => SERVER_DEFAULT_PAYLOAD - NATS_OVERHEAD,
    max: MAX_LIMIT,
    describe: "the server's `max_payload` − 10 (1048566 with nats-server's default 1 MiB); a larger setting is capped",
  },
  peerCredentials: false,

  async connect(ep, url, s, { timeout }) {
    const ms = timeout ?? HANDSHAKE_MS;
    const session = await NatsSession.open(ep, s.nats, url, false, ms);
    const maxIn = maxFrameIn(s, session);
    const ours = privateSubject();
    let link: NatsLink;
    try {
      link = new NatsLink(session, ours, maxIn, s.nats);
    } catch (e) {
      // Nobody holds the connection yet: closing it is this connect's job.
      void session.release(session);
      throw e;
    }
    try {
      const { maxOut, peer } = await exchangeHellos(session, subjectOf(ep.name), helloOf(s, link, ours, maxIn), url, ms, s.codec.name, session.maxPayload - 5);
      link.attach(peer.subject, maxOut, peer.window, peer.frames);
      return link;
    } catch (e) {
      link.destroy();
      throw e;
    }
  },

  async listen(ep, url, s, _l, events) {
    const session = await NatsSession.open(ep, s.nats, url, true, HANDSHAKE_MS);
    const token = {};
    session.hold(token);
    const onHello = (msg: NatsMsg) => {
      if (!msg.reply) return;
      let link: NatsLink | null = null;
      try {
        const hello = checkHello(readJson(msg.data), 'nats', s.codec.name);
        const maxIn = maxFrameIn(s, session);
        const maxOut = Math.min(hello.max + 5, session.maxPayload - 5);
        const peer = peerParts(hello, maxOut);
        const ours = privateSubject();
        link = new NatsLink(session, ours, maxIn, s.nats);
        link.attach(peer.subject, maxOut, peer.window, peer.frames);
        // Subscribed before answering: the connector publishes only after the answer.
        msg.respond(json(helloOf(s, link, ours, maxIn)));
        events.link(link);
      } catch (e) {
        link?.destroy();
        if (e instanceof Refusal) msg.respond(json(e.reply));
        events.error(stateError('ERR_IPCKIT_HANDSHAKE', `${url}: refused a peer: ${(e as Error).message}`));
      }
    };
    return serveHellos(session, token, subjectOf(ep.name), onHello);
  },
};

/**
 * A connector's side of the handshake: `hello` as a request to `subject`;
 * the listener's hello, checked, and the largest frame this side may send
 * it (what it announced, at most `cap`). Nobody subscribed: ECONNREFUSED at
 * once ("no responders"); no answer within `ms`: ETIMEDOUT; a refusal or a
 * malformed answer: ERR_IPCKIT_HANDSHAKE.
 */
export async function exchangeHellos(session: NatsSession, subject: string, hello: Hello, url: string, ms: number, codec: string, cap: number): Promise<{ maxOut: number; peer: ReturnType<typeof peerParts> }> {
  let reply: NatsMsg;
  try {
    reply = await session.nc.request(subject, json(hello), { timeout: ms });
  } catch (e) {
    if (isNoResponders(e)) throw new IpcError(errno.ECONNREFUSED, 'connect', { path: url }, `no listener subscribes to ${subject}`);
    if (isTimeout(e)) throw timeoutError('connect', { path: url }, `no answer to the hello within ${ms} ms`);
    throw e;
  }
  try {
    const theirs = checkReply(url, readJson(reply.data), hello.transport, codec);
    const maxOut = Math.min(theirs.max + 5, cap);
    return { maxOut, peer: peerParts(theirs, maxOut) };
  } catch (e) {
    throw checkReplyError(url, e);
  }
}

/**
 * A listener's subscription to its hello subject (queue group QUEUE),
 * resolved once the server has it (peers can connect from then on), as a
 * Listener whose close() lets go of the session.
 */
export async function serveHellos(session: NatsSession, token: object, subject: string, onHello: (msg: NatsMsg) => unknown): Promise<Listener> {
  let sub: NatsSubscription;
  try {
    sub = session.nc.subscribe(subject, { queue: QUEUE, callback: (error, msg) => error || void onHello(msg) });
    await session.nc.flush();
  } catch (e) {
    void session.release(token);
    throw e;
  }
  let released: Promise<void> | null = null;
  return {
    close: () => {
      if (released) return;
      try {
        sub.unsubscribe();
      } catch {
        // The connection is already closed.
      }
      released = session.release(token);
    },
    closed: () => released ?? Promise.resolve(),
    ref: () => session.ref(token, true),
    unref: () => session.ref(token, false),
  };
}

/** A reply that is not a well-formed hello: the connect fails as a handshake error. */
function checkReplyError(url: string, e: unknown): unknown {
  return e instanceof Refusal ? stateError('ERR_IPCKIT_HANDSHAKE', `${url}: ${e.message}`) : e;
}
