// jetstream://[user:pass@]host[:port]/NAME: channels through a NATS server's
// JetStream, so that a channel survives the server being killed and
// restarted on its store (jetstream-link.ts). The URL, options.nats and the
// handshake are those of nats:// (transports/nats.ts), on subject
// ipckit-js.NAME: a connector sends its hello (naming the channel's stream,
// IPCKIT_<32 random hex digits>) as a request; the listener that gets it
// creates the stream and its own consumer and answers; then the connector
// creates its consumer. Nobody listening: nothing was created.
// Both clients reconnect by themselves; the channel waits up to probeTimeout
// for the server to come back.
import { randomBytes } from 'node:crypto';
import { stateError } from '../../core/errors.js';
import { HANDSHAKE_MS } from '../control.js';
import { Refusal, checkHello, makeHello, type Hello } from '../hello.js';
import { jetStreamOf, loadJetStream, type JetStreamContext } from '../jetstream-client.js';
import { JS_OVERHEAD, JetStreamLink, STREAM_NAME, streamConfig, streamName } from '../jetstream-link.js';
import { NatsSession, type NatsMsg, type NatsServer } from '../nats-client.js';
import { MAX_LIMIT, type Settings, type Transport } from '../transport.js';
import { exchangeHellos, json, parseNatsUrl, peerParts, privateSubject, readJson, serveHellos } from './nats.js';

export type JetStreamEndpoint = NatsServer & { scheme: 'jetstream'; name: string };

const SERVER_DEFAULT_PAYLOAD = 1024 * 1024;
const jetStreamSubjectOf = (name: string): string => `ipckit-js.${name}`;

/** JetStream's error code for a stream whose store could not be made (JSStreamStoreFailedF). */
const STORE_DIR_FAILED = 10077;
const ADD_STREAM_ATTEMPTS = 4;

/**
 * Creates a channel's stream. nats-server 2.9 removes an account's empty
 * streams directory when its last stream is deleted, and a stream created at
 * that moment fails with "could not create storage directory" (10077; the
 * server's own log says mkdir found no parent): that failure is tried again,
 * a few milliseconds later, a few times.
 */
async function addStream(jsm: JetStreamContext['jsm'], config: Record<string, unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await jsm.streams.add(config);
      return;
    } catch (e) {
      // JetStreamApiError: `code` is the API's err_code.
      if ((e as { code?: unknown })?.code !== STORE_DIR_FAILED || attempt === ADD_STREAM_ATTEMPTS) throw e;
      await new Promise((r) => setTimeout(r, 5 * attempt));
    }
  }
}

function maxFrameIn(s: Settings, session: NatsSession): number {
  const server = session.maxPayload - JS_OVERHEAD;
  return (s.maxMessageSizeGiven ? Math.min(s.maxMessageSize, server) : server) + 5;
}

function helloOf(s: Settings, link: JetStreamLink, subject: string, maxIn: number, stream?: string): Hello {
  return makeHello('jetstream', s.codec.name, maxIn - 5, { subject, window: link.window, frames: link.frameWindow, ...(stream ? { stream } : {}) });
}

/**
 * A JetStream context, or `holder` lets go of the session and the call fails
 * with a clear reason (the server has JetStream off).
 */
async function contextOf(session: NatsSession, holder: object, url: string, check: boolean): Promise<JetStreamContext> {
  try {
    return await jetStreamOf(session, check);
  } catch (e) {
    void session.release(holder);
    if ((e as { code?: string })?.code === 'ERR_IPCKIT_MISSING_PACKAGE') throw e;
    const err = stateError('ERR_IPCKIT_HANDSHAKE', `${url}: the NATS server offers no JetStream (start it with -js, or jetstream {} in its configuration): ${(e as Error)?.message ?? e}`);
    (err as Error).cause = e;
    throw err;
  }
}

