// sysvmq:KEY: two private System V queues per connection, rendezvous and
// liveness by an abstract socket.
import { connectSysvMq, listenSysvMq } from '../sysvmq.js';
import { MAX_LIMIT, type Transport } from '../transport.js';
import { QUEUE_MAX, parseQueueName } from './mq.js';
import { localSettings } from './shm.js';

export type SysvMqEndpoint = { scheme: 'sysvmq'; name: string };

export const sysvmq: Transport<SysvMqEndpoint> = {
  schemes: ['sysvmq'],
  // sysvmq:KEY — any name (a key such as 0x1234 reads naturally); it is the rendezvous.
  parse: (_scheme, rest, url) => ({ scheme: 'sysvmq', name: parseQueueName(rest, url, 'expected sysvmq:KEY (1..90 bytes, no slash)') }),
  maxMessageSize: { default: QUEUE_MAX, max: MAX_LIMIT },
  peerCredentials: true,
  connect: (ep, _url, s, { timeout }) => connectSysvMq(ep.name, localSettings(s, timeout)),
  listen: async (ep, _url, s, _l, events) => listenSysvMq(ep.name, localSettings(s), (link) => events.link(link), events),
};
