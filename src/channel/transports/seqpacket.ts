// unix-seqpacket:/path and unix-seqpacket-abstract:NAME: SOCK_SEQPACKET
// sockets (ipckit's message sockets), each frame one message.
import { connect as unixConnect, listen as unixListen } from '../../sockets/unix.js';
import type { MessageSocket } from '../../sockets/message-socket.js';
import { HANDSHAKE_MS } from '../control.js';
import { acceptSeqpacket, connectSeqpacket, seqpacketFrame } from '../handshake.js';
import { seqpacketMaxFrame } from '../seqpacket.js';
import { MAX_LIMIT, parseName, parsePath, type Transport } from '../transport.js';

export type SeqpacketEndpoint = { scheme: 'unix-seqpacket'; path: string } | { scheme: 'unix-seqpacket-abstract'; name: string };

function address(ep: SeqpacketEndpoint): string {
  return ep.scheme === 'unix-seqpacket' ? ep.path : `\0${ep.name}`;
}

export const seqpacket: Transport<SeqpacketEndpoint> = {
  schemes: ['unix-seqpacket', 'unix-seqpacket-abstract'],
  parse: (scheme, rest, url) =>
    scheme === 'unix-seqpacket' ? { scheme, path: parsePath(scheme, rest, url, true) } : { scheme: 'unix-seqpacket-abstract', name: parseName(rest, url) },
  maxMessageSize: {
    default: () => seqpacketMaxFrame() - 5,
    max: MAX_LIMIT,
    describe: 'the socket\'s largest message − 5 (212955 by default)',
  },
  peerCredentials: true,

  async connect(ep, url, s, { timeout }) {
    const frame = seqpacketFrame(s);
    const sock = await unixConnect(address(ep), { type: 'seqpacket', maxMessageSize: frame, ...(timeout !== undefined ? { timeout } : {}) });
    return connectSeqpacket(ep.scheme, url, sock, frame, s, timeout ?? HANDSHAKE_MS);
  },

  async listen(ep, url, s, { unlink }, events) {
    const frame = seqpacketFrame(s);
    const server = await unixListen(address(ep), { type: 'seqpacket', maxMessageSize: frame, unlinkOnClose: unlink, mode: s.access.widened ? 0o666 : 0o600 });
    server.on('connection', (sock: MessageSocket) => acceptSeqpacket(ep.scheme, url, sock, frame, s, events));
    server.on('error', (e: Error) => events.error(e));
    return server;
  },
};