export const jetstream: Transport<JetStreamEndpoint> = {
  schemes: ['jetstream'],
  parse: (_scheme, _rest, url) => ({ scheme: 'jetstream', ...parseNatsUrl(url, 'jetstream') }),
  maxMessageSize: {
    default: () => SERVER_DEFAULT_PAYLOAD - JS_OVERHEAD,
    max: MAX_LIMIT,
    describe: "the server's `max_payload` − 76 (1048500 with nats-server's default 1 MiB); a larger setting is capped",
  },
  peerCredentials: false,

  async connect(ep, url, s, { timeout }) {
    const ms = timeout ?? HANDSHAKE_MS;
    // Both packages first: a missing one is the error, whether or not a server is there.
    await loadJetStream();
    const session = await NatsSession.open(ep, s.nats, url, true, ms);
    let link: JetStreamLink | null = null;
    const id = randomBytes(16).toString('hex');
    const ctx = await contextOf(session, session, url, false);
    // Whether the listener may have made the stream: then a failed connect deletes it.
    let asked = false;
    try {
      const maxIn = maxFrameIn(s, session);
      const ours = privateSubject();
      link = new JetStreamLink(session, { ctx, id, side: 'c', subject: ours, deliverSubject: privateSubject(), ackSubject: privateSubject() }, maxIn, s.nats);
      asked = true;
      let parts: Awaited<ReturnType<typeof exchangeHellos>>;
      try {
        parts = await exchangeHellos(session, jetStreamSubjectOf(ep.name), helloOf(s, link, ours, maxIn, streamName(id)), url, ms, s.codec.name, session.maxPayload - JS_OVERHEAD + 5);
      } catch (e) {
        // Nobody listening: nothing was made.
        if ((e as { code?: string }).code === 'ECONNREFUSED') asked = false;
        throw e;
      }
      const { maxOut, peer } = parts;
      // The listener made the stream and its consumer before answering: this side's consumer reads from the start.
      await link.createConsumer();
      link.attach(peer.subject, maxOut, peer.window, peer.frames);
      return link;
    } catch (e) {
      // The stream goes with the failed connect (its consumers with it); then the link's hold on the connection.
      if (asked) await ctx.jsm.streams.delete(streamName(id)).catch(() => false);
      // Rejected once the connection is closed: a failed connect leaves nothing open.
      if (link) {
        link.destroy();
        await link.released();
      } else await session.release(session);
      throw e;
    }
  },

  async listen(ep, url, s, _l, events) {
    await loadJetStream();
    const session = await NatsSession.open(ep, s.nats, url, true, HANDSHAKE_MS);
    const token = {};
    session.hold(token);
    const ctx = await contextOf(session, token, url, true);
    const onHello = async (msg: NatsMsg) => {
      if (!msg.reply) return;
      let link: JetStreamLink | null = null;
      try {
        const hello = checkHello(readJson(msg.data), 'jetstream', s.codec.name);
        const maxIn = maxFrameIn(s, session);
        const maxOut = Math.min(hello.max + 5, session.maxPayload - JS_OVERHEAD + 5);
        const peer = peerParts(hello, maxOut);
        if (typeof hello.stream !== 'string' || !STREAM_NAME.test(hello.stream)) throw new Refusal('EPROTO', 'the hello names no stream of the expected form');
        const ours = privateSubject();
        const id = hello.stream.slice('IPCKIT_'.length);
        link = new JetStreamLink(session, { ctx, id, side: 'l', subject: ours, deliverSubject: privateSubject(), ackSubject: privateSubject() }, maxIn, s.nats);
        try {
          await addStream(ctx.jsm, streamConfig(id));
          await link.createConsumer();
        } catch (e) {
          throw new Refusal('EPROTO', `could not make the channel's stream: ${(e as Error)?.message ?? e}`);
        }
        link.attach(peer.subject, maxOut, peer.window, peer.frames);
        msg.respond(json(helloOf(s, link, ours, maxIn)));
        events.link(link);
      } catch (e) {
        link?.destroy();
        if (e instanceof Refusal) msg.respond(json(e.reply));
        events.error(stateError('ERR_IPCKIT_HANDSHAKE', `${url}: refused a peer: ${(e as Error).message}`));
      }
    };
    // An empty stream of the listener's own for as long as it listens: the
    // account's streams directory is never empty while its channels' streams
    // come and go, so nats-server 2.9 never removes that directory under a
    // stream being made (see addStream; with 25 channels made and closed in
    // a row, a stream now and then failed to be made or vanished).
    // Named IPCKIT_L_<id>: no hello can name it (STREAM_NAME), and it takes no subject.
    const anchor = `IPCKIT_L_${randomBytes(16).toString('hex')}`;
    try {
      await addStream(ctx.jsm, { name: anchor, subjects: [], storage: 'file', num_replicas: 1 });
    } catch (e) {
      void session.release(token);
      throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: could not make the listener's stream: ${(e as Error)?.message ?? e}`);
    }
    const listener = await serveHellos(session, token, jetStreamSubjectOf(ep.name), onHello);
    let closing: Promise<void> | null = null;
    return {
      ...listener,
      close: () => {
        closing ??= ctx.jsm.streams
          .delete(anchor)
          .catch(() => false)
          .then(() => listener.close());
      },
      closed: () => (closing ?? Promise.resolve()).then(() => listener.closed?.()),
    };
  },
};
