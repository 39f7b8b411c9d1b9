// fifo:/path: a one-way named pipe; the listener reads, a connector writes.
// The FIFO's file mode decides who may write, not the kernel's word on a peer.
import { typeError } from '../../core/errors.js';
import { Access } from '../access.js';
import { connectFifo, listenFifo } from '../fifo.js';
import { MAX_LIMIT, STREAM_MAX, parsePath, type Transport } from '../transport.js';

export type FifoEndpoint = { scheme: 'fifo'; path: string };

export const fifo: Transport<FifoEndpoint> = {
  schemes: ['fifo'],
  parse: (scheme, rest, url) => ({ scheme: 'fifo', path: parsePath(scheme, rest, url, false) }),
  maxMessageSize: { default: STREAM_MAX, max: MAX_LIMIT },
  peerCredentials: true,
  connectTimeout: null,
  // check() lets through only allowUids: 'any' alone, so a widened Access here means anyone may write.
  check(o, side) {
    if (side === 'listen' && Access.given(o) && !(o.allowUids === 'any' && o.allowGids === undefined)) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "fifo: cannot tell who writes into the FIFO: its file mode decides (0600: this user and root; allowUids: 'any' makes it 0622)");
    }
  },

  connect: async (ep, _url, s, { timeout, signal }) =>
    connectFifo(ep.path, { codec: s.codec.name, maxMessageSize: s.maxMessageSize, access: s.access }, { ...(timeout !== undefined ? { timeout } : {}), ...(signal ? { signal } : {}) }),
  listen: async (ep, _url, s, { unlink }, events) =>
    listenFifo(ep.path, { codec: s.codec.name, maxMessageSize: s.maxMessageSize, anyWriter: s.access.widened }, unlink, (link) => events.link(link), (e) => events.error(e)),
};
