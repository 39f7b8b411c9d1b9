// shm:NAME: a pair of rings in shared memory per connection (or one shared
// ring a listener reads: sharedRing), rendezvous by an abstract socket.
import { typeError } from '../../core/errors.js';
import { connectShm, listenShm, type ShmSettings } from '../shm.js';
import { MAX_RING, maxFrameFor } from '../ring.js';
import { parseName, type Settings, type Transport } from '../transport.js';

export type ShmEndpoint = { scheme: 'shm'; name: string };

/** What connectShm/listenShm (and the queue transports) take from the common settings. */
export function localSettings(s: Settings, timeout?: number): ShmSettings {
  return { ...s.shm, codec: s.codec.name, maxMessageSize: s.maxMessageSize, access: s.access, ...(timeout !== undefined ? { timeout } : {}) };
}

export const shm: Transport<ShmEndpoint> = {
  schemes: ['shm'],
  parse: (_scheme, rest, url) => ({ scheme: 'shm', name: parseName(rest, url) }),
  // The largest message a ring can carry: two records must fit the largest ring.
  maxMessageSize: { default: 1024 * 1024, max: maxFrameFor(MAX_RING) - 5 },
  peerCredentials: true,
  sharedRing: true,
  check(_o, side, s, l) {
    if (side === 'listen' && l?.sharedRing && s.shm.zeroCopy) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.sharedRing and options.zeroCopy do not go together (the listener copies frames out of the shared ring)');
    }
  },

  connect: (ep, _url, s, { timeout }) => connectShm(ep.name, localSettings(s, timeout)),
  listen: async (ep, _url, s, { sharedRing }, events) => listenShm(ep.name, { ...localSettings(s), sharedRing }, (link) => events.link(link), events),
};
