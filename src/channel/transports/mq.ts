// mq:/NAME: one POSIX message queue per direction per connection,
// rendezvous and liveness by an abstract socket.
import { connectMq, listenMq } from '../mq.js';
import { MAX_LIMIT, urlError, type Transport } from '../transport.js';
import { localSettings } from './shm.js';

export type MqEndpoint = { scheme: 'mq'; name: string };

/** One frame per queue message: the default msgsize_max (8192) minus the frame header. */
export const QUEUE_MAX = 8192 - 5;

/** A queue's name ('/' prefixes dropped): 1..90 bytes, no further slash. */
export function parseQueueName(rest: string, url: string, expected: string): string {
  const name = rest.replace(/^\/+/, '');
  if (!name || name.includes('\0') || name.includes('/') || Buffer.byteLength(name) > 90) throw urlError(url, expected);
  return name;
}

export const mq: Transport<MqEndpoint> = {
  schemes: ['mq'],
  // mq:/NAME, as POSIX queue names are written; the name is the rendezvous.
  parse: (_scheme, rest, url) => ({ scheme: 'mq', name: parseQueueName(rest, url, 'expected mq:/NAME (1..90 bytes, no further slash)') }),
  maxMessageSize: { default: QUEUE_MAX, max: MAX_LIMIT },
  peerCredentials: true,
  connect: (ep, _url, s, { timeout }) => connectMq(ep.name, localSettings(s, timeout)),
  listen: async (ep, _url, s, _l, events) => listenMq(ep.name, localSettings(s), (link) => events.link(link), events),
};
