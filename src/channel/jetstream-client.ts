// The JetStream client behind jetstream:// channels: @nats-io/jetstream, a
// second optional peer dependency, loaded with import() only for jetstream:
// URLs (on top of the NATS client, nats-client.ts). Only the calls ipckit
// makes are typed here, structurally, so ipckit's types never need the package.
// One JetStream context per NatsSession: a listener's channels share it.
import { loadNatsClient, loadOptional, type NatsConnection, type NatsSession } from './nats-client.js';

const JETSTREAM_PACKAGE = '@nats-io/jetstream';

/** Message headers, as the NATS client makes them. */
interface MsgHdrs {
  set(key: string, value: string): void;
}

interface JetStreamManager {
  streams: {
    add(config: Record<string, unknown>): Promise<unknown>;
    delete(stream: string): Promise<boolean>;
    info(stream: string): Promise<{ state: { consumer_count: number } }>;
  };
  consumers: {
    add(stream: string, config: Record<string, unknown>): Promise<unknown>;
    delete(stream: string, consumer: string): Promise<boolean>;
  };
}

interface JetStreamModule {
  jetstreamManager(nc: NatsConnection, options?: Record<string, unknown>): Promise<JetStreamManager>;
}

export interface JetStreamContext {
  jsm: JetStreamManager;
  /** The NATS client's headers(): a link publishes itself (with a reply subject for the PubAck), not through the JetStream client's request per message. */
  headers(): MsgHdrs;
}

/** The package, loaded once; ERR_IPCKIT_MISSING_PACKAGE naming it when it is not installed. */
export const loadJetStream = (): Promise<JetStreamModule> => loadOptional<JetStreamModule>(JETSTREAM_PACKAGE, 'jetstream:// channels need the JetStream client');

const contexts = new WeakMap<NatsSession, Promise<JetStreamContext>>();

/**
 * The session's JetStream manager and the client's headers(). `check`: the
 * manager's first call asks the server whether it has JetStream on (a
 * listener does, so listen() says so at once; a connector's hello goes
 * first, and a listener only exists where JetStream is on).
 */
export function jetStreamOf(session: NatsSession, check: boolean): Promise<JetStreamContext> {
  let c = contexts.get(session);
  if (!c) {
    c = Promise.all([loadJetStream(), loadNatsClient()]).then(async ([m, nats]) => ({
      jsm: await m.jetstreamManager(session.nc, { checkAPI: check }),
      headers: nats.headers,
    }));
    c.catch(() => contexts.delete(session));
    contexts.set(session, c);
  }
  return c;
}
