// What a publisher and a subscriber of a topic share (fanout.ts): a NATS
// connection of their own, which reconnects by itself, closed within a grace
// period by close() or dispose; and how they name themselves in errors.
import { EventEmitter } from 'node:events';
import { stateError } from '../core/errors.js';
import type { NatsSession } from './nats-client.js';
import { CLOSE_GRACE_MS } from './stream.js';

/** Closes a session within CLOSE_GRACE_MS: what was published goes first while the server is there; a server that is gone does not hold close() up. */
export async function releaseWithin(session: NatsSession, holder: object): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const released = session.release(holder);
  const inTime = await Promise.race([released.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(r, CLOSE_GRACE_MS, false)))]);
  clearTimeout(timer);
  if (!inTime) await session.nc.close().catch(() => {});
}

/** What a call on a closed publisher or subscriber, or one whose connection closed for good, fails with. */
export function closedError(url: string, cause?: unknown): Error {
  const err = stateError('ERR_IPCKIT_CLOSED', `${url}: closed${cause instanceof Error ? ` (${cause.message})` : ''}`);
  if (cause !== undefined) (err as Error).cause = cause;
  return err;
}

/** `url` with its password, if any, hidden: what errors and `url` show (they end up in logs). */
export function withoutPassword(url: string): string {
  return url.replace(/^(nats:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** What a publisher and a subscriber share: their own connection to the server, closed by close() or dispose. */
export abstract class TopicConnection extends EventEmitter implements AsyncDisposable {
  /** The URL given, its password (if any) shown as ***. */
  readonly url: string;
  /** @internal */
  protected readonly session: NatsSession;

  constructor(url: string, session: NatsSession) {
    super();
    this.url = withoutPassword(url);
    this.session = session;
    session.hold(this);
  }

  abstract close(): Promise<void>;

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Whether the connection keeps the process alive (default true). */
  ref(): this {
    this.session.ref(this, true);
    return this;
  }

  unref(): this {
    this.session.ref(this, false);
    return this;
  }
}
